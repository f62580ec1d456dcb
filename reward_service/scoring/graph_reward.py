"""Graph rewards (reward-spec section 3): node term by optimal assignment, rotation-invariant edge term.

Everything that depends on the reference alone (its frames stacked, its categories, the node pairs and
apex triples with their distances and angles) is computed once per reference graph and kept on it as a
`_Plan`. Per completion the work is then one distance matrix per frame, one assignment per category
with several instances, and one pass of the compiled edge kernel over all frames.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from reward_service.graph import Node, RelationGraph


@dataclass
class _Plan:
    """What the node and edge terms need from a reference graph, all frames stacked."""

    frames: list[int]
    dim: int
    scale: float
    offsets: list[int]  # start of each frame's nodes among all nodes
    categories: list[dict[str, list[int]]]  # per frame: category -> rows, reference order
    frame_arrays: list[np.ndarray]  # per frame: (n, d) positions, reference order
    relations: tuple[np.ndarray, ...]  # edge_kernels.reference_relations(...)
    edge_defined: bool  # some frame has a pair of distinct nodes


def _build_plan(graph: RelationGraph, scale: float | None, signed: bool) -> _Plan:
    frames = list(graph.frames)
    arrays = [graph.positions(f) for f in frames]
    sizes = np.array([len(a) for a in arrays], dtype=np.int64)
    offsets = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64)
    pos = np.ascontiguousarray(np.concatenate(arrays))
    if scale is None:
        scale = float(np.linalg.norm(pos.max(axis=0) - pos.min(axis=0)))
    if scale < 1e-6:
        scale = 1.0
    from reward_service.scoring import edge_kernels  # numba: imported on first graph, not with the package

    relations = edge_kernels.reference_relations(pos, offsets, sizes, signed)
    return _Plan(
        frames=frames, dim=pos.shape[1], scale=scale, offsets=offsets.tolist(),
        categories=[_categories(graph.frames[f]) for f in frames], frame_arrays=arrays,
        relations=relations, edge_defined=len(relations[0]) > 0,
    )


def _categories(nodes: list[Node]) -> dict[str, list[int]]:
    cats: dict[str, list[int]] = {}
    for row, node in enumerate(nodes):
        cats.setdefault(node.category, []).append(row)
    return cats


def _plan(graph: RelationGraph, scale: float | None, angle_mode: str) -> _Plan:
    key = f"plan:{angle_mode}"
    plan = graph.cache.get(key)
    if plan is None:
        plan = _build_plan(graph, scale, angle_mode == "signed_planar")
        graph.cache[key] = plan
    return plan


def edge_defined(graph: RelationGraph, scale: float | None) -> bool:
    """Whether R_edge exists for this reference (some frame has two distinct nodes)."""
    return _plan(graph, scale, "unsigned").edge_defined


def _pick_frame(pred_frames: list[int], f: int, ref_static: bool) -> int:
    """The predicted frame nearest to f (ties: the lower number); the lowest for a static reference."""
    if ref_static or len(pred_frames) == 1:
        return pred_frames[0]
    i = bisect.bisect_left(pred_frames, f)
    if i == 0:
        return pred_frames[0]
    if i == len(pred_frames):
        return pred_frames[-1]
    lower, upper = pred_frames[i - 1], pred_frames[i]
    return upper if upper - f < f - lower else lower


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
    n_nodes = plan.offsets[-1] + len(plan.frame_arrays[-1])
    matched_pos: list[tuple[float, ...]] = [(0.0,) * plan.dim] * n_nodes
    matched = [False] * n_nodes
    node_terms = []
    correspondence: list[dict[str, Any]] = []
    pred_frames = list(pred.frames)
    grouped: dict[int, _PredFrame] = {}  # a static prediction serves every reference frame
    for idx, f in enumerate(plan.frames):
        pf = _pick_frame(pred_frames, f, not ref.dynamic)
        if pf not in grouped:
            grouped[pf] = _group(pred.frames[pf], plan.dim)
        nodes = grouped[pf].nodes
        off = plan.offsets[idx]
        term, pairs = _match_frame(plan, idx, grouped[pf], node_weighting)
        node_terms.append(term)
        for row, col, dist, s in pairs:
            matched[off + row] = True
            matched_pos[off + row] = nodes[col].pos
            if explain:
                correspondence.append({
                    "frame": f, "pred_frame": pf, "reference": ref.frames[f][row].name,
                    "prediction": nodes[col].name, "distance": dist, "score": s,
                })
    edge = None
    if plan.edge_defined:
        from reward_service.scoring import edge_kernels

        edge = edge_kernels.edge_term(
            np.array(matched_pos), np.array(matched), plan.relations, angle_mode == "signed_planar"
        )
    return GraphScore(sum(node_terms) / len(node_terms), edge, correspondence)


def _distances(g: np.ndarray, p: np.ndarray) -> list[list[float]]:
    """The spec's `sqrt(sum((g - p) ** 2))` in float64 for every reference row and predicted column.

    One numpy expression per frame; the lists it returns are then indexed from Python per category,
    which is much cheaper than a numpy call per category.
    """
    result: list[list[float]] = np.sqrt(((g[:, None, :] - p[None, :, :]) ** 2).sum(axis=2)).tolist()
    return result


def _assign(dist: list[list[float]], rows: list[int], cols: list[int]) -> list[tuple[int, int, float]]:
    """(row, col, distance) of the spec's assignment: what scipy returns for the rows x cols block.

    With one row or one column that is the first minimum in order, which is what scipy returns
    (a test checks it), and a Python scan is several times cheaper than a scipy call.
    """
    if len(rows) == 1 or len(cols) == 1:
        best = (math.inf, rows[0], cols[0])
        for r in rows:
            row = dist[r]
            for c in cols:
                if row[c] < best[0]:  # strict: the first of equal minima wins
                    best = (row[c], r, c)
        return [(best[1], best[2], best[0])]
    block = np.array([[dist[r][c] for c in cols] for r in rows])
    r_idx, c_idx = linear_sum_assignment(block)
    return [(rows[r], cols[c], float(block[r, c])) for r, c in zip(r_idx.tolist(), c_idx.tolist(), strict=True)]


@dataclass
class _PredFrame:
    """A predicted frame grouped by category. Nodes with the reference's dimension are candidates: they
    are the columns of `positions`, in completion order; the others only count in |P_c|."""

    nodes: list[Node]
    counts: dict[str, int]  # valid nodes per category
    candidates: dict[str, list[int]]  # category -> columns of `positions`
    node_of_column: list[int]
    positions: np.ndarray  # (columns, d)


def _group(nodes: list[Node], dim: int) -> _PredFrame:
    counts: dict[str, int] = {}
    candidates: dict[str, list[int]] = {}
    node_of_column: list[int] = []
    for i, node in enumerate(nodes):
        counts[node.category] = counts.get(node.category, 0) + 1
        if len(node.pos) == dim:
            candidates.setdefault(node.category, []).append(len(node_of_column))
            node_of_column.append(i)
    positions = np.array([nodes[i].pos for i in node_of_column], dtype=np.float64).reshape(-1, dim)
    return _PredFrame(nodes, counts, candidates, node_of_column, positions)


def _match_frame(
    plan: _Plan, idx: int, pred: _PredFrame, node_weighting: str
) -> tuple[float, list[tuple[int, int, float, float]]]:
    """Node term of one frame and its (ref row, pred node index, distance, score) pairs."""
    ref_cats = plan.categories[idx]
    n_ref = len(plan.frame_arrays[idx])
    dist = _distances(plan.frame_arrays[idx], pred.positions) if len(pred.node_of_column) else []
    pairs: list[tuple[int, int, float, float]] = []
    union_den = 0
    gt_num = 0.0
    scale = plan.scale
    for cat, rows in ref_cats.items():
        size = max(pred.counts.get(cat, 0), len(rows))
        union_den += size
        cols = pred.candidates.get(cat)
        if not cols:
            continue
        cat_sum = 0.0
        for r, c, d in _assign(dist, rows, cols):
            s = 1.0 - d / scale
            s = s if s > 0.0 else 0.0
            cat_sum += s
            pairs.append((r, pred.node_of_column[c], d, s))
        gt_num += len(rows) * cat_sum / size
    if node_weighting == "gt":
        return gt_num / n_ref, pairs
    union_den += sum(n for cat, n in pred.counts.items() if cat not in ref_cats)
    return sum(p[3] for p in pairs) / union_den, pairs
