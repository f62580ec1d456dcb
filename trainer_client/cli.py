"""Console entry points that need an extra: they say which to install instead of a traceback."""

from __future__ import annotations

import sys

TRAINER_MODULES = {"torch", "transformers", "accelerate", "peft", "av", "safetensors", "yaml", "matplotlib", "PIL"}


def grpo_train() -> int:
    try:
        from trainer_client.train import main
    except ModuleNotFoundError as exc:
        if exc.name not in TRAINER_MODULES:  # a bug, not a missing extra
            raise
        print(f"grpo-train needs the [trainer] extra (torch, transformers, ...): "
              f"pip install 'video-str-reward[trainer]' (missing: {exc.name})", file=sys.stderr)
        return 2
    return main()
