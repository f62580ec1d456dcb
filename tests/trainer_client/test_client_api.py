"""What the client promises to import and to export: the base install carries it into any trainer's
workers, so it must not pull in the web stack, Redis or torch; its public names are pinned."""

from __future__ import annotations

import subprocess
import sys

import trainer_client.client as client_module

CODE = """
import sys
import trainer_client.client, reward_service.scoring
bad = [m for m in ("fastapi", "starlette", "uvicorn", "redis", "prometheus_client", "torch", "transformers")
       if m in sys.modules]
assert not bad, bad
"""


def test_client_imports_without_service_or_training_dependencies():
    subprocess.run([sys.executable, "-c", CODE], check=True)


def test_public_api_is_pinned():
    assert set(client_module.__all__) == {
        "DEFAULT_URL", "AsyncRewardClient", "AuthenticationError", "InvalidRequest", "RewardClient",
        "RewardServiceError", "ScoredItem", "ScoredItems", "ServiceUnavailable", "grpo_items",
    }
    for name in client_module.__all__:
        assert hasattr(client_module, name), name
    errors = [client_module.ServiceUnavailable, client_module.InvalidRequest, client_module.AuthenticationError]
    assert all(issubclass(e, client_module.RewardServiceError) for e in errors)
