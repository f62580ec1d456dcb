"""Graph rewards (reward-spec section 3): node term by optimal assignment, rotation-invariant edge term.

Everything that depends on the reference alone (its frames stacked into one array, the node pairs and
apex triples, their distances and angles) is computed once per reference graph and kept on it as a
`_Plan`. Per completion the work is then one assignment per (frame, category) and a handful of numpy
operations over all frames at once, so the cost does not grow with Python loops over triples.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from reward_service.graph import Node, RelationGraph

EPS = 1e-9


@lru_cache(maxsize=32)
def _frame_template(n: int) -> dict[str, np.ndarray]:
    """Index templates for a frame of n nodes.

    Directed edges a -> b (a != b) are numbered a * (n - 1) + (b if b < a else b - 1). A pair i < j uses
    edge i -> j; an angle at apex i over j < k uses edges i -> j and i -> k.
    """
    a, b = np.nonzero(~np.eye(n, dtype=bool))

    def edge(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return x * (n - 1) + np.where(y < x, y, y - 1)

    pi, pj = np.triu_indices(n, 1)
    i, j, k = np.meshgrid(np.arange(n), np.arange(n), np.arange(n), indexing="ij")
    keep = (j < k) & (i != j) & (i != k)
    i, j, k = i[keep], j[keep], k[keep]
    return {"from": a, "to": b, "pair": edge(pi, pj), "tri_u": edge(i, j), "tri_v": edge(i, k)}


Vectors = list[np.ndarray]  # one 1-D array per coordinate
# Angles are computed in slices of this many: a frame of 24 nodes has 6,072 angles, and temporaries
# over ~128 KiB are mmap'ed fresh by malloc on every numpy call, which made large graphs 5x slower.
_CHUNK = 8192


def _chunks(n: int) -> list[slice]:
    return [slice(start, min(start + _CHUNK, n)) for start in range(0, n, _CHUNK)] or [slice(0, 0)]


def _lengths(w: Vectors, planar: bool) -> np.ndarray:
    """Norms of the vectors; of their projection on the first two axes when `planar`."""
    if planar or len(w) == 2:
        return np.sqrt(w[0] * w[0] + w[1] * w[1])
    return np.sqrt(w[0] * w[0] + w[1] * w[1] + w[2] * w[2])


def _cos_sin(u: Vectors, v: Vectors, lu: np.ndarray, lv: np.ndarray, signed: bool) -> np.ndarray:
    """cos a and sin a of the angle a between u and v, as rows of a (2, M) array; lu, lv their norms.

    a is the spec's atan2(|u x v|, u . v) in [0, pi], or with `signed` the signed angle in the plane of
    the first two axes. s_ang = (1 + cos(a' - a)) / 2 is then computed as
    (1 + cos a' cos a + sin a' sin a) / 2: the same number up to rounding (1e-16), without the atan2
    and cos calls that dominated the worst-case item (16 frames x 24 nodes: 97,152 angles).
    """
    dot = u[0] * v[0] + u[1] * v[1]
    cross = u[0] * v[1] - u[1] * v[0]
    if not signed:
        if len(u) == 3:
            dot += u[2] * v[2]
            cx = u[1] * v[2] - u[2] * v[1]
            cy = u[2] * v[0] - u[0] * v[2]
            cross = np.sqrt(cx * cx + cy * cy + cross * cross)
        else:
            cross = np.abs(cross)
    with np.errstate(invalid="ignore", divide="ignore"):  # zero-length edges are masked by the caller
        norm = lu * lv
        return np.stack((dot / norm, cross / norm))


@dataclass
class _Plan:
    """What the edge and node terms need from a reference graph, all frames stacked."""

    frames: list[int]
    offsets: list[int]  # start of each frame's nodes among all nodes
    dim: int
    scale: float
    categories: list[dict[str, list[int]]]  # per frame: category -> rows, reference order
    frame_pos: list[list[tuple[float, ...]]]  # per frame: node positions, reference order
    edge_from: np.ndarray  # directed edges a -> b within each frame, as global node indices
    edge_to: np.ndarray
    pair_edge: np.ndarray  # reference pairs i < j of length >= EPS, as edge indices
    pair_frame: np.ndarray
    pair_d: np.ndarray
    tri_u: np.ndarray  # reference angles with both edges >= EPS, as (edge i -> j, edge i -> k)
    tri_v: np.ndarray
    tri_frame: np.ndarray
    tri_cos_sin: np.ndarray  # (2, angles): cos and sin of each reference angle
    n_pairs: np.ndarray  # per frame
    n_angles: np.ndarray  # per frame
    edge_defined: bool


def _edge_vectors(coords: np.ndarray, plan: _Plan) -> Vectors:
    return [c[plan.edge_to] - c[plan.edge_from] for c in coords]


def _build_plan(graph: RelationGraph, scale: float | None, signed: bool) -> _Plan:
    frames = list(graph.frames)
    sizes = [len(graph.frames[f]) for f in frames]
    offsets = [0, *np.cumsum(sizes[:-1]).tolist()]
    pos = np.concatenate([graph.positions(f) for f in frames])
    if scale is None:
        scale = float(np.linalg.norm(pos.max(axis=0) - pos.min(axis=0)))
    if scale < 1e-6:
        scale = 1.0
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("from", "to", "pair", "pair_f", "tri_u", "tri_v", "tri_f")}
    edge_base = 0
    for idx, (n, off) in enumerate(zip(sizes, offsets, strict=True)):
        t = _frame_template(n)
        parts["from"].append(t["from"] + off)
        parts["to"].append(t["to"] + off)
        for key in ("pair", "tri_u", "tri_v"):
            parts[key].append(t[key] + edge_base)
        parts["pair_f"].append(np.full(len(t["pair"]), idx))
        parts["tri_f"].append(np.full(len(t["tri_u"]), idx))
        edge_base += n * (n - 1)
    cat = {k: np.concatenate(v).astype(np.intp) for k, v in parts.items()}
    plan = _Plan(
        frames=frames, offsets=offsets, dim=pos.shape[1], scale=scale,
        categories=[_categories(graph.frames[f]) for f in frames],
        frame_pos=[[n.pos for n in graph.frames[f]] for f in frames],
        edge_from=cat["from"], edge_to=cat["to"],
        pair_edge=cat["pair"], pair_frame=cat["pair_f"], pair_d=np.zeros(0),
        tri_u=cat["tri_u"], tri_v=cat["tri_v"], tri_frame=cat["tri_f"], tri_cos_sin=np.zeros((2, 0)),
        n_pairs=np.zeros(0), n_angles=np.zeros(0), edge_defined=False,
    )
    # Keep only the pairs and angles the reference defines (edges of length >= EPS), then their values.
    vectors = _edge_vectors(np.ascontiguousarray(pos.T), plan)
    full, planar = _lengths(vectors, False), _lengths(vectors, signed)
    keep_pair = full[plan.pair_edge] >= EPS
    keep_tri = (planar[plan.tri_u] >= EPS) & (planar[plan.tri_v] >= EPS)
    plan.pair_edge, plan.pair_frame = plan.pair_edge[keep_pair], plan.pair_frame[keep_pair]
    plan.tri_u, plan.tri_v, plan.tri_frame = plan.tri_u[keep_tri], plan.tri_v[keep_tri], plan.tri_frame[keep_tri]
    plan.pair_d = full[plan.pair_edge]
    plan.tri_cos_sin = np.empty((2, len(plan.tri_u)))
    for part in _chunks(len(plan.tri_u)):
        u_idx, v_idx = plan.tri_u[part], plan.tri_v[part]
        plan.tri_cos_sin[:, part] = _cos_sin(
            [w[u_idx] for w in vectors], [w[v_idx] for w in vectors], planar[u_idx], planar[v_idx], signed
        )
    plan.n_pairs = np.bincount(plan.pair_frame, minlength=len(frames))
    plan.n_angles = np.bincount(plan.tri_frame, minlength=len(frames))
    plan.edge_defined = bool(plan.n_pairs.any())
    return plan


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
    n_nodes = plan.offsets[-1] + len(plan.frame_pos[-1])
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
    edge = _edge_term(plan, np.array(matched_pos).T, np.array(matched), angle_mode == "signed_planar")
    return GraphScore(sum(node_terms) / len(node_terms), edge, correspondence)


def _dist(g: tuple[float, ...], p: tuple[float, ...]) -> float:
    """The spec's `sqrt(sum((g - p) ** 2))`, in the same float64 operations and order as numpy."""
    total = 0.0
    for a, b in zip(g, p, strict=True):
        total += (a - b) * (a - b)
    return math.sqrt(total)


def _assign(g: list[tuple[float, ...]], p: list[tuple[float, ...]]) -> list[tuple[int, int, float]]:
    """(row, col, distance) of the spec's assignment: scipy's for the distance matrix.

    With one row or one column the assignment is the first minimum, which is what scipy returns
    (checked in the tests); plain Python is several times faster than numpy at these sizes.
    """
    if len(g) == 1 or len(p) == 1:
        cost = [(_dist(a, b), r, c) for r, a in enumerate(g) for c, b in enumerate(p)]
        best = min(cost, key=lambda t: t[0])  # min keeps the first of equal keys
        return [(best[1], best[2], best[0])]
    if len(g) * len(p) <= 16:
        matrix = np.array([[_dist(a, b) for b in p] for a in g])
    else:  # the same float64 operations, in the same order, vectorised
        matrix = np.sqrt(((np.array(g)[:, None, :] - np.array(p)[None, :, :]) ** 2).sum(axis=2))
    rows, cols = linear_sum_assignment(matrix)
    return [(r, c, float(matrix[r, c])) for r, c in zip(rows.tolist(), cols.tolist(), strict=True)]


@dataclass
class _PredFrame:
    """A predicted frame grouped by category: how many nodes each has, and which can be matched."""

    nodes: list[Node]
    counts: dict[str, int]  # all valid nodes of the category (they count in |P_c|)
    candidates: dict[str, list[int]]  # those with the reference's dimension, in completion order


def _group(nodes: list[Node], dim: int) -> _PredFrame:
    counts: dict[str, int] = {}
    candidates: dict[str, list[int]] = {}
    for col, node in enumerate(nodes):
        counts[node.category] = counts.get(node.category, 0) + 1
        if len(node.pos) == dim:
            candidates.setdefault(node.category, []).append(col)
    return _PredFrame(nodes, counts, candidates)


def _match_frame(
    plan: _Plan, idx: int, pred: _PredFrame, node_weighting: str
) -> tuple[float, list[tuple[int, int, float, float]]]:
    """Node term of one frame and its (ref row, pred index, distance, score) pairs."""
    ref_cats = plan.categories[idx]
    ref_pos = plan.frame_pos[idx]
    nodes = pred.nodes
    pairs: list[tuple[int, int, float, float]] = []
    union_den = 0
    gt_num = 0.0
    for cat, rows in ref_cats.items():
        size = max(pred.counts.get(cat, 0), len(rows))
        union_den += size
        cols = pred.candidates.get(cat)
        if not cols:
            continue
        cat_sum = 0.0
        for r, c, dist in _assign([ref_pos[r] for r in rows], [nodes[c].pos for c in cols]):
            s = max(0.0, 1.0 - dist / plan.scale)
            cat_sum += s
            pairs.append((rows[r], cols[c], dist, s))
        gt_num += len(rows) * cat_sum / size
    if node_weighting == "gt":
        return gt_num / len(ref_pos), pairs
    union_den += sum(n for cat, n in pred.counts.items() if cat not in ref_cats)
    return sum(p[3] for p in pairs) / union_den, pairs


def _edge_term(plan: _Plan, coords: np.ndarray, matched: np.ndarray, signed: bool) -> float | None:
    """Mean over frames of 0.5 mean(s_dist) + 0.5 mean(s_ang), or mean(s_dist) alone without angles.

    `coords` is (d, N): one row per coordinate of the matched predictions; gathering from 1-D rows is
    several times cheaper than gathering (N, d) rows, and these arrays are small, so numpy's per-call
    overhead is what this function is written to keep down.
    """
    if not plan.edge_defined:
        return None
    n_frames = len(plan.frames)
    coords = np.ascontiguousarray(coords)
    vectors = _edge_vectors(coords, plan)
    both = matched[plan.edge_from] & matched[plan.edge_to]
    full = _lengths(vectors, False)
    planar = _lengths(vectors, True) if signed else full
    usable = both & (planar >= EPS)
    pred_d = full[plan.pair_edge]
    s_dist = np.where(both[plan.pair_edge], np.maximum(0.0, 1.0 - np.abs(pred_d - plan.pair_d) / plan.pair_d), 0.0)
    sum_dist = np.bincount(plan.pair_frame, weights=s_dist, minlength=n_frames)
    s_ang = np.empty(len(plan.tri_u))
    for part in _chunks(len(plan.tri_u)):
        u_idx, v_idx = plan.tri_u[part], plan.tri_v[part]
        cos, sin = _cos_sin([w[u_idx] for w in vectors], [w[v_idx] for w in vectors], planar[u_idx], planar[v_idx],
                            signed)
        ref_cos, ref_sin = plan.tri_cos_sin[:, part]
        s_ang[part] = np.where(usable[u_idx] & usable[v_idx], (1.0 + cos * ref_cos + sin * ref_sin) / 2.0, 0.0)
    sum_ang = np.bincount(plan.tri_frame, weights=s_ang, minlength=n_frames)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_dist = sum_dist / plan.n_pairs
        terms = np.where(plan.n_angles > 0, 0.5 * mean_dist + 0.5 * sum_ang / plan.n_angles, mean_dist)
    return float(terms[plan.n_pairs > 0].mean())
