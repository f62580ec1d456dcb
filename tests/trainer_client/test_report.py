"""`python -m trainer_client.report`: the before/after table the CPU proof is read from."""

from __future__ import annotations

import math

import orjson
import pytest

from reward_service.scoring import COMPONENTS
from trainer_client.report import compare, main


def _evaluation(step: int, per_prompt: list[float], accuracy: float) -> dict:
    mean = sum(per_prompt) / len(per_prompt)
    return {"step": step, "sampled": {"reward_mean": mean, "per_prompt_reward": per_prompt,
                                      "answer_accuracy": accuracy, **{f"{k}_mean": 0.5 for k in COMPONENTS}}}


def _run(path, evaluations):
    path.mkdir()
    (path / "eval.jsonl").write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in evaluations))
    return path


def test_rise_and_its_standard_error_are_paired_by_prompt(tmp_path):
    run = _run(tmp_path / "seed0", [_evaluation(0, [1.0, 2.0, 3.0], 0.25), _evaluation(50, [9.0, 9.0, 9.0], 0.3),
                                    _evaluation(100, [1.5, 2.1, 3.7], 0.5)])
    (row,) = compare([run])
    sampled = row["sampled"]
    assert row["steps"] == 100
    assert sampled["before"] == pytest.approx(2.0) and sampled["after"] == pytest.approx(7.3 / 3)
    assert sampled["rise"] == pytest.approx(1.3 / 3)  # mean of the differences 0.5, 0.1, 0.7
    # differences 0.5, 0.1, 0.7: their spread, not the prompts' own (1 to 3), is the noise
    assert sampled["rise_sem"] == pytest.approx(math.sqrt(0.09333333) / math.sqrt(3), rel=1e-4)
    assert sampled["answer_accuracy"] == (0.25, 0.5)
    assert "greedy" not in row


def test_command_prints_the_mean_rise_and_draws_the_plot(tmp_path, capsys):
    a = _run(tmp_path / "a", [_evaluation(0, [1.0, 1.0], 0.0), _evaluation(10, [1.2, 1.4], 0.0)])
    b = _run(tmp_path / "b", [_evaluation(0, [1.0, 1.0], 0.0), _evaluation(10, [1.0, 1.2], 0.0)])
    png = tmp_path / "proof.png"
    assert main([str(a), str(b), "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "mean sampled rise over 2 runs: +0.200" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_run_without_two_evaluations_is_a_clear_error(tmp_path, capsys):
    run = _run(tmp_path / "early", [_evaluation(0, [1.0], 0.0)])
    with pytest.raises(SystemExit) as exc:
        main([str(run)])
    assert exc.value.code == 2
    assert "1 evaluation(s)" in capsys.readouterr().err
