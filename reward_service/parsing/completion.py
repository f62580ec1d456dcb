"""Completion -> format flag, answer text, graph text (reward-spec section 1).

One pass of one compiled pattern finds every `<think>`, `</think>`, `<answer>`, `</answer>`, `<graph>`
and `</graph>` with its position; the blocks are then read from those positions the way the spec's
non-greedy regex `<tag>(.*?)</tag>` finds them, left to right (tests/reward_service/parsing checks the
two agree on generated texts). This is linear in the text: running the spec's regex itself rescans to
the end of the text for every unclosed opening tag, which is quadratic on a completion full of
`<answer>` tags. Measured on the standard mix: 6 us per completion against 13 us for the two
parsers this replaces (one indexed, one of repeated substring searches, switched by a threshold).
"""

from __future__ import annotations

import bisect
import re
from typing import NamedTuple

# Group i of the pattern is tag _TAGS[i - 1]: a match's `lastindex` says which tag it is. The pattern
# starts with its literal `<`, which the regex engine finds with a fast scan (alternatives at the top
# level would be tried at every character: 25x slower).
_TAGS = ("<think>", "</think>", "<answer>", "</answer>", "<graph>", "</graph>")
_TAG = re.compile("<(?:" + "|".join(f"({re.escape(tag[1:-1])})" for tag in _TAGS) + ")>")


class ParsedCompletion(NamedTuple):  # a tuple: made for every item (0.66 against 1.1 us as a frozen dataclass)
    format: bool
    answers: list[str]  # contents of the first two answer blocks, unstripped: one, or "several"
    think: str | None  # content of the only think block, or None with none or several
    graphs: list[str]  # contents of the first two graph blocks inside the think block


def _tag_positions(text: str) -> list[list[int]]:
    """Positions of each tag in the text, in order; index i holds tag _TAGS[i - 1] (index 0 unused)."""
    found: list[list[int]] = [[], [], [], [], [], [], []]
    for m in _TAG.finditer(text):
        found[m.lastindex].append(m.start())  # type: ignore[index]  # always set: every alternative is a group
    return found


def _blocks(opens: list[int], closes: list[int], open_len: int, lo: int, hi: int) -> list[tuple[int, int]]:
    """The first two `<tag>...</tag>` blocks within text[lo:hi] as (start, end) of their content, found as
    the non-greedy regex finds them: from an opening tag to the first closing tag after it, then on
    from there."""
    blocks: list[tuple[int, int]] = []
    close_len = open_len + 1
    pos = lo
    while len(blocks) < 2:
        k = bisect.bisect_left(opens, pos)
        if k == len(opens) or opens[k] + open_len > hi:
            break
        start = opens[k] + open_len
        m = bisect.bisect_left(closes, start)
        if m == len(closes) or closes[m] + close_len > hi:
            break
        blocks.append((start, closes[m]))
        pos = closes[m] + close_len
    return blocks


def _format(text: str, tags: list[list[int]]) -> bool:
    """Exactly `<think>...</think>` ws `<answer>...</answer>` after stripping, no other such tag, and a
    non-empty answer."""
    if list(map(len, tags[1:5])) != [1, 1, 1, 1]:  # think and answer tags: exactly one of each
        return False
    (think_open,), (think_close,), (answer_open,), (answer_close,) = tags[1:5]
    # Only whitespace before `<think>` and after `</answer>`: what stripping the text would leave, tested
    # on those two ends alone rather than on two stripped copies of the whole text.
    if text[:think_open].strip() or text[answer_close + len("</answer>"):].strip() or think_close > answer_open:
        return False
    if text[think_close + len("</think>"):answer_open].strip():
        return False
    return bool(text[answer_open + len("<answer>"):answer_close].strip())


def parse_completion(text: str) -> ParsedCompletion:
    tags = _tag_positions(text)
    thinks = _blocks(tags[1], tags[2], len("<think>"), 0, len(text))
    think = None
    graphs: list[str] = []
    if len(thinks) == 1:
        start, end = thinks[0]
        think = text[start:end]
        graphs = [text[a:b] for a, b in _blocks(tags[5], tags[6], len("<graph>"), start, end)]
    return ParsedCompletion(
        format=_format(text, tags),
        answers=[text[a:b] for a, b in _blocks(tags[3], tags[4], len("<answer>"), 0, len(text))],
        think=think,
        graphs=graphs,
    )
