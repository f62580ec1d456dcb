"""`reward-service bench --mode inprocess`: scoring throughput on design.md's standard mix.

Figures are per core: the bench scores in this one process, one item after another. The reference
cache is cleared first, so each GRPO group pays for validating its reference once, as in service.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from reward_service.graph import RelationGraph, read_graph
from reward_service.scoring import RewardConfig, score
from reward_service.scoring.graph_reward import score_graph
from reward_service.scoring.reference import _validate_cached


def measure_inprocess(items: Sequence[dict[str, Any]], config: RewardConfig | None = None) -> float:
    """Items per second scoring `items` in this process (one core)."""
    if not items:
        return 0.0
    _validate_cached.cache_clear()
    start = time.perf_counter()
    for item in items:
        score(item["completion"], item["reference"], config, item.get("num_tokens"))
    return len(items) / (time.perf_counter() - start)


def worst_case_ms(items: Sequence[dict[str, Any]], repeats: int = 5) -> float:
    """The slowest item's median time over `repeats` runs, in ms (reference cache cleared each run)."""
    worst = 0.0
    for item in items:
        times = []
        for _ in range(repeats):
            _validate_cached.cache_clear()
            start = time.perf_counter()
            score(item["completion"], item["reference"], num_tokens=item.get("num_tokens"))
            times.append(time.perf_counter() - start)
        worst = max(worst, statistics.median(times))
    return worst * 1000


def _small_graph_pairs(seed: int) -> list[tuple[dict[str, list[float]], dict[str, list[float]]]]:
    rng = np.random.default_rng(seed)
    pairs = []
    for n in range(4, 9):
        ref = {f"obj{i}_{j}": rng.uniform(-5, 5, 3).round(2).tolist() for j, i in enumerate(rng.integers(0, 3, n))}
        pred = {k: (np.array(v) + rng.normal(0, 0.3, 3)).round(2).tolist() for k, v in ref.items()}
        pairs.append((ref, pred))
    return pairs


def ged_ratio(seed: int = 0, timeout_s: float = 2.0) -> dict[str, float]:
    """networkx graph edit distance time over our graph scoring time, on graphs of 4 to 8 nodes.

    GED is given `timeout_s` per pair; a pair that hits it counts with that time, so the ratio is then
    a lower bound (`ged_timeouts` says how many did).
    """
    import networkx as nx

    ours_total, ged_total, timeouts = 0.0, 0.0, 0
    for ref_json, pred_json in _small_graph_pairs(seed):
        repeats = 200
        start = time.perf_counter()
        for _ in range(repeats):
            ref: RelationGraph = read_graph(ref_json, strict=True)
            score_graph(read_graph(pred_json), ref, None)
        ours_total += (time.perf_counter() - start) / repeats
        g_ref = read_graph(ref_json).to_networkx(0)
        g_pred = read_graph(pred_json).to_networkx(0)
        start = time.perf_counter()
        nx.graph_edit_distance(
            g_pred, g_ref,
            node_subst_cost=lambda a, b: float(a["category"] != b["category"]) + math.dist(a["pos"], b["pos"]),
            edge_subst_cost=lambda a, b: abs(a["distance"] - b["distance"]),
            timeout=timeout_s,
        )
        elapsed = time.perf_counter() - start
        timeouts += elapsed >= timeout_s * 0.99
        ged_total += elapsed
    return {"ged_baseline_ratio": ged_total / ours_total, "ged_timeouts": float(timeouts)}


def run_inprocess(items: int = 4000, seed: int = 0) -> dict[str, float]:
    from reward_service.synth import standard_mix, worst_case_items

    mix = standard_mix(items, seed=seed)
    answer_only = [it for it in mix if "graph" not in it["reference"]]
    with_graph = [it for it in mix if "graph" in it["reference"]]
    measure_inprocess(mix[: min(200, len(mix))])  # warm-up: imports, numpy paths
    figures = {
        "items": float(len(mix)),
        "inprocess_items_per_s_per_core": measure_inprocess(mix),
        "answer_only_items_per_s_per_core": measure_inprocess(answer_only),
        "graph_items_per_s_per_core": measure_inprocess(with_graph),
        "worst_case_item_ms": worst_case_ms(worst_case_items()),
    }
    figures.update(ged_ratio(seed))
    return figures
