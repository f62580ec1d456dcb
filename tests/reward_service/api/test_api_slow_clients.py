"""Clients that hang up or trickle (issue 11, fault 6), and requests too malformed to reach the app
(fault 7), through a real uvicorn socket: raw sockets send exactly the bytes a bad client would."""

from __future__ import annotations

import json
import socket
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families
from service_fixtures import real_server


@pytest.fixture(scope="module")
def server():
    with real_server("--header-timeout", "0.5", "--body-timeout", "0.5") as (client, service):
        yield client, service


def connect(service) -> socket.socket:
    host, port = service.base_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=5)
    return sock


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def requests_with_code(client, code: str) -> float:
    families = text_string_to_metric_families(client.get("/metrics").text)
    return sum(s.value for f in families for s in f.samples
               if s.name == "reward_service_requests_total" and s.labels.get("code") == code)


def parse_response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


HEAD = b"POST /v1/rewards HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
# A body the HTTP protocol reads itself (protocol._Exchange), and one read the ASGI way.
BODY_SIZES = pytest.mark.parametrize("size", [10_000, 100_000], ids=["protocol", "asgi"])


@BODY_SIZES
def test_a_client_that_hangs_up_mid_body_is_a_disconnect_not_a_500(server, size):
    client, service = server
    before_499, before_500 = requests_with_code(client, "499"), requests_with_code(client, "500")
    for _ in range(3):
        with connect(service) as sock:
            sock.sendall(HEAD % size + b'{"items": [' + b" " * 100)
        time.sleep(0.05)
    deadline = time.monotonic() + 5
    while requests_with_code(client, "499") < before_499 + 3:
        assert time.monotonic() < deadline, service.log_text()[-2000:]
        time.sleep(0.05)
    assert requests_with_code(client, "500") == before_500
    log = service.log_text()
    assert "unhandled error" not in log and "Traceback" not in log


def test_headers_that_trickle_are_cut_at_the_header_deadline(server):
    _, service = server
    with connect(service) as sock:
        sock.sendall(b"POST /v1/rewards HTTP/1.1\r\nHost: test\r\n")  # and nothing more
        start = time.monotonic()
        status, headers, body = parse_response(read_all(sock))
        assert time.monotonic() - start < 3
    assert status == 408 and headers["x-request-id"]
    assert json.loads(body)["error"]["code"] == "request_timeout"


def test_a_connection_that_sends_nothing_is_closed_at_the_header_deadline(server):
    _, service = server
    with connect(service) as sock:
        start = time.monotonic()
        status, _, _ = parse_response(read_all(sock))
        assert status == 408 and time.monotonic() - start < 3


@BODY_SIZES
def test_a_body_that_trickles_is_cut_at_the_body_deadline_and_counted_408(server, size):
    client, service = server
    before = requests_with_code(client, "408")
    with connect(service) as sock:
        sock.sendall(HEAD % size + b'{"items"')
        start = time.monotonic()
        status, headers, body = parse_response(read_all(sock))
        assert time.monotonic() - start < 3
    assert status == 408 and headers["x-request-id"]
    assert json.loads(body)["error"]["code"] == "request_timeout"
    deadline = time.monotonic() + 5
    while requests_with_code(client, "408") < before + 1:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert "Traceback" not in service.log_text()


def read_one(sock: socket.socket) -> tuple[int, bytes]:
    """One response of a keep-alive connection: (status, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "connection closed"
        data += chunk
    status, headers, body = parse_response(data)
    while len(body) < int(headers["content-length"]):
        body += sock.recv(65536)
    return status, body


def test_each_request_of_a_keep_alive_connection_gets_its_own_header_deadline(server):
    # The deadlines share one timer per connection, set again only when it fires (protocol.py): a timer
    # left from an earlier request must neither cut a later request that keeps its own deadline nor
    # let one that misses it run on.
    _, service = server
    get = b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n"
    with connect(service) as sock:
        for _ in range(3):  # past the first timer, set when the connection opened (deadline 0.5 s)
            sock.sendall(get)
            assert read_one(sock)[0] == 200
            time.sleep(0.3)
        sock.sendall(get[:10])  # headers that take 0.3 s of their 0.5 s
        time.sleep(0.3)
        sock.sendall(get[10:])
        assert read_one(sock)[0] == 200
        sock.sendall(get[:10])  # and headers that never end
        start = time.monotonic()
        status, _, body = parse_response(read_all(sock))
        waited = time.monotonic() - start
    assert status == 408 and json.loads(body)["error"]["code"] == "request_timeout"
    assert 0.4 < waited < 3


def test_a_malformed_request_gets_the_error_body_and_a_request_id(server):
    _, service = server
    with connect(service) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\nBad Header Line\r\n\r\n")
        status, headers, body = parse_response(read_all(sock))
    assert status == 400 and headers["x-request-id"]
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["error"]["code"] == "bad_request"


def test_the_service_still_serves_after_all_that(server):
    client, _ = server
    assert client.get("/readyz").status_code == 200
