"""Small scoring requests are read and answered by the HTTP protocol itself (protocol._Exchange, through
ServiceMiddleware.exchange), past uvicorn's ASGI cycle; every other request takes the ASGI way. Both
ways answer alike, and the protocol keeps HTTP's rules (order of pipelined requests, Connection: close)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import uvicorn
from service_fixtures import SCORING_REQUESTS, SCORING_STATUSES, in_process, real_server, scoring_answers, settings
from uvicorn.server import ServerState

from reward_service.api.app import create_app
from reward_service.api.protocol import EXCHANGE_BODY_MAX, DeadlineHttpProtocol


def test_the_protocol_answers_scoring_requests_as_the_asgi_way_does():
    with in_process(settings(api_keys="key-a", workers=1)) as client:
        asgi = scoring_answers(client)
    with real_server("--workers", "1", "--api-key", "key-a") as (client, _):
        served = scoring_answers(client)
    assert [a[0] for a in served] == SCORING_STATUSES
    for (path, _, _), mine, theirs in zip(SCORING_REQUESTS, served, asgi, strict=True):
        assert mine == theirs, path


class _Transport:
    """A connection's transport that keeps what is written."""

    def __init__(self) -> None:
        self.written = bytearray()
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def _post(body: bytes, *headers: bytes, target: bytes = b"/v1/rewards", version: bytes = b"1.1") -> bytes:
    lines = [b"POST %s HTTP/%s" % (target, version), b"Host: test", b"Content-Type: application/json", *headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def _sized(body: bytes) -> bytes:
    return _post(body, b"Content-Length: %d" % len(body))


async def _serve(raw: bytes, hang_up: bool = False, keep_alive_s: float = 5.0,
                 idle_s: float = 0.0) -> tuple[bytes, bool, dict[str, int], int, dict[Any, int]]:
    """Feed `raw` to one connection of the service's protocol (its workers never started, so a scoring
    request is answered 503 either way), then maybe lose the connection, or wait `idle_s` once every
    request is answered (the keep-alive timeout is `keep_alive_s`). Returns what was written,
    whether the connection was closed, how many requests took each way, the body bytes still held in the
    service's budget, and the requests counted by (route, code)."""
    app = create_app(settings(workers=1))
    front = app.front
    ways = {"protocol": 0, "asgi": 0}
    exchange = front.exchange

    async def counted_exchange(*args: Any) -> Any:
        ways["protocol"] += 1
        return await exchange(*args)

    async def counted_app(scope: Any, receive: Any, send: Any) -> None:
        ways["asgi"] += 1
        await app(scope, receive, send)

    front.exchange = counted_exchange  # type: ignore[method-assign]
    config = uvicorn.Config(counted_app, lifespan="off", log_config=None, access_log=False, server_header=False,
                            date_header=False, proxy_headers=False, timeout_keep_alive=keep_alive_s)
    config.load()
    protocol = DeadlineHttpProtocol.with_deadlines(10.0, 30.0, front)(config=config, server_state=ServerState(),
                                                                      app_state={})
    transport = _Transport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    protocol.data_received(raw)
    if hang_up:
        protocol.connection_lost(None)
    for _ in range(100):  # a pipelined request starts when the one before it is answered
        if not protocol.tasks:
            break
        await asyncio.gather(*protocol.tasks)
    await asyncio.sleep(idle_s)
    assert protocol.timeout_keep_alive_task is None  # uvicorn's own keep-alive timer is never made
    service = app.state.service
    return bytes(transport.written), transport.closed, ways, service.body_bytes_held, service.metrics.requests.counts


BODY = b'{"items": [{"id": "a", "completion": "x", "reference": {"task_type": "numerical", "answer": 1}}]}'


@pytest.mark.parametrize(("raw", "way"), [
    (_sized(BODY), "protocol"),
    (_post(BODY, b"Content-Length: %d" % len(BODY), target=b"/v1/rewards?x=1"), "asgi"),  # a query string
    (_post(b"%x\r\n%s\r\n0\r\n\r\n" % (len(BODY), BODY), b"Transfer-Encoding: chunked"), "asgi"),  # no length
    (_sized(BODY + b" " * EXCHANGE_BODY_MAX), "asgi"),  # too big to read at once
    (_post(BODY, b"Content-Length: %d" % len(BODY), version=b"1.0"), "asgi"),
    (_post(BODY, b"Content-Length: %d" % len(BODY), b"Expect: 100-continue"), "asgi"),
], ids=["small", "query", "chunked", "big", "http-1.0", "expect"])
def test_small_whole_scoring_requests_take_the_protocols_way_and_the_rest_the_asgi_way(raw, way):
    written, _, ways, held, counted = asyncio.run(_serve(raw))
    assert ways == {"protocol": int(way == "protocol"), "asgi": int(way == "asgi")}
    assert counted == {("/v1/rewards", 503): 1}  # counted once, either way
    assert written.split(b"\r\n")[0].endswith(b"503 Service Unavailable"), written[:200]
    assert b'"code":"not_ready"' in written and b"x-request-id: " in written
    assert held == 0  # the body's bytes left the budget once answered


def test_a_request_pipelined_behind_the_protocols_is_answered_after_it():
    raw = _sized(BODY)[:-len(BODY) - 4] + b"\r\nX-Request-ID: first\r\n\r\n" + BODY
    raw += _sized(BODY)[:-len(BODY) - 4] + b"\r\nX-Request-ID: second\r\n\r\n" + BODY
    written, closed, ways, held, _ = asyncio.run(_serve(raw))
    assert ways == {"protocol": 1, "asgi": 1}  # the second waited for the first, the ASGI way
    assert written.count(b"HTTP/1.1 503") == 2 and not closed
    assert written.index(b"x-request-id: first") < written.index(b"x-request-id: second")
    assert held == 0


def test_connection_close_is_honoured():
    written, closed, ways, _, _ = asyncio.run(_serve(_post(BODY, b"Content-Length: %d" % len(BODY), b"Connection: close")))
    assert ways["protocol"] == 1 and closed and b"connection: close\r\n" in written


def test_a_client_that_hangs_up_before_its_body_is_in_is_counted_499_and_its_budget_freed():
    raw = _sized(BODY)[:-10]
    written, _, ways, held, counted = asyncio.run(_serve(raw, hang_up=True))
    assert written == b"" and ways == {"protocol": 0, "asgi": 0}
    assert held == 0 and counted == {("/v1/rewards", 499): 1}


@pytest.mark.parametrize("way", ["protocol", "asgi"])
def test_an_idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout(way):
    raw = _sized(BODY) if way == "protocol" else _post(BODY, b"Content-Length: %d" % len(BODY), target=b"/v1/rewards?x")
    _, closed, ways, _, _ = asyncio.run(_serve(raw, keep_alive_s=0.05, idle_s=0.01))
    assert ways[way] == 1 and not closed  # answered, and not idle long enough yet
    _, closed, _, _, _ = asyncio.run(_serve(raw, keep_alive_s=0.05, idle_s=0.3))
    assert closed


def test_a_next_request_already_arriving_keeps_its_header_deadline_not_the_keep_alive_timeout():
    raw = _sized(BODY) + b"POST /v1/rewards HTTP/1.1\r\nHost: te"  # the next request's headers, begun
    written, closed, _, _, _ = asyncio.run(_serve(raw, keep_alive_s=0.05, idle_s=0.3))
    assert not closed and written.count(b"HTTP/1.1") == 1
