"""The relation graph: frames of nodes with a category and a position (reward-spec sections 3 and 4).

`parse_graph` reads a completion's graph text (tolerant JSON, within the limits); `read_graph` turns
parsed graph JSON (a `JObject` from a completion, or a dict from a reference) into a `RelationGraph`.
The scorer works on the numpy arrays of its frames; `to_networkx` gives the same
frame as a networkx graph with derived distance edges, for diagnostics and for the graph edit
distance baseline of the benchmark (networkx is far too slow for the scoring hot path).
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import accumulate
from operator import lt
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from reward_service.errors import GraphError, RelaxedJSONError, TooDeepError
from reward_service.parsing.relaxed_json import JObject, loads_relaxed

if TYPE_CHECKING:
    import networkx as nx

MAX_GRAPH_BYTES = 32 * 1024  # of graph text, UTF-8 (section 4)
MAX_FRAMES = 16
MAX_NODES = 24
MAX_COORD = 1e6
EDGE_EPS = 1e-9  # edges shorter than this have no direction: section 3 leaves them out of the edge term
_NAME_KEYS = ("name", "id", "label")
_POS_KEYS = ("pos", "position", "center")
_SEPARATORS = re.compile(r"[\s\-]+")
_FIRST_DIGITS = re.compile(r"[0-9]+")




@lru_cache(maxsize=65536)
def category(name: str) -> str:
    """`Chair 2`, `chair_2`, `chair#2` -> `chair`; `traffic-light_10` -> `traffic_light`."""
    cat = _SEPARATORS.sub("_", name.lower().strip())
    # The spec's `[_#\s]*\d+$`, done with rstrip: a regex search is quadratic on long digit runs.
    without_number = cat.rstrip("0123456789")
    if without_number != cat:
        cat = without_number.rstrip("_#")
    return cat


def _first_number(key: str) -> int | None:
    m = _FIRST_DIGITS.search(key)
    return int(m.group()) if m else None


# Frame keys repeat from graph to graph ("0", "8", "frame_16"): a cache hit costs a fifth of the search.
# Only short keys are kept, so that hostile long ones cannot fill memory.
_MAX_CACHED_KEY = 32
_cached_first_number = lru_cache(maxsize=4096)(_first_number)


def frame_number(key: str) -> int | None:
    """The first run of ASCII digits in a frame key (`"frame_8"` -> 8), None without a digit."""
    return _cached_first_number(key) if len(key) <= _MAX_CACHED_KEY else _first_number(key)


class Node(NamedTuple):
    name: str
    category: str
    pos: tuple[float, ...]


@dataclass
class RelationGraph:
    """A graph's valid nodes, stored as columns: every frame's nodes one after another, frames in order of
    their number. Scoring stacks these columns into numpy arrays (scoring/graph_reward.py) without ever
    making an object per node: per-node objects, made here and then unpacked there, were a quarter of the
    time of a graph item. `frames` gives the same nodes frame by frame, as `Node`s, for the rest."""

    numbers: list[int]  # frame numbers, sorted
    sizes: list[int]  # valid nodes of each frame
    names: list[str]  # the valid nodes' names, frame after frame, each frame in written order
    positions: list[list[float]]  # their positions as read (lists of 2 or 3 numbers; ints stay ints)
    dynamic: bool
    # Work derived from the graph alone (the scorer's plan), kept with it: references are reused.
    cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def frames(self) -> dict[int, list[Node]]:
        """Frame number -> its valid nodes, in written order; keys sorted."""
        frames = self.cache.get("frames")
        if frames is None:
            nodes = [Node(name, category(name), tuple(map(float, pos)))
                     for name, pos in zip(self.names, self.positions, strict=True)]
            frames = self.cache["frames"] = {}
            start = 0
            for number, size in zip(self.numbers, self.sizes, strict=True):
                frames[number] = nodes[start:start + size]
                start += size
        return cast(dict[int, list[Node]], frames)

    @property
    def edge_defined(self) -> bool:
        """Whether R_edge exists with this graph as the reference (reward-spec section 3): some frame has
        two nodes at least 1e-9 apart. It depends on the graph alone, so a completion too large to parse
        gets its 0 or null without the scorer's plan (and its compiled kernels) being built."""
        defined = self.cache.get("edge_defined")
        if defined is None:
            defined = self.cache["edge_defined"] = any(
                math.sqrt(sum((q - p) ** 2 for p, q in zip(a, b, strict=False))) >= EDGE_EPS
                for nodes in self._frame_positions() for i, a in enumerate(nodes) for b in nodes[i + 1:]
            )
        return bool(defined)

    def _frame_positions(self) -> list[list[list[float]]]:
        """The positions of each frame, frames in order."""
        starts = accumulate(self.sizes, initial=0)
        return [self.positions[start:start + size] for start, size in zip(starts, self.sizes, strict=False)]

    def to_networkx(self, frame: int) -> nx.Graph:
        """One frame as a complete graph: nodes carry category and position, edges their distance."""
        import networkx as nx  # imported here: ~150 ms that scoring never needs

        g = nx.Graph()
        nodes = self.frames[frame]
        for i, node in enumerate(nodes):
            g.add_node(i, name=node.name, category=node.category, pos=node.pos)
        for i in range(len(nodes)):
            for j in range(i + 1, len(nodes)):
                g.add_edge(i, j, distance=math.dist(nodes[i].pos, nodes[j].pos))
        return g

    def to_json(self) -> dict[str, Any]:
        def nodes(frame: int) -> list[dict[str, Any]]:
            return [{"name": n.name, "category": n.category, "pos": list(n.pos)} for n in self.frames[frame]]

        if self.dynamic:
            return {"frames": {str(f): nodes(f) for f in self.frames}}
        return {"nodes": nodes(next(iter(self.frames)))}


def _pairs(obj: Any) -> Collection[tuple[Any, Any]] | None:
    kind = type(obj)
    if kind is JObject:
        return obj
    if kind is dict or (kind is not list and isinstance(obj, Mapping)):  # exact types first: ABC checks are slow
        return obj.items()
    return None


def _get(obj: Any, key: str) -> Any:
    """Value of `key` (last one when repeated); `_MISSING` when absent."""
    if isinstance(obj, JObject):
        return obj.get_last(key, _MISSING)
    return obj.get(key, _MISSING)


_MISSING = object()
_EXACT = (float, int)


def _position(value: Any) -> list[float] | None:
    """The valid position that a node's value holds (a list of 2 or 3 numbers within MAX_COORD, or an object
    whose first present key of pos / position / center holds one), or None. Ints and floats as written
    (the same numbers as floats: at most 1e6 in size); other numbers, numpy's say, as floats."""
    if type(value) is not list:  # JObject, a list subclass, is no position
        if _pairs(value) is None:
            return None
        value = next((inner for key in _POS_KEYS if (inner := _get(value, key)) is not _MISSING), None)
        if type(value) is not list:
            return None
    n = len(value)
    # The usual shapes first, unrolled: this runs for every node of every graph (a loop costs 2x).
    if n == 3:
        x, y, z = value
        if (type(x) in _EXACT and type(y) in _EXACT and type(z) in _EXACT and -MAX_COORD <= x <= MAX_COORD
                and -MAX_COORD <= y <= MAX_COORD and -MAX_COORD <= z <= MAX_COORD):
            return value
    elif n == 2:
        x, y = value
        if type(x) in _EXACT and type(y) in _EXACT and -MAX_COORD <= x <= MAX_COORD and -MAX_COORD <= y <= MAX_COORD:
            return value
    if not 2 <= n <= 3:
        return None
    for x in value:
        exact = type(x) is float or type(x) is int  # the fast path; numpy floats and the like pass below
        if not exact and (isinstance(x, bool) or not isinstance(x, (int, float))):
            return None
        if not -MAX_COORD <= x <= MAX_COORD:  # false for NaN; compared before float() so huge ints can't overflow
            return None
    return list(map(float, value))


def _node_entries(nodes: Any) -> Collection[tuple[Any, Any]] | None:
    """(name, position value) of each entry as written; None when NODES is neither object nor list. An
    object's own pairs, not a copy: they are only read."""
    pairs = _pairs(nodes)
    if pairs is not None:
        return pairs
    if isinstance(nodes, list):
        entries: list[tuple[Any, Any]] = []
        for item in nodes:
            if _pairs(item) is None:
                entries.append((None, None))
                continue
            name = next((v for k in _NAME_KEYS if isinstance(v := _get(item, k), str)), None)
            entries.append((name, item))
        return entries
    return None


def _read_nodes(
    nodes: Any, strict: bool, where: str | None, names: list[str], positions: list[list[float]]
) -> int | None:
    """Append the valid nodes of NODES to `names` and `positions`; how many, or None when NODES is neither
    an object nor a list. `where` is the frame's key (None for a static graph), for error messages."""
    entries = _node_entries(nodes)
    if entries is None:
        return None
    if len(entries) > MAX_NODES:
        raise GraphError("graph_too_large", f"{_where(where)}: more than {MAX_NODES} nodes")
    before = len(names)
    for name, value in entries:
        pos = _position(value) if type(name) is str else None
        if pos is None:
            if strict:
                raise GraphError("graph_invalid", f"{_where(where)}: node {name!r} has no valid position")
            continue
        names.append(name)
        positions.append(pos)
    return len(names) - before


def _where(key: str | None) -> str:
    return "graph" if key is None else f"graph.frames.{key}"


def read_graph(value: Any, *, strict: bool = False) -> RelationGraph:
    """Read a graph of any shape of section 3. `strict` is for references: any invalid part is an error."""
    graph = _read(value, strict)
    if strict:  # a reference is kept and reused: its positions become its own, as floats, not the caller's lists
        graph.positions = [list(map(float, pos)) for pos in graph.positions]
    return graph


def _read(value: Any, strict: bool) -> RelationGraph:
    frames_value = _get(value, "frames") if _pairs(value) is not None else _MISSING
    if frames_value is not _MISSING and _pairs(frames_value) is not None:
        return _read_dynamic(frames_value, strict)
    nodes_value = value
    if _pairs(value) is not None and (inner := _get(value, "nodes")) is not _MISSING:
        nodes_value = inner
    names: list[str] = []
    positions: list[list[float]] = []
    size = _read_nodes(nodes_value, strict, None, names, positions)
    if size is None:
        raise GraphError("graph_invalid", "graph nodes must be an object or a list")
    return RelationGraph([0], [size], names, positions, dynamic=False)


def _read_dynamic(frames_value: Any, strict: bool) -> RelationGraph:
    entries = _pairs(frames_value) or ()
    if len(entries) > MAX_FRAMES:
        raise GraphError("graph_too_large", f"graph: more than {MAX_FRAMES} frames")
    numbers: list[int] = []  # of the valid frames, as written, with the size of each
    sizes: list[int] = []
    names: list[str] = []
    positions: list[list[float]] = []
    for key, nodes_value in entries:
        number = frame_number(key)
        if number is None:
            if strict:
                raise GraphError("graph_invalid", f"{_where(key)}: frame key has no digit")
            continue
        size = _read_nodes(nodes_value, strict, key, names, positions)
        if size is None:
            if strict:
                raise GraphError("graph_invalid", f"{_where(key)}: frame must be an object or a list of nodes")
            continue
        if strict and number in numbers:
            raise GraphError("graph_invalid", f"{_where(key)}: two frame keys name frame {number}")
        numbers.append(number)
        sizes.append(size)
    if not numbers:
        raise GraphError("graph_invalid", "graph: no valid frame")
    if not all(map(lt, numbers, numbers[1:])):  # keys out of order, or a number written twice
        return _in_frame_order(numbers, sizes, names, positions)
    return RelationGraph(numbers, sizes, names, positions, dynamic=True)


def _in_frame_order(numbers: list[int], sizes: list[int], names: list[str], positions: list[list[float]]
                    ) -> RelationGraph:
    """The frames read, sorted by number; of frames with the same number the later wins."""
    spans = dict(zip(numbers, zip(accumulate(sizes, initial=0), sizes, strict=False), strict=True))
    order = sorted(spans)
    return RelationGraph(
        order, [spans[f][1] for f in order],
        [name for f in order for name in names[spans[f][0]:spans[f][0] + spans[f][1]]],
        [pos for f in order for pos in positions[spans[f][0]:spans[f][0] + spans[f][1]]],
        dynamic=True,
    )


def parse_graph(graphs: list[str]) -> RelationGraph:
    """The predicted graph from the graph blocks of the think block; GraphError names the fault."""
    if not graphs:
        raise GraphError("graph_missing", "no graph block inside the think block")
    if len(graphs) > 1:
        raise GraphError("graph_ambiguous", "several graph blocks")
    text = graphs[0]
    # UTF-8 takes at most 4 bytes a character: only a text of more than a quarter of the limit is encoded.
    if len(text) > MAX_GRAPH_BYTES or (4 * len(text) > MAX_GRAPH_BYTES
                                       and len(text.encode("utf-8", "surrogatepass")) > MAX_GRAPH_BYTES):
        raise GraphError("graph_too_large", "graph text over 32 KiB")
    try:
        value = loads_relaxed(text, dicts=True)  # `_read` takes dicts and JObjects alike
    except TooDeepError as exc:
        raise GraphError("graph_too_large", str(exc)) from None
    except RelaxedJSONError as exc:
        raise GraphError("graph_invalid", f"graph does not parse: {exc}") from None
    return read_graph(value)
