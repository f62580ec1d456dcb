"""Parsing never raises, stays bounded, and every component stays in [0, 1]."""

import contextlib
import json
import re
import time

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reward_service.errors import GraphError, RelaxedJSONError, TooDeepError
from reward_service.graph import read_graph
from reward_service.parsing import relaxed_json
from reward_service.parsing.completion import ParsedCompletion, parse_completion
from reward_service.parsing.relaxed_json import JObject, loads_relaxed
from reward_service.scoring import TASK_TYPES, score
from reward_service.synth.mixes import labelled_mix

REFERENCES = [
    {"task_type": "multiple_choice", "answer": "B", "options": ["x", "y", "z"],
     "graph": {"frames": {"0": {"cup_1": [0, 0], "cup_2": [1, 1], "box": [2, 0]}, "4": {"cup_1": [0, 1]}}}},
    {"task_type": "numerical", "answer": 3.0, "graph": {"a": [0, 0, 0], "b": [1, 2, 3]}},
    {"task_type": "temporal_iou", "answer": [1, 5]},
    {"task_type": "box_iou", "answer": [0, 0, 2, 2]},
    {"task_type": "track_iou", "answer": {"0": [0, 0, 1, 1]}},
]
assert {r["task_type"] for r in REFERENCES} == set(TASK_TYPES)

TAGS = st.sampled_from(["<think>", "</think>", "<answer>", "</answer>", "<graph>", "</graph>", "{", "}", "[",
                        "]", "(", ")", ",", ":", '"', "'", "NaN", "-", "1", "2.5", "A", "b", "chair_1", " ", "\n"])
TEXT = st.lists(st.one_of(TAGS, st.text(max_size=6)), max_size=60).map("".join)
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=5),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4),
    max_leaves=30,
)


def check_result(result):
    assert result.status == "ok" and result.mask is False
    for value in result.components.values():
        assert value is None or 0.0 <= value <= 1.0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TEXT, st.sampled_from(REFERENCES))
def test_arbitrary_text_never_raises(text, reference):
    check_result(score(text, reference, num_tokens=400))


@settings(max_examples=200, deadline=None)
@given(JSONISH, st.sampled_from(REFERENCES), st.booleans())
def test_arbitrary_json_graphs_and_answers(value, reference, wrap):
    text = json.dumps(value)
    graph = json.dumps({"frames": {"0": value}}) if wrap else text
    check_result(score(f"<think><graph>{graph}</graph></think><answer>{text}</answer>", reference))


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_relaxed_parser_only_raises_its_own_errors(text):
    with contextlib.suppress(RelaxedJSONError):
        loads_relaxed(text)


def test_relaxed_forms():
    assert loads_relaxed("{a: (0, 0), 'b': [1, 2,], c_1: 'it\\'s',}") == JObject(
        [("a", [0, 0]), ("b", [1, 2]), ("c_1", "it's")])
    assert loads_relaxed("[NaN, -Infinity]")[1] == float("-inf")
    for bad in ["(1, 2]", "{a b: 1}", "[1 2]", "__import__('os')", "{'a': 1"]:
        with pytest.raises(RelaxedJSONError):
            loads_relaxed(bad)
    with pytest.raises(TooDeepError):
        loads_relaxed("[" * 65 + "]" * 65)
    assert loads_relaxed("[" * 64 + "]" * 64) is not None


def _as_pairs(value):
    """`value` with its dicts as JObjects and integers past 64 bits as floats: what `loads_relaxed` makes
    of a text with `dicts=True` made comparable with what it makes of it by default."""
    if type(value) is dict or type(value) is JObject:
        return JObject([(key, _as_pairs(inner)) for key, inner in (value.items() if type(value) is dict else value)])
    if type(value) is list:
        return [_as_pairs(inner) for inner in value]
    if type(value) is int and not -2**63 <= value < 2**64:
        return float(value)
    return value


def _parsed(text, **kw):
    try:
        return _as_pairs(loads_relaxed(text, **kw))
    except (RelaxedJSONError, TooDeepError) as exc:
        return type(exc)
    except Exception as exc:  # any other error is a bug, shown in the comparison
        return repr(exc)


def _same(a, b):
    """Equal, NaN included (a NaN is not equal to itself)."""
    return a == b or json.dumps(a, default=repr) == json.dumps(b, default=repr)


# JSON text written token by token, so that objects may repeat keys, and keys and strings hold colons,
# escapes (\\u003a is a colon too) and characters past ASCII.
KEYS = st.sampled_from(["a", "b", ":", "a:b", "\\u003a", "\\n", "\\\\", "\u00e9", "x\\\"y", "", "a[", "}'"])
SCALARS = st.sampled_from(["0", "-0", "1.5", "-2e3", "1e400", "NaN", "-Infinity", "true", "null", "12345678901234567890123",
                           '"s"', '":"', '"a\\u003ab"', '"\u00e9"', '"[{("', '"]}\'"'])
JSON_TEXT = st.recursive(
    SCALARS,
    lambda children: (st.lists(children, max_size=4).map(lambda xs: "[" + ", ".join(xs) + "]")
                      | st.lists(st.tuples(KEYS, children), max_size=4).map(
                          lambda pairs: "{" + ", ".join(f'"{k}": {v}' for k, v in pairs) + "}")),
    max_leaves=25,
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(JSON_TEXT, TEXT))
def test_parsing_objects_as_dicts_reads_every_text_as_the_pairs_do(text):
    assert _same(_parsed(text, dicts=True), _parsed(text))


def test_a_repeated_key_keeps_both_pairs_however_it_is_written():
    for text, pairs in [('{"a": 1, "a": 2}', [("a", 1), ("a", 2)]),
                        ('{"\\u003a": 1, ":": 2}', [(":", 1), (":", 2)]),
                        # an escaped colon that stands in for the colon of the dropped pair
                        ('{"a": 1, "a": "\\u003a"}', [("a", 1), ("a", ":")]),
                        ('{"a:b": {"c": 1, "c": 2}}', [("a:b", JObject([("c", 1), ("c", 2)]))])]:
        value = loads_relaxed(text, dicts=True)
        assert type(value) is JObject and value == JObject(pairs)
    assert loads_relaxed('{"a:b": [1, {"c": ":"}]}', dicts=True) == {"a:b": [1, {"c": ":"}]}  # distinct: a dict


def test_a_lone_surrogate_orjson_refuses_takes_the_decoders_way():
    text = '{"a\ud800": [1, "\udfff"]}'  # characters, not escapes: a policy's text may hold them
    assert loads_relaxed(text, dicts=True) == loads_relaxed(text) == JObject([("a\ud800", [1, "\udfff"])])


def test_the_standard_mix_graph_texts_read_as_the_same_graphs_parsed_either_way():
    mix = [item for item, _ in labelled_mix(600, seed=3)]
    texts = [g for item in mix if "graph" in item["reference"]
             for g in parse_completion(item["completion"]).graphs]
    assert len(texts) > 100
    as_dicts = 0
    for text in texts:
        try:
            pairs = read_graph(loads_relaxed(text))
        except (GraphError, RelaxedJSONError, TooDeepError) as exc:
            with pytest.raises(type(exc)):
                read_graph(loads_relaxed(text, dicts=True))
            continue
        value = loads_relaxed(text, dicts=True)
        as_dicts += type(value) is dict
        assert read_graph(value) == pairs
    assert as_dicts > len(texts) // 2  # the fast way is taken for most of them


@settings(max_examples=300, deadline=None)
@given(JSON_TEXT)
def test_the_brackets_of_strict_json_are_found_alike_either_way(text):
    with contextlib.suppress(orjson.JSONDecodeError):
        orjson.loads(text)
        assert relaxed_json._strict_brackets(text) == relaxed_json._brackets(text)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(b"[]{}()"), max_size=200).map(bytes), st.integers(0, 8))
def test_nesting_is_measured_as_the_running_count_of_brackets(brackets, limit):
    depth, deepest = 0, 0
    for b in brackets:
        depth += 1 if b in b"[{(" else -1
        deepest = max(deepest, depth)
    assert relaxed_json._too_deep(brackets, limit) == (deepest > limit)


@pytest.mark.parametrize("dicts", [False, True])
@pytest.mark.parametrize(("text", "too_deep"), [
    ("[" * 64 + '"]]]"' + "]" * 64, False),
    ("[" * 65 + "]" * 65, True),
    ('{"a": ' * 65 + "1" + "}" * 65, True),
    ('{"a": ' * 64 + '"}}}}"' + "}" * 64, False),
    ("[" * 65 + '"\\n"' + "]" * 65, True),  # a backslash: strings found by the pattern
    ("[[]" * 100 + "]" * 100, True),  # 101 levels; one pass of dropping "[]" pairs leaves 100 openers
    ("[" + "[]," * 100 + "[]]", False),
    ("[" * 300 + "]" * 300, True),  # deeper than orjson writes back
])
def test_nesting_deeper_than_64_is_refused_either_way(text, too_deep, dicts):
    if too_deep:
        with pytest.raises(TooDeepError):
            loads_relaxed(text, dicts=dicts)
    else:
        assert loads_relaxed(text, dicts=dicts) is not None


QUOTED = st.lists(st.sampled_from(['"', "'", "\\", "[", "]", "{", "(", ")", "}", "a", " ", "\n", "\u00e9"]),
                  max_size=40).map("".join)
PLAIN_STRINGS = re.compile(r""""(?:[^"\\]|\\.)*+"|'(?:[^'\\]|\\.)*+'""", re.DOTALL)


@settings(max_examples=500, deadline=None)
@given(QUOTED)
def test_unrolled_string_pattern_finds_what_the_plain_one_finds(text):
    """The tokenizer's string pattern is the plain `"(?:[^"\\]|\\.)*+"` unrolled for speed: same matches."""
    assert [m.span() for m in relaxed_json._STRINGS.finditer(text)] == [
        m.span() for m in PLAIN_STRINGS.finditer(text)]


@settings(max_examples=500, deadline=None)
@given(QUOTED)
def test_depth_of_the_brackets_outside_strings(text):
    outside = PLAIN_STRINGS.sub("", text)
    depth, deepest = 0, 0
    for c in outside:
        depth += (c in "[{(") - (c in "]})")
        deepest = max(deepest, depth)
    brackets = relaxed_json._brackets(text)
    assert brackets.decode() == "".join(c for c in outside if c in "[]{}()")
    for limit in (0, 1, 2, 3):
        assert relaxed_json._too_deep(brackets, limit) == (deepest > limit)


CODE = st.lists(st.sampled_from(["a", "Z", "_", "k1", "9", ".", ":", " ", "\n", "\t", ",", "]", "}", "[", "{", "(",
                                  ")", "\u00e9", "-", "e5"]), max_size=40).map("".join)


@settings(max_examples=500, deadline=None)
@given(CODE)
def test_code_rewrite_is_the_plain_one(segment):
    """Bare keys quoted by split and join, trailing commas dropped by a possessive lookahead: the same text
    as the plain substitutions."""
    plain = re.sub(r"(?<![A-Za-z0-9_.])[A-Za-z_][A-Za-z0-9_]*+(?=\s*:)", r'"\g<0>"', segment.translate(str.maketrans("()", "[]")))
    plain = re.sub(r",(?=\s*[\]}])", "", plain)
    assert relaxed_json._rewrite_code(segment) == plain


def spec_blocks(tag: str, text: str) -> list[str]:
    """reward-spec section 1, literally: the non-greedy, dot-matches-newline regex, left to right."""
    return re.findall(f"<{tag}>(.*?)</{tag}>", text, re.S)


def spec_parse(text: str) -> ParsedCompletion:
    """The spec's reading of a completion, written as plainly as it says it: the oracle for the parser."""
    thinks = spec_blocks("think", text)
    think = thinks[0] if len(thinks) == 1 else None
    stripped = text.strip()
    whole = re.fullmatch(r"<think>(.*?)</think>\s*<answer>(.*?)</answer>", stripped, re.S)
    single = all(stripped.count(tag) == 1 for tag in ("<think>", "</think>", "<answer>", "</answer>"))
    fmt = bool(whole and single and whole.group(2).strip())
    graphs = spec_blocks("graph", think)[:2] if think is not None else []
    return ParsedCompletion(fmt, spec_blocks("answer", text)[:2], think, graphs)


def test_blocks_like_the_nongreedy_regex():
    for text in ["<answer>1</answer><answer>2</answer>", "<answer><answer>x</answer></answer>", "<answer>open",
                 "</answer><answer>y</answer>", "<answer>1</answer><answer>"]:
        assert parse_completion(text).answers == spec_blocks("answer", text)[:2]


@pytest.mark.parametrize(
    ("text", "ok"),
    [("<think>x</think><answer>A</answer>", True), ("  <think>x</think>\n <answer> A </answer>\n", True),
     ("<think>x</think><answer> </answer>", False), ("<think>x</think>y<answer>A</answer>", False),
     ("<think>x</think><answer>A</answer>.", False), ("<THINK>x</THINK><answer>A</answer>", False),
     ("<think><think>x</think><answer>A</answer>", False), ("<think>x</think><answer>A</answer></answer>", False),
     ("<answer>A</answer><think>x</think>", False)],
)
def test_format(text, ok):
    assert parse_completion(text).format is ok


@pytest.mark.parametrize(
    "text",
    ["<answer>" * 30000, "<think>" * 30000 + "<answer>A</answer>", "<graph>" * 3000,
     "<think><graph>" + "'" + "\\\\" * 10000 + "</graph></think><answer>A</answer>",
     "<think><graph>" + "{" * 16000 + "</graph></think><answer>A</answer>"],
)
def test_hostile_inputs_are_bounded(text):
    start = time.perf_counter()
    check_result(score(text, REFERENCES[0]))
    assert time.perf_counter() - start < 2.0  # a generous guard against quadratic blow-ups, not a benchmark


@settings(max_examples=500, deadline=None)
@given(TEXT)
def test_the_parser_reads_as_the_spec_regex_does(text):
    assert parse_completion(text) == spec_parse(text)
    wrapped = f"  <think>{text}</think>\n<answer>{text[:5]}B</answer> "
    assert parse_completion(wrapped) == spec_parse(wrapped)
