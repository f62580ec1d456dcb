"""Shared by every test folder: the path fix below, and fixtures (`redis`, `service_client`).

The tests mirror the package (tests/reward_service/<package>/), and pytest puts tests/ on sys.path for
the shared helpers (service_fixtures, the test scorers): without the project root ahead of it,
`import reward_service` would find the tests' folder of that name (a namespace package) whenever the
project root is not already on the path (`pytest` run as a script, or from another directory).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from service_fixtures import in_process, redis_server, settings  # noqa: E402  (after the path fix above)


@pytest.fixture
def redis() -> Iterator[Any]:
    """A real redis-server of its own on a free port (tests that use it are marked `redis`)."""
    with redis_server() as server:
        yield server


@pytest.fixture(scope="module")
def service_client() -> Iterator[Any]:
    """The app in process with the test settings (2 workers), one per test module."""
    with in_process(settings()) as client:
        yield client
