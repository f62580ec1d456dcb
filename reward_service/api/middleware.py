"""One pure-ASGI middleware for every request: request id, body limit, metrics, access log, last-resort 500.

Pure ASGI rather than Starlette's BaseHTTPMiddleware: it adds no task or stream copy per request,
and it can refuse an oversized body from its Content-Length before a byte of it is read. It is the
app's way in (`app.RewardApp`): FastAPI's own stack is what it calls for the routes it does not
dispatch itself.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Awaitable, Callable

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reward_service.api.body import header
from reward_service.api.deps import scoring_service
from reward_service.api.protocol import TIMED_OUT
from reward_service.service.errors import (
    INTERNAL_ERROR_MESSAGE,
    Overloaded,
    PayloadTooLarge,
    ServiceError,
    error_body,
    error_response,
)
from reward_service.service.logs import request_id_var
from reward_service.service.pipeline import RewardService

log = logging.getLogger("reward_service.access")

Endpoint = Callable[[Request, RewardService], Awaitable[Response]]
_BODIES_HELD = "the service holds as many request bodies as its memory budget allows; retry shortly"
_BODY_RETRY_AFTER_S = 1
_REQUEST_ID = re.compile(rb"[!-~]{1,128}")  # visible ASCII, bounded: safe to echo and to log


class ServiceMiddleware:
    """`routes`: the app's paths, the labels of the request metrics (any other path is "other": a fuzzer's
    random paths must not grow the metric series). `direct`: (method, path) -> endpoint of the routes
    this middleware calls itself, past FastAPI's router and dependency machinery (see `dispatch`)."""

    def __init__(self, app: ASGIApp, service: RewardService, routes: frozenset[str],
                 direct: dict[tuple[str, str], Endpoint]) -> None:
        self.app = app
        self.service = service
        self.routes = routes
        self.direct = direct
        self._requests = service.metrics.requests
        self._requests.add_routes((*routes, "other"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        scope.setdefault("state", {})["started"] = time.monotonic()
        sent = header(scope, b"x-request-id")
        if sent is not None and _REQUEST_ID.fullmatch(sent):
            request_id, id_header = sent.decode(), sent
        else:
            request_id = os.urandom(16).hex()  # 32 hex digits, as uuid4().hex, at a third of its cost
            id_header = request_id.encode()
        token = request_id_var.set(request_id)
        path = scope["path"]
        route = path if path in self.routes else "other"
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", id_header)]
            await send(message)

        service = self.service
        limit = service.settings.max_body_bytes
        received = 0
        held = 0  # bytes of this body counted in the service's budget (`RewardService.hold_body`)

        async def receive_limited() -> Message:
            nonlocal received, held
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise PayloadTooLarge(f"request body over the limit of {limit} bytes")
                if received > held:  # a body without Content-Length, counted as it arrives
                    if not service.hold_body(received - held):
                        raise Overloaded(_BODIES_HELD, _BODY_RETRY_AFTER_S)
                    held = received
            return message

        service.request_started()
        try:
            declared = header(scope, b"content-length")
            if declared is not None and (not declared.isdigit() or int(declared) > limit):
                await self._error(send_with_id, 413, "payload_too_large",
                                  f"request body over the limit of {limit} bytes")
            elif declared is not None and int(declared) > 0 and not service.hold_body(int(declared)):
                await self._error(send_with_id, 429, "overloaded", _BODIES_HELD,
                                  [(b"retry-after", str(_BODY_RETRY_AFTER_S).encode())])
            else:
                held = int(declared) if declared is not None else 0
                endpoint = self.direct.get((scope["method"], path))
                if endpoint is None:  # FastAPI's stack; its ServerErrorMiddleware answers a fault 500, then re-raises
                    await self.app(scope, receive_limited, send_with_id)
                else:
                    await self.dispatch(endpoint, scope, receive_limited, send_with_id)
        except ClientDisconnect:
            # The client hung up before its body was in (or the body's deadline passed: the connection
            # was answered 408 and closed). Not a fault of the service: counted as 408, or as 499 (the
            # code nginx logs for a client that closed its request), and logged without a traceback.
            status = 408 if scope["state"].get(TIMED_OUT) else 499
            log.info("client disconnected before its request was read", extra={"fields": {"route": route}})
        except Exception:
            log.exception("unhandled error", extra={"request_id": request_id, "fields": {"route": route}})
            if not response_started:
                await self._error(send_with_id, 500, "internal_error", INTERNAL_ERROR_MESSAGE)
        finally:
            service.release_body(held)
            service.request_finished()
            elapsed = time.perf_counter() - started
            self._requests.count(route, status, elapsed)
            if log.isEnabledFor(logging.INFO):  # the line's fields are built only when it is written
                log.info("%s %s %d", scope["method"], route, status,
                         extra={"request_id": request_id,
                                "fields": {"method": scope["method"], "route": route, "status": status,
                                           "duration_ms": round(elapsed * 1000, 2)}})
            request_id_var.reset(token)

    @staticmethod
    async def dispatch(endpoint: Endpoint, scope: Scope, receive: Receive, send: Send) -> None:
        """Call a scoring route's endpoint as FastAPI would (dependency, then endpoint, a ServiceError
        as api.md's error body), without its router, exception middleware and dependency solver: they
        cost about 80 us of the service process's 300 us per one-item request (OpenRLHF's shape; wrk,
        64 connections, /proc CPU counters of the service process, 2026-11-30: 215 against 295 us, and
        +25 to 40% requests per second). FastAPI still declares the routes (/openapi.json);
        tests/reward_service/api/test_api_dispatch.py checks both ways answer alike."""
        request = Request(scope, receive)
        try:
            response = await endpoint(request, scoring_service(request))
        except ServiceError as exc:
            response = error_response(exc.status, exc.code, exc.message, exc.detail, exc.headers)
        await response(scope, receive, send)

    @staticmethod
    async def _error(send: Send, status: int, code: str, message: str,
                     headers: list[tuple[bytes, bytes]] | None = None) -> None:
        body = error_body(code, message)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()), *(headers or [])]})
        await send({"type": "http.response.body", "body": body})
