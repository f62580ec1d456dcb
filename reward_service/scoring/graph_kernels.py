"""Compiled loops of the graph rewards (reward-spec section 3): the optimal assignment per frame and
category (node term), and distances between node pairs and angles at every apex over every pair of
other nodes, O(n^3) per frame (edge term).

Why numba rather than numpy and scipy: per item this is dozens of tiny assignments and, for the edge
term, a few hundred to 97,152 angles; as numpy and scipy calls the per-call overhead, not the
arithmetic, was most of the cost of a graph item (about 80%). These loops do the work once with no
temporaries. They are compiled on first use and cached on disk.

Assignment: `lsap` is scipy's `linear_sum_assignment` algorithm (shortest augmenting paths, Crouse
2016) step for step, so it returns what scipy returns, ties included, as the spec requires; a test
compares the two on many tie-heavy matrices.

Angles: the spec's a = atan2(|u x v|, u . v) (or the signed planar angle) enters only through
s_ang = (1 + cos(a' - a)) / 2, computed as (1 + cos a' cos a + sin a' sin a) / 2 with cos a = u^ . v^
and sin a = |u^ x v^| over unit edge vectors: the same number up to rounding (1e-16), and no atan2,
cos or per-angle square roots of lengths. Each directed edge is normalised once per frame.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numba import njit

from reward_service.graph import EDGE_EPS
from reward_service.scoring.graph_arrays import GraphTerms, Relations, StackedNodes

EPS = EDGE_EPS  # the graph model's rule, so that `RelationGraph.edge_defined` agrees with these loops


@njit(cache=True, nogil=True)
def _dist(p: np.ndarray, i: int, j: int) -> float:
    total = 0.0
    for d in range(p.shape[1]):
        diff = p[j, d] - p[i, d]
        total += diff * diff
    return math.sqrt(total)


@njit(cache=True, nogil=True)
def _unit_edges(
    pos: np.ndarray, usable: np.ndarray, offsets: np.ndarray, sizes: np.ndarray, signed: bool
) -> tuple[np.ndarray, np.ndarray]:
    """unit[i, b] = (pos[a + b] - pos[i]) / length for nodes i, a + b of the same frame (a its offset),
    and ok[i, b] when both are usable and the length (planar with `signed`) is >= EPS."""
    dim = 2 if signed else pos.shape[1]
    n_max = 0
    for n in sizes:
        n_max = max(n_max, n)
    unit = np.zeros((pos.shape[0], n_max, dim))
    ok = np.zeros((pos.shape[0], n_max), np.bool_)
    for f in range(sizes.shape[0]):
        start = offsets[f]
        for i in range(start, start + sizes[f]):
            if not usable[i]:
                continue
            for b in range(sizes[f]):
                j = start + b
                if j == i or not usable[j]:
                    continue
                total = 0.0
                for d in range(dim):
                    diff = pos[j, d] - pos[i, d]
                    total += diff * diff
                length = math.sqrt(total)
                if length >= EPS:
                    for d in range(dim):
                        unit[i, b, d] = (pos[j, d] - pos[i, d]) / length
                    ok[i, b] = True
    return unit, ok


@njit(cache=True, nogil=True)
def _cos_sin(unit: np.ndarray, i: int, bj: int, bk: int, signed: bool) -> tuple[float, float]:
    u, v = unit[i, bj], unit[i, bk]
    cross = u[0] * v[1] - u[1] * v[0]
    if u.shape[0] == 2:
        return u[0] * v[0] + u[1] * v[1], cross if signed else abs(cross)
    cx = u[1] * v[2] - u[2] * v[1]
    cy = u[2] * v[0] - u[0] * v[2]
    return u[0] * v[0] + u[1] * v[1] + u[2] * v[2], math.sqrt(cx * cx + cy * cy + cross * cross)


@njit(cache=True, nogil=True)
def _reference_relations(pos: np.ndarray, offsets: np.ndarray, sizes: np.ndarray, signed: bool) -> tuple:
    """The reference's pairs (length >= EPS) and angles (both edges >= EPS), frame by frame.

    Returns pair_i, pair_j, pair_frame, pair_d, tri (apex, j, k as an (m, 3) array of node indices
    into `pos`), tri_frame, tri_cos, tri_sin, offsets and sizes (the frames' node ranges).
    """
    unit, ok = _unit_edges(pos, np.ones(pos.shape[0], np.bool_), offsets, sizes, signed)
    max_pairs, max_tris = 0, 0
    for n in sizes:
        max_pairs += n * (n - 1) // 2
        max_tris += n * (n - 1) * (n - 2) // 2
    pair_i = np.empty(max_pairs, np.int64)
    pair_j = np.empty(max_pairs, np.int64)
    pair_frame = np.empty(max_pairs, np.int64)
    pair_d = np.empty(max_pairs)
    tri = np.empty((max_tris, 3), np.int64)
    tri_frame = np.empty(max_tris, np.int64)
    tri_cos = np.empty(max_tris)
    tri_sin = np.empty(max_tris)
    n_p, n_t = 0, 0
    for f in range(sizes.shape[0]):
        start, n = offsets[f], sizes[f]
        for i in range(start, start + n):
            for j in range(i + 1, start + n):
                d = _dist(pos, i, j)
                if d >= EPS:
                    pair_i[n_p], pair_j[n_p], pair_frame[n_p], pair_d[n_p] = i, j, f, d
                    n_p += 1
        for i in range(start, start + n):
            for bj in range(n):
                if not ok[i, bj]:
                    continue
                for bk in range(bj + 1, n):
                    if ok[i, bk]:
                        c, s = _cos_sin(unit, i, bj, bk, signed)
                        tri[n_t, 0], tri[n_t, 1], tri[n_t, 2] = i, start + bj, start + bk
                        tri_frame[n_t], tri_cos[n_t], tri_sin[n_t] = f, c, s
                        n_t += 1
    return (pair_i[:n_p].copy(), pair_j[:n_p].copy(), pair_frame[:n_p].copy(), pair_d[:n_p].copy(),
            tri[:n_t].copy(), tri_frame[:n_t].copy(), tri_cos[:n_t].copy(), tri_sin[:n_t].copy(),
            offsets, sizes)


@njit(cache=True, nogil=True)
def _edge_term(
    pos: np.ndarray, matched: np.ndarray,
    pair_i: np.ndarray, pair_j: np.ndarray, pair_frame: np.ndarray, pair_d: np.ndarray,
    tri: np.ndarray, tri_frame: np.ndarray, tri_cos: np.ndarray, tri_sin: np.ndarray,
    offsets: np.ndarray, sizes: np.ndarray, signed: bool,
) -> float:
    """R_edge: the mean over frames with a pair of 0.5 mean(s_dist) + 0.5 mean(s_ang) (mean(s_dist)
    alone in a frame without angles). `pos[i]` is the prediction matched to reference node i."""
    n_frames = sizes.shape[0]
    sum_dist = np.zeros(n_frames)
    n_dist = np.zeros(n_frames)
    for p in range(pair_i.shape[0]):
        f = pair_frame[p]
        n_dist[f] += 1.0
        i, j = pair_i[p], pair_j[p]
        if matched[i] and matched[j]:
            s = 1.0 - abs(_dist(pos, i, j) - pair_d[p]) / pair_d[p]
            if s > 0.0:
                sum_dist[f] += s
    unit, ok = _unit_edges(pos, matched, offsets, sizes, signed)
    sum_ang = np.zeros(n_frames)
    n_ang = np.zeros(n_frames)
    for t in range(tri.shape[0]):
        f = tri_frame[t]
        n_ang[f] += 1.0
        i = tri[t, 0]
        bj, bk = tri[t, 1] - offsets[f], tri[t, 2] - offsets[f]
        if ok[i, bj] and ok[i, bk]:
            c, s = _cos_sin(unit, i, bj, bk, signed)
            sum_ang[f] += (1.0 + c * tri_cos[t] + s * tri_sin[t]) / 2.0
    total, defined = 0.0, 0
    for f in range(n_frames):
        if n_dist[f] == 0.0:
            continue
        mean_dist = sum_dist[f] / n_dist[f]
        total += 0.5 * mean_dist + 0.5 * sum_ang[f] / n_ang[f] if n_ang[f] > 0.0 else mean_dist
        defined += 1
    return total / defined if defined else math.nan


@njit(cache=True, nogil=True)
def lsap(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the minimum-cost assignment, exactly as scipy's linear_sum_assignment."""
    nr, nc = cost.shape
    if nr == 1 or nc == 1:
        # One row (or column): the path search below takes the cheapest column (row), the lowest index
        # among equal costs. Most categories of a scene have one instance and the search allocates ten
        # arrays: answering these directly takes the matching from 11 to 9 us per graph item of the
        # standard mix (tests/reward_service/graph checks it against scipy, ties included).
        best = 0
        for k in range(1, cost.size):
            if cost.flat[k] < cost.flat[best]:
                best = k
        if nr == 1:
            return np.zeros(1, np.int64), np.full(1, best, np.int64)
        return np.full(1, best, np.int64), np.zeros(1, np.int64)
    transpose = nc < nr
    c = np.ascontiguousarray(cost.T) if transpose else cost
    if transpose:
        nr, nc = nc, nr
    u, v = np.zeros(nr), np.zeros(nc)
    shortest = np.empty(nc)
    path = np.full(nc, -1, np.int64)
    col4row = np.full(nr, -1, np.int64)
    row4col = np.full(nc, -1, np.int64)
    in_rows, in_cols = np.zeros(nr, np.bool_), np.zeros(nc, np.bool_)
    remaining = np.empty(nc, np.int64)
    for cur in range(nr):
        # the shortest augmenting path from row `cur`
        min_val = 0.0
        n_left = nc
        for it in range(nc):
            remaining[it] = nc - it - 1  # reversed, so a constant matrix gives the identity (as scipy)
        in_rows[:] = False
        in_cols[:] = False
        shortest[:] = np.inf
        sink, i = -1, cur
        while sink == -1:
            index, lowest = -1, np.inf
            in_rows[i] = True
            for it in range(n_left):
                j = remaining[it]
                r = min_val + c[i, j] - u[i] - v[j]
                if r < shortest[j]:
                    path[j] = i
                    shortest[j] = r
                # among equal minima, prefer a column that ends the path (scipy's tie rule)
                if shortest[j] < lowest or (shortest[j] == lowest and row4col[j] == -1):
                    lowest = shortest[j]
                    index = it
            min_val = lowest
            j = remaining[index]
            if row4col[j] == -1:
                sink = j
            else:
                i = row4col[j]
            in_cols[j] = True
            n_left -= 1
            remaining[index] = remaining[n_left]
        u[cur] += min_val
        for i2 in range(nr):
            if in_rows[i2] and i2 != cur:
                u[i2] += min_val - shortest[col4row[i2]]
        for j2 in range(nc):
            if in_cols[j2]:
                v[j2] -= min_val - shortest[j2]
        j = sink
        while True:  # augment along the path
            i2 = path[j]
            row4col[j] = i2
            col4row[i2], j = j, col4row[i2]
            if i2 == cur:
                break
    if transpose:
        order = np.argsort(col4row, kind="mergesort")
        return col4row[order], order.astype(np.int64)
    return np.arange(nr).astype(np.int64), col4row


@njit(cache=True, nogil=True)
def _match_frames(
    ref_pos: np.ndarray, ref_cat: np.ndarray, n_cats: int, ref_offsets: np.ndarray, ref_sizes: np.ndarray,
    pred_pos: np.ndarray, pred_cat: np.ndarray, pred_cand: np.ndarray, pred_offsets: np.ndarray,
    pred_sizes: np.ndarray, frame_map: np.ndarray, scale: float, gt_weighting: bool,
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Node term over the reference frames, and for each reference node its matched prediction.

    Frame f of the reference is scored against predicted frame frame_map[f]. `ref_cat` and `pred_cat`
    are category ids (a predicted category absent from the reference is -1); `pred_cand` marks the
    predicted nodes with the reference's dimension, the only ones that can be matched (all count in
    |P_c|). Returns (node term, matched_pos, matched, matched predicted index, distance, score).
    """
    n_ref, dim = ref_pos.shape
    matched_pos = np.zeros((n_ref, dim))
    matched = np.zeros(n_ref, np.bool_)
    match_idx = np.full(n_ref, -1, np.int64)
    match_dist = np.zeros(n_ref)
    match_s = np.zeros(n_ref)
    count_g = np.zeros(n_cats, np.int64)
    count_p = np.zeros(n_cats, np.int64)
    seen = np.zeros(n_cats, np.bool_)
    rows = np.empty(ref_pos.shape[0], np.int64)
    cols = np.empty(pred_pos.shape[0], np.int64)
    total = 0.0
    for f in range(ref_sizes.shape[0]):
        a0, na = ref_offsets[f], ref_sizes[f]
        g = frame_map[f]
        b0, nb = pred_offsets[g], pred_sizes[g]
        count_g[:] = 0
        count_p[:] = 0
        seen[:] = False
        for r in range(a0, a0 + na):
            count_g[ref_cat[r]] += 1
        union_den = 0.0
        for q in range(b0, b0 + nb):
            cat = pred_cat[q]
            if cat >= 0 and count_g[cat] > 0:
                count_p[cat] += 1
            else:
                union_den += 1.0  # an invented object: max(|P_c|, 0)
        sum_s, gt_num = 0.0, 0.0
        for r in range(a0, a0 + na):
            cat = ref_cat[r]
            if seen[cat]:
                continue
            seen[cat] = True
            size = max(count_p[cat], count_g[cat])
            union_den += size
            n_rows, n_cols = 0, 0
            for r2 in range(r, a0 + na):
                if ref_cat[r2] == cat:
                    rows[n_rows] = r2
                    n_rows += 1
            for q in range(b0, b0 + nb):
                if pred_cat[q] == cat and pred_cand[q]:
                    cols[n_cols] = q
                    n_cols += 1
            if n_cols == 0:
                continue
            cost = np.empty((n_rows, n_cols))
            for x in range(n_rows):
                for y in range(n_cols):
                    acc = 0.0  # the spec's sqrt(sum((g - p) ** 2)), in numpy's order
                    for d in range(dim):
                        diff = ref_pos[rows[x], d] - pred_pos[cols[y], d]
                        acc += diff * diff
                    cost[x, y] = math.sqrt(acc)
            ri, ci = lsap(cost)
            cat_sum = 0.0
            for k in range(ri.shape[0]):
                r2, q = rows[ri[k]], cols[ci[k]]
                dist = cost[ri[k], ci[k]]
                s = 1.0 - dist / scale
                if s < 0.0:
                    s = 0.0
                matched[r2] = True
                matched_pos[r2] = pred_pos[q]
                match_idx[r2], match_dist[r2], match_s[r2] = q, dist, s
                cat_sum += s
            sum_s += cat_sum
            gt_num += count_g[cat] * cat_sum / size
        total += gt_num / na if gt_weighting else sum_s / union_den
    return total / ref_sizes.shape[0], matched_pos, matched, match_idx, match_dist, match_s


@njit(cache=True, nogil=True)
def _graph_terms(
    ref_pos: np.ndarray, ref_cat: np.ndarray, n_cats: int, ref_offsets: np.ndarray, ref_sizes: np.ndarray,
    pair_i: np.ndarray, pair_j: np.ndarray, pair_frame: np.ndarray, pair_d: np.ndarray,
    tri: np.ndarray, tri_frame: np.ndarray, tri_cos: np.ndarray, tri_sin: np.ndarray,
    pred_pos: np.ndarray, pred_cat: np.ndarray, pred_cand: np.ndarray, pred_offsets: np.ndarray,
    pred_sizes: np.ndarray, frame_map: np.ndarray, scale: float, gt_weighting: bool, with_edge: bool,
    signed: bool,
) -> tuple[float, float, np.ndarray]:
    """Node term, edge term (NaN unless `with_edge`) and the matches (`GraphTerms`), in one call: each
    call of a compiled function pays for typing its arguments and boxing what it returns."""
    node, matched_pos, matched, match_idx, match_dist, match_s = _match_frames(
        ref_pos, ref_cat, n_cats, ref_offsets, ref_sizes, pred_pos, pred_cat, pred_cand, pred_offsets,
        pred_sizes, frame_map, scale, gt_weighting)
    edge = math.nan
    if with_edge:
        edge = _edge_term(matched_pos, matched, pair_i, pair_j, pair_frame, pair_d, tri, tri_frame, tri_cos,
                          tri_sin, ref_offsets, ref_sizes, signed)
    matches = np.empty((ref_pos.shape[0], 3))
    for r in range(ref_pos.shape[0]):
        matches[r, 0] = match_idx[r]
        matches[r, 1] = match_dist[r]
        matches[r, 2] = match_s[r]
    return node, edge, matches


# numba's dispatchers, as plain callables: their stub signature confuses type checkers.
_relations_kernel: Callable[..., tuple[np.ndarray, ...]] = _reference_relations
_terms_kernel: Callable[..., tuple[float, float, np.ndarray]] = _graph_terms
lsap_kernel: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] = lsap


def reference_relations(reference: StackedNodes, signed: bool) -> Relations:
    """A reference's pairs and angles with their lengths, cosines and sines (see `_reference_relations`)."""
    return Relations(*_relations_kernel(reference.pos, reference.offsets, reference.sizes, signed))


def graph_terms(reference: StackedNodes, n_categories: int, relations: Relations, prediction: StackedNodes,
                frame_map: np.ndarray, scale: float, gt_weighting: bool, with_edge: bool,
                signed: bool) -> GraphTerms:
    """Node term, edge term and matches (see `_match_frames` and `_edge_term`): reference frame f against
    predicted frame frame_map[f]; only `candidate` predictions (the reference's dimension) can be
    matched."""
    return GraphTerms(*_terms_kernel(
        reference.pos, reference.category, n_categories, reference.offsets, reference.sizes,
        relations.pair_i, relations.pair_j, relations.pair_frame, relations.pair_d, relations.tri,
        relations.tri_frame, relations.tri_cos, relations.tri_sin,
        prediction.pos, prediction.category, prediction.candidate, prediction.offsets, prediction.sizes,
        frame_map, scale, gt_weighting, with_edge, signed,
    ))
