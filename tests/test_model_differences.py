"""The deliberate model differences from LeanInteract that docs/migrating.md lists ("Response and
info-tree models"), each shown on both libraries: the table stays true."""

from __future__ import annotations

from typing import Any

import pytest

li = pytest.importorskip(
    "lean_interact.interface", reason="lean-interact 0.11.6 (the [bench] extra) is not installed"
)
lp = pytest.importorskip("leanpool.interface")


def _stx(line: int = 1, start: int = 0, end: int = 9, **extra: Any) -> dict[str, Any]:
    return {
        "pp": "x",
        "range": {
            "synthetic": False,
            "start": {"line": line, "column": start},
            "finish": {"line": line, "column": end},
        },
        "kind": "k",
        "argKinds": [],
        **extra,
    }


def _node(kind: str, node: dict[str, Any] | None, *children: Any) -> dict[str, Any]:
    return {"kind": kind, "node": node, "children": list(children)}


TERM = {"stx": _stx(), "elaborator": "e", "expr": "x", "isBinder": False}
TACTIC = {"stx": _stx(), "name": "t", "goalsBefore": [], "goalsAfter": []}


def _theorem(start: int, end: int) -> dict[str, Any]:
    stx = _stx(
        start=start,
        end=end,
        kind="Lean.Parser.Command.declaration",
        argKinds=["Lean.Parser.Command.declModifiers", "Lean.Parser.Command.theorem"],
    )
    return _node("CommandInfo", {"stx": stx, "elaborator": "e"})


def test_dfs_walk_visits_children_in_source_order() -> None:
    tree = _node(
        "CommandInfo",
        {"stx": _stx(), "elaborator": "e"},
        _node("TermInfo", TERM),
        _node("TacticInfo", TACTIC),
    )
    assert [t.kind for t in li.InfoTree.model_validate(tree).dfs_walk()] == [
        "CommandInfo",
        "TacticInfo",
        "TermInfo",
    ]
    assert [t.kind for t in lp.InfoTree.model_validate(tree).dfs_walk()] == [
        "CommandInfo",
        "TermInfo",
        "TacticInfo",
    ]


@pytest.mark.parametrize(
    "tree",
    [
        _node("DocElabInfo", None),  # a kind of a later Lean release
        _node("TermInfo", TERM, {"goalState": "⊢ Nat"}),  # an unassigned hole
        _node("CommandInfo", {"stx": _stx(), "elaborator": None}),  # no elaborator
        _node("TacticInfo", {**TACTIC, "stx": {"pp": "x", "range": _stx()["range"]}}),  # old REPL
    ],
    ids=["unknown_kind", "hole", "null_elaborator", "syntax_without_kind"],
)
def test_real_trees_leaninteract_refuses_are_read(tree: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        li.InfoTree.model_validate(tree)
    parsed = lp.InfoTree.model_validate(tree)
    assert parsed.to_repl_dict() == tree


def test_a_hole_is_an_info_tree_hole() -> None:
    parsed = lp.InfoTree.model_validate(_node("TermInfo", TERM, {"goalState": "⊢ Nat"}))
    (hole,) = parsed.children
    assert isinstance(hole, lp.InfoTreeHole) and hole.goal_state == "⊢ Nat"
    assert [t.kind for t in parsed.dfs_walk()] == ["TermInfo"]


def test_proof_status_is_optional() -> None:
    wire = {"proofState": 1, "goals": []}
    with pytest.raises(ValueError):
        li.ProofStepResponse.model_validate(wire)
    response = lp.ProofStepResponse.model_validate(wire)
    assert response.proof_status == "" and not response.is_completed


def test_helpers_that_raised_on_real_output() -> None:
    no_node = _node("MacroExpansionInfo", None, _node("CommandInfo", None), _theorem(0, 9))
    with pytest.raises(AssertionError):
        list(li.InfoTree.model_validate(no_node).commands())
    assert len(list(lp.InfoTree.model_validate(no_node).commands())) == 1
    no_args = _node("CommandInfo", {"stx": _stx(kind="Lean.Parser.Command.declaration"),
                                    "elaborator": "e"})  # fmt: skip
    with pytest.raises(IndexError):
        list(li.InfoTree.model_validate(no_args).theorems())
    assert list(lp.InfoTree.model_validate(no_args).theorems()) == []
    twice = _node("MacroExpansionInfo", None, _theorem(0, 9), _theorem(0, 9))
    sorry = {"goal": "⊢ True", "proofState": 0, "pos": {"line": 1, "column": 2},
             "endPos": {"line": 1, "column": 7}}  # fmt: skip
    with pytest.raises(AssertionError):
        li.InfoTree.model_validate(twice).theorem_for_sorry(li.Sorry.model_validate(sorry))
    found = lp.InfoTree.model_validate(twice).theorem_for_sorry(lp.Sorry.model_validate(sorry))
    assert found is not None and found.kind == "CommandInfo"


def test_pp_up_to_counts_columns_from_the_source_line() -> None:
    tree = _node(
        "TacticInfo",
        {**TACTIC, "stx": {**_stx(start=4), "pp": "abc\ndef",
                           "range": {"synthetic": False, "start": {"line": 1, "column": 4},
                                     "finish": {"line": 2, "column": 3}}}},
    )  # fmt: skip
    assert li.InfoTree.model_validate(tree).pp_up_to(li.Pos(line=1, column=6)) == "abc\n"
    assert lp.InfoTree.model_validate(tree).pp_up_to(lp.Pos(line=1, column=6)) == "ab"


def test_response_fields_are_strict_request_fields_lax() -> None:
    assert li.Sorry(goal="x", proofState="3").proof_state == 3
    with pytest.raises(ValueError):
        lp.Sorry(goal="x", proofState="3")
    assert lp.ProofStep(proofState="3", tactic="rfl").proof_state == 3


def test_repr_lists_fields_in_declaration_order() -> None:
    message = {"pos": {"line": 1, "column": 0}, "endPos": None, "severity": "info", "data": "x"}
    assert repr(lp.Message.model_validate(message)) == (
        "Message(start_pos=Pos(line=1, column=0), end_pos=None, severity='info', data='x')"
    )
