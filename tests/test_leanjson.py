"""`render_lean_json` against Lean's own output: every transcript response, byte for byte."""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from transcripts import Transcript, transcript_params

from leanpool._leanjson import escape_lean_string, lean_number_text, loads_deep, render_lean_json


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


def test_values_nested_deeper_than_python_recursion_render_and_load() -> None:
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
    assert sys.getrecursionlimit() < 20_000  # the raised limit was only temporary
