"""`reward-service score`: score a JSONL file of items offline, in order, one result line per input line."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections import Counter
from collections.abc import Iterator
from typing import IO, Any

import orjson

from reward_service.scoring import ConfigError, InvalidReference, RewardConfig, ScoreResult, score


def score_line(line: bytes, lineno: int, config: RewardConfig) -> dict[str, Any]:
    """The api.md result object for one input line; a bad line is an `error` result, never a crash."""
    item_id: Any = f"line-{lineno}"
    group_id = None
    try:
        item = orjson.loads(line)
        if not isinstance(item, dict):
            raise ValueError("line is not a JSON object")
        item_id = item.get("id", item_id)
        group_id = item.get("group_id")
        completion, num_tokens = item.get("completion"), item.get("num_tokens")
        if not isinstance(completion, str):
            raise ValueError("completion: must be a string")
        bad_count = isinstance(num_tokens, bool) or not isinstance(num_tokens, int) or num_tokens < 0
        if num_tokens is not None and bad_count:
            raise ValueError("num_tokens: must be an integer >= 0")
        if "reference" not in item:
            raise ValueError("reference: missing")
        result = score(completion, item["reference"], config, num_tokens)
    except (orjson.JSONDecodeError, ValueError, InvalidReference) as exc:
        result = ScoreResult.unscored("error", f"line {lineno}: {exc}")
    return {"id": item_id, "group_id": group_id, **result.to_dict(), "advantage": None, "cached": False}


def _lines(stream: IO[bytes]) -> Iterator[bytes]:
    for raw in stream:
        if raw.strip():
            yield raw


def run_score(args: argparse.Namespace) -> int:
    try:
        config = RewardConfig.from_file(args.config) if args.config else RewardConfig.build()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with contextlib.ExitStack() as stack:
        try:
            src = sys.stdin.buffer if args.input == "-" else stack.enter_context(open(args.input, "rb"))
            dst = sys.stdout.buffer if args.output == "-" else stack.enter_context(open(args.output, "wb"))
        except OSError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        statuses: Counter[str] = Counter()
        total_reward, start = 0.0, time.perf_counter()
        progress = _progress(args.input)
        for lineno, line in enumerate(_lines(src), start=1):
            out = score_line(line, lineno, config)
            statuses[out["status"]] += 1
            total_reward += out["reward"] or 0.0
            dst.write(orjson.dumps(out) + b"\n")
            progress(lineno)
        progress(None)
    n, elapsed = sum(statuses.values()), time.perf_counter() - start
    mean = total_reward / statuses["ok"] if statuses["ok"] else float("nan")
    print(
        f"scored {n} items in {elapsed:.2f}s: {statuses['ok']} ok, {statuses['error']} error; "
        f"mean reward {mean:.4f}; reward_config_id {config.id}",
        file=sys.stderr,
    )
    return 0


def _progress(source: str) -> Any:
    """A live count on a terminal; silent when stderr is a pipe or a file."""
    if not sys.stderr.isatty():
        return lambda n: None
    from rich.console import Console

    console = Console(stderr=True)
    status = console.status(f"scoring {source}")
    status.start()

    def update(n: int | None) -> None:
        if n is None:
            status.stop()
        elif n % 256 == 0:
            status.update(f"scoring {source}: {n} items")

    return update


def add_score_parser(sub: Any) -> None:
    p = sub.add_parser("score", help="score a JSONL file of items offline")
    p.add_argument("input", help="input JSONL ('-' for stdin): {id, completion, reference, num_tokens?, group_id?}")
    p.add_argument("-o", "--output", default="-", help="output JSONL of results ('-' for stdout, the default)")
    p.add_argument("--config", help="partial reward config JSON merged over the defaults")
    p.set_defaults(func=run_score)
