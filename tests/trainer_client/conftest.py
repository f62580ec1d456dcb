"""Fixtures of the trainer-side tests: a real `reward-service serve` on 127.0.0.1 that a test can
kill and start again on the same port, as a deploy or a crash would."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator

import httpx
import pytest
from service_fixtures import child_env, free_port

from reward_service.cli.bench_http import wait_until_ready


class ServiceProcess:
    """`python -m reward_service.cli serve` with fixed arguments and port."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, port: int | None = None) -> None:
        self.args = ("--workers", "1", "--log-level", "warning", *args)
        self.env = {**os.environ, **child_env(**(env or {}))}
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the fixture that made it

    def start(self, wait: bool = True) -> ServiceProcess:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "reward_service.cli", "serve", "--port", str(self.port), *self.args],
            env=self.env, stdout=self.log, stderr=self.log)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        assert self.process is not None
        wait_until_ready(self.base_url, self.process, self.log_text, timeout_s)

    def kill(self) -> None:
        """SIGKILL: in-flight requests lose their connection, nothing drains."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_text(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def metric(self, name: str, **labels: str) -> float:
        """A sample of /metrics (0 when absent)."""
        from prometheus_client.parser import text_string_to_metric_families

        text = httpx.get(f"{self.base_url}/metrics", timeout=5.0).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    return float(sample.value)
        return 0.0


@pytest.fixture
def service_process() -> Iterator[type[ServiceProcess]]:
    """A factory; every service it made is stopped after the test."""
    made: list[ServiceProcess] = []

    class Tracked(ServiceProcess):
        def __init__(self, *args: str, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            made.append(self)

    yield Tracked
    for service in made:
        service.terminate()
        service.log.close()


@pytest.fixture(scope="module")
def service() -> Iterator[ServiceProcess]:
    """One plain service for a module's tests (the test-only slow scorer: `STUCK ...` never finishes)."""
    s = ServiceProcess("--item-deadline", "0.5", env={"REWARD_SERVICE_SCORER": "slow_scorer:score"}).start()
    yield s
    s.terminate()
    s.log.close()


@pytest.fixture(scope="module")
def plain_service() -> Iterator[ServiceProcess]:
    """The real scorer and the default item deadline (2 s): training runs assert that nothing is masked,
    which a loaded machine must not turn false by stretching an item past a test's short deadline."""
    s = ServiceProcess().start()
    yield s
    s.terminate()
    s.log.close()
