"""The app factory: `create_app(Settings(...))` builds the whole service; its lifespan runs the workers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic.json_schema import models_json_schema
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from reward_service.api import health, metrics, openrlhf, rewards
from reward_service.api.deps import protected
from reward_service.api.docs import DIRECT, ScoringRoute
from reward_service.api.middleware import ServiceMiddleware
from reward_service.schemas import OpenRLHFRequest, RewardsRequest
from reward_service.service.errors import install_error_handlers
from reward_service.service.pipeline import PACKAGE_VERSION, RewardService
from reward_service.service.settings import Settings

DESCRIPTION = """Rewards for GRPO training of video LLMs (Video-STR relation-graph rewards, reward-spec v1).

`POST /v1/rewards` scores a batch; `POST /get_reward` speaks OpenRLHF's remote reward protocol. Every
error body is `{"error": {"code", "message"}}` (422 adds `detail`); every response carries `X-Request-ID`.
"""


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    service: RewardService = app.state.service
    # Start the workers in the background: the server listens at once, /healthz answers and /readyz
    # says 503 until they are up (api.md), rather than the port staying closed during startup.
    starting = asyncio.create_task(service.start())
    try:
        yield
    finally:
        service.draining = True
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await starting
        await service.close()


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, plus the schemas of the bodies the routes read themselves (api/body.py)."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        _, defs = models_json_schema([(RewardsRequest, "validation"), (OpenRLHFRequest, "validation")],
                                     ref_template="#/components/schemas/{model}")
        schema.setdefault("components", {}).setdefault("schemas", {}).update(defs.get("$defs", {}))
        if app.state.api_keys:  # declared only when configured: without keys no route asks for one
            schema["components"]["securitySchemes"] = {"HTTPBearer": _BEARER}
            for path, operations in schema.get("paths", {}).items():
                if protected(path):
                    for operation in operations.values():
                        operation["security"] = [{"HTTPBearer": []}]
        app.openapi_schema = schema
    return app.openapi_schema


_BEARER = {"type": "http", "scheme": "bearer", "description": "one of the service's API keys"}


def _direct_routes(routes: list[APIRoute]) -> dict[tuple[str, str], ScoringRoute]:
    """(method, path) -> how the middleware answers the routes it answers itself (`docs.scoring_route`)."""
    return {(method, route.path): getattr(route.endpoint, DIRECT) for route in routes
            if hasattr(route.endpoint, DIRECT) for method in route.methods or ()}


class RewardApp(FastAPI):
    """FastAPI whose HTTP requests enter `ServiceMiddleware` (`front`) straight from the server, ahead of
    FastAPI's own stack (telemetry checks, ServerErrorMiddleware, body limit, exception handlers, router),
    which the middleware calls for every route but the scoring ones (`ServiceMiddleware.answer`).
    Those layers cost about 8% of the service process's time on one-item requests (py-spy, wrk, 64
    connections, 2026-11-30). Lifespan and websocket events take FastAPI's way."""

    front: ServiceMiddleware

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope["app"] = self  # as Starlette sets it: Request.app reads it
            await self.front(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    async def stack(self, scope: Scope, receive: Receive, send: Send) -> None:
        """FastAPI's own way in, for the middleware to call."""
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None) -> RewardApp:
    settings = settings or Settings()
    service = RewardService(settings)
    app = RewardApp(title="Video-STR reward service", version=PACKAGE_VERSION, description=DESCRIPTION,
                    lifespan=_lifespan, redirect_slashes=False)
    app.state.service = service
    app.state.api_keys = settings.key_bytes()
    routes: list[APIRoute] = []
    for module in (rewards, openrlhf, health, metrics):
        app.include_router(module.router)
        routes += [route for route in module.router.routes if isinstance(route, APIRoute)]
    install_error_handlers(app)
    # One route table, FastAPI's: the metric labels and the scoring routes the middleware answers come from it.
    paths = frozenset([route.path for route in routes] + [r.path for r in app.routes if isinstance(r, Route)])
    app.front = ServiceMiddleware(app.stack, service=service, routes=paths, direct=_direct_routes(routes))
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app
