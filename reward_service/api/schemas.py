"""Request and response bodies of api.md as pydantic models: they validate requests and write /openapi.json.

Requests are strict (no "3" for 3, no unknown fields) so a client's typo fails loudly instead of being
scored with defaults. Responses are built as plain dicts and serialised with orjson for speed; the
response models here document them and the contract tests check the two agree.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NamedTuple, cast, get_args

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
Status = Literal["ok", "timeout", "error"]


class RewardItem(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    id: str = Field(min_length=1, max_length=128, description="unique within the request")  # also _ID_MAX
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


class ScoringRequest(NamedTuple):
    """A valid `RewardsRequest` as the route uses it: columns, with references as the client sent them."""

    ids: list[str]
    group_ids: list[str | None]
    items: list[tuple[str, dict[str, Any], int | None]]  # completion, reference, num_tokens
    config: dict[str, Any] | None
    advantages: AdvantageMode | None
    explain: bool

    @classmethod
    def of(cls, req: RewardsRequest) -> ScoringRequest:
        return cls([i.id for i in req.items], [i.group_id for i in req.items],
                   [(i.completion, i.reference, i.num_tokens) for i in req.items], req.config, req.advantages,
                   req.explain)


_REQUEST_KEYS = frozenset(RewardsRequest.model_fields)
_ITEM_KEYS = frozenset(RewardItem.model_fields)
_ADVANTAGE_MODES = frozenset(get_args(AdvantageMode))
_ID_MAX = 128


def read_valid_request(data: Any) -> ScoringRequest | None:
    """`data` as a ScoringRequest when it is plainly valid, else None (then validate it with the model).

    Building and freeing 512 `RewardItem` models costs about as much as parsing the request body: this
    checks the same rules on the plain JSON values and builds nothing. It is stricter than the models,
    never looser (tests/test_api_schema_fast.py checks both on generated requests): anything unusual
    falls back to `RewardsRequest`, whose errors are the ones a client sees.
    """
    if type(data) is not dict or not _REQUEST_KEYS.issuperset(data):
        return None
    raw, config = data.get("items"), data.get("config")
    advantages, explain = data.get("advantages"), data.get("explain", False)
    if (type(raw) is not list or (config is not None and type(config) is not dict) or type(explain) is not bool
            or (advantages is not None and (type(advantages) is not str or advantages not in _ADVANTAGE_MODES))):
        return None
    ids: list[str] = []
    group_ids: list[str | None] = []
    items: list[tuple[str, dict[str, Any], int | None]] = []
    for item in raw:
        if type(item) is not dict or not _ITEM_KEYS.issuperset(item):
            return None
        item_id, completion, reference = item.get("id"), item.get("completion"), item.get("reference")
        group_id, num_tokens = item.get("group_id"), item.get("num_tokens")
        if (type(item_id) is not str or not 0 < len(item_id) <= _ID_MAX or type(completion) is not str
                or type(reference) is not dict or (group_id is not None and type(group_id) is not str)
                or (num_tokens is not None and (type(num_tokens) is not int or num_tokens < 0))):
            return None
        ids.append(item_id)
        group_ids.append(group_id)
        items.append((completion, reference, num_tokens))
    return ScoringRequest(ids, group_ids, items, config, cast(AdvantageMode | None, advantages), explain)


class Components(BaseModel):
    format: float | None
    answer: float | None
    graph_node: float | None
    graph_edge: float | None
    length: float | None


class Diagnostics(BaseModel):
    model_config = ConfigDict(extra="allow")

    notes: list[str]


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


class ConfigResponse(BaseModel):
    reward_config_id: str
    scorer_version: str
    config: dict[str, Any]


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
