"""Console entry points that need an extra: they say which to install instead of a traceback."""

from __future__ import annotations

import sys


def grpo_train() -> int:
    try:
        from trainer_client.train import main
    except ModuleNotFoundError as exc:
        print(f"grpo-train needs the [trainer] extra (torch, transformers, ...): "
              f"pip install 'video-str-reward[trainer]' (missing: {exc.name})", file=sys.stderr)
        return 2
    return main()
