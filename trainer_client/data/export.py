"""The project's dataset in the layouts other trainers read.

* verl: a parquet file with `data_source`, `prompt` (chat messages: the instructions as the system
  turn, the question as the user turn, with `<video>` where the video goes), `videos` (when the
  records have one), `reward_model: {style: "rule", ground_truth: <reference as JSON text>}` and
  `extra_info: {index, id, split}`. The ground truth is JSON text because references differ in shape
  (a letter, a number, a box, a track) and a parquet column has one type; the adapter reads either.
* OpenRLHF: JSONL with `input` (the whole text prompt) and `label` (the reference as JSON text, as
  `/get_reward` takes it): `--data.input_key input --data.label_key label`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import orjson

from trainer_client.data import DatasetError, Record, output_path
from trainer_client.data.prompts import INSTRUCTIONS, render_prompt
from trainer_client.data.prompts import chat_messages as _chat


def verl_rows(records: Sequence[Record], *, data_source: str = "video_str",
              split: str = "train") -> list[dict[str, Any]]:
    rows = []
    kinds = {type(r.video) for r in records if r.video is not None}
    if len(kinds) > 1:
        raise DatasetError("verl's parquet needs one kind of video for all records: files or frame lists, not both")
    for i, record in enumerate(records):
        user = _chat(record, with_video=False)[1]["content"][0]["text"]
        row: dict[str, Any] = {
            "data_source": data_source,
            "prompt": [{"role": "system", "content": INSTRUCTIONS},
                       {"role": "user", "content": ("<video>\n" if record.video is not None else "") + user}],
            "ability": "spatio-temporal",
            "reward_model": {"style": "rule", "ground_truth": orjson.dumps(record.reference).decode()},
            "extra_info": {"index": i, "id": record.id, "split": split},
        }
        if kinds:
            row["videos"] = [record.video] if record.video is not None else []
        rows.append(row)
    return rows


def write_verl(records: Sequence[Record], path: str | os.PathLike[str], **kwargs: Any) -> int:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ModuleNotFoundError:
        raise DatasetError("writing parquet needs pyarrow: pip install 'video-str-reward[trainer]'") from None

    rows = verl_rows(records, **kwargs)
    pq.write_table(pa.Table.from_pylist(rows), str(output_path(path)))
    return len(rows)


def write_openrlhf(records: Sequence[Record], path: str | os.PathLike[str]) -> int:
    with output_path(path).open("wb") as f:
        for record in records:
            line = {"id": record.id, "input": render_prompt(record), "label": orjson.dumps(record.reference).decode()}
            f.write(orjson.dumps(line) + b"\n")
    return len(records)
