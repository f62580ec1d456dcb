"""What the base install (no extras) offers from the command line: `reward-service score` works and
`serve` is simply absent; `grpo-train` says which extra it needs. The extras are hidden from a child
process the way Python sees a missing package."""

from __future__ import annotations

import json
import subprocess
import sys

HIDE = "import sys\nfor m in {mods}: sys.modules[m] = None\n"


def run(code: str, hidden: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", HIDE.format(mods=list(hidden)) + code], capture_output=True,
                          text=True, timeout=120)


def test_reward_service_score_works_without_the_service_extra(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"id": "a", "completion": "<think>x</think><answer>B</answer>",
                                  "reference": {"task_type": "multiple_choice", "answer": "B"}}) + "\n")
    code = (f"from reward_service.cli.main import main\n"
            f"from reward_service.cli.main import build_parser\n"
            f"try:\n    build_parser().parse_args(['serve'])\nexcept SystemExit as exc:\n    assert exc.code == 2\n"
            f"else:\n    raise AssertionError('serve without the service extra')\n"
            f"sys.exit(main(['score', {str(source)!r}, '-o', {str(tmp_path / 'out.jsonl')!r}]))")
    done = run(code, ("fastapi", "pydantic_settings", "uvicorn", "starlette", "redis", "prometheus_client"))
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "out.jsonl").read_text())["reward"] == 2.0


def test_grpo_train_names_the_extra_it_needs():
    done = run("from trainer_client.cli import grpo_train\nsys.exit(grpo_train())", ("torch",))
    assert done.returncode == 2
    assert "pip install 'video-str-reward[trainer]'" in done.stderr and "torch" in done.stderr
