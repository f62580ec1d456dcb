"""The HTTP/1.1 connection under the app: uvicorn's httptools protocol with read deadlines and api.md's
error body for requests too malformed to reach the app.

uvicorn times out idle keep-alive connections only: a client that sends its headers or its body a
byte at a time held a connection (and its buffers) for as long as it liked (3,000 such connections
were held open in one probe). Here a request's headers must arrive within `header_timeout_s` of its
first byte (or of the connection opening), and its body within `body_timeout_s` of its headers;
otherwise the connection is answered 408 and closed. The middleware counts such a request as 408
(`scope["state"]["timed_out"]`), not as an error of the service.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from reward_service.service.errors import error_body

TIMED_OUT = "timed_out"  # set in the request's scope state when its body did not arrive in time
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
        b"x-request-id: %s\r\n" % uuid.uuid4().hex.encode(),
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


class DeadlineHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header and body read deadlines (class attributes, set by
    `with_deadlines`)."""

    header_timeout_s = 10.0
    body_timeout_s = 30.0

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
    def with_deadlines(cls, header_timeout_s: float, body_timeout_s: float) -> type[DeadlineHttpProtocol]:
        return type("DeadlineHttpProtocol", (cls,), {"header_timeout_s": header_timeout_s,
                                                     "body_timeout_s": body_timeout_s})

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
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm(self.header_timeout_s, self._headers_too_slow)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        if self.cycle is not None:
            self.cycle.transport = _OneWritePerResponse(self.transport, self.loop)  # type: ignore[assignment]
        self._arm(self.body_timeout_s, self._body_too_slow)

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

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
        self.scope["state"][TIMED_OUT] = True
        if cycle.response_started:
            self.transport.close()
            return
        self._close_with(_raw_error(408, b"Request Timeout", "request_timeout",
                                    f"request body not received within {self.body_timeout_s:g} s"))

    def send_400_response(self, msg: str) -> None:
        """A request the HTTP parser refuses: api.md's error body and an X-Request-ID, not plain text."""
        self._close_with(_raw_error(400, b"Bad Request", "bad_request", msg))
