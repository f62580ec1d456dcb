"""The dataset format: validation with line numbers, skip or stop; the importers on fixture files in
each source format; synthetic tasks and their split; the prompt template; the exports."""

from __future__ import annotations

import json

import orjson
import pytest

from reward_service.scoring import score
from trainer_client.data import DatasetError, Record, load_records, write_records
from trainer_client.data.cli import main as grpo_data
from trainer_client.data.prompts import ANSWER_FORMS, INSTRUCTIONS, chat_messages, render_prompt
from trainer_client.data.synthetic import split, synthetic_records, target_completion

MC = {"task_type": "multiple_choice", "answer": "B", "options": ["left", "right"]}


def write_lines(path, lines):
    path.write_text("\n".join(json.dumps(x) if not isinstance(x, str) else x for x in lines) + "\n")
    return path


def test_bad_lines_are_named_by_number_and_either_stop_or_are_skipped(tmp_path):
    path = write_lines(tmp_path / "d.jsonl", [
        {"id": "a", "question": "q?", "reference": MC},
        "{not json",
        {"id": "b", "question": "q?", "reference": {"task_type": "multiple_choice", "answer": "Z"}},
        {"id": "a", "question": "again", "reference": MC},
        {"id": "c", "question": "q?", "reference": MC, "colour": "red"},
        {"id": "d", "question": "q?", "video": "v.mp4", "reference": {"task_type": "numerical", "answer": 3}},
    ])
    with pytest.raises(DatasetError, match=r"d\.jsonl:2: "):
        load_records(path)
    report = load_records(path, skip_bad=True)
    assert [r.id for r in report.records] == ["a", "d"]
    assert [n for n, _ in report.skipped] == [2, 3, 4, 5]
    reasons = dict(report.skipped)
    assert "answer" in reasons[3] and "already on line 1" in reasons[4] and "colour" in reasons[5]


def test_an_empty_or_missing_file_is_an_error(tmp_path):
    with pytest.raises(DatasetError, match="no such dataset file"):
        load_records(tmp_path / "none.jsonl")
    with pytest.raises(DatasetError, match="no usable record"):
        load_records(write_lines(tmp_path / "e.jsonl", ["{}"]), skip_bad=True)


def test_video_r1_import_maps_types_counts_the_rest(tmp_path):
    rows = [
        {"problem_id": 1, "problem": "Which way does the car turn?", "data_type": "video",
         "problem_type": "multiple choice", "options": ["A. left", "B. right", "C. straight"],
         "solution": "<answer>B</answer>", "path": "./videos/1.mp4", "data_source": "LLaVA-Video-178K"},
        {"problem_id": 2, "problem": "How many chairs?", "data_type": "video", "problem_type": "numerical",
         "options": [], "solution": "<answer>4</answer>", "path": "./videos/2.mp4", "data_source": "x"},
        {"problem_id": 3, "problem": "Read the sign.", "problem_type": "OCR", "solution": "<answer>STOP</answer>"},
        {"problem_id": 4, "problem": "Describe.", "problem_type": "free-form", "solution": "<answer>a</answer>"},
        {"problem_id": 5, "problem": "Pick one.", "problem_type": "multiple choice", "options": ["A. x", "B. y"],
         "solution": "<answer>E</answer>", "path": "p"},
    ]
    source = tmp_path / "video_r1.json"
    source.write_text(json.dumps(rows))
    out = tmp_path / "out.jsonl"
    assert grpo_data(["import", "--from", "video-r1", str(source), str(out)]) == 0
    records = load_records(out).records
    assert [r.id for r in records] == ["video-r1-1", "video-r1-2"]
    assert records[0].options == ["left", "right", "straight"] and records[0].reference["answer"] == "B"
    assert records[0].video == "./videos/1.mp4"
    assert records[1].reference == {"task_type": "numerical", "answer": 4.0}
    from trainer_client.data.importers import import_video_r1

    report = import_video_r1(rows)
    assert report.left_out == {"problem_type 'ocr' has no scorer": 1, "problem_type 'free-form' has no scorer": 1}
    assert report.unreadable[0][0] == "video-r1-5"


def test_vsi_bench_import_from_jsonl_and_parquet(tmp_path):
    pytest.importorskip("pyarrow")
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [
        {"id": 10, "dataset": "scannet", "scene_name": "scene0001", "question_type": "object_rel_direction_hard",
         "question": "If I stand by the bed facing the door, is the lamp to my left or right?",
         "options": ["A. left", "B. right"], "ground_truth": "A"},
        {"id": 11, "dataset": "arkitscenes", "scene_name": "42", "question_type": "object_abs_distance",
         "question": "How far is the sofa from the tv (in meters)?", "options": None, "ground_truth": "2.3"},
        {"id": 12, "dataset": "scannet", "scene_name": "s", "question_type": "object_counting",
         "question": "How many chairs?", "options": None, "ground_truth": "5"},
        {"id": 13, "dataset": "scannet", "scene_name": "s", "question_type": "route_planning",
         "question": "Route?", "options": ["A. turn left", "B. turn right", "C. go back"], "ground_truth": "C"},
        {"id": 14, "dataset": "scannet", "scene_name": "s", "question_type": "something_new",
         "question": "?", "options": None, "ground_truth": "x"},
    ]
    jsonl = write_lines(tmp_path / "vsi.jsonl", rows)
    parquet = tmp_path / "vsi.parquet"
    pq.write_table(pa.Table.from_pylist(rows), parquet)
    for source in (jsonl, parquet):
        out = tmp_path / f"{source.suffix[1:]}.out.jsonl"
        assert grpo_data(["import", "--from", "vsi-bench", str(source), str(out), "--video-root", "/data/vsi"]) == 0
        records = load_records(out).records
        assert [r.task_type for r in records] == ["multiple_choice", "numerical", "numerical", "multiple_choice"]
        assert records[0].video == "/data/vsi/scannet/scene0001.mp4"
        assert records[1].reference["answer"] == 2.3 and records[3].reference["answer"] == "C"


def test_synthetic_split_is_disjoint_and_its_targets_score_full_marks():
    train, held_out = split(300, 64, seed=3)
    assert len(train) == 300 and 0 < len(held_out) <= 64
    assert not {r.question for r in train} & {r.question for r in held_out}
    assert split(300, 64, seed=3)[0] == train  # seeded
    for record in held_out[:20]:
        result = score(target_completion(record), record.reference)
        assert result.reward == pytest.approx(3.0), (record.question, result.diagnostics)


def test_synthetic_numerical_and_moving_scenes():
    records = synthetic_records(20, 1, task_types=["numerical"], frames=(2, 3))
    assert all(r.task_type == "numerical" and "frames" in r.reference["graph"] for r in records)
    assert all(score(target_completion(r), r.reference).components["graph_node"] == 1.0 for r in records)
    with pytest.raises(ValueError, match="no 'box_iou'"):
        synthetic_records(1, 0, task_types=["box_iou"])


def test_prompt_template_in_one_place():
    record = Record(id="x", question="Which object is closest to the lamp?", options=["table", "sofa"],
                    video="v.mp4", reference={**MC, "options": ["table", "sofa"]})
    text = render_prompt(record)
    assert text.startswith(INSTRUCTIONS) and "Options: A. table B. sofa" in text
    assert text.endswith(ANSWER_FORMS["multiple_choice"]) and "<graph>" in text
    assert render_prompt(record, instructions=False) == "Which object is closest to the lamp?\nOptions: A. table B. sofa"
    messages = chat_messages(record)
    assert messages[0]["role"] == "system" and messages[1]["content"][0] == {"type": "video"}


def test_exports_for_verl_and_openrlhf(tmp_path):
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    records = synthetic_records(5, 0)
    source = tmp_path / "d.jsonl"
    write_records(source, records)
    assert grpo_data(["export", "--to", "verl", str(source), str(tmp_path / "d.parquet")]) == 0
    rows = pq.read_table(tmp_path / "d.parquet").to_pylist()
    assert rows[0]["data_source"] == "video_str" and rows[0]["reward_model"]["style"] == "rule"
    assert json.loads(rows[0]["reward_model"]["ground_truth"]) == records[0].reference
    assert rows[0]["prompt"][0]["role"] == "system" and records[0].question in rows[0]["prompt"][1]["content"]
    assert rows[4]["extra_info"] == {"index": 4, "id": records[4].id, "split": "train"}
    assert grpo_data(["export", "--to", "openrlhf", str(source), str(tmp_path / "o.jsonl")]) == 0
    line = orjson.loads((tmp_path / "o.jsonl").read_bytes().splitlines()[0])
    assert json.loads(line["label"]) == records[0].reference and line["input"] == render_prompt(records[0])


def test_check_command_reports_every_bad_line(tmp_path, capsys):
    path = write_lines(tmp_path / "d.jsonl", [{"id": "a", "question": "q", "reference": MC}, "[]", "{"])
    assert grpo_data(["check", str(path), "--skip-bad"]) == 1
    err = capsys.readouterr().err
    assert "line 2" in err and "line 3" in err
    assert grpo_data(["check", str(path)]) == 1  # stops at the first, with its line number
    assert "d.jsonl:2" in capsys.readouterr().err


def test_outputs_go_into_new_folders_and_an_unwritable_one_is_a_clear_error(tmp_path, capsys):
    # `grpo-data synth data/train.jsonl` on a fresh checkout: the folder is made, as grpo-train makes its
    # output_dir. A path that cannot be written is the command's error line, not a traceback.
    pytest.importorskip("pyarrow")
    out = tmp_path / "data" / "train.jsonl"
    assert grpo_data(["synth", str(out), "--n", "6", "--held-out", str(tmp_path / "eval" / "e.jsonl"),
                      "--n-eval", "2"]) == 0
    assert len(load_records(out).records) == 6 and len(load_records(tmp_path / "eval" / "e.jsonl").records) == 2
    assert grpo_data(["export", "--to", "verl", str(out), str(tmp_path / "verl" / "d.parquet")]) == 0
    assert grpo_data(["export", "--to", "openrlhf", str(out), str(tmp_path / "openrlhf" / "o.jsonl")]) == 0
    assert (tmp_path / "verl" / "d.parquet").is_file() and (tmp_path / "openrlhf" / "o.jsonl").is_file()
    capsys.readouterr()
    assert grpo_data(["synth", str(tmp_path / "data"), "--n", "2"]) == 1  # a folder, not a file
    assert capsys.readouterr().err.startswith("grpo-data: ")
