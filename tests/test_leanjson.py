"""`render_lean_json` against Lean's own output: every transcript response, byte for byte."""

from __future__ import annotations

import json
import math
import sys
import tracemalloc
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from transcripts import Transcript, transcript_params

from leanpool._leanjson import (
    escape_lean_string,
    lean_number_text,
    loads_deep,
    loads_iteratively,
    render_lean_json,
)


@pytest.mark.parametrize("transcript", transcript_params())
def test_every_transcript_response_re_renders_byte_for_byte(transcript: Transcript) -> None:
    blocks = transcript.response_blocks()
    assert blocks, "a transcript without responses tests nothing"
    for block in blocks:
        assert render_lean_json(json.loads(block)) == block


def test_keys_come_out_in_descending_order_whatever_the_dict_order() -> None:
    assert render_lean_json({"env": 0, "sorries": [], "messages": []}) == (
        '{"sorries": [], "messages": [], "env": 0}'
    )
    assert render_lean_json({"proofState": 1, "proofStatus": "x", "goals": []}) == (
        '{"proofStatus": "x", "proofState": 1, "goals": []}'
    )


def test_small_values_fit_on_one_line_and_empty_containers_are_tight() -> None:
    assert render_lean_json({"env": 0}) == '{"env": 0}'
    assert render_lean_json({}) == "{}"
    assert render_lean_json([]) == "[]"
    assert render_lean_json([None, True, False, 1, "a"]) == '[null, true, false, 1, "a"]'


def test_a_group_breaks_with_one_space_nesting_per_bracket() -> None:
    value = {"goals": ["a" * 40, "b" * 40]}
    assert render_lean_json(value) == '{"goals":\n ["' + "a" * 40 + '",\n  "' + "b" * 40 + '"]}'


def test_fit_test_counts_the_text_after_the_group_up_to_the_next_break() -> None:
    # The pair "k": [...] alone is 78 columns and fits in 80; with the closing `}` that follows
    # it on the same line it is 79 + 1 = 80 columns: still fits. Two more characters do not.
    fits = {"k": ["x" * 69]}
    assert "\n" not in render_lean_json(fits)
    too_long = {"k": ["x" * 71]}
    assert render_lean_json(too_long) == '{"k":\n ["' + "x" * 71 + '"]}'


def test_width_is_measured_in_code_points_not_bytes() -> None:
    # Two strings of 36 three-byte characters: 80 columns (fits exactly), 224 bytes.
    fits = ["⊢" * 36, "⊢" * 36]
    assert render_lean_json(fits) == json.dumps(fits, ensure_ascii=False)
    assert len(render_lean_json(fits)) == 80
    one_more = ["⊢" * 36, "⊢" * 37]
    assert render_lean_json(one_more) == f'["{"⊢" * 36}",\n "{"⊢" * 37}"]'


def test_a_single_long_token_is_never_broken() -> None:
    assert render_lean_json(["⊢" * 200]) == f'["{"⊢" * 200}"]'


def test_width_parameter_changes_the_layout() -> None:
    value = {"a": 1, "b": 2}
    assert render_lean_json(value, width=80) == '{"b": 2, "a": 1}'
    assert render_lean_json(value, width=10) == '{"b": 2,\n "a": 1}'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('say "hi"', '"say \\"hi\\""'),
        ("back\\slash", '"back\\\\slash"'),
        ("line\nbreak\r", '"line\\nbreak\\r"'),
        ("\x00\x01\x1f\t", '"\\u0000\\u0001\\u001f\\u0009"'),
        ("\x1b[0m", '"\\u001b[0m"'),
        ("\x7f DEL and \u2028 \u0085 stay raw", '"\x7f DEL and \u2028 \u0085 stay raw"'),
        ("⊢ ∀ x ∈ ℕ, 𝓤 x", '"⊢ ∀ x ∈ ℕ, 𝓤 x"'),
    ],
)
def test_strings_are_escaped_as_lean_does(text: str, expected: str) -> None:
    assert escape_lean_string(text) == expected
    assert json.loads(expected) == text


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        (0, "0"),
        (-12, "-12"),
        (10**30, str(10**30)),
        (1.0, "1"),
        (1.5, "1.5"),
        (-0.25, "-0.25"),
        (Decimal("1e3"), "1000"),
        (Decimal("1.50"), "1.5"),
        (Decimal("0.000000000001"), "0.0000000001e-2"),  # sic: Lean's own rendering
    ],
)
def test_numbers_follow_lean_json_number_to_string(number: Any, expected: str) -> None:
    assert lean_number_text(number) == expected


def test_values_that_are_not_json_are_refused() -> None:
    with pytest.raises(TypeError):
        render_lean_json({"a": object()})
    with pytest.raises(TypeError):
        render_lean_json({1: "not a string key"})
    with pytest.raises(ValueError):
        render_lean_json(float("nan"))


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=30,
)


@given(_json_values, st.integers(min_value=1, max_value=120))
def test_output_is_json_that_decodes_to_the_value_and_has_no_blank_line(
    value: Any, width: int
) -> None:
    rendered = render_lean_json(value, width)
    assert json.loads(rendered) == value
    assert all(line.strip() for line in rendered.split("\n"))  # the REPL's framing relies on it


def test_a_multi_megabyte_message_renders_on_one_line() -> None:
    data = "y" * (4 * 1024 * 1024)
    rendered = render_lean_json({"messages": [{"data": data, "severity": "info"}], "env": 0})
    assert max(len(line) for line in rendered.split("\n")) > len(data)
    assert json.loads(rendered)["messages"][0]["data"] == data


def test_values_nested_deeper_than_python_recursion_render_and_load(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _forbid_recursion_limit_changes(monkeypatch)
    depth = 5000  # json.loads and a recursive renderer both stop near 1000 levels
    value: Any = {"children": []}
    for _ in range(depth):
        value = {"children": [value], "kind": "k"}
    text = render_lean_json(value)
    assert text.startswith('{"kind": "k",\n "children":\n [{"kind": "k",')
    assert text.endswith("[]}" + "]}" * depth)  # past column 80 every group breaks
    loaded = loads_deep(text)
    for _ in range(depth):
        loaded = loaded["children"][0]
    assert loaded == {"children": []}


# --------------------------------------------------------------------------- deep JSON
def _forbid_recursion_limit_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(limit: int) -> None:
        raise AssertionError(f"sys.setrecursionlimit({limit}) called")

    monkeypatch.setattr(sys, "setrecursionlimit", refuse)


_NODE = (
    '{"stx": {"range": {"synthetic": false, "start": {"line": 1, "column": 8}, '
    '"finish": {"line": 1, "column": 9}}, "pp": "x", "kind": "ident", "argKinds": []}, '
    '"isBinder": false, "expr": "x", "expectedType": "Nat", "elaborator": null}'
)


def _info_tree_chain(levels: int) -> str:
    """Compact JSON `levels` deep (objects and arrays alternate), shaped as the REPL's info tree
    for a chain ``x + x + ...``: each node's first child is the rest of the chain.

    Compact on purpose: Lean indents each level by one more column, so its own rendering of
    100,000 levels would be gigabytes."""
    pairs = levels // 2
    head = '{"node": ' + _NODE + ', "kind": "TermInfo", "children": ['
    tail = ', {"goalState": "⊢ Nat"}]}'
    return head * pairs + '{"node": null, "kind": "TermInfo", "children": []}' + tail * pairs


def _walk_chain(value: Any, levels: int) -> Any:
    for _ in range(levels // 2):
        assert value["kind"] == "TermInfo" and value["node"]["expr"] == "x"
        assert value["children"][1] == {"goalState": "⊢ Nat"}
        value = value["children"][0]
    return value


def test_100000_levels_load_without_touching_the_recursion_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _forbid_recursion_limit_changes(monkeypatch)
    text = _info_tree_chain(100_000)
    with pytest.raises(RecursionError):  # what the fast path alone does, on every Python
        json.loads(text)
    loaded = loads_deep(text)
    assert _walk_chain(loaded, 100_000) == {"node": None, "kind": "TermInfo", "children": []}
    assert _walk_chain(loads_deep(text.encode("utf-16")), 100_000)["children"] == []


def test_deep_loading_memory_grows_linearly_with_depth() -> None:
    def peak_bytes(levels: int) -> int:
        text = '{"c": [' * (levels // 2) + "0" + "]}" * (levels // 2)
        tracemalloc.start()
        try:
            loaded = loads_deep(text)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        for _ in range(levels // 2):
            [loaded] = loaded["c"]
        assert loaded == 0
        return peak

    small, large = peak_bytes(25_000), peak_bytes(100_000)
    # 4x the levels: about 4x the memory (the values and the stack); quadratic would be 16x.
    assert 3.0 < large / small < 5.0, (small, large)
    assert large < 100_000 * 500, large  # a dict or a list per level, and its stack entry


@pytest.mark.parametrize(
    "text",
    [
        "0",
        "-0",
        "-0.0",
        "1E5",
        "2e-3",
        "1e400",
        "-1e400",
        "0.1e-400",
        "1" * 40,
        "-" + "9" * 30,
        "NaN",
        "Infinity",
        "-Infinity",
        '"\\ud800"',
        '"\\udc00x"',
        '"\\ud83d\\ude00"',
        '"\\n\\t\\"\\\\\\/\\u0041"',
        '"⊢ raw \u2028 and \u0085"',
        '{"a": 1, "b": 2, "a": 3}',
        '{"k\\"ey": {"": [], "\\u00e9": {}}}',
        ' \r\n\t[ 1 , {"x" : [ ] } ]\n',
    ],
)
def test_iterative_decoder_returns_what_json_loads_returns(text: str) -> None:
    expected = _outcome(json.loads, text)
    assert _outcome(loads_iteratively, text) == expected
    deep = loads_deep("[" * 20_000 + text + "]" * 20_000)  # past the fast path on every Python
    for _ in range(20_000):
        assert type(deep) is list and len(deep) == 1
        [deep] = deep
    assert ("value", _typed(deep)) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "[",
        "[1,]",
        '{"a": 1,}',
        "[1 2]",
        '{"a" 1}',
        '{"a": 1 "b": 2}',
        "{1: 2}",
        "{,}",
        "[,1]",
        '["a\tb"]',
        '["unterminated',
        "01",
        "1.",
        "-",
        "tru",
        "[1] x",
        '{"a": }',
        "[" + "1" * 5000 + "]",  # more digits than int() converts (a ValueError, not JSON's)
        "\ufeff[]",
    ],
)
def test_iterative_decoder_fails_where_json_loads_fails(text: str) -> None:
    expected = _outcome(json.loads, text)
    assert expected[0] == "error"
    assert _outcome(loads_iteratively, text) == expected


def test_malformed_deep_input_fails_at_the_same_place_as_json_loads_would() -> None:
    text = _info_tree_chain(100_000)
    colon = text.index('"goalState": ', len(text) // 2) + len('"goalState"')
    broken = text[:colon] + text[colon + 1 :]  # a key without its colon, 50,000 levels down
    with pytest.raises(json.JSONDecodeError) as raised:
        loads_deep(broken)
    assert (raised.value.msg, raised.value.pos) == ("Expecting ':' delimiter", colon + 1)
    with pytest.raises(json.JSONDecodeError, match="Extra data"):
        loads_deep(text + " []")
    with pytest.raises(json.JSONDecodeError, match="Expecting ',' delimiter"):
        loads_deep(text[:-1])  # one closing brace short


_json_texts = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=20,
).flatmap(
    lambda value: st.sampled_from(
        [
            json.dumps(value),
            json.dumps(value, ensure_ascii=False, indent=1),
            json.dumps(value, separators=(",", ":")),
            json.dumps(value, indent="\t", ensure_ascii=False),
        ]
    )
)


@given(_json_texts, st.integers(min_value=0, max_value=200), st.sampled_from(' ,:[]{}"x0\\'))
def test_iterative_decoder_agrees_with_json_loads_on_any_text(
    text: str, cut: int, junk: str
) -> None:
    assert _outcome(loads_iteratively, text) == _outcome(json.loads, text)
    broken = text[:cut] + junk + text[cut:]  # usually malformed: the same error, same place
    assert _outcome(loads_iteratively, broken) == _outcome(json.loads, broken)
    dropped = text[:cut] + text[cut + 1 :]
    assert _outcome(loads_iteratively, dropped) == _outcome(json.loads, dropped)


def _outcome(decode: Any, text: str) -> tuple[Any, ...]:
    """A comparable result: the value with exact types (so 0, 0.0 and -0.0 differ, NaN equals
    NaN), or the error's type, message and position."""
    try:
        value = decode(text)
    except json.JSONDecodeError as exc:
        return ("error", "JSONDecodeError", exc.msg, exc.pos)
    except ValueError as exc:
        return ("error", "ValueError", str(exc))
    return ("value", _typed(value))


def _typed(value: Any) -> Any:
    if isinstance(value, float):
        return ("float", "nan" if math.isnan(value) else repr(value))
    if isinstance(value, list):
        return ("list", [_typed(item) for item in value])
    if isinstance(value, dict):
        return ("dict", [(key, _typed(item)) for key, item in value.items()])
    return (type(value).__name__, value)
