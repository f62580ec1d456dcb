"""Number extraction of reward-spec section 2.

One compiled pattern per mode, scanned left to right by `finditer`: every alternative is a run of
ASCII digits with fixed separators, so matching is linear in the text.
"""

from __future__ import annotations

import re

# A `-` is a sign only at the start or after whitespace or one of `( [ { , = : ;`, and only when
# directly followed by a digit or `.` (the lookahead comes from the number that must follow it).
_SIGN = r"(?:(?<![^\s(\[{,=:;])-)?"
_EXP = r"(?:[eE][+-]?[0-9]+)?"
_PLAIN = r"(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)"
# Thousands grouping, numerical answers only: 1-3 digits, first not 0, no digit before them, then
# groups of exactly three digits not followed by a fourth.
_GROUPED = r"(?:(?<![0-9])[1-9][0-9]{0,2}(?:,[0-9]{3}(?![0-9]))+(?:\.[0-9]+)?)"

_NUMBER = re.compile(_SIGN + _PLAIN + _EXP)
_NUMBER_GROUPED = re.compile(_SIGN + "(?:" + _GROUPED + "|" + _PLAIN + ")" + _EXP)

_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty"
)
NUMBER_WORDS = {word: i for i, word in enumerate(_WORDS.split())}


def extract_numbers(text: str, *, thousands: bool = False) -> list[float]:
    """All numbers in `text`, in order. `thousands` turns on the `1,234` grouping of numerical answers."""
    pattern = _NUMBER_GROUPED if thousands else _NUMBER
    return [float(m.group().replace(",", "")) for m in pattern.finditer(text)]


def has_digit(text: str) -> bool:
    return any("0" <= ch <= "9" for ch in text)
