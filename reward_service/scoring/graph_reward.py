"""Graph rewards (reward-spec section 3): node term by optimal assignment, rotation-invariant edge term.

Everything that depends on the reference alone (its frames stacked, its categories as ids, the node
pairs and apex triples with their distances and angles) is computed once per reference graph and kept
on it as a `_Plan`. Per completion the predicted nodes are stacked into arrays the same way and two
compiled kernels (graph_kernels) do the assignments per frame and category, then the edge term.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any

import numpy as np

from reward_service.graph import Node, RelationGraph
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


def _stack(graph: RelationGraph, dim: int, category_ids: dict[str, int]) -> tuple[StackedNodes, np.ndarray, list[Node]]:
    """The graph's nodes stacked in one pass (frames in order), whether each has dimension `dim` (a
    candidate for matching; the others are placed at the origin), and the nodes themselves. A category
    not in `category_ids` gets id -1."""
    zero = (0.0,) * dim
    nodes: list[Node] = []
    coords: list[float] = []
    cats: list[int] = []
    candidates: list[bool] = []
    sizes: list[int] = []
    offsets: list[int] = []
    for frame in graph.frames.values():
        offsets.append(len(nodes))
        sizes.append(len(frame))
        nodes += frame
        for n in frame:
            candidate = len(n.pos) == dim
            coords += n.pos if candidate else zero
            cats.append(category_ids.get(n.category, -1))
            candidates.append(candidate)
    stacked = StackedNodes(np.array(coords, dtype=np.float64).reshape(-1, dim), np.array(cats, dtype=np.int64),
                           np.array(offsets, dtype=np.int64), np.array(sizes, dtype=np.int64))
    return stacked, np.array(candidates, dtype=np.bool_), nodes


def _build_plan(graph: RelationGraph, scale: float | None, signed: bool) -> _Plan:
    from reward_service.scoring import graph_kernels  # numba: imported on first graph, not with the package

    first = next(node for frame in graph.frames.values() for node in frame)
    dim = len(first.pos)  # one dimension throughout (a valid reference)
    category_ids: dict[str, int] = {}
    for frame in graph.frames.values():
        for node in frame:
            category_ids.setdefault(node.category, len(category_ids))
    nodes, _, _ = _stack(graph, dim, category_ids)
    if scale is None:
        scale = float(np.linalg.norm(nodes.pos.max(axis=0) - nodes.pos.min(axis=0)))
    if scale < 1e-6:
        scale = 1.0
    return _Plan(frames=list(graph.frames), dim=dim, scale=scale, nodes=nodes, category_ids=category_ids,
                 relations=graph_kernels.reference_relations(nodes, signed))


def _plan(graph: RelationGraph, scale: float | None, angle_mode: str) -> _Plan:
    key = f"plan:{angle_mode}"
    plan = graph.cache.get(key)
    if plan is None:
        plan = _build_plan(graph, scale, angle_mode == "signed_planar")
        graph.cache[key] = plan
    return plan


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
    from reward_service.scoring import graph_kernels

    plan = _plan(ref, scale, angle_mode)
    pred_frames = list(pred.frames)
    predicted, candidate, nodes = _stack(pred, plan.dim, plan.category_ids)
    frame_map = np.array([_pick_frame(pred_frames, f, not ref.dynamic) for f in plan.frames], dtype=np.int64)
    matching = graph_kernels.match_frames(plan.nodes, len(plan.category_ids), predicted, candidate, frame_map,
                                          plan.scale, node_weighting == "gt")
    edge = None
    if ref.edge_defined:
        edge = graph_kernels.edge_term(matching.pos, matching.matched, plan.relations, angle_mode == "signed_planar")
    correspondence: list[dict[str, Any]] = []
    if explain:
        ref_nodes = [(f, n) for f in plan.frames for n in ref.frames[f]]
        for r in np.flatnonzero(matching.matched).tolist():
            f, ref_node = ref_nodes[r]
            q = int(matching.row[r])
            correspondence.append({
                "frame": f, "pred_frame": pred_frames[int(frame_map[plan.frames.index(f)])],
                "reference": ref_node.name, "prediction": nodes[q].name,
                "distance": float(matching.distance[r]), "score": float(matching.score[r]),
            })
    return GraphScore(float(matching.node), edge, correspondence)
