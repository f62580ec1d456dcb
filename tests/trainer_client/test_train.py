"""grpo-train end to end on CPU against a live service: the metrics and files a run leaves, resume
equal to a straight run, Ctrl-C saving a checkpoint, waiting out a service that is away."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

torch = pytest.importorskip("torch")
from safetensors.torch import load_file  # noqa: E402

from trainer_client import checkpoint  # noqa: E402
from trainer_client.config import TrainConfig  # noqa: E402
from trainer_client.report import compare  # noqa: E402
from trainer_client.scoring import Scorer  # noqa: E402
from trainer_client.train import STOP, Trainer, run  # noqa: E402

pytestmark = [pytest.mark.trainer, pytest.mark.slow]

STEP_FIELDS = {"reward_mean", "reward_std", "format_mean", "answer_mean", "graph_node_mean", "graph_edge_mean",
               "length_mean", "flat_group_fraction", "masked", "kl", "clip_fraction", "entropy",
               "completion_tokens_mean", "tokens_per_s", "time_generate", "time_score", "time_score_exposed",
               "time_update", "engine_logprob_mismatch", "lr", "grad_norm"}


def small(tmp_path, service, **overrides) -> TrainConfig:
    values = dict(output_dir=str(tmp_path), service_url=service.base_url, steps=4, checkpoint_every=2,
                  synthetic_train=40, eval_size=4, model="tiny", tiny_hidden=32, tiny_layers=1, tiny_heads=2,
                  prompts_per_step=2, group_size=4, minibatch_size=4, max_new_tokens=40, warmup_steps=60,
                  warmup_batch=16, warmup_lr=5e-3, eval_every=0, eval_samples=2, eval_greedy=True, beta=0.04, lr=1e-3,
                  prompt_instructions=False, updates_per_batch=2)
    values.update(overrides)
    return TrainConfig(**values)


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_run_leaves_metrics_evaluations_checkpoints_and_a_plot(tmp_path, plain_service):
    summary = run(small(tmp_path, plain_service))
    steps = read_jsonl(tmp_path / "metrics.jsonl")
    assert [m["step"] for m in steps] == [1, 2, 3, 4]
    assert set(steps[0]) >= STEP_FIELDS
    assert all(m["masked"] == 0 and m["time_score_exposed"] >= 0 for m in steps)
    # the engine sampled from the model being trained: its log-probabilities are the training forward's,
    # so any misalignment of tokens and positions in the batch would show here
    assert all(m["engine_logprob_mismatch"] < 1e-3 for m in steps)
    assert all(m["kl"] >= 0 and 0 <= m["clip_fraction"] <= 1 for m in steps)
    assert any(m["reward_std"] > 0 for m in steps)  # the warm-up took: rewards vary, so there is a gradient
    evals = read_jsonl(tmp_path / "eval.jsonl")
    assert [e["step"] for e in evals] == [0, 4]
    assert {"reward_mean", "answer_accuracy", "format_mean"} <= set(evals[0]["sampled"])
    assert evals[0]["sampled"]["samples_per_prompt"] == 2 and evals[0]["greedy"]["samples_per_prompt"] == 1
    assert len(evals[0]["sampled"]["per_prompt_reward"]) == evals[0]["sampled"]["prompts"]
    table = compare([tmp_path])[0]["sampled"]  # python -m trainer_client.report's before/after table
    assert table["rise"] == pytest.approx(evals[1]["sampled"]["reward_mean"] - evals[0]["sampled"]["reward_mean"])
    assert table["rise_sem"] >= 0
    assert (tmp_path / "rewards.png").stat().st_size > 10_000
    assert (tmp_path / "config.yaml").exists() and (tmp_path / "reference.safetensors").exists()
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-000002", "step-000004"]
    assert summary["steps"] == 4


def test_one_step_update_takes_its_old_logprobs_from_its_own_forward(tmp_path, plain_service, monkeypatch):
    """One pass of one minibatch over the whole batch skips the separate old log-probability forward:
    the weights it ends with are those of the run that computes it, and the engine's log-probabilities
    still match the (saved-forward) old ones."""
    one_step = dict(updates_per_batch=1, minibatch_size=8, steps=2, checkpoint_every=2, eval_greedy=False)
    run(small(tmp_path / "saved", plain_service, **one_step))
    monkeypatch.setattr(Trainer, "_one_step_update", lambda self, rows: False)
    run(small(tmp_path / "computed", plain_service, **one_step))
    a = load_file(str(tmp_path / "saved" / "checkpoints" / "step-000002" / "model.safetensors"))
    b = load_file(str(tmp_path / "computed" / "checkpoints" / "step-000002" / "model.safetensors"))
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6, msg=name)
    steps = read_jsonl(tmp_path / "saved" / "metrics.jsonl")
    assert all(m["engine_logprob_mismatch"] < 1e-3 for m in steps)
    assert all(m["kl"] > 0 for m in steps[1:])  # the reference's forward still ran


def test_stopped_after_two_steps_then_resumed_equals_four_straight(tmp_path, plain_service, monkeypatch):
    """A stop asked for during step 2 (grpo-train's Ctrl-C) saves after it; resuming for two more gives
    the weights of four straight steps, the learning-rate schedule's state included."""
    straight, split = tmp_path / "straight", tmp_path / "split"
    schedule = {"lr_schedule": "cosine", "lr_warmup_steps": 1}
    run(small(straight, plain_service, **schedule))
    original = Trainer.step

    def step_then_ask_to_stop(self, step):
        metrics = original(self, step)
        if step == 1:
            STOP.set()
        return metrics

    monkeypatch.setattr(Trainer, "step", step_then_ask_to_stop)
    try:
        with pytest.raises(KeyboardInterrupt):
            run(small(split, plain_service, **schedule))
    finally:
        STOP.clear()
        monkeypatch.undo()
    assert checkpoint.latest(split).name == "step-000002"
    resumed = run(small(split, plain_service, resume=True, **schedule))
    assert resumed["first_eval"]["step"] == 0  # the summary spans the whole run, not its resumed part
    a = load_file(str(straight / "checkpoints" / "step-000004" / "model.safetensors"))
    b = load_file(str(split / "checkpoints" / "step-000004" / "model.safetensors"))
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6, msg=name)
    first, second = read_jsonl(straight / "metrics.jsonl"), read_jsonl(split / "metrics.jsonl")
    assert [m["step"] for m in second] == [1, 2, 3, 4]
    assert [m["reward_mean"] for m in first] == pytest.approx([m["reward_mean"] for m in second], nan_ok=True)
    # and the resumed run moved on from the checkpoint: its weights differ from step 2's
    c = load_file(str(split / "checkpoints" / "step-000002" / "model.safetensors"))
    assert any(not torch.equal(c[name], b[name]) for name in b)


def test_ctrl_c_saves_a_checkpoint_and_resume_continues(tmp_path, plain_service):
    config = small(tmp_path, plain_service, steps=500, checkpoint_every=1000)
    config_path = config.write(tmp_path)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "trainer_client.train", "--config", str(config_path)],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    metrics = tmp_path / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (metrics.exists() and len(metrics.read_text().splitlines()) >= 2):
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        assert time.monotonic() < deadline
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 130, output
    assert "checkpoint saved" in output
    saved = sorted((tmp_path / "checkpoints").glob("step-*"))
    assert saved, output
    step = json.loads((saved[-1] / "state.json").read_text())["step"]
    assert step >= 2 and step == len(read_jsonl(metrics))
    run(small(tmp_path, plain_service, steps=step + 1, resume=True))
    assert [m["step"] for m in read_jsonl(metrics)] == list(range(1, step + 2))


def test_the_trainer_waits_for_a_service_that_is_away(service_process, caplog):
    caplog.set_level(logging.ERROR, logger="trainer_client.scoring")
    svc = service_process().start()
    svc.kill()
    scorer = Scorer(svc.base_url, None, retry_attempts=2, retry_max_s=1.0)
    items = [{"id": "a", "completion": "<think> x </think> <answer> B </answer>",
              "reference": {"task_type": "multiple_choice", "answer": "B"}}]
    restart = threading.Timer(3.0, svc.start, kwargs={"wait": False})
    restart.start()
    try:
        results = scorer.result(items, scorer.submit(items), first_wait_s=0.5, max_wait_s=2.0)
    finally:
        restart.join()
        scorer.close()
    assert results[0].reward == 2.0
    assert "no update without rewards" in caplog.text


def test_two_processes_over_gloo_end_with_identical_weights(tmp_path, plain_service):
    """accelerate launch, 2 CPU processes: each samples and scores its own groups; gradients averaged."""
    config = small(tmp_path, plain_service, steps=2, checkpoint_every=2, eval_samples=1, eval_greedy=False)
    path = config.write(tmp_path)
    # --multi_gpu selects Accelerate's torchrun launcher; with no GPU the trainer's Accelerator(cpu=True)
    # then runs the two processes over gloo (--cpu alone would start a single process)
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
              "-m", "trainer_client.train", "--config", str(path), "--device", "cpu"]
    done = subprocess.run(launch, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    steps = read_jsonl(tmp_path / "metrics.jsonl")
    assert [m["step"] for m in steps] == [1, 2]
    assert all("weights_checksum" in m for m in steps)  # checked equal across ranks after every step
    assert steps[0]["weights_checksum"] != steps[1]["weights_checksum"]  # and the step did change them
    saved = tmp_path / "checkpoints" / "step-000002"
    assert (saved / "rank-0.pt").exists() and (saved / "rank-1.pt").exists()
    # the rollouts of both ranks were scored: 2 ranks x 2 prompts x 4 completions a step
    assert plain_service.metric("reward_service_items_total", task_type="multiple_choice", status="ok") >= 16


def test_engine_vllm_in_the_loop_sleeps_for_the_update_and_pushes_the_new_weights(tmp_path, plain_service, monkeypatch):
    """The loop with `engine: vllm` on vLLM 0.33's stand-in (tests/trainer_client/vllm_standin.py): the
    engine is made from the model folder, sleeps after sampling, and is woken by the push of the updated
    weights before it samples again."""
    import vllm_standin

    from trainer_client.tiny import tiny_qwen2, vocabulary_of, word_tokenizer

    vllm_standin.install(monkeypatch)
    monkeypatch.setenv("VLLM_ALLOW_INSECURE_SERIALIZATION", "0")
    words = "<think> x </think> <answer> B </answer> " + " ".join(f"w{i}" for i in range(vllm_standin.VOCAB))
    tokenizer = word_tokenizer(vocabulary_of([words]))  # the stand-in samples ids below VOCAB
    tiny_qwen2(tokenizer, hidden=16, layers=1, heads=2, kv_heads=1, intermediate=32).save_pretrained(tmp_path / "m")
    tokenizer.save_pretrained(tmp_path / "m")
    config = small(tmp_path / "run", plain_service, model=str(tmp_path / "m"), engine="vllm", steps=2, warmup_steps=0,
                   vllm_gpu_memory_utilization=0.5, eval_samples=1, eval_greedy=False, beta=0.0)
    run(config)
    llm = vllm_standin.LLM.instances[-1]
    assert llm.settings["gpu_memory_utilization"] == 0.5 and llm.engine_args["enable_sleep_mode"] is True
    names = [call[0] for call in llm.calls]
    # evaluation, then per step: sample, sleep for the update, push the new weights (which wakes it);
    # the final evaluation samples from the pushed weights
    order = [n for n in names if n in ("generate", "sleep", "start_weight_update", "finish_weight_update")]
    assert order == ["generate"] + ["generate", "sleep", "start_weight_update", "finish_weight_update"] * 2 + \
        ["generate"]
    assert names.count("reset_encoder_cache") == 2  # the vision embeddings of the old weights go after a push
    steps = read_jsonl(tmp_path / "run" / "metrics.jsonl")
    assert [m["step"] for m in steps] == [1, 2] and all(m["time_weight_sync"] > 0 for m in steps)


def test_a_video_model_trains_on_video_records_and_bad_videos_are_skipped_and_counted(tmp_path, plain_service):
    """A tiny Qwen2.5-VL (built in code, saved like a downloaded one) on synthetic scene videos: frames
    sampled with PyAV, placed by the chat template, expanded to their tokens for generate() and for the
    training forward passes; one record's video is broken."""
    from trainer_client.data import write_records
    from trainer_client.data.synthetic_video import scene_video_records
    from trainer_client.tiny import QWEN_VL_TOKENS, tiny_qwen2_5_vl, vocabulary_of, word_tokenizer
    from trainer_client.video import VideoError

    records = scene_video_records(6, 0, tmp_path / "videos", size=(56, 56))
    (tmp_path / "videos" / records[0].video).write_bytes(b"not a video")
    write_records(tmp_path / "train.jsonl", records[1:4])
    write_records(tmp_path / "eval.jsonl", [records[0], *records[4:]])  # the broken one is held out
    words = vocabulary_of([r.question + " " + " ".join(r.options or []) for r in records] +
                          ["<think> </think> <answer> </answer> A B C D system user assistant"])
    tokenizer = word_tokenizer(words, special=QWEN_VL_TOKENS)
    tiny_qwen2_5_vl(tokenizer, hidden=32, layers=1, heads=2).save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    config = small(tmp_path / "run", plain_service, model=str(tmp_path / "model"), train_data=str(tmp_path / "train.jsonl"),
                   eval_data=str(tmp_path / "eval.jsonl"), video_root=str(tmp_path / "videos"), video_frames=4,
                   video_min_pixels=56 * 56, video_max_pixels=56 * 56, warmup_steps=0, steps=2,
                   prompt_instructions=True, eval_greedy=False)
    with pytest.raises(VideoError, match=records[0].id):  # stops on the broken video, naming its record
        run(config)
    run(config.model_copy(update={"skip_bad_videos": True}))
    steps = read_jsonl(tmp_path / "run" / "metrics.jsonl")
    assert [m["step"] for m in steps] == [1, 2] and steps[-1]["videos_skipped"] == 1
    assert all(m["masked"] == 0 for m in steps)
    assert read_jsonl(tmp_path / "run" / "eval.jsonl")[-1]["sampled"]["prompts"] == 2
