"""Command line: `reward-service serve | score | bench`."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from typing import Any

import orjson

from reward_service.cli.score import add_score_parser
from reward_service.service.runtime import tune_allocator

# What each bench mode imports beyond the base install, all from the [service] extra: networkx's graph
# edit distance (the GED baseline) needs scipy; the http mode starts `reward-service serve` as well.
_BENCH_NEEDS = {"inprocess": ("scipy",), "http": ("scipy", "fastapi", "uvicorn", "pydantic_settings")}


def _run_bench(args: argparse.Namespace) -> int:
    missing = [name for name in _BENCH_NEEDS[args.mode] if importlib.util.find_spec(name) is None]
    if missing:  # said at once, not as a traceback once the first figures are measured
        print(f"reward-service bench needs the [service] extra (pip install 'video-str-reward[service]'): "
              f"{', '.join(missing)} not installed", file=sys.stderr)
        return 2
    if args.mode == "inprocess":
        from reward_service.cli.bench_inprocess import run_inprocess

        figures: dict[str, Any] = run_inprocess(items=args.items, seed=args.seed, ged_pairs=args.ged_pairs)
    else:
        from reward_service.cli.bench_http import run_http_bench

        figures = run_http_bench(items=args.items, seed=args.seed)
    if args.json:
        print(orjson.dumps(figures).decode())
    else:
        for key, value in figures.items():
            print(f"{key:34s} {value:,.3f}" if isinstance(value, float) else f"{key:34s} {value}")
    return 0


def _add_bench_parser(sub: Any) -> None:
    p = sub.add_parser("bench", help="measure scoring speed (in process, or through HTTP)")
    p.add_argument("--mode", choices=("inprocess", "http"), default="inprocess")
    p.add_argument("--items", type=int, default=4000, help="items of the standard mix to score")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ged-pairs", type=int, default=3, help="graph pairs per size (4-8 nodes) for the GED baseline")
    p.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    p.set_defaults(func=_run_bench)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reward-service", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    try:  # the service needs the [service] extra; `score` works with the base install
        from reward_service.cli.serve import add_serve_parser

        add_serve_parser(sub)
    except ImportError:
        pass
    add_score_parser(sub)
    _add_bench_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command != "serve":  # the service's own process makes no numpy temporaries; its workers tune theirs
        tune_allocator()
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
