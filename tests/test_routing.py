"""Header splitting, position shifting and deduplication keys (pure functions)."""

from __future__ import annotations

from typing import Any

import pytest

from leanpool._routing import dedup_key, header_split_for, shift_positions, split_header
from leanpool.protocol import Command, FileCommand


def test_split_plain_header() -> None:
    split = split_header("import Mathlib\nimport Aesop\n\ntheorem t : True := trivial")
    assert split is not None
    assert split.key == ("Mathlib", "Aesop")
    assert split.header == "import Mathlib\nimport Aesop"
    assert split.body == "theorem t : True := trivial"
    assert split.line_offset == 3


def test_comments_and_blank_lines_belong_to_the_header() -> None:
    text = "-- intro\n/- block\ncomment -/\nimport A B\n\n  -- more\nexample : True := trivial\n"
    split = split_header(text)
    assert split is not None
    assert split.key == ("A", "B")
    assert split.line_offset == 6
    assert split.body.startswith("example")


def test_same_modules_same_key_despite_formatting() -> None:
    a = split_header("import A\nimport B\ndef x := 1")
    b = split_header("-- hi\nimport A B\n\ndef y := 2")
    assert a is not None and b is not None and a.key == b.key


@pytest.mark.parametrize(
    "text",
    [
        "def x := 1",  # no header
        "import Mathlib\n",  # nothing but the header
        "/-! module doc -/\nimport A\ndef x := 1",  # doc comment first: a command in Lean
        "module\nimport A\ndef x := 1",  # new module system: left alone
        "public import A\ndef x := 1",
        "import A theorem x : True := trivial",  # not a module name
        "/- unterminated\nimport A\ndef x := 1",
    ],
)
def test_no_split(text: str) -> None:
    assert split_header(text) is None


def test_only_envless_commands_are_split() -> None:
    assert header_split_for(Command(cmd="import A\ndef x := 1")) is not None
    assert header_split_for(Command(cmd="import A\ndef x := 1", env=3)) is None
    assert header_split_for(FileCommand(path="x.lean")) is None


def test_shift_positions_everywhere_but_line_zero() -> None:
    response = {
        "messages": [
            {"severity": "error", "pos": {"line": 1, "column": 2}, "endPos": None, "data": "x"},
            {
                "severity": "info",
                "pos": {"line": 0, "column": 0},
                "endPos": {"line": 0, "column": 0},
                "data": "tactic mode",
            },
        ],
        "sorries": [
            {
                "proofState": 0,
                "pos": {"line": 2, "column": 0},
                "endPos": {"line": 2, "column": 5},
                "goal": "⊢ True",
            }
        ],
        "tactics": [
            {
                "tactic": "rfl",
                "proofState": 1,
                "pos": {"line": 3, "column": 0},
                "endPos": {"line": 3, "column": 3},
                "goals": "⊢ True",
                "usedConstants": [],
            }
        ],
        "infotree": [
            {
                "kind": "TacticInfo",
                "node": {
                    "stx": {
                        "range": {
                            "synthetic": False,
                            "start": {"line": 1, "column": 0},
                            "finish": {"line": 1, "column": 4},
                        }
                    }
                },
                "children": [],
            }
        ],
        "env": 0,
    }
    shifted = shift_positions(response, 4)
    assert shifted["messages"][0]["pos"] == {"line": 5, "column": 2}
    assert shifted["messages"][0]["endPos"] is None
    assert shifted["messages"][1]["pos"] == {"line": 0, "column": 0}
    assert shifted["sorries"][0]["pos"]["line"] == 6
    assert shifted["tactics"][0]["endPos"]["line"] == 7
    rng = shifted["infotree"][0]["node"]["stx"]["range"]
    assert (rng["start"]["line"], rng["finish"]["line"]) == (5, 5)
    assert response["messages"][0]["pos"]["line"] == 1  # the original is untouched


def test_positions_move_in_info_trees_of_any_depth() -> None:
    depth = 50_000  # Lean writes info trees of any depth; a recursive copy stops near 1,000
    stx = {"range": {"synthetic": False, "start": {"line": 2, "column": 0}, "finish": None}}
    tree: dict[str, Any] = {"kind": "TermInfo", "node": {"stx": stx}, "children": []}
    for _ in range(depth - 1):
        tree = {"kind": "TermInfo", "node": {"stx": stx}, "children": [{"goalState": "g"}, tree]}
    shifted = shift_positions({"infotree": [tree], "env": 0}, 3)["infotree"][0]
    for level in range(depth):
        assert shifted["node"]["stx"]["range"]["start"] == {"line": 5, "column": 0}
        assert shifted["node"]["stx"]["range"]["finish"] is None
        if level < depth - 1:
            assert shifted["children"][0] == {"goalState": "g"}
            shifted = shifted["children"][1]
    assert shifted["children"] == []
    assert stx["range"]["start"] == {"line": 2, "column": 0}  # the original is untouched


def test_dedup_key_ignores_key_order_but_not_content_or_timeout() -> None:
    a = dedup_key(Command(cmd="#eval 1", all_tactics=True), 5.0)
    b = dedup_key(Command(all_tactics=True, cmd="#eval 1"), 5.0)
    assert a == b
    assert a != dedup_key(Command(cmd="#eval 2", all_tactics=True), 5.0)
    assert a != dedup_key(Command(cmd="#eval 1", all_tactics=True), 6.0)
