"""Completion -> format flag, answer text, graph text (reward-spec section 1).

Blocks are found the way the spec's non-greedy regex `<tag>(.*?)</tag>` finds them, left to right,
but with `str.find`: a regex would rescan to the end of the text for every unclosed opening tag,
which is quadratic on a completion full of `<answer>` tags.
"""

from __future__ import annotations

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


def parse_completion(text: str) -> ParsedCompletion:
    thinks = find_blocks(text, "think", limit=2)
    think = thinks[0] if len(thinks) == 1 else None
    return ParsedCompletion(
        format=format_ok(text),
        answers=find_blocks(text, "answer", limit=2),
        think=think,
        graphs=find_blocks(think, "graph", limit=2) if think is not None else [],
    )
