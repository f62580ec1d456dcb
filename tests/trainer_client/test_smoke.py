"""The GPU smoke's code path, run on the CPU with the transformers engine (vLLM needs a GPU): it
builds its model and videos, trains, and prints the JSON line the GPU run reports."""

from __future__ import annotations

import json
import subprocess

import pytest

pytest.importorskip("torch")

from trainer_client.smoke import main

pytestmark = [pytest.mark.trainer, pytest.mark.slow]


def test_smoke_on_cpu_prints_its_figures_and_the_weights_move(tmp_path, capsys):
    assert main(["--engine", "hf", "--device", "cpu", "--steps", "1", "--prompts", "2", "--group-size", "4",
                 "--frames", "4", "--video-size", "56", "--hidden", "64", "--layers", "1", "--max-new-tokens", "64",
                 "--service-workers", "1", "--warmup-steps", "100", "--work", str(tmp_path)]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["engine"] == "hf" and figures["steps"] == 1 and figures["rollouts_per_step"] == 8
    assert set(figures["split_s"]) >= {"generate", "score", "score_exposed", "update", "weight_sync"}
    assert 0 < figures["share_outside_generation"] < 1 and figures["rollout_tokens_per_s"] > 0
    assert figures["weights_changed"] is True  # the update moved what the engine samples from
    assert (tmp_path / "model" / "model.safetensors").exists() and (tmp_path / "model" / "tokenizer.json").exists()


def test_gpu_smoke_script_refuses_clearly_without_vllm():
    done = subprocess.run(["bash", "scripts/gpu-smoke.sh"], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "pip install '.[trainer,vllm,service]'" in done.stderr or "no CUDA device" in done.stderr
