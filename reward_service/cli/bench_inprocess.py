"""`reward-service bench --mode inprocess`: scoring throughput on design.md's standard mix.

Figures are per core: the bench scores in this one process, one item after another, and divides by the
CPU time the process used (`time.process_time`), so other load on the machine does not leak into the
figures. The reference cache is cleared first, so each GRPO group pays for validating its reference
once, as in the service.

The floor, measured in the same run on the same items: what merely finding the answer block costs
(str.find of `<answer>` and of the `</answer>` after it: compiled, linear), and for graph items that
plus finding the graph block and `json.loads` of its text; completions over max_completion_chars are
skipped there as the scorer skips them. `answer_only_share_of_floor` and `graph_share_of_floor` are
the scorer's rate over the floor's (design.md's bars: 0.05 and 0.12): how much more than the least
possible work a full reward costs.
"""

from __future__ import annotations

import contextlib
import json
import math
import statistics
import time
from collections.abc import Sequence
from typing import Any, cast

from reward_service.errors import GraphError
from reward_service.graph import RelationGraph
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


def _find_block(text: str, open_tag: str, close_tag: str) -> str | None:
    start = text.find(open_tag)
    if start < 0:
        return None
    end = text.find(close_tag, start + len(open_tag))
    return None if end < 0 else text[start + len(open_tag):end]


def measure_floor(items: Sequence[dict[str, Any]], graphs: bool, repeats: int = 3) -> float:
    """Items per CPU-second of the floor (module docstring): the best of `repeats` passes."""
    from reward_service.scoring import DEFAULT_REWARD_CONFIG

    limit = DEFAULT_REWARD_CONFIG.max_completion_chars
    texts = [item["completion"] for item in items]
    best = math.inf
    for _ in range(repeats):
        start = time.process_time()
        for text in texts:
            if len(text) > limit:
                continue
            _find_block(text, "<answer>", "</answer>")
            if graphs:
                graph = _find_block(text, "<graph>", "</graph>")
                if graph is not None:
                    with contextlib.suppress(ValueError):
                        json.loads(graph)
        best = min(best, time.process_time() - start)
    return len(texts) / max(best, 1e-9)


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
    mix: Sequence[tuple[dict[str, Any], str]], per_size: int
) -> dict[int, list[tuple[dict[str, Any], RelationGraph, RelationGraph]]]:
    """(reference, its graph, predicted graph) of single-frame close or noisy mix items (`labelled_mix`)
    with 4 to 8 reference nodes."""
    from reward_service.graph import parse_graph
    from reward_service.scoring import validate_reference

    pairs: dict[int, list[tuple[dict[str, Any], RelationGraph, RelationGraph]]] = {n: [] for n in range(4, 9)}
    for item, grade in mix:
        ref = validate_reference(item["reference"]).relation_graph
        if ref is None or len(ref.frames) != 1 or grade not in ("close", "noisy"):
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


def ged_ratio(mix: Sequence[tuple[dict[str, Any], str]], per_size: int = 3,
              timeout_s: float = 10.0) -> dict[str, float]:
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


def run_inprocess(items: int = 4000, seed: int = 0, ged_pairs: int = 3, rounds: int = 3) -> dict[str, float]:
    from reward_service.synth.mixes import labelled_mix, worst_case_items

    labelled = labelled_mix(items, seed=seed)
    mix = [item for item, _ in labelled]
    answer_only = [it for it in mix if "graph" not in it["reference"]]
    with_graph = [it for it in mix if "graph" in it["reference"]]
    measure_inprocess(mix[: min(200, len(mix))])  # warm-up: imports, numpy paths
    # Each rate is the best of its rounds, the rounds alternating with the floor's: on a shared machine
    # noise only ever makes a round slower, and alternating keeps both sides under the same conditions.
    rates: dict[str, list[float]] = {"all": [], "answer": [], "graph": [], "answer_floor": [], "graph_floor": []}
    for _ in range(rounds):
        rates["all"].append(measure_inprocess(mix))
        rates["answer"].append(measure_inprocess(answer_only))
        rates["answer_floor"].append(measure_floor(answer_only, graphs=False))
        rates["graph"].append(measure_inprocess(with_graph))
        rates["graph_floor"].append(measure_floor(with_graph, graphs=True))
    best = {key: max(values) for key, values in rates.items()}
    figures = {
        "items": float(len(mix)),
        "inprocess_items_per_s_per_core": best["all"],
        "answer_only_items_per_s_per_core": best["answer"],
        "graph_items_per_s_per_core": best["graph"],
        "answer_only_floor_items_per_s": best["answer_floor"],
        "graph_floor_items_per_s": best["graph_floor"],
        "answer_only_share_of_floor": best["answer"] / best["answer_floor"],
        "graph_share_of_floor": best["graph"] / best["graph_floor"],
        "worst_case_item_ms": worst_case_ms(worst_case_items()),
    }
    figures.update(ged_ratio(labelled, per_size=ged_pairs))
    return figures
