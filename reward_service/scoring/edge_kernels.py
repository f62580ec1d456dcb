"""Compiled loops of the edge term (reward-spec section 3): distances between node pairs and angles at
every apex over every pair of other nodes, O(n^3) per frame.

Why numba rather than numpy: a frame of 24 nodes has 6,072 angles and a typical one a few hundred; as
numpy expressions that is ~70 array operations per item, and per-call overhead (small graphs) or fresh
temporaries (large ones) cost 10 to 50 times the arithmetic. These loops do it once with no
temporaries. They are compiled on first use and cached on disk.

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

EPS = 1e-9


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


Relations = tuple[np.ndarray, ...]
# numba's dispatchers, as plain callables: their stub signature confuses type checkers.
_relations_kernel: Callable[..., Relations] = _reference_relations
_edge_kernel: Callable[..., float] = _edge_term


def reference_relations(pos: np.ndarray, offsets: np.ndarray, sizes: np.ndarray, signed: bool) -> Relations:
    """A reference's pairs and angles with their lengths, cosines and sines (see `_reference_relations`)."""
    return _relations_kernel(pos, offsets, sizes, signed)


def edge_term(pos: np.ndarray, matched: np.ndarray, relations: Relations, signed: bool) -> float:
    """R_edge of the matched predictions `pos` against the reference's `relations`."""
    return float(_edge_kernel(pos, matched, *relations, signed))
