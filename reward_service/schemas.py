"""Request and response bodies of api.md as pydantic models, shared by the service and the client.

The service validates requests with them and writes /openapi.json from them; the client
(trainer_client.client) builds its requests and reads its responses with them. Only pydantic: no
FastAPI, so the base install (scoring core and client) can import this.

Requests are strict (no "3" for 3, no unknown fields) so a client's typo fails loudly instead of being
scored with defaults. Responses are built as plain dicts and serialised with orjson for speed; the
response models here document them and the contract tests check the two agree.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from reward_service.scoring import TASK_TYPES

REFERENCE_SCHEMA: dict[str, Any] = {
    "title": "Reference",
    "description": (
        "The ground truth of one item, as in reward-spec.md: `answer` depends on `task_type` (an option "
        "letter, a number, [start, end], a 2D or 3D box, or frame keys to 2D boxes); `graph` is the "
        "reference relation graph. Other keys are allowed and ignored."
    ),
    "type": "object",
    "required": ["task_type", "answer"],
    "properties": {
        "task_type": {"type": "string", "enum": list(TASK_TYPES)},
        "answer": {},
        "options": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 10},
        "graph": {},
        "graph_scale": {"anyOf": [{"type": "number", "exclusiveMinimum": 0}, {"type": "null"}]},
    },
    "additionalProperties": True,
}

ReferenceBody = Annotated[dict[str, Any], WithJsonSchema(REFERENCE_SCHEMA)]
ConfigOverride = Annotated[
    dict[str, Any],
    WithJsonSchema({
        "type": "object",
        "description": "A partial reward config (reward-spec section 8), deep-merged over the server's default.",
    }),
]
AdvantageMode = Literal["grpo", "dr_grpo", "rloo"]
ID_MAX_CHARS = 128
Status = Literal["ok", "timeout", "error"]


class RewardItem(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    id: str = Field(min_length=1, max_length=ID_MAX_CHARS, description="unique within the request")
    group_id: str | None = Field(default=None, description="the prompt this rollout belongs to")
    completion: str
    reference: ReferenceBody
    num_tokens: int | None = Field(default=None, ge=0)


class RewardsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    items: list[RewardItem] = Field(description="at most the server's item limit (default 4096), else 413")
    config: ConfigOverride | None = None
    advantages: AdvantageMode | None = Field(default=None, description="group advantages; needs group_id on every item")
    explain: bool = False


class Components(BaseModel):
    format: float | None
    answer: float | None
    graph_node: float | None
    graph_edge: float | None
    length: float | None


class Diagnostics(BaseModel):
    """`notes` always; on a masked item `error` (why it was not scored) and `retryable` (the cause was
    the service's state, not the item: sending it again can score it); with `explain`, the parse."""

    model_config = ConfigDict(extra="allow")

    notes: list[str]
    error: str | None = Field(default=None, description="masked items: why the item was not scored")
    retryable: bool | None = Field(default=None, description="masked items: whether a retry can score it")


class RewardResult(BaseModel):
    id: str
    group_id: str | None
    status: Status
    mask: bool = Field(description="true exactly when status is not ok; then reward is null")
    reward: float | None
    components: Components
    advantage: float | None
    cached: bool
    diagnostics: Diagnostics


class RewardsResponse(BaseModel):
    reward_config_id: str
    scorer_version: str
    results: list[RewardResult]


class OpenRLHFRequest(BaseModel):
    """OpenRLHF's remote reward request. Extra keys are ignored: the trainer may add its own."""

    model_config = ConfigDict(extra="ignore", strict=True)

    query: list[str] = Field(description="prompt plus response")
    prompts: list[str]
    labels: list[str] = Field(description="each item's reference as a JSON string")


class OpenRLHFResponse(BaseModel):
    rewards: list[float]
    scores: list[float] = Field(description="rewards clipped to [0, 1]")
    extra_logs: dict[str, list[float]]


class ServiceLimits(BaseModel):
    """The request limits of this server, so a client can split its batches to fit (beyond api.md's
    fields for /v1/config: an addition no client has to read)."""

    max_items: int = Field(description="most items in one request; more is a 413")
    max_body_bytes: int = Field(description="largest request body; more is a 413")


class ConfigResponse(BaseModel):
    reward_config_id: str
    scorer_version: str
    config: dict[str, Any]
    limits: ServiceLimits


class StatusBody(BaseModel):
    status: str


class ErrorInfo(BaseModel):
    code: str
    message: str


class ValidationIssue(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorBody(BaseModel):
    error: ErrorInfo
    detail: list[ValidationIssue] | None = None
