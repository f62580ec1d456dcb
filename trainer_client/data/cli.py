"""`grpo-data`: make, check, import and export datasets in the project's JSONL format.

    grpo-data synth train.jsonl --n 2000 --seed 0 [--held-out eval.jsonl --n-eval 64]
    grpo-data import --from video-r1 Video-R1-260k.json train.jsonl
    grpo-data import --from vsi-bench test-00000-of-00001.parquet vsi.jsonl --video-root /data/vsi-bench
    grpo-data check train.jsonl [--skip-bad]
    grpo-data export --to verl train.jsonl train.parquet      # or --to openrlhf train.jsonl openrlhf.jsonl
"""

from __future__ import annotations

import argparse
import sys

from trainer_client.data import DatasetError, load_records, write_records


def _synth(args: argparse.Namespace) -> int:
    from trainer_client.data.synthetic import split

    options = {"task_types": args.task_types, "objects": tuple(args.objects), "frames": tuple(args.frames)}
    train, held_out = split(args.n, args.n_eval if args.held_out else 0, args.seed, **options)
    print(f"{write_records(args.out, train)} records -> {args.out}")
    if args.held_out:
        print(f"{write_records(args.held_out, held_out)} held-out records -> {args.held_out}")
    return 0


def _import(args: argparse.Namespace) -> int:
    from trainer_client.data.importers import import_video_r1, import_vsi_bench, read_rows

    rows = read_rows(args.input)
    report = import_video_r1(rows) if args.source == "video-r1" else import_vsi_bench(rows, args.video_root)
    write_records(args.out, report.records)
    print(f"{args.input} -> {args.out}: {report.summary()}")
    for row_id, reason in report.unreadable[:20]:
        print(f"  unreadable {row_id}: {reason}", file=sys.stderr)
    return 0 if report.records else 1


def _check(args: argparse.Namespace) -> int:
    report = load_records(args.input, skip_bad=args.skip_bad)
    print(f"{args.input}: {len(report.records)} valid records, {len(report.skipped)} bad lines")
    for number, reason in report.skipped:
        print(f"  line {number}: {reason}", file=sys.stderr)
    return 1 if report.skipped else 0


def _export(args: argparse.Namespace) -> int:
    from trainer_client.data.export import write_openrlhf, write_verl

    records = load_records(args.input, skip_bad=args.skip_bad).records
    if args.target == "verl":
        n = write_verl(records, args.out, data_source=args.data_source, split=args.split)
    else:
        n = write_openrlhf(records, args.out)
    print(f"{n} records -> {args.out} ({args.target})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="grpo-data", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("synth", help="synthetic text tasks from the project's scene generator")
    p.add_argument("out")
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--held-out", help="also write held-out records (another seed, no prompt in common) here")
    p.add_argument("--n-eval", type=int, default=64)
    p.add_argument("--task-types", nargs="+", default=["multiple_choice"])
    p.add_argument("--objects", nargs=2, type=int, default=[3, 4], metavar=("LEAST", "MOST"))
    p.add_argument("--frames", nargs=2, type=int, default=[1, 1], metavar=("LEAST", "MOST"))
    p.set_defaults(func=_synth)
    p = sub.add_parser("import", help="convert Video-R1 or VSI-Bench annotations")
    p.add_argument("--from", dest="source", choices=("video-r1", "vsi-bench"), required=True)
    p.add_argument("input")
    p.add_argument("out")
    p.add_argument("--video-root", default="", help="VSI-Bench: folder holding <dataset>/<scene>.mp4")
    p.set_defaults(func=_import)
    p = sub.add_parser("check", help="validate a dataset file line by line")
    p.add_argument("input")
    p.add_argument("--skip-bad", action="store_true", help="report every bad line instead of stopping at the first")
    p.set_defaults(func=_check)
    p = sub.add_parser("export", help="write a dataset in verl's or OpenRLHF's layout")
    p.add_argument("--to", dest="target", choices=("verl", "openrlhf"), required=True)
    p.add_argument("input")
    p.add_argument("out")
    p.add_argument("--data-source", default="video_str")
    p.add_argument("--split", default="train")
    p.add_argument("--skip-bad", action="store_true")
    p.set_defaults(func=_export)
    args = parser.parse_args(argv)
    try:
        result: int = args.func(args)
    except (DatasetError, OSError) as exc:  # OSError: an output path that cannot be written, say
        print(f"grpo-data: {exc}", file=sys.stderr)
        return 1
    return result


if __name__ == "__main__":
    sys.exit(main())
