"""Tolerant JSON for graph text (reward-spec section 4) that keeps repeated object keys.

Strict JSON is tried first (the C decoder, fast). If that fails the text is rewritten token by token
into strict JSON: single-quoted strings, bare keys, trailing commas and `( )` lists are accepted. The
tokenizer is one regular expression whose string patterns use possessive quantifiers, so no input
backtracks super-linearly; nothing is ever evaluated as code.

Objects come back as `JObject`, a list of (key, value) pairs, because a policy may write
`{"chair": [..], "chair": [..]}` for two chairs and a dict would silently drop one.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

MAX_DEPTH = 64


class JObject(list[tuple[str, Any]]):
    """A JSON object as its key-value pairs, in order, repeated keys kept."""

    def get_last(self, key: str, default: Any = None) -> Any:
        """The value of the last pair with this key (what a JSON dict would hold)."""
        for k, v in reversed(self):
            if k == key:
                return v
        return default

    def has(self, key: str) -> bool:
        return any(k == key for k, _ in self)


class RelaxedJSONError(ValueError):
    """Text that is not JSON, even relaxed."""


class TooDeepError(RelaxedJSONError):
    """Nesting deeper than the limit (section 4): the graph is too large, not merely invalid."""


_DECODER = json.JSONDecoder(object_pairs_hook=JObject)

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<dq>"(?:[^"\\]|\\.)*+")
  | (?P<sq>'(?:[^'\\]|\\.)*+')
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*+)
  | (?P<open>[\[{(])
  | (?P<close>[\]})])
  | (?P<comma>,)
  | (?P<colon>:)
  | (?P<other>[^\s"'A-Za-z_\[\]{}(),:]++)
  | (?P<bad>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_CLOSER = {"[": "]", "{": "}", "(": ")"}
_SQ_ESCAPE = re.compile(r"""\\'|\\.|\"""", re.DOTALL)


def _single_to_double(body: str) -> str:
    """Body of a single-quoted string as the body of a double-quoted JSON string."""

    def fix(m: re.Match[str]) -> str:
        s = m.group()
        if s == "\\'":
            return "'"
        return '\\"' if s == '"' else s

    return '"' + _SQ_ESCAPE.sub(fix, body) + '"'


def _to_strict(text: str, max_depth: int) -> str:
    """Rewrite relaxed JSON into strict JSON, checking brackets and depth on the way."""
    tokens = [(m.lastgroup, m.group()) for m in _TOKEN.finditer(text)]
    out: list[str] = []
    stack: list[str] = []
    pending_comma = False
    n = len(tokens)
    for idx, (kind, value) in enumerate(tokens):
        if kind == "ws":
            out.append(" ")  # keeps `1 2` from fusing into `12`
            continue
        if kind == "bad":
            raise RelaxedJSONError(f"unexpected character {value!r}")
        if kind == "close":
            if not stack or stack[-1] != value:
                raise RelaxedJSONError("mismatched bracket")
            stack.pop()
            pending_comma = False  # a trailing comma before a closer is dropped
            out.append("]" if value == ")" else value)
            continue
        if pending_comma:
            out.append(",")
            pending_comma = False
        if kind == "comma":
            pending_comma = True
        elif kind == "open":
            stack.append(_CLOSER[value])
            if len(stack) > max_depth:
                raise TooDeepError(f"nesting deeper than {max_depth}")
            out.append("[" if value == "(" else value)
        elif kind == "sq":
            out.append(_single_to_double(value[1:-1]))
        elif kind == "word":
            nxt = idx + 1
            while nxt < n and tokens[nxt][0] == "ws":
                nxt += 1
            is_key = nxt < n and tokens[nxt][0] == "colon"
            out.append(f'"{value}"' if is_key else value)
        else:
            out.append(value)
    if pending_comma:
        out.append(",")
    return "".join(out)


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*+"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_BRACKET_STEP = str.maketrans({"[": "\x02", "{": "\x02", "]": "\x00", "}": "\x00"})


def _depth_exceeds(text: str, limit: int) -> bool:
    """True when the brackets of valid JSON `text` nest deeper than `limit` (strings skipped)."""
    if text.count("[") + text.count("{") <= limit:
        return False
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    steps = np.frombuffer(brackets.translate(_BRACKET_STEP).encode("ascii"), dtype=np.int8).astype(np.int64) - 1
    return bool(steps.size) and int(np.cumsum(steps).max()) > limit


def loads_relaxed(text: str, max_depth: int = MAX_DEPTH) -> Any:
    """Parse strict or relaxed JSON; objects as `JObject`. Raises RelaxedJSONError / TooDeepError."""
    try:
        value = _DECODER.decode(text)
    except (ValueError, RecursionError):
        pass
    else:
        if _depth_exceeds(text, max_depth):
            raise TooDeepError(f"nesting deeper than {max_depth}")
        return value
    try:  # relaxed: the rewrite checks brackets and depth as it goes
        return _DECODER.decode(_to_strict(text, max_depth))
    except TooDeepError:
        raise
    except (ValueError, RecursionError) as exc:
        raise RelaxedJSONError(str(exc)) from None
