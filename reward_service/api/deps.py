"""Route dependencies: the service object, bearer-token auth, readiness.

They take the request alone. The scoring routes, which the middleware answers itself (middleware.py),
check the same rules from the headers (`check_authorization`, `RewardService.check_ready`).
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from reward_service.api.body import header
from reward_service.service.errors import Unauthorized
from reward_service.service.pipeline import RewardService


def protected(path: str) -> bool:
    """api.md: with keys configured, every /v1/* and /get_reward request needs a bearer token."""
    return path.startswith("/v1/") or path == "/get_reward"


async def get_service(request: Request) -> RewardService:
    service: RewardService = request.app.state.service
    return service


def key_matches(presented: bytes, keys: list[bytes]) -> bool:
    """Constant-time against every key: neither the match nor its position leaks through timing."""
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(presented, key)
    return matched


def bearer_token(authorization: bytes | None) -> bytes | None:
    """The token of an `Authorization: Bearer <token>` header value (scheme in any case), else None.
    The value is read as Starlette reads headers (latin-1), the token compared as UTF-8."""
    scheme, _, token = (authorization or b"").decode("latin-1").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    return token.encode()


def check_authorization(keys: list[bytes], authorization: bytes | None) -> None:
    """401 unless the `Authorization` header value carries one of `keys` (when there are any)."""
    if not keys:
        return
    token = bearer_token(authorization)
    if token is None or not key_matches(token, keys):
        raise Unauthorized()


def check_key(request: Request) -> None:
    """401 unless the request carries one of the service's keys (when it has any)."""
    check_authorization(request.app.state.api_keys, header(request.scope["headers"], b"authorization"))


async def require_api_key(request: Request) -> None:
    check_key(request)


ServiceDep = Annotated[RewardService, Depends(get_service)]


def scoring_service(request: Request) -> RewardService:
    """The service for a scoring route, once the caller is authorised (401 first) and the workers are
    ready (then 503)."""
    check_key(request)
    service: RewardService = request.app.state.service
    service.check_ready()
    return service


async def _scoring_service(request: Request) -> RewardService:
    return scoring_service(request)


ScoringServiceDep = Annotated[RewardService, Depends(_scoring_service)]
