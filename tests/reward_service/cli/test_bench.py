"""The in-process benchmark runs end to end and prints its figures as one JSON object."""

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

KEYS = {"inprocess_items_per_s_per_core", "answer_only_items_per_s_per_core", "graph_items_per_s_per_core",
        "worst_case_item_ms", "ged_baseline_ratio", "ged_ratio_8_nodes", "ged_timeouts",
        "answer_only_floor_items_per_s", "graph_floor_items_per_s", "answer_only_share_of_floor",
        "graph_share_of_floor"}


def test_inprocess_bench_prints_figures():
    proc = subprocess.run(
        [sys.executable, "-m", "reward_service.cli", "bench", "--mode", "inprocess", "--items", "400",
         "--ged-pairs", "1", "--json"],
        capture_output=True, text=True, check=True, timeout=600,
    )
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(figures) >= KEYS
    for key in KEYS - {"ged_timeouts"}:
        assert figures[key] > 0, key
    assert figures["items"] == 400
