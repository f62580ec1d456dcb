"""Graph rewards (reward-spec section 3): node term by optimal assignment, rotation-invariant edge term.

Everything that depends on the reference alone (its frames stacked into one array, the node pairs and
apex triples, their distances and angles) is computed once per reference graph and kept on it as a
`_Plan`. Per completion the work is then one assignment per (frame, category) and a handful of numpy
operations over all frames at once, so the cost does not grow with Python loops over triples.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from reward_service.graph import Node, RelationGraph

EPS = 1e-9


@lru_cache(maxsize=32)
def _triples(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(apex i, j, k) for every apex and pair j < k of the other nodes."""
    i, j, k = np.meshgrid(np.arange(n), np.arange(n), np.arange(n), indexing="ij")
    keep = (j < k) & (i != j) & (i != k)
    return i[keep], j[keep], k[keep]


def _angles(u: np.ndarray, v: np.ndarray, signed: bool) -> np.ndarray:
    """Angle between rows of u and v: atan2(|u x v|, u.v) in [0, pi], or signed in the xy plane."""
    if signed:
        cross = u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0]
        return np.arctan2(cross, u[:, 0] * v[:, 0] + u[:, 1] * v[:, 1])
    if u.shape[1] == 2:
        cross = np.abs(u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0])
    else:
        cross = np.linalg.norm(np.cross(u, v), axis=1)
    return np.arctan2(cross, np.einsum("ij,ij->i", u, v))


def _edge_lengths(w: np.ndarray, signed: bool) -> np.ndarray:
    return np.linalg.norm(w[:, :2] if signed else w, axis=1)


@dataclass
class _Plan:
    frames: list[int]
    offsets: list[int]  # start of each frame's nodes in `pos`
    pos: np.ndarray  # (N, d) all reference nodes of all frames
    dim: int
    scale: float
    categories: list[dict[str, list[int]]]  # per frame: category -> local rows, reference order
    pair_i: np.ndarray
    pair_j: np.ndarray
    pair_frame: np.ndarray
    pair_d: np.ndarray
    tri_i: np.ndarray
    tri_j: np.ndarray
    tri_k: np.ndarray
    tri_frame: np.ndarray
    tri_angle: np.ndarray
    n_pairs: np.ndarray  # per frame
    n_angles: np.ndarray  # per frame
    edge_defined: bool


def _build_plan(graph: RelationGraph, scale: float | None, signed: bool) -> _Plan:
    frames = list(graph.frames)
    arrays = [graph.positions(f) for f in frames]
    offsets = list(np.cumsum([0] + [len(a) for a in arrays[:-1]]))
    pos = np.concatenate(arrays)
    if scale is None:
        scale = float(np.linalg.norm(pos.max(axis=0) - pos.min(axis=0)))
    if scale < 1e-6:
        scale = 1.0
    pairs: list[list[np.ndarray]] = [[], [], []]
    tris: list[list[np.ndarray]] = [[], [], [], []]
    categories = []
    for idx, (f, arr, off) in enumerate(zip(frames, arrays, offsets, strict=True)):
        cats: dict[str, list[int]] = {}
        for row, node in enumerate(graph.frames[f]):
            cats.setdefault(node.category, []).append(row)
        categories.append(cats)
        n = len(arr)
        pi, pj = np.triu_indices(n, 1)
        keep = np.linalg.norm(arr[pi] - arr[pj], axis=1) >= EPS
        for acc, part in zip(pairs, (pi[keep] + off, pj[keep] + off, np.full(int(keep.sum()), idx)), strict=True):
            acc.append(part)
        ti, tj, tk = _triples(n)
        ok = (_edge_lengths(arr[tj] - arr[ti], signed) >= EPS) & (_edge_lengths(arr[tk] - arr[ti], signed) >= EPS)
        tri_parts = (ti[ok] + off, tj[ok] + off, tk[ok] + off, np.full(int(ok.sum()), idx))
        for acc, part in zip(tris, tri_parts, strict=True):
            acc.append(part)
    pair_i, pair_j, pair_frame = (np.concatenate(p) for p in pairs)
    tri_i, tri_j, tri_k, tri_frame = (np.concatenate(t) for t in tris)
    n_frames = len(frames)
    n_pairs = np.bincount(pair_frame, minlength=n_frames)
    return _Plan(
        frames=frames,
        offsets=[int(o) for o in offsets],
        pos=pos,
        dim=pos.shape[1],
        scale=scale,
        categories=categories,
        pair_i=pair_i,
        pair_j=pair_j,
        pair_frame=pair_frame,
        pair_d=np.linalg.norm(pos[pair_i] - pos[pair_j], axis=1),
        tri_i=tri_i,
        tri_j=tri_j,
        tri_k=tri_k,
        tri_frame=tri_frame,
        tri_angle=_angles(pos[tri_j] - pos[tri_i], pos[tri_k] - pos[tri_i], signed),
        n_pairs=n_pairs,
        n_angles=np.bincount(tri_frame, minlength=n_frames),
        edge_defined=bool(n_pairs.any()),
    )


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
    matched_pos = np.zeros_like(plan.pos)
    matched = np.zeros(len(plan.pos), dtype=bool)
    node_terms = []
    correspondence: list[dict[str, Any]] = []
    pred_frames = list(pred.frames)
    for idx, f in enumerate(plan.frames):
        pf = _pick_frame(pred_frames, f, not ref.dynamic)
        nodes = pred.frames[pf]
        off = plan.offsets[idx]
        term, pairs = _match_frame(plan, idx, nodes, node_weighting)
        node_terms.append(term)
        for row, col, dist, s in pairs:
            matched[off + row] = True
            matched_pos[off + row] = nodes[col].pos
            if explain:
                ref_name = ref.frames[f][row].name
                correspondence.append(
                    {"frame": f, "pred_frame": pf, "reference": ref_name, "prediction": nodes[col].name,
                     "distance": dist, "score": s}
                )
    edge = _edge_term(plan, matched_pos, matched, angle_mode == "signed_planar")
    return GraphScore(float(np.mean(node_terms)), edge, correspondence)


def _match_frame(
    plan: _Plan, idx: int, nodes: list[Node], node_weighting: str
) -> tuple[float, list[tuple[int, int, float, float]]]:
    """Node term of one frame and its (ref row, pred index, distance, score) pairs."""
    by_cat: dict[str, list[int]] = {}
    for col, node in enumerate(nodes):
        by_cat.setdefault(node.category, []).append(col)
    ref_cats = plan.categories[idx]
    off = plan.offsets[idx]
    pairs: list[tuple[int, int, float, float]] = []
    union_den = 0
    gt_num = 0.0
    for cat, rows in ref_cats.items():
        cols_all = by_cat.get(cat, [])
        cols = [c for c in cols_all if len(nodes[c].pos) == plan.dim]
        size = max(len(cols_all), len(rows))
        union_den += size
        if not cols:
            continue
        g = plan.pos[[off + r for r in rows]]
        p = np.array([nodes[c].pos for c in cols])
        cost = np.sqrt(((g[:, None, :] - p[None, :, :]) ** 2).sum(axis=2))
        r_idx, c_idx = linear_sum_assignment(cost)
        cat_sum = 0.0
        for r, c in zip(r_idx.tolist(), c_idx.tolist(), strict=True):
            dist = float(cost[r, c])
            s = max(0.0, 1.0 - dist / plan.scale)
            cat_sum += s
            pairs.append((rows[r], cols[c], dist, s))
        gt_num += len(rows) * cat_sum / size
    total = sum(p[3] for p in pairs)
    if node_weighting == "gt":
        return gt_num / sum(len(r) for r in ref_cats.values()), pairs
    union_den += sum(len(cols) for cat, cols in by_cat.items() if cat not in ref_cats)
    return total / union_den, pairs


def _edge_term(plan: _Plan, pos: np.ndarray, matched: np.ndarray, signed: bool) -> float | None:
    if not plan.edge_defined:
        return None
    n_frames = len(plan.frames)
    both = matched[plan.pair_i] & matched[plan.pair_j]
    pred_d = np.linalg.norm(pos[plan.pair_i] - pos[plan.pair_j], axis=1)
    s_dist = np.where(both, np.maximum(0.0, 1.0 - np.abs(pred_d - plan.pair_d) / plan.pair_d), 0.0)
    mean_dist = np.bincount(plan.pair_frame, weights=s_dist, minlength=n_frames)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_dist = mean_dist / plan.n_pairs
    u = pos[plan.tri_j] - pos[plan.tri_i]
    v = pos[plan.tri_k] - pos[plan.tri_i]
    ok = (
        matched[plan.tri_i] & matched[plan.tri_j] & matched[plan.tri_k]
        & (_edge_lengths(u, signed) >= EPS) & (_edge_lengths(v, signed) >= EPS)
    )
    s_ang = np.where(ok, (1.0 + np.cos(_angles(u, v, signed) - plan.tri_angle)) / 2.0, 0.0)
    sum_ang = np.bincount(plan.tri_frame, weights=s_ang, minlength=n_frames)
    terms = []
    for f in range(n_frames):
        if plan.n_angles[f]:
            terms.append(0.5 * mean_dist[f] + 0.5 * sum_ang[f] / plan.n_angles[f])
        elif plan.n_pairs[f]:
            terms.append(mean_dist[f])
    return float(np.mean(terms))
