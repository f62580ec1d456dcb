"""The project's dataset format, and reading it without losing a line.

One JSON object per line:

    {"id": "scene12-q3", "question": "Which object is closest to the lamp?",
     "options": ["table", "sofa", "chair"],                 # optional: multiple choice texts
     "video": "videos/scene12.mp4",                          # optional: a file, a folder of frames, or a list
     "reference": {"task_type": "multiple_choice", "answer": "B", "options": [...], "graph": {...}}}

`reference` is exactly api.md's (reward-spec's) reference and is validated by the scoring core on load,
so a dataset bug is found before training, not as a 422 in the middle of it. Every bad line is
reported with its line number; `load_records(..., skip_bad=True)` skips them (and says how many),
otherwise the first one stops the load.

Modules: `prompts` (the one prompt template), `synthetic` (text tasks from the project's generator),
`importers` (Video-R1, VSI-Bench), `export` (verl parquet, OpenRLHF JSONL), `cli` (`grpo-data`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from reward_service.scoring import validate_reference

__all__ = ["DatasetError", "LoadReport", "Record", "load_records", "write_records"]

log = logging.getLogger("trainer_client.data")


class DatasetError(ValueError):
    """A dataset line (or file) that cannot be used; the message names the file and line."""


class Record(BaseModel):
    """One training or evaluation prompt."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=128)
    question: str = Field(min_length=1)
    options: list[str] | None = Field(default=None, min_length=1, max_length=10)
    video: str | list[str] | None = None
    reference: dict[str, Any]

    @field_validator("reference")
    @classmethod
    def _valid_reference(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            validate_reference(value)
        except ValueError as exc:  # the scoring core's reference error: a ValueError naming the field
            raise ValueError(str(exc)) from None
        return value

    @property
    def task_type(self) -> str:
        return str(self.reference["task_type"])

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(exclude_none=True))


@dataclass
class LoadReport:
    """What a load kept and what it skipped (line number, reason): nothing is dropped unsaid."""

    path: str
    records: list[Record] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'line'}: {e['msg'].removeprefix('Value error, ')}"
                         for e in exc.errors(include_url=False))
    return str(exc)


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as f:
        for number, line in enumerate(f, start=1):
            if line.strip():
                yield number, line


def load_records(path: str | os.PathLike[str], *, skip_bad: bool = False) -> LoadReport:
    """Read and validate a dataset JSONL. A bad line (not JSON, not a record, invalid reference, an id
    seen before) raises `DatasetError` naming it, or with `skip_bad` is skipped and listed."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such dataset file")
    report = LoadReport(str(path))
    seen: dict[str, int] = {}
    for number, line in _lines(path):
        try:
            record = Record.model_validate(orjson.loads(line))
            if record.id in seen:
                raise DatasetError(f"id {record.id!r} already on line {seen[record.id]}")
        except (orjson.JSONDecodeError, ValidationError, DatasetError) as exc:
            reason = _reason(exc)
            if not skip_bad:
                raise DatasetError(f"{path}:{number}: {reason} (pass skip_bad to skip bad lines)") from None
            report.skipped.append((number, reason))
            continue
        seen[record.id] = number
        report.records.append(record)
    if report.skipped:
        log.warning("%s: skipped %d bad lines of %d (first: line %d: %s)", path, len(report.skipped),
                    len(report.skipped) + len(report.records), *report.skipped[0])
    if not report.records:
        raise DatasetError(f"{path}: no usable record")
    return report


def output_path(path: str | os.PathLike[str]) -> Path:
    """`path` for a file about to be written, its missing parent folders made (as `grpo-train` makes its
    output_dir): `grpo-data synth data/train.jsonl` on a fresh checkout must not fail on `data/`."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def write_records(path: str | os.PathLike[str], records: Iterable[Record | dict[str, Any]]) -> int:
    """Write records as JSONL (validating dicts on the way); returns the count."""
    n = 0
    with output_path(path).open("wb") as f:
        for record in records:
            if not isinstance(record, Record):
                record = Record.model_validate(record)
            f.write(record.to_json() + b"\n")
            n += 1
    return n
