#!/usr/bin/env bash
# The GPU smoke run (issue 9): a few GRPO steps of a tiny random Qwen2.5-VL-style model with vLLM on
# synthetic videos, against a reward service on 127.0.0.1; prints one JSON line of figures (rollout
# tokens/s, the step's time split, the share outside generation, GPU memory, whether the weights vLLM
# samples from changed). Nothing is downloaded. Needs one GPU and the project installed with
#   pip install '.[trainer,vllm,service]'      (vLLM 0.33 brings torch 2.14.0)
# Run from anywhere: scripts/gpu-smoke.sh [--steps 4 --prompts 8 --group-size 8 --frames 16 ...]
# The same path on a CPU, without vLLM: python -m trainer_client.smoke --engine hf --device cpu ...
set -euo pipefail
cd "$(dirname "$0")/.."
python3 - <<'PY' || exit 1
import importlib.util, sys
missing = [m for m in ("vllm", "torch", "fastapi", "trainer_client") if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"gpu-smoke: missing {missing}: pip install '.[trainer,vllm,service]' on the GPU node")
import torch
if not torch.cuda.is_available():
    sys.exit("gpu-smoke: no CUDA device visible")
PY
# 8 minutes at most (tiny model: most of it is vLLM's start and its CUDA graphs)
exec timeout 480 python3 -m trainer_client.smoke --engine vllm "$@"
