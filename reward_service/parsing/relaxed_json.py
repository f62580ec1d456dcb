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
import orjson

from reward_service.errors import RelaxedJSONError, TooDeepError

MAX_DEPTH = 64


class JObject(list[tuple[str, Any]]):
    """A JSON object as its key-value pairs, in order, repeated keys kept."""

    def get_last(self, key: str, default: Any = None) -> Any:
        """The value of the last pair with this key (what a JSON dict would hold)."""
        for k, v in reversed(self):
            if k == key:
                return v
        return default




_DECODER = json.JSONDecoder(object_pairs_hook=JObject)

# Outside strings, relaxed JSON differs from JSON by `( )` lists, bare keys and trailing commas: each is
# rewritten by one C-level pass over the text between strings (a per-token Python loop was 10x slower).
# A string is a quote, then runs of plain characters each followed by one escape, then the quote: the
# form `"(?:[^"\\]|\\.)*+"` unrolled (Friedl), the same matches found in one tight loop per run instead
# of one alternation per character (1.5 against 2.5 us on the standard mix's large graphs).
_STRINGS = re.compile(r""""[^"\\]*+(?:\\.[^"\\]*+)*+"|'[^'\\]*+(?:\\.[^'\\]*+)*+'""", re.DOTALL)
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}()")  # deleted by bytes.translate, a C loop
_DEPTH_STEP = bytes.maketrans(b"[{(]})", b"\x01\x01\x01\xff\xff\xff")  # +1 and -1 as int8
_PARENS = str.maketrans("()", "[]")
# A bare key: a name not preceded by a name character or `.`, followed by `:`. The pattern starts with the
# key's first character and looks behind from there, so the regex engine skips ahead to candidates with
# its fast character-set scan; the key is a group, so that split() and '"'.join() quote every key in C
# (a sub() with `"\g<0>"` expands the template in Python for every key on Python 3.11): 4.4 against 26
# us per relaxed graph text of the standard mix.
_BARE_KEY = re.compile(r"([A-Za-z_](?<![A-Za-z0-9_.][A-Za-z_])[A-Za-z0-9_]*+(?=\s*:))")
_TRAILING_COMMA = re.compile(r",(?=\s*+[\]}])")
_SQ_ESCAPE = re.compile(r"""\\'|\\.|\"""", re.DOTALL)
_EMPTY_PAIR = re.compile(rb"\(\)|\[\]|\{\}")


def _sq_escape(m: re.Match[str]) -> str:
    s = m.group()
    if s == "\\'":
        return "'"
    return '\\"' if s == '"' else s


def _single_to_double(body: str) -> str:
    """Body of a single-quoted string as the body of a double-quoted JSON string."""
    return '"' + _SQ_ESCAPE.sub(_sq_escape, body) + '"'


def _rewrite_code(segment: str) -> str:
    """Relaxed JSON text that holds no string, as strict JSON text."""
    segment = '"'.join(_BARE_KEY.split(segment.translate(_PARENS)))  # pieces between keys, and the keys
    return _TRAILING_COMMA.sub("", segment)


def _brackets(text: str) -> bytes:
    """The brackets of `text` outside strings, in order."""
    return _STRINGS.sub("", text).encode("utf-8", "surrogatepass").translate(None, _NOT_BRACKET)


def _strict_brackets(text: str) -> bytes:
    """`_brackets` of strict JSON text (one that parses): without a backslash in it, its strings are
    exactly what stands between one double quote and the next, and no single quote stands outside them,
    so splitting at the quotes finds them (8 against 21 us on the standard mix's graph texts of more than
    64 brackets; tests/reward_service/parsing/test_parsing.py checks the two agree)."""
    if "\\" in text:
        return _brackets(text)
    return "".join(text.split('"')[::2]).encode("utf-8", "surrogatepass").translate(None, _NOT_BRACKET)


def _brackets_match(brackets: bytes) -> bool:
    """Every list and object closes with the bracket that opened it. The nesting is at most the depth
    limit (checked before), so peeling innermost pairs takes at most that many passes."""
    while brackets:
        peeled = _EMPTY_PAIR.sub(b"", brackets)
        if peeled == brackets:
            return False
        brackets = peeled
    return True


def _to_strict(text: str, brackets: bytes) -> str:
    """Rewrite relaxed JSON (single quotes, bare keys, trailing commas, `( )` lists) as strict JSON."""
    if not _brackets_match(brackets):
        raise RelaxedJSONError("mismatched brackets")
    out: list[str] = []
    pos = 0
    for m in _STRINGS.finditer(text):
        out.append(_rewrite_code(text[pos : m.start()]))
        string = m.group()
        out.append(string if string[0] == '"' else _single_to_double(string[1:-1]))
        pos = m.end()
    tail = text[pos:]
    if '"' in tail or "'" in tail:
        raise RelaxedJSONError("unterminated string")
    out.append(_rewrite_code(tail))
    return "".join(out)


def _too_deep(brackets: bytes, limit: int) -> bool:
    """Whether `brackets` (outside strings, as written) nest deeper than `limit`: an opener counts one
    level up, a closer one down, whatever their kinds.

    Most texts are settled by one pass that drops every opener followed at once by a closer (a graph's
    positions): the nesting is at most one more than the openers left. (Where it is deepest, right
    after an opener, the openers before that point outnumber the closers by the nesting, and each
    dropped pair took one of each, but for that last opener itself.)"""
    peeled = _EMPTY_PAIR.sub(b"", brackets)
    if 1 + peeled.count(b"[") + peeled.count(b"{") + peeled.count(b"(") <= limit:
        return False
    steps = np.frombuffer(brackets.translate(_DEPTH_STEP), dtype=np.int8)
    return bool(steps.size) and int(np.cumsum(steps, dtype=np.int64).max()) > limit


def _loads_distinct_keys(text: str, max_depth: int, many_brackets: bool) -> Any:
    """`text` as `_DECODER` reads it but with objects as dicts (and integers past 64 bits as floats), when
    it is strict JSON in which no object repeats a key; else None (so the text `null` takes the
    decoder's way too). orjson parses it, and a repeated key is found by counting colons: every key is
    followed by one, so the colons of the text number those of the same strings written back by orjson
    plus one per key that a dict dropped, given that no escape in the text could write a colon
    (\\u003a: any \\u takes the decoder's way). tests/reward_service/parsing/test_parsing.py checks both
    ways agree.

    orjson refuses nesting past 1,024 levels itself, in linear time, so a text is parsed before its
    nesting is checked against `max_depth` (when it has `many_brackets`, more than `max_depth` in all);
    one nested deeper takes the decoder's way, which refuses it."""
    if "\\u" in text:
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:  # relaxed JSON, NaN, 1e400, deeper than orjson goes: the decoder's way
        return None
    if type(value) is dict or type(value) is list:
        if many_brackets and _too_deep(_strict_brackets(text), max_depth):
            return None
        colons = text.count(":")
        if colons and orjson.dumps(value).count(b":") != colons:
            return None
    return value


def loads_relaxed(text: str, max_depth: int = MAX_DEPTH, *, dicts: bool = False) -> Any:
    """Parse strict or relaxed JSON; objects as `JObject`. Raises RelaxedJSONError / TooDeepError.
    `dicts`: an object whose keys are all distinct may come back as a dict (the same pairs in the same
    order), an integer past 64 bits as a float (for graph text, which reads both as out of range): 8.3
    against 12.9 us for the strict graph texts of the standard mix, parsed by orjson
    (`_loads_distinct_keys`)."""
    many_brackets = text.count("[") + text.count("{") + text.count("(") > max_depth
    if dicts and (value := _loads_distinct_keys(text, max_depth, many_brackets)) is not None:
        return value
    # Depth is checked on the text before the decoder parses it, in linear time, so a hostile `[[[[...` is
    # refused at once instead of running into the decoder's recursion limit and then the relaxed rewrite.
    brackets = None
    if many_brackets:
        brackets = _brackets(text)
        if _too_deep(brackets, max_depth):
            raise TooDeepError(f"nesting deeper than {max_depth}")
    try:
        return _DECODER.decode(text)
    except (ValueError, RecursionError):
        pass
    try:
        return _DECODER.decode(_to_strict(text, _brackets(text) if brackets is None else brackets))
    except (ValueError, RecursionError) as exc:
        raise RelaxedJSONError(str(exc)) from None
