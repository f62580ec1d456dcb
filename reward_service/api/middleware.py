"""The service's front: for every request its id, body limit and budget, metrics, access log and
last-resort 500; for the scoring routes the answer itself (`ServiceMiddleware.answer`).

A pure-ASGI middleware rather than Starlette's BaseHTTPMiddleware: it adds no task or stream copy per
request, and it can refuse an oversized body from its Content-Length before a byte of it is read. It is
the app's way in (`app.RewardApp`): FastAPI's own stack is what it calls for the routes it does not
answer itself. Under `reward-service serve` a small scoring request does not even take the ASGI way:
the HTTP protocol hands it here whole (`exchange`, called by `protocol.DeadlineHttpProtocol`), with the
same id, budget, answer, metrics and log.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import time

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reward_service.api.body import check_media_type, decode_json, header, read_body
from reward_service.api.deps import check_authorization
from reward_service.api.docs import ScoringRoute
from reward_service.service.errors import (
    INTERNAL_ERROR_MESSAGE,
    Overloaded,
    PayloadTooLarge,
    ServiceError,
    error_body,
)
from reward_service.service.logs import request_id_var
from reward_service.service.pipeline import RewardService

log = logging.getLogger("reward_service.access")

Headers = list[tuple[bytes, bytes]]
_BODIES_HELD = "the service holds as many request bodies as its memory budget allows; retry shortly"
_BODY_RETRY_AFTER_S = 1
_REQUEST_ID = re.compile(rb"[!-~]{1,128}")  # visible ASCII, bounded: safe to echo and to log
_JSON = (b"content-type", b"application/json")
TIMED_OUT = "timed_out"  # set in a request's scope state when its body did not arrive in time (protocol.py)


class _NewIds:
    """New request ids: 32 hex digits, a random half drawn once per process (again in a forked child) and a
    counter. Unique as a random id would be, without a getrandom system call per request (os.urandom)."""

    def __init__(self) -> None:
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self.prefix = os.urandom(8).hex()
        self.counter = itertools.count()

    def __call__(self) -> str:
        return f"{self.prefix}{next(self.counter):016x}"


_new_id = _NewIds()


def request_id(sent: bytes | None) -> tuple[str, bytes]:
    """The request's id, as text and as a header value: the client's X-Request-ID when it is safe to echo,
    else a new one."""
    if sent is not None and _REQUEST_ID.fullmatch(sent):
        return sent.decode(), sent
    new = _new_id()
    return new, new.encode()


def _response_headers(body: bytes, extra: Headers) -> Headers:
    return [_JSON, (b"content-length", b"%d" % len(body)), *extra]


class ServiceMiddleware:
    """`routes`: the app's paths, the labels of the request metrics (any other path is "other": a fuzzer's
    random paths must not grow the metric series). `direct`: (method, path) -> the scoring routes this
    middleware answers itself, past FastAPI's router and dependency machinery (see `answer`)."""

    def __init__(self, app: ASGIApp, service: RewardService, routes: frozenset[str],
                 direct: dict[tuple[str, str], ScoringRoute]) -> None:
        self.app = app
        self.service = service
        self.routes = routes
        self.direct = direct
        self.api_keys = service.settings.key_bytes()
        self._requests = service.metrics.requests
        self._requests.add_routes((*routes, "other"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        scope.setdefault("state", {})["started"] = time.monotonic()
        rid, id_header = request_id(header(scope["headers"], b"x-request-id"))
        token = request_id_var.set(rid)
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
            declared = header(scope["headers"], b"content-length")
            if declared is not None and (not declared.isdigit() or int(declared) > limit):
                await self._error(send_with_id, 413, "payload_too_large",
                                  f"request body over the limit of {limit} bytes")
            elif declared is not None and int(declared) > 0 and not service.hold_body(int(declared)):
                await self._error(send_with_id, 429, "overloaded", _BODIES_HELD,
                                  [(b"retry-after", str(_BODY_RETRY_AFTER_S).encode())])
            else:
                held = int(declared) if declared is not None else 0
                scoring = self.direct.get((scope["method"], path))
                if scoring is None:  # FastAPI's stack; its ServerErrorMiddleware answers a fault 500, then re-raises
                    await self.app(scope, receive_limited, send_with_id)
                else:
                    status, headers, body = await self.answer(scoring, scope["headers"], receive_limited,
                                                              scope["state"]["started"])
                    await send_with_id({"type": "http.response.start", "status": status, "headers": headers})
                    await send_with_id({"type": "http.response.body", "body": body})
        except ClientDisconnect:
            # The client hung up before its body was in (or the body's deadline passed: the connection
            # was answered 408 and closed). Not a fault of the service: counted as 408, or as 499 (the
            # code nginx logs for a client that closed its request), and logged without a traceback.
            status = 408 if scope["state"].get(TIMED_OUT) else 499
            self.unread(route)
        except Exception:
            log.exception("unhandled error", extra={"request_id": rid, "fields": {"route": route}})
            if not response_started:
                await self._error(send_with_id, 500, "internal_error", INTERNAL_ERROR_MESSAGE)
        finally:
            self.finish(scope["method"], route, status, started, rid, held)
            request_id_var.reset(token)

    async def answer(self, scoring: ScoringRoute, headers: Headers, body: bytes | Receive,
                     started: float) -> tuple[int, Headers, bytes]:
        """(status, headers, body) of a scoring route's response, as FastAPI would answer it (its
        dependencies, then its endpoint, a ServiceError as api.md's error body) without its router,
        exception middleware and dependency solver: they cost about 80 us of the service process's 300 us
        per one-item request (OpenRLHF's shape; wrk, 64 connections, /proc CPU counters of the service
        process, 2026-11-30: 215 against 295 us, and +25 to 40% requests per second). FastAPI still
        declares the routes (/openapi.json); tests/reward_service/api/test_api_dispatch.py checks both ways
        answer alike. `body`: the request's whole body, or the ASGI receive to read it from (after the
        checks that need none of it). `started`: when the request began (monotonic clock)."""
        service = self.service
        try:
            check_authorization(self.api_keys, header(headers, b"authorization"))
            service.check_ready()
            check_media_type(header(headers, b"content-type"))
            data = decode_json(body if isinstance(body, bytes) else await read_body(body), scoring.field,
                               service.settings.max_items)
            result = await scoring.score(service, data, started)
        except ServiceError as exc:
            result = error_body(exc.code, exc.message, exc.detail)
            extra = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in exc.headers.items()]
            return exc.status, _response_headers(result, extra), result
        return 200, _response_headers(result, []), result

    async def exchange(self, scoring: ScoringRoute, method: str, path: str, headers: Headers, body: bytes,
                       started: float, started_at: float) -> tuple[int, Headers, bytes]:
        """The whole exchange of a scoring request whose body the HTTP protocol has read (Content-Length,
        counted in the body budget by `hold_body`): as `__call__` then `answer` would make it, without an
        ASGI cycle or Starlette objects. `started`: perf_counter, `started_at`: monotonic,
        when its headers were in. Returns the response: status, headers (X-Request-ID included), body."""
        rid, id_header = request_id(header(headers, b"x-request-id"))
        token = request_id_var.set(rid)
        self.service.request_started()
        status = 500
        try:
            status, response_headers, response = await self.answer(scoring, headers, body, started_at)
        except Exception:
            log.exception("unhandled error", extra={"request_id": rid, "fields": {"route": path}})
            response = error_body("internal_error", INTERNAL_ERROR_MESSAGE)
            response_headers = _response_headers(response, [])
        finally:
            self.finish(method, path, status, started, rid, len(body))
            request_id_var.reset(token)
        response_headers.append((b"x-request-id", id_header))
        return status, response_headers, response

    def hold_body(self, size: int) -> bool:
        """Count a body of `size` bytes in the service's budget, if the limit and the budget allow it."""
        return size <= self.service.settings.max_body_bytes and self.service.hold_body(size)

    @staticmethod
    def unread(route: str) -> None:
        """A request whose body never came in whole (408: too slow, 499: the client hung up): not a fault
        of the service, logged without a traceback."""
        log.info("client disconnected before its request was read", extra={"fields": {"route": route}})

    def abandoned(self, path: str, status: int, held: int, started: float) -> None:
        """A request the HTTP protocol read itself (for `exchange`) whose body never came in whole: logged
        as `unread`, its body's budget released, counted as `status`. `started`: perf_counter."""
        self.unread(path)
        self.service.release_body(held)
        self._requests.count(path, status, time.perf_counter() - started)

    def finish(self, method: str, route: str, status: int, started: float, rid: str, held: int) -> None:
        """A request is answered (or abandoned): release its body's budget, count and log it."""
        service = self.service
        service.release_body(held)
        service.request_finished()
        elapsed = time.perf_counter() - started
        self._requests.count(route, status, elapsed)
        if log.isEnabledFor(logging.INFO):  # the line's fields are built only when it is written
            log.info("%s %s %d", method, route, status,
                     extra={"request_id": rid, "fields": {"method": method, "route": route, "status": status,
                                                          "duration_ms": round(elapsed * 1000, 2)}})

    @staticmethod
    async def _error(send: Send, status: int, code: str, message: str,
                     headers: Headers | None = None) -> None:
        body = error_body(code, message)
        await send({"type": "http.response.start", "status": status, "headers": _response_headers(body, headers or [])})
        await send({"type": "http.response.body", "body": body})
