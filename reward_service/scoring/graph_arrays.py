"""The typed arrays the graph kernels (graph_kernels.py) take and give: numpy only, so the scoring core
imports them without compiling anything (numba loads with the first graph scored)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class StackedNodes(NamedTuple):
    """The nodes of every frame of a graph, stacked: row i of `pos` is node i; frame f's nodes are rows
    offsets[f] to offsets[f] + sizes[f]. The integer fields are views of one array (one allocation)."""

    pos: np.ndarray  # (N, d) float64
    category: np.ndarray  # (N,) int64 category ids (a predicted category absent from the reference: -1)
    candidate: np.ndarray  # (N,) int64, 1 when the node has the reference's dimension (can be matched)
    offsets: np.ndarray  # (F,) int64
    sizes: np.ndarray  # (F,) int64


class Relations(NamedTuple):
    """A reference's node pairs and apex triples with what the edge term compares them by."""

    pair_i: np.ndarray
    pair_j: np.ndarray
    pair_frame: np.ndarray
    pair_d: np.ndarray  # distance of each pair (>= EPS)
    tri: np.ndarray  # (m, 3): apex, j, k
    tri_frame: np.ndarray
    tri_cos: np.ndarray  # cos and sin of the angle at the apex
    tri_sin: np.ndarray
    offsets: np.ndarray  # the frames' node ranges
    sizes: np.ndarray


class GraphTerms(NamedTuple):
    """The node term, the edge term (NaN when not asked for or undefined) and, for each reference node,
    its matched prediction: `matches[r]` is (row in the stacked prediction, or -1 when unmatched;
    distance; score). One array, as each array a kernel returns costs a boxing."""

    node: float
    edge: float
    matches: np.ndarray  # (N_ref, 3) float64
