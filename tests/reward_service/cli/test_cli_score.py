"""`reward-service score`: one result line per input line, in order; bad lines become error results."""

import json
import subprocess
import sys

import pytest

from reward_service.cli.main import main

GOOD = {"id": "a", "group_id": "g", "completion": "<think>x</think><answer>B</answer>",
        "reference": {"task_type": "multiple_choice", "answer": "B"}, "num_tokens": 400}


def write_input(path, lines):
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")


def test_score_file_in_order_with_bad_lines(tmp_path, capsys):
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    bad_ref = {**GOOD, "id": "b", "reference": {"task_type": "numerical", "answer": "x"}}
    write_input(src, [GOOD, "{not json", bad_ref, {**GOOD, "id": "c", "completion": "<answer>C</answer>"}])
    assert main(["score", str(src), "-o", str(dst)]) == 0
    out = [json.loads(line) for line in dst.read_text().splitlines()]
    assert [o["id"] for o in out] == ["a", "line-2", "b", "c"]
    assert out[0]["status"] == "ok" and out[0]["reward"] == 2.0 and out[0]["components"]["length"] == 1.0
    assert out[0]["group_id"] == "g" and out[0]["mask"] is False and out[0]["cached"] is False
    for o in out[1:3]:
        assert o["status"] == "error" and o["mask"] is True and o["reward"] is None
    assert "line 2" in out[1]["diagnostics"]["error"]
    assert "reference.answer" in out[2]["diagnostics"]["error"]
    assert out[3]["status"] == "ok" and out[3]["components"]["format"] == 0.0
    assert "scored 4 items" in capsys.readouterr().err


def test_score_stdin_stdout_and_config(tmp_path):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"weights": {"answer": 3.0}}))
    proc = subprocess.run(
        [sys.executable, "-m", "reward_service.cli", "score", "-", "--config", str(cfg)],
        input=json.dumps(GOOD) + "\n", capture_output=True, text=True, check=True,
    )
    assert json.loads(proc.stdout)["reward"] == 4.0


def test_score_rejects_bad_config(tmp_path, capsys):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"weights": {"answer": -1}}))
    assert main(["score", "-", "--config", str(cfg)]) == 2
    assert "weights.answer" in capsys.readouterr().err


def test_missing_input_file(capsys):
    assert main(["score", "/nonexistent.jsonl"]) == 2
    assert "nonexistent" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["score"], ["bench", "--mode", "x"]])
def test_usage_errors(argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
