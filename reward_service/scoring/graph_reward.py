"""Graph rewards (reward-spec section 3): node term by optimal assignment, rotation-invariant edge term.

Everything that depends on the reference alone (its frames stacked, its categories as ids, the node
pairs and apex triples with their distances and angles) is computed once per reference graph and kept
on it as a `_Plan`. Per completion the predicted nodes are stacked into arrays the same way and one call
of compiled code (graph_kernels.graph_terms) does the assignments per frame and category, then the edge
term.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import accumulate, chain, repeat
from types import ModuleType
from typing import Any

import numpy as np

from reward_service.graph import RelationGraph, category
from reward_service.scoring.graph_arrays import Relations, StackedNodes


@dataclass
class _Plan:
    """What the node and edge terms need from a reference graph, all frames stacked."""

    frames: list[int]
    dim: int
    scale: float
    nodes: StackedNodes
    category_ids: dict[str, int]
    relations: Relations
    # Predicted node name -> its category's id (-1: a category the reference does not have), filled as
    # predictions are scored (`_category_ids`).
    name_ids: dict[str, int] = field(default_factory=dict)


def _stack(graph: RelationGraph, dim: int, categories: Iterable[int]) -> StackedNodes:
    """The graph's nodes stacked (frames in order), from its columns and `categories`, the category id of
    each node. A node whose dimension is not `dim` is no candidate for matching and is placed at the
    origin. Two numpy arrays in all, each filled by np.fromiter from iterators over the columns: per
    array, numpy's set-up costs more than converting a few dozen numbers, and lists in between cost 10%
    more."""
    positions, sizes = graph.positions, graph.sizes
    n, f = len(positions), len(sizes)
    coords: Iterable[float]
    candidates: Iterable[int]
    if sum(map(len, positions)) == n * dim:  # every node has dimension `dim` (each has 2 or 3)
        coords, candidates = chain.from_iterable(positions), repeat(1, n)
    else:
        zero = (0.0,) * dim
        coords = chain.from_iterable(pos if len(pos) == dim else zero for pos in positions)
        candidates = (int(len(pos) == dim) for pos in positions)
    offsets = accumulate(sizes[:-1], initial=0)
    ints = np.fromiter(chain(categories, candidates, offsets, sizes), np.int64, 2 * (n + f))
    return StackedNodes(np.fromiter(coords, np.float64, n * dim).reshape(n, dim), ints[:n], ints[n:2 * n],
                        ints[2 * n:2 * n + f], ints[2 * n + f:])


_kernels: ModuleType | None = None


def _graph_kernels() -> ModuleType:
    """graph_kernels, imported with numba on the first graph, not with the package, and then kept: a
    `from package import module` statement in a function runs importlib's Python code at every call
    (0.6 us)."""
    global _kernels
    if _kernels is None:
        from reward_service.scoring import graph_kernels

        _kernels = graph_kernels
    return _kernels


def _build_plan(graph: RelationGraph, scale: float | None, signed: bool) -> _Plan:
    dim = len(graph.positions[0])  # one dimension throughout (a valid reference)
    categories = list(map(category, graph.names))
    category_ids: dict[str, int] = {}
    for cat in categories:
        category_ids.setdefault(cat, len(category_ids))
    nodes = _stack(graph, dim, map(category_ids.__getitem__, categories))
    if scale is None:
        scale = float(np.linalg.norm(nodes.pos.max(axis=0) - nodes.pos.min(axis=0)))
    if scale < 1e-6:
        scale = 1.0
    return _Plan(frames=list(graph.numbers), dim=dim, scale=scale, nodes=nodes, category_ids=category_ids,
                 relations=_graph_kernels().reference_relations(nodes, signed))


def _plan(graph: RelationGraph, scale: float | None, angle_mode: str) -> _Plan:
    key = f"plan:{angle_mode}"
    plan = graph.cache.get(key)
    if plan is None:
        plan = _build_plan(graph, scale, angle_mode == "signed_planar")
        graph.cache[key] = plan
    return plan


_MAX_NAMES = 256  # predicted names a plan remembers (13 at the median, 27 at most on the standard mix)


def _category_ids(plan: _Plan, names: list[str]) -> list[int]:
    """The reference's category id of each predicted node name, -1 for a category it does not have. A
    group's rollouts name the same objects frame after frame, so the ids are remembered by name on the
    plan: a dictionary look-up a node instead of the category's (cached) derivation and its id. Safe
    for threads scoring against one reference at once: each dictionary operation is atomic, and a name
    missing (or forgotten meanwhile) is derived again."""
    known = plan.name_ids
    try:
        return list(map(known.__getitem__, names))
    except KeyError:
        if len(known) > _MAX_NAMES:
            known.clear()
        ids = plan.category_ids
        out = []
        for name in names:
            cat_id = known.get(name)
            if cat_id is None:
                cat_id = known[name] = ids.get(category(name), -1)
            out.append(cat_id)
        return out


def _pick_frame(pred_frames: list[int], f: int, ref_static: bool) -> int:
    """Index in `pred_frames` of the frame nearest to f (ties: the lower number); the lowest (the first)
    for a static reference."""
    if ref_static or len(pred_frames) == 1:
        return 0
    i = bisect.bisect_left(pred_frames, f)
    if i == 0:
        return 0
    if i == len(pred_frames):
        return i - 1
    return i if pred_frames[i] - f < f - pred_frames[i - 1] else i - 1


@dataclass
class GraphScore:
    node: float
    edge: float | None
    correspondence: list[dict[str, Any]]


def score_graph(
    pred: RelationGraph,
    ref: RelationGraph,
    scale: float | None,
    angle_mode: str = "unsigned",
    node_weighting: str = "union",
    explain: bool = False,
) -> GraphScore:
    plan = _plan(ref, scale, angle_mode)
    pred_frames = pred.numbers
    predicted = _stack(pred, plan.dim, _category_ids(plan, pred.names))
    frame_map = np.array([_pick_frame(pred_frames, f, not ref.dynamic) for f in plan.frames], dtype=np.int64)
    terms = _graph_kernels().graph_terms(plan.nodes, len(plan.category_ids), plan.relations, predicted,
                                         frame_map, plan.scale, node_weighting == "gt", ref.edge_defined,
                                         angle_mode == "signed_planar")
    edge = terms.edge if ref.edge_defined else None
    correspondence: list[dict[str, Any]] = []
    if explain:
        ref_frames = [k for k, size in enumerate(ref.sizes) for _ in range(size)]  # index of each row's frame
        for r, (q, distance, s) in enumerate(terms.matches.tolist()):
            if q < 0:
                continue
            k = ref_frames[r]
            correspondence.append({
                "frame": plan.frames[k], "pred_frame": pred_frames[int(frame_map[k])],
                "reference": ref.names[r], "prediction": pred.names[int(q)], "distance": distance, "score": s,
            })
    return GraphScore(terms.node, edge, correspondence)
