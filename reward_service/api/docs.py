"""OpenAPI pieces shared by the routes: documented error responses, headers, and raw-body request schemas."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.responses import Response

from reward_service.api.body import read_json
from reward_service.api.deps import ScoringServiceDep
from reward_service.schemas import ErrorBody

if TYPE_CHECKING:
    from reward_service.service.pipeline import RewardService

_DESCRIPTIONS = {
    200: "Success",
    400: "The body is not valid JSON",
    401: "Missing or wrong bearer token (only when the service has API keys)",
    408: "The request's headers or body did not arrive in time (the connection is closed)",
    413: "The body or the item count is over the service's limit",
    415: "The body is not JSON (Content-Type other than application/json)",
    422: "The body breaks the schema, or a reference or the config override is invalid",
    429: "The service has more queued work, or holds more request bodies, than its limits; retry after Retry-After",
    500: "Unexpected fault (logged with the request id)",
    503: "Starting, draining, or (OpenRLHF protocol) an item could not be scored; retry after Retry-After",
}

_REQUEST_ID = {
    "X-Request-ID": {
        "description": "the request id the client sent, or a new one",
        "required": True,
        "schema": {"type": "string"},
    }
}
_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "required": True, "schema": {"type": "string"}}}
_WWW_AUTH = {"WWW-Authenticate": {"description": "Bearer", "required": True, "schema": {"type": "string"}}}


def headers_for(status: int) -> dict[str, Any]:
    headers = dict(_REQUEST_ID)
    if status in (429, 503):
        headers.update(_RETRY_AFTER)
    if status == 401:
        headers.update(_WWW_AUTH)
    return headers


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Documented responses: 200's headers (its body comes from response_model) and the error bodies."""
    out: dict[int | str, dict[str, Any]] = {200: {"description": _DESCRIPTIONS[200], "headers": headers_for(200)}}
    for status in statuses:
        out[status] = {"model": ErrorBody, "description": _DESCRIPTIONS[status], "headers": headers_for(status)}
    return out


DIRECT = "dispatched_by_middleware"
@dataclass(frozen=True)
class ScoringRoute:
    """How the service answers a scoring route past FastAPI (`middleware.ServiceMiddleware.answer`):
    `score(service, data, started)` makes the 200 body from the request's JSON (raising a ServiceError
    for anything else), `field` is the body's list that the item limit counts."""

    score: Callable[[RewardService, Any, float], Awaitable[bytes]]
    field: str


def add_scoring_route(router: APIRouter, path: str, name: str, summary: str, request_model: type[BaseModel],
                      response_model: type[BaseModel], score: Callable[[RewardService, Any, float], Awaitable[bytes]],
                      field: str) -> None:
    """Declare the scoring route `path` on `router`: its FastAPI endpoint `name`, marked with the
    `ScoringRoute` the middleware answers it by. FastAPI's route describes it in /openapi.json (its
    body by `request_model`'s schema: see `request_body`), and answers
    it alike when the middleware does not (tests/reward_service/api/test_api_dispatch.py)."""

    async def endpoint(request: Request, service: ScoringServiceDep) -> Response:
        data = await read_json(request, field, service.settings.max_items)
        return Response(await score(service, data, request.scope["state"]["started"]), media_type="application/json")

    endpoint.__name__ = endpoint.__qualname__ = name  # FastAPI's operation id
    setattr(endpoint, DIRECT, ScoringRoute(score, field))
    router.post(path, summary=summary, response_model=response_model,
                responses=responses(400, 401, 408, 413, 415, 422, 429, 500, 503),
                openapi_extra=request_body(request_model.__name__))(endpoint)


def request_body(schema_name: str) -> dict[str, Any]:
    """`openapi_extra` for a route that reads its JSON body itself (see api/body.py)."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_name}"}}},
        }
    }
