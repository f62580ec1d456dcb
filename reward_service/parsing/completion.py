"""Completion -> format flag, answer text, graph text (reward-spec section 1).

Blocks are found the way the spec's non-greedy regex `<tag>(.*?)</tag>` finds them, left to right,
but with `str.find`: a regex would rescan to the end of the text for every unclosed opening tag,
which is quadratic on a completion full of `<answer>` tags.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

_TAGS = ("<think>", "</think>", "<answer>", "</answer>")


def find_blocks(text: str, tag: str, limit: int | None = None) -> list[str]:
    """Contents of `<tag>...</tag>` blocks as `re.findall(r'<tag>(.*?)</tag>', text, re.S)` gives them,
    the first `limit` of them when given (the scorer only needs to tell one block from several)."""
    open_tag, close_tag = f"<{tag}>", f"</{tag}>"
    blocks: list[str] = []
    pos = 0
    while limit is None or len(blocks) < limit:
        start = text.find(open_tag, pos)
        if start < 0:
            return blocks
        end = text.find(close_tag, start + len(open_tag))
        if end < 0:  # no closing tag after this opening, hence none after any later one either
            return blocks
        blocks.append(text[start + len(open_tag) : end])
        pos = end + len(close_tag)
    return blocks


def format_ok(text: str) -> bool:
    """Exactly `<think>...</think>` ws `<answer>...</answer>`, no other such tag, non-empty answer."""
    s = text.strip()
    if not (s.startswith("<think>") and s.endswith("</answer>")):
        return False
    if any(s.count(tag) != 1 for tag in _TAGS):
        return False
    think_end = s.index("</think>")
    answer_start = s.index("<answer>")
    if think_end > answer_start or s[think_end + len("</think>") : answer_start].strip():
        return False
    return bool(s[answer_start + len("<answer>") : -len("</answer>")].strip())


@dataclass(frozen=True)
class ParsedCompletion:
    format: bool
    answers: list[str]  # contents of the first two answer blocks, unstripped: one, or "several"
    think: str | None  # content of the only think block, or None with none or several
    graphs: list[str]  # contents of the first two graph blocks inside the think block


def _parse_by_search(text: str) -> ParsedCompletion:
    thinks = find_blocks(text, "think", limit=2)
    think = thinks[0] if len(thinks) == 1 else None
    return ParsedCompletion(
        format=format_ok(text),
        answers=find_blocks(text, "answer", limit=2),
        think=think,
        graphs=find_blocks(think, "graph", limit=2) if think is not None else [],
    )


# A completion usually holds a handful of `<`: finding each with a memchr-fast `find('<')` and reading
# the tag there replaces a dozen full-text substring scans. Over this many `<` the plain scans are used.
_MAX_OPENINGS = 64
_INDEXED_TAGS = ("<think>", "</think>", "<answer>", "</answer>", "<graph>", "</graph>")


def _tag_positions(text: str) -> dict[str, list[int]] | None:
    if text.count("<") > _MAX_OPENINGS:
        return None
    found: dict[str, list[int]] = {tag: [] for tag in _INDEXED_TAGS}
    i = text.find("<")
    while i >= 0:
        for tag in _INDEXED_TAGS:
            if text.startswith(tag, i):
                found[tag].append(i)
                break
        i = text.find("<", i + 1)
    return found


def _blocks_at(tags: dict[str, list[int]], tag: str, lo: int, hi: int) -> list[tuple[int, int]]:
    """`find_blocks(text[lo:hi], tag, limit=2)` as (start, end) offsets into text, from tag positions."""
    open_tag, close_tag = f"<{tag}>", f"</{tag}>"
    opens, closes = tags[open_tag], tags[close_tag]
    blocks: list[tuple[int, int]] = []
    pos = lo
    while len(blocks) < 2:
        k = bisect.bisect_left(opens, pos)
        if k == len(opens) or opens[k] + len(open_tag) > hi:
            break
        start = opens[k] + len(open_tag)
        m = bisect.bisect_left(closes, start)
        if m == len(closes) or closes[m] + len(close_tag) > hi:
            break
        blocks.append((start, closes[m]))
        pos = closes[m] + len(close_tag)
    return blocks


def _format_at(text: str, tags: dict[str, list[int]]) -> bool:
    """`format_ok(text)` from tag positions."""
    if any(len(tags[tag]) != 1 for tag in _TAGS):
        return False
    lo, hi = len(text) - len(text.lstrip()), len(text.rstrip())
    think_end, answer_start = tags["</think>"][0], tags["<answer>"][0]
    if tags["<think>"][0] != lo or tags["</answer>"][0] + len("</answer>") != hi or think_end > answer_start:
        return False
    if text[think_end + len("</think>") : answer_start].strip():
        return False
    return bool(text[answer_start + len("<answer>") : hi - len("</answer>")].strip())


def parse_completion(text: str) -> ParsedCompletion:
    tags = _tag_positions(text)
    if tags is None:
        return _parse_by_search(text)
    thinks = _blocks_at(tags, "think", 0, len(text))
    think = graphs = None
    if len(thinks) == 1:
        start, end = thinks[0]
        think = text[start:end]
        graphs = [text[a:b] for a, b in _blocks_at(tags, "graph", start, end)]
    return ParsedCompletion(
        format=_format_at(text, tags),
        answers=[text[a:b] for a, b in _blocks_at(tags, "answer", 0, len(text))],
        think=think,
        graphs=graphs or [],
    )
