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

from reward_service.graph import RelationGraph


@dataclass
class _Plan:
    """What the node and edge terms need from a reference graph, all frames stacked."""

    frames: list[int]
    dim: int
    scale: float
    pos: np.ndarray  # (N, d): every reference node of every frame
    offsets: np.ndarray  # start of each frame's nodes in `pos`
    sizes: np.ndarray  # nodes per frame
    category_ids: dict[str, int]
    node_category: np.ndarray  # (N,) category id of each node
    relations: tuple[np.ndarray, ...]  # graph_kernels.reference_relations(...)


def _layout(graph: RelationGraph, frames: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Node count of each of `frames`, and where its nodes start when all frames' nodes are stacked."""
    sizes = np.array([len(graph.frames[f]) for f in frames], dtype=np.int64)
    return sizes, np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64)


def _build_plan(graph: RelationGraph, scale: float | None, signed: bool) -> _Plan:
    from reward_service.scoring import graph_kernels  # numba: imported on first graph, not with the package

    frames = list(graph.frames)
    nodes = [node for f in frames for node in graph.frames[f]]
    sizes, offsets = _layout(graph, frames)
    pos = np.array([n.pos for n in nodes], dtype=np.float64)  # one dimension throughout (a valid reference)
    if scale is None:
        scale = float(np.linalg.norm(pos.max(axis=0) - pos.min(axis=0)))
    if scale < 1e-6:
        scale = 1.0
    category_ids: dict[str, int] = {}
    for node in nodes:
        category_ids.setdefault(node.category, len(category_ids))
    relations = graph_kernels.reference_relations(pos, offsets, sizes, signed)
    return _Plan(
        frames=frames, dim=pos.shape[1], scale=scale, pos=pos, offsets=offsets, sizes=sizes,
        category_ids=category_ids, node_category=np.array([category_ids[n.category] for n in nodes], np.int64),
        relations=relations,
    )


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
    # Predicted nodes of all frames stacked, as arrays: category id (-1 when the reference has no such
    # category) and, for those with the reference's dimension (the candidates), their position.
    nodes = [node for f in pred_frames for node in pred.frames[f]]
    ids = plan.category_ids
    dim = plan.dim
    zero = (0.0,) * dim
    pred_sizes, pred_offsets = _layout(pred, pred_frames)
    frame_map = np.array([_pick_frame(pred_frames, f, not ref.dynamic) for f in plan.frames], dtype=np.int64)
    node, pos, matched, match_idx, match_dist, match_s = graph_kernels.match_frames(
        plan.pos, plan.node_category, len(ids), plan.offsets, plan.sizes,
        np.array([n.pos if len(n.pos) == dim else zero for n in nodes], dtype=np.float64).reshape(-1, dim),
        np.array([ids.get(n.category, -1) for n in nodes], dtype=np.int64),
        np.array([len(n.pos) == dim for n in nodes], dtype=np.bool_),
        pred_offsets, pred_sizes,
        frame_map, plan.scale, node_weighting == "gt",
    )
    edge = None
    if ref.edge_defined:
        edge = graph_kernels.edge_term(pos, matched, plan.relations, angle_mode == "signed_planar")
    correspondence: list[dict[str, Any]] = []
    if explain:
        ref_nodes = [(f, n) for f in plan.frames for n in ref.frames[f]]
        for r in np.flatnonzero(matched).tolist():
            f, ref_node = ref_nodes[r]
            q = int(match_idx[r])
            correspondence.append({
                "frame": f, "pred_frame": pred_frames[int(frame_map[plan.frames.index(f)])],
                "reference": ref_node.name, "prediction": nodes[q].name,
                "distance": float(match_dist[r]), "score": float(match_s[r]),
            })
    return GraphScore(float(node), edge, correspondence)
