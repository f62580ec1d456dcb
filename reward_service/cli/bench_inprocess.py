"""`reward-service bench --mode inprocess`: scoring throughput on design.md's standard mix.

Figures are per core: the bench scores in this one process, one item after another, and divides by the
CPU time the process used (`time.process_time`), so other load on the machine does not leak into the
figures. The reference cache is cleared first, so each GRPO group pays for validating its reference
once, as in the service.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Sequence
from typing import Any, cast

from reward_service.graph import GraphError, RelationGraph
from reward_service.parsing.completion import parse_completion
from reward_service.scoring import score
from reward_service.scoring.graph_reward import score_graph
from reward_service.scoring.reference import _validate as validate_reference_uncached
from reward_service.scoring.reference import _validate_cached


def measure_inprocess(items: Sequence[dict[str, Any]]) -> float:
    """Items per second scoring `items` in this process (one core)."""
    if not items:
        return 0.0
    _validate_cached.cache_clear()
    start = time.process_time()
    for item in items:
        score(item["completion"], item["reference"], num_tokens=item.get("num_tokens"))
    return len(items) / (time.process_time() - start)


def worst_case_ms(items: Sequence[dict[str, Any]], repeats: int = 5) -> float:
    """The slowest item's median time over `repeats` runs, in ms (reference cache cleared each run)."""
    worst = 0.0
    for item in items:
        times = []
        for _ in range(repeats):
            _validate_cached.cache_clear()
            start = time.process_time()
            score(item["completion"], item["reference"], num_tokens=item.get("num_tokens"))
            times.append(time.process_time() - start)
        worst = max(worst, statistics.median(times))
    return worst * 1000


def _mix_graph_pairs(
    mix: Sequence[dict[str, Any]], per_size: int
) -> dict[int, list[tuple[dict[str, Any], RelationGraph, RelationGraph]]]:
    """(reference, its graph, predicted graph) of single-frame mix items with 4 to 8 reference nodes."""
    from reward_service.graph import parse_graph
    from reward_service.scoring import validate_reference

    pairs: dict[int, list[tuple[dict[str, Any], RelationGraph, RelationGraph]]] = {n: [] for n in range(4, 9)}
    for item in mix:
        ref = validate_reference(item["reference"]).relation_graph
        if ref is None or len(ref.frames) != 1 or item["quality"] not in ("close", "noisy"):
            continue
        n = len(next(iter(ref.frames.values())))
        if n not in pairs or len(pairs[n]) >= per_size:
            continue
        try:
            pred = parse_graph(parse_completion(item["completion"]).graphs)
        except GraphError:
            continue
        if len(pred.frames) == 1:
            pairs[n].append((item["reference"], ref, pred))
    return pairs


def ged_ratio(mix: Sequence[dict[str, Any]], per_size: int = 3, timeout_s: float = 10.0) -> dict[str, float]:
    """networkx graph edit distance time over our graph scoring time, on the mix's own single-frame
    graphs of 4 to 8 nodes (ours includes validating the reference and building its plan).

    GED gets `timeout_s` per pair; a pair that hits it counts with that time, so the ratio is then a
    lower bound (`ged_timeouts` says how many did).
    """
    import networkx as nx

    def node_cost(a: dict[str, Any], b: dict[str, Any]) -> float:
        return float(a["category"] != b["category"]) + math.dist(a["pos"], b["pos"])

    def edge_cost(a: dict[str, Any], b: dict[str, Any]) -> float:
        return float(abs(a["distance"] - b["distance"]))

    totals = {"ours": 0.0, "ged": 0.0, "ours8": 0.0, "ged8": 0.0}
    timeouts = 0
    for n, pairs in _mix_graph_pairs(mix, per_size).items():
        for ref_json, ref_graph, pred in pairs:
            repeats = 50
            start = time.perf_counter()
            for _ in range(repeats):
                fresh = validate_reference_uncached(ref_json)  # validating it and planning it count too
                score_graph(pred, cast(RelationGraph, fresh.relation_graph), fresh.graph_scale)
            ours = (time.perf_counter() - start) / repeats
            g_ref = ref_graph.to_networkx(next(iter(ref_graph.frames)))
            g_pred = pred.to_networkx(next(iter(pred.frames)))
            start = time.perf_counter()
            nx.graph_edit_distance(g_pred, g_ref, node_subst_cost=node_cost, edge_subst_cost=edge_cost,
                                   timeout=timeout_s)
            ged = time.perf_counter() - start
            timeouts += ged >= timeout_s * 0.99
            totals["ours"] += ours
            totals["ged"] += ged
            if n == 8:
                totals["ours8"] += ours
                totals["ged8"] += ged
    return {
        "ged_baseline_ratio": totals["ged"] / totals["ours"] if totals["ours"] else math.nan,
        "ged_ratio_8_nodes": totals["ged8"] / totals["ours8"] if totals["ours8"] else math.nan,
        "ged_timeouts": float(timeouts),
    }


def run_inprocess(items: int = 4000, seed: int = 0, ged_pairs: int = 3) -> dict[str, float]:
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
    figures.update(ged_ratio(mix, per_size=ged_pairs))
    return figures
