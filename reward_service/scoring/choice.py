"""`multiple_choice` answers (reward-spec section 2): read one option letter, refuse letter lists."""

from __future__ import annotations

import re

from reward_service.scoring.reference import OPTION_LETTERS, Reference
from reward_service.scoring.registry import UNPARSABLE, AnswerScore, register

_WRAPPERS = (("**", "**"), ("`", "`"), ('"', '"'), ("'", "'"), ("\u201c", "\u201d"), ("\u2018", "\u2019"))
_PREFIX = re.compile(r"(?:the\s+answer\s+is|answer|option)(?![A-Za-z0-9_])\s*:?", re.IGNORECASE)
_LETTER = re.compile(r"\(([A-J])\)|\[([A-J])\]|([A-J])")
_FOLLOW = set(" \t\n\r\f\v.:,)-/&")
_LIST_JOIN = re.compile(r"\s*(?:[,/&]|(?i:or|and))\s*(?:\(([A-J])\)|\[([A-J])\]|([A-J]))(?![A-Za-z0-9_])")
_LOWER_WHOLE = re.compile(r"\(([a-j])\)|\[([a-j])\]|([a-j])")


def read_prediction(text: str) -> str:
    """Strip, drop one final `.`, then peel wrappers and `answer:`-style prefixes until stable."""
    s = text.strip()
    if s.endswith("."):
        s = s[:-1]
    while True:
        before = s
        s = s.strip()
        for left, right in _WRAPPERS:
            if len(s) >= len(left) + len(right) and s.startswith(left) and s.endswith(right):
                s = s[len(left) : -len(right)]
                break
        m = _PREFIX.match(s)
        if m:
            s = s[m.end() :]
        if s == before:
            return s


def _letter(m: re.Match[str]) -> str:
    return next(g for g in m.groups() if g)


def read_letter(s: str, letters: str) -> tuple[str | None, bool]:
    """(letter, ambiguous) of a read prediction; letter None when there is none."""
    whole = _LOWER_WHOLE.fullmatch(s)
    if whole:
        letter = _letter(whole).upper()
        return (letter if letter in letters else None), False
    m = _LETTER.match(s)
    if not m or _letter(m) not in letters:
        return None, False
    if m.end() < len(s) and s[m.end()] not in _FOLLOW:
        return None, False
    more = _LIST_JOIN.match(s, m.end())
    if more and _letter(more) in letters:
        return _letter(m), True
    return _letter(m), False


@register("multiple_choice")
def score_multiple_choice(prediction: str, reference: Reference) -> AnswerScore:
    options = reference.options
    letters = OPTION_LETTERS[: len(options)] if options else OPTION_LETTERS
    s = read_prediction(prediction)
    letter, ambiguous = read_letter(s, letters)
    if ambiguous:
        return AnswerScore(0.0, "answer_ambiguous", s)
    if letter is None and options:
        wanted = s.strip().lower()
        hits = [i for i, text in enumerate(options) if text.strip().lower() == wanted]
        if len(hits) == 1:
            letter = letters[hits[0]]
    if letter is None:
        return UNPARSABLE
    return AnswerScore(1.0 if letter == reference.answer else 0.0, None, letter)
