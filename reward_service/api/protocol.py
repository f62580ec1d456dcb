"""The HTTP/1.1 connection under the app: uvicorn's httptools protocol with read deadlines and api.md's
error body for requests too malformed to reach the app.

uvicorn times out idle keep-alive connections only: a client that sends its headers or its body a
byte at a time held a connection (and its buffers) for as long as it liked (3,000 such connections
were held open in one probe). Here a request's headers must arrive within `header_timeout_s` of its
first byte (or of the connection opening), and its body within `body_timeout_s` of its headers;
otherwise the connection is answered 408 and closed. The middleware counts such a request as 408
(`scope["state"]["timed_out"]`), not as an error of the service.

A small scoring request (OpenRLHF posts one rollout per request) does not take the ASGI way at all:
when its whole body is announced by a Content-Length of at most `EXCHANGE_BODY_MAX` the protocol reads
it and hands it to the service's front (`ServiceMiddleware.exchange`: the same id, body budget, checks,
answer, metrics and log as the ASGI way), then writes the response itself (`_Exchange`). uvicorn's
request cycle, its task, the ASGI messages and Starlette's request and response objects cost about a
third of the service process's own work on a one-item request (in-process harness, 2026-11-30: 43-49
against 66-71 us a request); in the running service under wrk its CPU per one-item request fell from
152-163 to 122-125 us, and `reward-service bench --mode http` read 13-31% more one-item requests per
second (README, round five). Everything else (other routes, bigger or chunked bodies, Expect, HTTP/1.0,
a request pipelined behind another) takes uvicorn's ASGI way.
tests/reward_service/api/test_api_exchange.py checks both ways answer alike.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from reward_service.api.docs import ScoringRoute
from reward_service.api.middleware import TIMED_OUT, Headers, ServiceMiddleware, request_id
from reward_service.service.errors import error_body

# The biggest body the protocol reads itself for a scoring request (`_Exchange`): a one-item request is a
# few KB. A bigger one takes the ASGI way, whose flow control reads it as the app consumes it (uvicorn's
# high-water mark for a request body is this same 64 KiB).
EXCHANGE_BODY_MAX = 64 * 1024
# A timer may fire this much before its time (uvloop keeps time in milliseconds): close enough, rather
# than set again for a fraction of a millisecond.
_TIMER_SLACK_S = 0.001


def _raw_error(status: int, reason: bytes, code: str, message: str) -> bytes:
    """A whole error response, written straight to the socket, then the connection closes."""
    body = error_body(code, message)
    return b"".join([
        b"HTTP/1.1 %d %s\r\n" % (status, reason),
        b"content-type: application/json\r\n",
        b"content-length: %d\r\n" % len(body),
        b"x-request-id: %s\r\n" % request_id(None)[1],
        b"connection: close\r\n\r\n",
        body,
    ])


class _OneWritePerResponse:
    """The connection's transport for one response, with the response head held until the body follows.

    uvicorn writes a response's head and body with a send() each; ours come one right after the other
    (Starlette's Response sends both without waiting), so the head is held and goes out with the body:
    one system call per response instead of two, about 6% of the service process's time on one-item
    requests. A head whose body does not follow in this loop iteration (a streamed response) is sent
    alone at its end."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = b""  # b"": the head is still to come; None: it has gone

    def write(self, data: bytes) -> None:
        held = self._held
        if held is None:
            self._transport.write(data)
        elif held == b"":
            self._held = bytes(data)
            self._loop.call_soon(self._flush)
        else:
            self._held = None
            self._transport.write(held + data)

    def _flush(self) -> None:
        held, self._held = self._held, None
        if held:
            self._transport.write(held)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _NoEvent:
    """What uvicorn's protocol finds as an `_Exchange`'s message event: nothing waits on one."""

    @staticmethod
    def set() -> None:
        return None


class _Exchange:
    """A scoring request the protocol reads and answers itself. It stands where uvicorn keeps a request's
    RequestResponseCycle (`protocol.cycle`), with the attributes uvicorn's protocol reads there: a request
    pipelined behind it waits for `response_complete`, shutdown clears `keep_alive`."""

    __slots__ = ("body", "disconnected", "headers", "keep_alive", "method", "more_body", "path", "response_complete",
                 "response_started", "scoring", "size", "started", "started_at")
    message_event = _NoEvent()

    def __init__(self, method: str, path: str, scoring: ScoringRoute, headers: Headers, size: int,
                 keep_alive: bool) -> None:
        self.method = method
        self.path = path
        self.scoring = scoring
        self.headers = headers
        self.size = size  # the Content-Length, counted in the body budget until the request is answered
        self.keep_alive = keep_alive
        self.body = bytearray()
        self.more_body = True
        self.disconnected = False
        self.response_started = False
        self.response_complete = False
        self.started = time.perf_counter()
        self.started_at = time.monotonic()


class DeadlineHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header and body read deadlines, which answers small scoring
    requests itself through `front` (class attributes, set by `with_deadlines`)."""

    header_timeout_s = 10.0
    body_timeout_s = 30.0
    front: ServiceMiddleware | None = None
    # (method, exact request target) -> (method, path, route) of the scoring routes `front` answers
    _exchanges: ClassVar[dict[tuple[bytes, bytes], tuple[str, str, ScoringRoute]]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The read deadline now (loop time) and what to do when it passes; None: no read is awaited.
        self._deadline_at = 0.0
        self._on_expiry: Any = None
        # One timer at a time, re-set only when it fires: a keep-alive connection moves its deadline three
        # times a request, and a timer handle made and cancelled each time was about 2% of the service
        # process's samples on one-item requests (py-spy, in-process harness, 2026-11-30). When it fires
        # early (the deadline moved on) it is set again for the deadline of the moment, or dropped if
        # none is due.
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0

    @classmethod
    def with_deadlines(cls, header_timeout_s: float, body_timeout_s: float,
                       front: ServiceMiddleware | None = None) -> type[DeadlineHttpProtocol]:
        exchanges = {} if front is None else {(method.encode(), path.encode()): (method, path, scoring)
                                              for (method, path), scoring in front.direct.items()}
        return type("DeadlineHttpProtocol", (cls,), {"header_timeout_s": header_timeout_s,
                                                     "body_timeout_s": body_timeout_s,
                                                     "front": front, "_exchanges": exchanges})

    def _arm(self, seconds: float, on_expiry: Any) -> None:
        at = self._deadline_at = self.loop.time() + seconds
        self._on_expiry = on_expiry
        if self._timer is not None and self._timer_at > at:  # due later than this deadline: too late
            self._timer.cancel()
            self._timer = None
        if self._timer is None:
            self._set_timer(at)

    def _set_timer(self, at: float) -> None:
        self._timer_at = at
        self._timer = self.loop.call_at(at, self._deadline_check)

    def _disarm(self) -> None:
        self._on_expiry = None

    def _deadline_check(self) -> None:
        self._timer = None
        on_expiry = self._on_expiry
        if on_expiry is None:
            return
        if self.loop.time() + _TIMER_SLACK_S < self._deadline_at:
            self._set_timer(self._deadline_at)
            return
        self._on_expiry = None
        on_expiry()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout_s, self._headers_too_slow)

    def connection_lost(self, exc: Exception | None) -> None:
        cycle = self.cycle
        if type(cycle) is _Exchange and cycle.more_body and not cycle.response_complete:
            cycle.response_complete = True  # the client hung up before its body was in: 499, as the ASGI way
            assert self.front is not None
            self.front.abandoned(cycle.path, 499, cycle.size, cycle.started)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm(self.header_timeout_s, self._headers_too_slow)

    def on_headers_complete(self) -> None:
        exchange = self._exchange()
        if exchange is not None:
            self.cycle = exchange  # type: ignore[assignment]
        else:
            super().on_headers_complete()
            if self.cycle is not None:
                self.cycle.transport = _OneWritePerResponse(self.transport, self.loop)  # type: ignore[assignment]
        self._arm(self.body_timeout_s, self._body_too_slow)

    def _exchange(self) -> _Exchange | None:
        """The request as an `_Exchange` when the protocol answers it itself: a POST to a scoring route's
        exact path, HTTP/1.1, with its whole body announced by one Content-Length of at most
        `EXCHANGE_BODY_MAX` that the body budget holds, nothing before it still being answered on this
        connection, no Expect or Upgrade. None: uvicorn's ASGI way (which answers 413 or 429 itself)."""
        target = self._exchanges.get((self.parser.get_method(), self.url))
        if (target is None or self.expect_100_continue or (self.cycle is not None and not self.cycle.response_complete)
                or self.parser.get_http_version() != "1.1" or self.parser.should_upgrade()):
            return None
        size = None
        for name, value in self.headers:
            if name == b"content-length":
                if size is not None or not value.isdigit():
                    return None
                size = int(value)
            elif name == b"transfer-encoding":
                return None
        assert self.front is not None
        if size is None or size > EXCHANGE_BODY_MAX or not self.front.hold_body(size):
            return None
        method, path, scoring = target
        return _Exchange(method, path, scoring, self.headers, size, self.parser.should_keep_alive())

    def on_body(self, body: bytes) -> None:
        cycle = self.cycle
        if type(cycle) is _Exchange:
            if not cycle.response_complete:
                cycle.body += body
            return
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._disarm()
        cycle = self.cycle
        if type(cycle) is _Exchange:
            if not cycle.response_complete:
                cycle.more_body = False
                task = self.loop.create_task(self._answer(cycle))
                task.add_done_callback(self.tasks.discard)
                self.tasks.add(task)  # uvicorn's shutdown waits for them
            return
        super().on_message_complete()

    async def _answer(self, exchange: _Exchange) -> None:
        """Answer an `_Exchange` through `front`, write the response in one piece, and go on as uvicorn does
        after a response (a pipelined request, or the keep-alive timeout)."""
        assert self.front is not None
        body, exchange.body = bytes(exchange.body), bytearray()
        status, headers, response = await self.front.exchange(exchange.scoring, exchange.method, exchange.path,
                                                              exchange.headers, body, exchange.started,
                                                              exchange.started_at)
        exchange.response_started = True
        if self.flow.write_paused and not self.transport.is_closing():
            await self.flow.drain()  # the client reads slower than it asks
        if not self.transport.is_closing():
            parts = [STATUS_LINE[status]]
            for name, value in [*self.server_state.default_headers, *headers]:
                parts += [name, b": ", value, b"\r\n"]
            if not exchange.keep_alive:
                parts.append(b"connection: close\r\n")
            parts += [b"\r\n", response]
            self.transport.write(b"".join(parts))
            if not exchange.keep_alive:
                self.transport.close()
        exchange.response_complete = True
        self.on_response_complete()

    def on_response_complete(self) -> None:
        """uvicorn's, but the keep-alive timeout is the connection's read deadline (`_arm`), not a timer
        made after every response and cancelled by the next request's first bytes. A next request already
        being read keeps its own deadline."""
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        elif self._on_expiry is None:
            self._arm(self.timeout_keep_alive, self._idle_too_long)

    def _idle_too_long(self) -> None:
        if not self.transport.is_closing():
            self.transport.close()

    def _close_with(self, response: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(response)
            self.transport.close()

    def _headers_too_slow(self) -> None:
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is being answered: its headers came in time (a pipelined one waits its turn)
        self._close_with(_raw_error(408, b"Request Timeout", "request_timeout",
                                    f"request headers not received within {self.header_timeout_s:g} s"))

    def _body_too_slow(self) -> None:
        cycle = self.cycle
        if cycle is None or cycle.response_complete or not cycle.more_body:
            return
        if type(cycle) is _Exchange:
            cycle.response_complete = True
            assert self.front is not None
            self.front.abandoned(cycle.path, 408, cycle.size, cycle.started)
            self._close_with(_raw_error(408, b"Request Timeout", "request_timeout",
                                        f"request body not received within {self.body_timeout_s:g} s"))
            return
        self.scope["state"][TIMED_OUT] = True
        if cycle.response_started:
            self.transport.close()
            return
        self._close_with(_raw_error(408, b"Request Timeout", "request_timeout",
                                    f"request body not received within {self.body_timeout_s:g} s"))

    def send_400_response(self, msg: str) -> None:
        """A request the HTTP parser refuses: api.md's error body and an X-Request-ID, not plain text."""
        self._close_with(_raw_error(400, b"Bad Request", "bad_request", msg))
