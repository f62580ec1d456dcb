"""Shared helpers of the service tests: apps in process and behind a real uvicorn socket, payloads.

Import what you need in a test module; the fixtures that start services are module-scoped there,
because starting scoring workers costs about a second.
"""

from __future__ import annotations

import json
import os
import socket
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from reward_service.api.app import create_app
from reward_service.cli.bench_http import RunningService, running_service
from reward_service.service.settings import Settings

TESTS_DIR = Path(__file__).resolve().parent


def missing_tool(what: str, hint: str) -> None:
    """A test's outside tool is absent: skip on a developer's machine, with the command that installs it;
    fail in CI (`CI` set), where `.ci/run` installs every such tool and a skip would pass for a check."""
    message = f"{what} is not installed here (install: {hint})"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must have it")
    pytest.skip(message)
SPEC_DIR = TESTS_DIR.parents[1] / "shared" / "spec"
SLOW_SCORER = "slow_scorer:score"

MC_REF = {"task_type": "multiple_choice", "answer": "B", "options": ["left", "right", "behind", "in front"]}
NUM_REF = {"task_type": "numerical", "answer": 4.0}
GRAPH_REF = {
    "task_type": "multiple_choice", "answer": "B", "options": ["left", "right", "behind", "in front"],
    "graph": {"nodes": {"chair_1": [1.0, 2.0, 0.0], "table": [2.0, 2.5, 0.0], "lamp": [0.0, 0.0, 1.0]}},
    "graph_scale": 5.0,
}
GOOD = "<think>\nThe chair is right of the table.\n</think>\n<answer>B</answer>"
WRONG = "<think>\nHmm.\n</think>\n<answer>A</answer>"
GRAPH_GOOD = ('<think>\n<graph>{"chair_1": [1.0, 2.0, 0.0], "table": [2.0, 2.5, 0.0], "lamp": [0.0, 0.0, 1.0]}'
              "</graph>\nso B\n</think>\n<answer>B</answer>")


def golden_cases() -> list[dict[str, Any]]:
    lines = (SPEC_DIR / "golden-public.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def item(item_id: str, completion: str = GOOD, reference: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"id": item_id, "completion": completion, "reference": reference or MC_REF, **extra}


# Scoring requests that reach every kind of answer, as (path, headers, body): each way a scoring request
# can take through the service must answer them alike (test_api_dispatch.py, test_api_exchange.py). The
# service has one key, "key-a": `scoring_answers` sends it with the requests that carry no Authorization.
SCORING_REQUESTS: list[tuple[str, dict[str, str], Any]] = [
    ("/v1/rewards", {}, {"items": [item("a", GOOD, group_id="g"), item("b", WRONG, group_id="g"),
                                   item("c", GRAPH_GOOD, GRAPH_REF, group_id="h")], "advantages": "grpo"}),
    ("/v1/rewards", {}, {"items": [item("a")], "explain": True, "config": {"weights": {"answer": 2.0}}}),
    ("/v1/rewards", {}, {"items": [item("a"), item("a")]}),  # duplicate ids: 422
    ("/v1/rewards", {}, {"items": [item("a", GOOD, {"task_type": "numerical", "answer": "x"})]}),  # bad reference
    ("/v1/rewards", {}, {"items": [{"id": "a"}]}),  # schema: 422
    ("/v1/rewards", {}, b"{not json"),
    ("/v1/rewards", {"content-type": "text/plain"}, {"items": [item("a")]}),
    ("/v1/rewards", {"authorization": "Bearer wrong"}, {"items": [item("a")]}),
    ("/v1/rewards", {"authorization": "Bearer key-a"}, {"items": [item("a")]}),
    ("/get_reward", {"authorization": "Bearer key-a"},
     {"query": ["p" + GOOD, "p" + WRONG], "prompts": ["p", "p"], "labels": [json.dumps(MC_REF)] * 2}),
    ("/get_reward", {}, {"query": ["x"], "prompts": [], "labels": []}),
]
SCORING_STATUSES = [200, 200, 422, 422, 422, 400, 415, 401, 200, 200, 422]


def scoring_answers(client: httpx.Client | Any) -> list[tuple[int, dict[str, str], Any]]:
    """(status, the headers that carry meaning, JSON body) of each of `SCORING_REQUESTS`."""
    out = []
    for path, headers, body in SCORING_REQUESTS:
        auth = {} if "authorization" in headers else {"authorization": "Bearer key-a"}
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        response = client.post(path, content=content, headers={"content-type": "application/json", **auth, **headers})
        kept = {k: v for k, v in response.headers.items() if k in ("content-type", "retry-after", "www-authenticate")}
        out.append((response.status_code, kept, response.json()))
    return out


def settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = {"workers": 2, "log_level": "warning"}
    base.update(overrides)
    return Settings(**base)


def wait_ready(client: httpx.Client | Any, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while client.get("/readyz").status_code != 200:
        if time.monotonic() > deadline:
            raise AssertionError("service did not become ready")
        time.sleep(0.05)


@contextmanager
def in_process(config: Settings, ready: bool = True) -> Iterator[Any]:
    """The app on Starlette's TestClient (lifespan included): no socket, same code path."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
        from fastapi.testclient import TestClient

    app = create_app(config)
    with TestClient(app, raise_server_exceptions=False) as client:
        if ready:
            wait_ready(client)
        yield client


def child_env(**extra: str) -> dict[str, str]:
    """Environment for a service child process: the tests' modules (test scorers) importable."""
    path = os.pathsep.join(filter(None, [str(TESTS_DIR), os.environ.get("PYTHONPATH", "")]))
    return {"PYTHONPATH": path, **extra}


@contextmanager
def real_server(*args: str, env: dict[str, str] | None = None) -> Iterator[tuple[httpx.Client, RunningService]]:
    """`reward-service serve` in a child process on 127.0.0.1, and an httpx client for it."""
    with (running_service("--workers", "2", *args, env=child_env(**(env or {}))) as service,
          httpx.Client(base_url=service.base_url, timeout=60.0) as client):
        yield client, service


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RedisServer:
    """A real `redis-server` on a free port, no persistence; `kill()` stops it dead mid-run."""

    def __init__(self) -> None:
        import shutil
        import subprocess

        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not self.ping():
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError("redis-server did not start")
            time.sleep(0.02)

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def command(self, *args: str) -> bytes:
        """One command over a raw socket (RESP), for test set-up such as DEBUG SLEEP."""
        parts = [f"*{len(args)}\r\n".encode()] + [f"${len(a)}\r\n{a}\r\n".encode() for a in args]
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(b"".join(parts))
            return s.recv(4096)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


@contextmanager
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    try:
        yield server
    finally:
        server.kill()
