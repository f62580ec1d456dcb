"""The scoring core runs inside any trainer: it must import without FastAPI, Redis or torch."""

import subprocess
import sys

CODE = """
import sys
import reward_service.scoring, reward_service.synth.mixes, reward_service.graph, reward_service.errors, reward_service.schemas
r = reward_service.scoring.score("<think>x</think><answer>B</answer>", {"task_type": "multiple_choice", "answer": "B"})
assert r.reward == 2.0
bad = [m for m in ("fastapi", "starlette", "redis", "torch", "uvicorn", "prometheus_client") if m in sys.modules]
assert not bad, bad
"""


def test_core_imports_without_service_dependencies():
    subprocess.run([sys.executable, "-c", CODE], check=True)
