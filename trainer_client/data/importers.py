"""Importers from the formats users already have into the project's dataset format.

* Video-R1 (its `Video-R1-260k.json`): a JSON list of `{problem_id, problem, data_type, problem_type,
  options: ["A. ...", ...], solution: "<answer>B</answer>", path, data_source, ...}`. `multiple choice`
  becomes `multiple_choice` (the letter; the option texts without their "A. " prefix) and `numerical`
  becomes `numerical`; the other types (OCR, free-form, regression, ...) have no scorer in reward-spec
  and are counted and left out.
* VSI-Bench: rows of `{id, dataset, scene_name, question_type, question, options, ground_truth}` (JSON,
  JSONL or the Hugging Face parquet). Relative direction, relative distance, route planning and
  appearance order are multiple choice; absolute distance, counting, object and room size numerical.
  The video is `<dataset>/<scene_name>.mp4` under `video_root`.

Each importer returns the records and a report of what it left out and why; a row that claims a
supported type but cannot be read (no letter in the solution, a non-numeric answer) is reported too.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from reward_service.scoring.reference import OPTION_LETTERS
from trainer_client.data import DatasetError, Record

_OPTION = re.compile(r"^\s*\(?([A-J])[.):]\s*(.*)$", re.S)
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.S)

VSI_MULTIPLE_CHOICE = ("object_rel_direction", "object_rel_distance", "route_planning", "obj_appearance_order")
VSI_NUMERICAL = ("object_abs_distance", "object_counting", "object_size_estimation", "room_size_estimation")


@dataclass
class ImportReport:
    records: list[Record] = field(default_factory=list)
    left_out: Counter[str] = field(default_factory=Counter)  # reason -> count
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (row id, reason)

    def summary(self) -> str:
        parts = [f"{len(self.records)} records"]
        parts += [f"{n} left out ({reason})" for reason, n in sorted(self.left_out.items())]
        if self.unreadable:
            parts.append(f"{len(self.unreadable)} unreadable (first: {self.unreadable[0][0]}: {self.unreadable[0][1]})")
        return ", ".join(parts)


def read_rows(path: str | Path) -> Iterator[dict[str, Any]]:
    """Rows of a JSON list, a JSONL file or a parquet file."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    if path.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ModuleNotFoundError:
            raise DatasetError("reading parquet needs pyarrow: pip install 'video-str-reward[trainer]'") from None

        yield from pq.read_table(path).to_pylist()
        return
    data = path.read_bytes()
    if data.lstrip()[:1] == b"[":
        rows = orjson.loads(data)
        yield from rows
        return
    for number, line in enumerate(data.splitlines(), start=1):
        if line.strip():
            try:
                yield orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise DatasetError(f"{path}:{number}: not JSON: {exc}") from None


def split_options(options: Iterable[str]) -> tuple[list[str], list[str]]:
    """(letters, texts) of options written `A. text`; a text without a letter keeps its position."""
    letters, texts = [], []
    for i, option in enumerate(options):
        m = _OPTION.match(str(option))
        letters.append(m.group(1) if m else OPTION_LETTERS[i])
        texts.append(m.group(2).strip() if m else str(option).strip())
    return letters, texts


def _number(text: Any) -> float:
    value = float(str(text).strip().rstrip("."))
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"not a finite number: {text!r}")
    return value


def record_of(row_id: str, question: Any, task: str, answer: str, options: Any, video: Any) -> Record:
    """A record from a source row's parts: a multiple-choice answer names one of the options by its
    letter (`B`, `(B)`, `B.`), a numerical answer is a finite number; else ValueError naming the answer."""
    question = str(question).strip()
    if task == "multiple_choice":
        letters, texts = split_options(options or [])
        letter = answer.strip("() .").upper()[:1]
        if not texts or letter not in letters:
            raise ValueError(f"answer {answer!r} names none of the options {letters}")
        reference = {"task_type": task, "answer": OPTION_LETTERS[letters.index(letter)], "options": texts}
        return Record(id=row_id, question=question, options=texts, video=video, reference=reference)
    return Record(id=row_id, question=question, video=video, reference={"task_type": task, "answer": _number(answer)})


def _add(report: ImportReport, row_id: str, row: dict[str, Any], question_key: str, task: str, answer: str,
         video: Any) -> None:
    try:
        report.records.append(record_of(row_id, row[question_key], task, answer, row.get("options"), video))
    except (ValueError, KeyError, TypeError, ValidationError) as exc:
        report.unreadable.append((row_id, str(exc).splitlines()[0]))


def import_video_r1(rows: Iterable[dict[str, Any]]) -> ImportReport:
    report = ImportReport()
    for n, row in enumerate(rows):
        row_id = f"video-r1-{row.get('problem_id', n)}"
        kind = str(row.get("problem_type", "")).strip().lower()
        if kind not in ("multiple choice", "numerical"):
            report.left_out[f"problem_type {kind or 'missing'!r} has no scorer"] += 1
            continue
        found = _ANSWER.search(str(row.get("solution", "")))
        answer = (found.group(1) if found else str(row.get("solution", ""))).strip()
        task = "multiple_choice" if kind == "multiple choice" else "numerical"
        _add(report, row_id, row, "problem", task, answer, row.get("path"))
    return report


def import_vsi_bench(rows: Iterable[dict[str, Any]], video_root: str = "") -> ImportReport:
    report = ImportReport()
    for n, row in enumerate(rows):
        row_id = f"vsi-bench-{row.get('id', n)}"
        kind = str(row.get("question_type", ""))
        if kind.startswith(VSI_MULTIPLE_CHOICE):
            task = "multiple_choice"
        elif kind.startswith(VSI_NUMERICAL):
            task = "numerical"
        else:
            report.left_out[f"question_type {kind or 'missing'!r} has no scorer"] += 1
            continue
        video = str(Path(video_root) / str(row.get("dataset", "")) / f"{row.get('scene_name', '')}.mp4")
        _add(report, row_id, row, "question", task, str(row.get("ground_truth", "")).strip(), video)
    return report
