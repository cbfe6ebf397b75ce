"""Models, wire dicts, request/response classification and the response helpers."""

from __future__ import annotations

import copy
import importlib
import json
import math
import pickle
from typing import Any

import pytest
from pydantic import ValidationError
from transcripts import require_transcripts

from leanpool._errors import ProtocolError, RequestError
from leanpool._leanjson import loads_deep, render_lean_json
from leanpool.protocol import (
    BaseREPLResponse,
    Command,
    CommandNode,
    CommandResponse,
    FileCommand,
    InfoTree,
    InfoTreeHole,
    InfoTreeOptions,
    LeanError,
    Message,
    PickleEnvironment,
    PickleProofState,
    Pos,
    ProofStep,
    ProofStepResponse,
    Range,
    Sorry,
    TacticNode,
    TermNode,
    UnpickleEnvironment,
    UnpickleProofState,
    encode_request,
    message_intersects_code,
    parse_request,
    parse_response,
)


def pos(line: int, column: int) -> dict[str, int]:
    return {"line": line, "column": column}


# ----------------------------------------------------------------------------- request models


def test_lean_interact_names_and_aliases_both_construct() -> None:
    by_name = ProofStep(proof_state=3, tactic="simp")
    by_alias = ProofStep(proofState=3, tactic="simp")  # type: ignore[call-arg]
    assert by_name == by_alias
    assert by_name.to_repl_dict() == {"proofState": 3, "tactic": "simp"}
    command = Command(cmd="#check 1", env=2, all_tactics=True, infotree=InfoTreeOptions.full)
    assert command.to_repl_dict() == {
        "cmd": "#check 1",
        "env": 2,
        "allTactics": True,
        "infotree": "full",
    }


def test_requests_omit_absent_fields_and_keep_unknown_keys() -> None:
    assert Command(cmd="x").to_repl_dict() == {"cmd": "x"}
    assert UnpickleProofState(unpickle_proof_state_from="a.olean").to_repl_dict() == {
        "unpickleProofStateFrom": "a.olean"
    }
    with_extra = Command(cmd="x", gc=True)
    assert with_extra.to_repl_dict() == {"cmd": "x", "gc": True}


def test_set_options_go_out_as_nested_lists() -> None:
    command = Command(cmd="x", set_options=[(["Elab", "async"], True)], incrementality=True)
    wire = command.to_repl_dict()
    assert wire == {"cmd": "x", "setOptions": [[["Elab", "async"], True]], "incrementality": True}
    assert parse_request(wire) == command


def test_models_are_frozen() -> None:
    command = Command(cmd="x")
    with pytest.raises(ValidationError):
        command.cmd = "y"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("model", "fields"),
    [
        (Command, {"cmd": ""}),
        (FileCommand, {"path": ""}),
        (ProofStep, {"proof_state": 0, "tactic": ""}),
    ],
)
def test_empty_text_is_refused(model: Any, fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="at least 1 character"):
        model(**fields)


# LeanInteract's request models are plain pydantic `int`/`bool`/`str` fields: lax conversion.
# Each row was observed on lean-interact 0.11.6 (its model_dump(exclude_none=True, by_alias=True),
# which its server sends with json.dumps); test_request_models_match_leaninteract re-checks them.
LAX_CONVERSIONS: list[tuple[type[Any], dict[str, Any], dict[str, Any]]] = [
    (Command, {"cmd": "x", "env": "3"}, {"cmd": "x", "env": 3}),
    (Command, {"cmd": "x", "env": " 3 "}, {"cmd": "x", "env": 3}),
    (Command, {"cmd": "x", "env": "+3"}, {"cmd": "x", "env": 3}),
    (Command, {"cmd": "x", "env": "3_000"}, {"cmd": "x", "env": 3000}),
    (Command, {"cmd": "x", "env": "3.0"}, {"cmd": "x", "env": 3}),
    (Command, {"cmd": "x", "env": 3.0}, {"cmd": "x", "env": 3}),
    (Command, {"cmd": "x", "env": True}, {"cmd": "x", "env": 1}),
    (Command, {"cmd": "x", "env": b"3"}, {"cmd": "x", "env": 3}),
    (ProofStep, {"proof_state": "2", "tactic": "simp"}, {"proofState": 2, "tactic": "simp"}),
    (ProofStep, {"proofState": "2", "tactic": "simp"}, {"proofState": 2, "tactic": "simp"}),
    (PickleEnvironment, {"env": "0", "pickle_to": "e.olean"}, {"env": 0, "pickleTo": "e.olean"}),
    (PickleProofState, {"proof_state": 1.0, "pickle_to": "p"}, {"proofState": 1, "pickleTo": "p"}),
    (UnpickleProofState, {"unpickle_proof_state_from": "p", "env": "4"}, {"env": 4}),
    (FileCommand, {"path": "f.lean", "env": "2"}, {"path": "f.lean", "env": 2}),
    (Command, {"cmd": "x", "all_tactics": 1}, {"cmd": "x", "allTactics": True}),
    (Command, {"cmd": "x", "all_tactics": "true"}, {"cmd": "x", "allTactics": True}),
    (Command, {"cmd": "x", "root_goals": "yes"}, {"cmd": "x", "rootGoals": True}),
    (Command, {"cmd": "x", "declarations": "off"}, {"cmd": "x", "declarations": False}),
    (Command, {"cmd": "x", "incrementality": 0.0}, {"cmd": "x", "incrementality": False}),
    (Command, {"cmd": b"#eval 1"}, {"cmd": "#eval 1"}),
    (Command, {"cmd": "x", "set_options": [[["Elab", "async"], True]]},
     {"cmd": "x", "setOptions": [[["Elab", "async"], True]]}),
]  # fmt: skip


@pytest.mark.parametrize(("model", "fields", "wire"), LAX_CONVERSIONS)
def test_request_fields_convert_like_leaninteract(
    model: type[Any], fields: dict[str, Any], wire: dict[str, Any]
) -> None:
    request = model(**fields)
    sent = request.to_repl_dict()
    assert {key: sent[key] for key in wire} == wire
    for key, value in wire.items():  # the JSON type the REPL needs, not just an equal value
        assert type(sent[key]) is type(value)
    assert encode_request(request) == json.dumps(sent, ensure_ascii=False).encode() + b"\n\n"


# What cannot be converted is refused where the model is built (LeanInteract's messages, observed
# on 0.11.6): nothing reaches a REPL.
REFUSED: list[tuple[type[Any], dict[str, Any], str, str]] = [
    (Command, {"cmd": "x", "env": "abc"}, "env", "unable to parse string as an integer"),
    (Command, {"cmd": "x", "env": "1e3"}, "env", "unable to parse string as an integer"),
    (Command, {"cmd": "x", "env": "3.5"}, "env", "unable to parse string as an integer"),
    (Command, {"cmd": "x", "env": 3.5}, "env", "got a number with a fractional part"),
    (Command, {"cmd": "x", "env": math.nan}, "env", "Input should be a finite number"),
    (Command, {"cmd": "x", "env": math.inf}, "env", "Input should be a finite number"),
    (ProofStep, {"proof_state": "two", "tactic": "t"}, "proof_state", "valid integer"),
    (ProofStep, {"proof_state": [], "tactic": "t"}, "proof_state", "valid integer"),
    (Command, {"cmd": "x", "all_tactics": 2}, "all_tactics", "valid boolean"),
    (Command, {"cmd": "x", "all_tactics": "maybe"}, "all_tactics", "valid boolean"),
    (Command, {"cmd": 5}, "cmd", "valid string"),
    (Command, {"cmd": ""}, "cmd", "at least 1 character"),
]  # fmt: skip


@pytest.mark.parametrize(("model", "fields", "field", "problem"), REFUSED)
def test_unconvertible_values_are_refused_naming_the_field(
    model: type[Any], fields: dict[str, Any], field: str, problem: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        model(**fields)
    [error] = caught.value.errors()
    assert error["loc"] == (field,)
    assert problem in error["msg"]


def test_negative_ids_convert_and_are_refused_on_the_wire() -> None:
    request = ProofStep(proof_state="-3", tactic="simp")  # a session id, kept as a string
    assert request.proof_state == -3  # converted first: servers resolve it like any session id
    with pytest.raises(RequestError, match=r"proofState=-3: a negative id is a session id"):
        encode_request(request)
    assert Command(cmd="x", env=-1).env == -1


def test_positions_are_lax_too() -> None:
    assert Pos(line="3", column=0.0) == Pos(line=3, column=0)
    with pytest.raises(ValidationError, match="valid integer"):
        Pos(line="three", column=0)


def test_wire_json_is_read_as_strictly_as_the_repl_reads_it() -> None:
    # The REPL decodes {"env": "1"} as no request at all and exits: refused, never converted.
    with pytest.raises(RequestError, match=r"env: .*valid integer"):
        parse_request({"cmd": "x", "env": "1"})
    # A string proofState is not a ProofStep for the REPL, which reads the Command instead.
    assert type(parse_request({"tactic": "t", "proofState": "0", "cmd": "x"})) is Command
    with pytest.raises(ProtocolError, match=r"env: .*valid integer"):
        parse_response({"env": "1"})
    with pytest.raises(ProtocolError, match=r"proofState: .*valid integer"):
        parse_response({"proofState": 1.0, "goals": []})
    wire = {"cmd": "x", "setOptions": [[["Elab", "async"], True]]}
    assert parse_request(wire).to_repl_dict() == wire  # list pairs are fine


def _lean_interact_interface() -> Any:
    try:
        return importlib.import_module("lean_interact.interface")
    except ImportError:
        pytest.skip("lean_interact is not installed (pip install 'leanpool[bench]' installs it)")


_INTS = [
    "2",
    " 2 ",
    "-3",
    "+3",
    "3_000",
    "3.0",
    3.0,
    True,
    False,
    b"3",
    bytearray(b"3"),
    2**70,
    -1,
    "abc",
    "",
    "1e3",
    "0x10",
    3.5,
    "3.5",
    math.nan,
    math.inf,
    "nan",
    [],
    {},
    "٣",
    None,
]
_BOOLS = [
    "true",
    "True",
    "yes",
    "on",
    "y",
    "t",
    "1",
    "0",
    "off",
    "no",
    "false",
    1,
    0,
    1.0,
    0.0,
    2,
    -1,
    "maybe",
    "",
    b"true",
    0.5,
    math.nan,
    None,
]
_STRS = ["x", b"x", bytearray(b"x"), "", 5, 5.0, True, InfoTreeOptions.full, ["x"], None]
_GRID: list[tuple[str, dict[str, Any], str, list[Any]]] = [
    ("Command", {"cmd": "x"}, "env", _INTS),
    ("Command", {"cmd": "x"}, "all_tactics", _BOOLS),
    ("Command", {"cmd": "x"}, "root_goals", _BOOLS),
    ("Command", {"cmd": "x"}, "declarations", _BOOLS),
    ("Command", {"cmd": "x"}, "incrementality", _BOOLS),
    ("Command", {"cmd": "x"}, "infotree", ["full", InfoTreeOptions.tactics, "other", 1, b"full"]),
    ("Command", {"cmd": "x"}, "set_options",
     [[(["Elab", "async"], True)], [[["Elab", "async"], True]], [(["a"], "1")], [(["a"], 1.0)],
      [(["a"], 1.5)], [("a", True)], "x", [(["a"], ["b", "c"])]]),
    ("Command", {}, "cmd", _STRS),
    ("FileCommand", {}, "path", _STRS),
    ("FileCommand", {"path": "x"}, "env", _INTS),
    ("ProofStep", {"tactic": "t"}, "proof_state", _INTS),
    ("ProofStep", {"proof_state": 0}, "tactic", _STRS),
    ("PickleEnvironment", {"pickle_to": "p"}, "env", _INTS),
    ("PickleEnvironment", {"env": 0}, "pickle_to", _STRS),
    ("UnpickleEnvironment", {}, "unpickle_env_from", _STRS),
    ("PickleProofState", {"pickle_to": "p"}, "proof_state", _INTS),
    ("UnpickleProofState", {"unpickle_proof_state_from": "p"}, "env", _INTS),
    ("UnpickleProofState", {}, "unpickle_proof_state_from", _STRS),
    ("Pos", {"column": 0}, "line", _INTS),
    ("Pos", {"line": 1}, "column", _INTS),
]  # fmt: skip


def _outcome(model: type[Any], fields: dict[str, Any]) -> tuple[Any, ...]:
    try:
        built = model(**fields)
    except ValidationError as exc:
        return ("refused", [(e["loc"], e["msg"]) for e in exc.errors()])
    return ("built", built.model_dump(exclude_none=True, by_alias=True), built.model_dump())


def test_request_models_match_leaninteract_case_by_case() -> None:
    """Every field of every request model (and Pos), fed what real code passes: LeanInteract's
    models and leanpool's accept the same values, convert them to the same values, refuse the
    rest with the same errors, and send the same JSON."""
    theirs = _lean_interact_interface()
    import leanpool.interface as ours

    cases = 0
    for name, base, field, values in _GRID:
        for value in values:
            fields = {**base, field: value}
            expected = _outcome(getattr(theirs, name), fields)
            got = _outcome(getattr(ours, name), fields)
            assert got == expected, (name, field, value)
            cases += 1
            if expected[0] == "built" and name != "Pos":
                sent_by_them = json.loads(json.dumps(expected[1], ensure_ascii=False))
                request = getattr(ours, name)(**fields)
                assert request.to_repl_dict() == sent_by_them, (name, field, value)
    assert cases > 350


def test_repr_shows_only_set_fields() -> None:
    text = repr(Command(cmd="x", env=0))
    assert text == "Command(cmd='x', env=0)"
    assert "all_tactics" not in text
    assert str(Command(cmd="x", env=0)) == text  # print() shows it too, as in LeanInteract
    assert str(parse_response({"env": 1})) == "CommandResponse(env=1)"


def test_models_pickle() -> None:
    response = parse_response({"env": 1, "messages": [_message("error", "boom")], "extra": [1]})
    assert pickle.loads(pickle.dumps(response)) == response


# ----------------------------------------------------------------------------- parse_request


@pytest.mark.parametrize(
    ("wire", "kind"),
    [
        ({"cmd": "x", "env": 0, "pickleTo": "a.olean"}, PickleEnvironment),
        ({"cmd": "x", "path": "f.lean"}, Command),
        ({"tactic": "rfl", "proofState": 0, "env": 0}, ProofStep),
        ({"proofState": 1, "pickleTo": "p.olean"}, PickleProofState),
        ({"unpickleEnvFrom": "a.olean"}, UnpickleEnvironment),
        ({"path": "f.lean", "env": None}, FileCommand),
        # A wrong-typed ProofStep falls through to the next shape that decodes, as in the REPL.
        ({"tactic": 5, "proofState": 0, "cmd": "x"}, Command),
        ({"tactic": None, "proofState": 0, "cmd": "x"}, Command),
    ],
)
def test_request_classification_follows_the_repl_order(
    wire: dict[str, Any], kind: type[Any]
) -> None:
    request = parse_request(wire)
    assert type(request) is kind
    sent = request.to_repl_dict()
    # Everything is sent back as it came, except null-valued fields (absent = null to the REPL).
    assert {k: v for k, v in wire.items() if k not in sent} in ({}, {"env": None})
    assert all(wire[k] == v for k, v in sent.items())
    assert parse_request(sent) == request


def test_python_field_names_are_not_wire_names() -> None:
    with pytest.raises(RequestError, match="proof_state"):
        parse_request({"proof_state": 0, "tactic": "x"})
    # An unknown key on an otherwise valid request is kept verbatim, not mapped to a field.
    request = parse_request({"cmd": "x", "all_tactics": True})
    assert isinstance(request, Command)
    assert request.all_tactics is None
    assert request.to_repl_dict() == {"cmd": "x", "all_tactics": True}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ('{"cmd": "x", "env": "1"}', r"Invalid Command request: env: .*valid integer.*'1'"),
        ('{"cmd": "x", "allTactics": "yes"}', r"allTactics: .*valid boolean.*'yes'"),
        ('{"tactic": "t", "proofState": 1.5}', r"ProofStep request: proofState"),
        ('{"foo": 1}', r"cannot read this request.*needs cmd.*has keys: foo"),
        ("{}", r"cannot read this request.*has keys: none"),
        ('{"cmd": "x"', r"Request is not valid JSON.*delimiter"),
        ("hello", r"Request is not valid JSON"),
        ("[1, 2]", r"must be a JSON object, got list"),
        (b'{"cmd": "\xff"}', r"Request is not valid UTF-8"),
        ('{"cmd": "a\tb"}', r"Request is not valid JSON.*control character"),
    ],
)
def test_malformed_requests_name_the_problem(data: str | bytes, expected: str) -> None:
    with pytest.raises(RequestError, match=expected) as caught:
        parse_request(data)
    assert isinstance(caught.value, ValueError)
    assert getattr(caught.value, "data", None)  # the offending request, for logs


def test_request_error_messages_stay_encodable_with_lone_surrogates() -> None:
    with pytest.raises(RequestError, match="lone surrogate") as caught:
        parse_request({"cmd": "a\ud800b"})
    str(caught.value).encode("utf-8")  # would raise if the surrogate leaked into the message


# ----------------------------------------------------------------------------- parse_response


def _message(severity: str, data: str, line: int = 1, end_line: int | None = 1) -> dict[str, Any]:
    end = pos(end_line, 5) if end_line is not None else None
    return {"severity": severity, "pos": pos(line, 0), "endPos": end, "data": data}


@pytest.mark.parametrize(
    ("wire", "kind"),
    [
        ({"message": "Unknown environment."}, LeanError),
        ({"env": 0}, CommandResponse),
        ({"proofState": 2, "goals": [], "proofStatus": "Completed"}, ProofStepResponse),
        ({"env": 0, "message": "odd but still a command answer"}, CommandResponse),
    ],
)
def test_response_classification(wire: dict[str, Any], kind: type[Any]) -> None:
    response = parse_response(wire)
    assert type(response) is kind
    assert response.to_repl_dict() == wire
    assert parse_response(json.dumps(wire)) == response


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"foo": 1}, r"Not a REPL response.*got keys: foo"),
        ({}, r"Not a REPL response.*got keys: none"),
        ({"env": "1"}, r"Malformed CommandResponse.*env: .*valid integer"),
        (
            {"proofState": 1, "goals": [], "proofStatus": None},
            r"Malformed ProofStepResponse.*proofStatus: Input should be a valid string",
        ),
        ({"env": 0, "messages": [{"severity": "fatal"}]}, r"messages\.0\.severity"),
        ("[1]", r"must be a JSON object, got list"),
        ('{"env": 0', r"Response is not valid JSON"),
        (b"\xff", r"Response is not valid UTF-8"),
    ],
)
def test_malformed_responses_name_the_problem(data: Any, expected: str) -> None:
    with pytest.raises(ProtocolError, match=expected) as caught:
        parse_response(data)
    assert caught.value.data


def test_response_must_answer_its_request_kind() -> None:
    step = ProofStep(proof_state=0, tactic="rfl")
    with pytest.raises(ProtocolError, match="ProofStep request is answered by a ProofStepResponse"):
        parse_response({"env": 1}, request=step)
    with pytest.raises(ProtocolError, match="Command request is answered by a CommandResponse"):
        parse_response({"proofState": 1, "goals": [], "proofStatus": "x"}, request={"cmd": "x"})
    refusal = parse_response({"message": "Unknown proof state."}, request=step)
    assert refusal == LeanError(message="Unknown proof state.")
    pickled = parse_response({"env": 4}, request=PickleEnvironment(env=4, pickle_to="a.olean"))
    assert isinstance(pickled, CommandResponse)


def test_responses_keep_keys_the_repl_always_writes() -> None:
    wire = {
        "env": 1,
        "messages": [_message("error", "unknown import", end_line=None)],
        "sorries": [{"goal": "⊢ Nat", "proofState": None}],
        "tactics": [
            {
                "tactic": "rfl",
                "proofState": 0,
                "pos": pos(1, 1),
                "endPos": pos(1, 4),
                "goals": "no goals",
                "usedConstants": [],
            }
        ],
    }
    response = parse_response(wire)
    assert response.to_repl_dict() == wire
    assert response.to_repl_dict()["messages"][0]["endPos"] is None
    # Built by hand, the same rules apply: null endPos/proofState kept, sorry positions left out.
    built = CommandResponse(
        env=1,
        messages=[Message(start_pos=Pos(line=1, column=0), severity="error", data="x")],
        sorries=[Sorry(goal="g")],
    )
    assert built.to_repl_dict() == {
        "env": 1,
        "messages": [{"pos": pos(1, 0), "endPos": None, "severity": "error", "data": "x"}],
        "sorries": [{"goal": "g", "proofState": None}],
    }
    step = ProofStepResponse(proof_state=3, proof_status="Incomplete: open goals remain")
    assert step.to_repl_dict() == {
        "proofState": 3,
        "proofStatus": "Incomplete: open goals remain",
        "goals": [],
    }


def test_base_response_is_abstract() -> None:
    with pytest.raises(TypeError, match="cannot be instantiated"):
        BaseREPLResponse()


# ----------------------------------------------------------------------------- info trees


def _stx(pp: str | None, kind: str = "k", arg_kinds: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "pp": pp,
        "range": {"synthetic": False, "start": pos(1, 0), "finish": pos(2, 9)},
        "kind": kind,
        "argKinds": list(arg_kinds),
    }


THEOREM = {
    "kind": "CommandInfo",
    "node": {
        "elaborator": "Lean.Elab.Command.elabDeclaration",
        "stx": _stx(
            "theorem t : 1 = 1 := by\n  rfl",
            "Lean.Parser.Command.declaration",
            ("Lean.Parser.Command.declModifiers", "Lean.Parser.Command.theorem"),
        ),
    },
    "children": [
        {
            "kind": "TermInfo",
            "node": {"elaborator": None, "stx": _stx(None), "expr": "1 = 1", "isBinder": False},
            "children": [{"goalState": "⊢ 1 = 1"}],
        },
        {
            "kind": "TermInfo",
            "node": {
                "elaborator": "elabApp",
                "stx": _stx("h"),
                "expr": "h",
                "isBinder": True,
                "expectedType": "Nat",
            },
            "children": [],
        },
        {
            "kind": "TacticInfo",
            "node": {
                "name": None,
                "stx": _stx("rfl"),
                "goalsBefore": ["⊢ 1 = 1"],
                "goalsAfter": [],
            },
            "children": [],
        },
        {"kind": "DocElabInfo", "node": None, "children": [], "futureKey": {"a": 1}},
    ],
}
VARIABLE = {
    "kind": "CommandInfo",
    "node": {"elaborator": "Lean.Elab.Command.elabVariable", "stx": _stx("variable (x : Nat)")},
    "children": [],
}


def test_info_trees_round_trip_and_pick_node_classes() -> None:
    wire = {"env": 2, "infotree": [THEOREM, VARIABLE]}
    response = parse_response(wire)
    assert response.to_repl_dict() == wire
    assert isinstance(response, CommandResponse) and response.infotree is not None
    theorem = response.infotree[0]
    nodes = [c.node for c in theorem.children if isinstance(c, InfoTree)]
    assert [type(node) for node in nodes] == [TermNode, TermNode, TacticNode, type(None)]
    assert isinstance(theorem.children[0], InfoTree)
    assert theorem.children[0].children == [InfoTreeHole(goal_state="⊢ 1 = 1")]
    # expectedType is left out (not null) when unknown, kept when known.
    assert "expectedType" not in theorem.children[0].to_repl_dict()["node"]
    assert isinstance(theorem.node, CommandNode)


def test_info_tree_helpers() -> None:
    theorem = InfoTree.model_validate(THEOREM)
    variable = InfoTree.model_validate(VARIABLE)
    walk = list(theorem.dfs_walk())
    assert walk[0] is theorem and len(walk) == 5  # holes are not trees
    assert [tree.kind for tree in theorem.leaves()] == ["TermInfo", "TacticInfo", "DocElabInfo"]
    assert list(theorem.theorems()) == [theorem]
    assert list(variable.variables()) == [variable]
    assert list(theorem.variables()) == []
    assert list(theorem.docs()) == [] and list(theorem.namespaces()) == []
    inside = Sorry(start_pos=Pos(line=2, column=2), end_pos=Pos(line=2, column=5), goal="g")
    outside = Sorry(start_pos=Pos(line=3, column=0), end_pos=Pos(line=3, column=5), goal="g")
    assert theorem.theorem_for_sorry(inside) is theorem
    assert theorem.theorem_for_sorry(outside) is None
    assert theorem.theorem_for_sorry(Sorry(goal="g")) is None
    assert theorem.pp_up_to(Pos(line=1, column=7)) == "theorem"
    assert theorem.pp_up_to(Pos(line=2, column=2)) == "theorem t : 1 = 1 := by\n  "
    with pytest.raises(ValueError, match="outside"):
        theorem.pp_up_to(Pos(line=5, column=0))


def test_a_deep_info_tree_walks_without_recursion() -> None:
    depth = 5000  # beyond Python's default recursion limit
    model = InfoTree(kind="TermInfo", node=None)
    for _ in range(depth):
        model = InfoTree(kind="TermInfo", node=None, children=[model])
    assert sum(1 for _ in model.dfs_walk()) == depth + 1


def test_range_equality_ignores_synthetic_and_pos_orders() -> None:
    start, finish = Pos(line=1, column=2), Pos(line=1, column=9)
    assert Range(synthetic=True, start=start, finish=finish) == Range(
        synthetic=False, start=start, finish=finish
    )
    assert len({Range(synthetic=True, start=start, finish=finish)}) == 1
    assert Pos(line=1, column=9) < Pos(line=2, column=0) <= Pos(line=2, column=0)
    assert sorted([Pos(line=2, column=0), Pos(line=1, column=3)])[0] == Pos(line=1, column=3)


# ----------------------------------------------------------------------------- helpers


def _all_responses() -> list[Any]:
    responses = []
    for transcript in require_transcripts():
        responses += [parse_response(block) for block in transcript.response_blocks()]
    return responses


def test_error_helpers_on_real_responses() -> None:
    responses = [r for r in _all_responses() if not isinstance(r, LeanError)]
    with_errors = [r for r in responses if any(m.severity == "error" for m in r.messages)]
    assert with_errors and len(with_errors) < len(responses)
    for response in responses:
        errors = [m for m in response.messages if m.severity == "error"]
        assert response.get_errors() == errors
        assert response.get_warnings() == [m for m in response.messages if m.severity == "warning"]
        assert response.has_errors() == bool(errors)
        assert response.lean_code_is_valid() == (not errors)


def test_sorries_make_code_invalid_only_without_allow_sorry() -> None:
    command_responses = [r for r in _all_responses() if isinstance(r, CommandResponse)]
    sorry_only = [r for r in command_responses if r.sorries and not r.has_errors()]
    assert sorry_only
    for response in sorry_only:
        assert response.lean_code_is_valid()
        assert not response.lean_code_is_valid(allow_sorry=False)
        # Past the last line of every sorry and message, nothing is left to complain about.
        last = max(
            [s.end_pos.line for s in response.sorries if s.end_pos]
            + [m.end_pos.line for m in response.messages if m.end_pos]
            + [m.start_pos.line for m in response.messages]
        )
        after = Pos(line=last + 1, column=0)
        assert response.lean_code_is_valid(start_pos=after, allow_sorry=False)


def test_sorry_warning_text_counts_as_sorry_in_both_spellings() -> None:
    for quoted in ("declaration uses 'sorry'", "declaration uses `sorry`"):
        response = parse_response({"env": 0, "messages": [_message("warning", quoted)]})
        assert isinstance(response, CommandResponse)
        assert response.lean_code_is_valid()
        assert not response.lean_code_is_valid(allow_sorry=False)
    other = parse_response({"env": 0, "messages": [_message("warning", "unused variable")]})
    assert isinstance(other, CommandResponse)
    assert other.lean_code_is_valid(allow_sorry=False)


def test_message_range_overlap_is_by_line() -> None:
    message = Message.model_validate(_message("error", "e", line=3, end_line=4))
    assert message_intersects_code(message, None, None)
    assert message_intersects_code(message, Pos(line=4, column=99), None)
    assert not message_intersects_code(message, Pos(line=5, column=0), None)
    assert message_intersects_code(message, None, Pos(line=3, column=0))
    assert not message_intersects_code(message, None, Pos(line=2, column=80))
    response = CommandResponse(env=0, messages=[message])
    assert response.lean_code_is_valid(end_pos=Pos(line=2, column=0))
    assert not response.lean_code_is_valid(start_pos=Pos(line=2, column=0))


def test_only_completed_is_a_verified_proof() -> None:
    steps = [r for r in _all_responses() if isinstance(r, ProofStepResponse)]
    completed = [r for r in steps if r.is_completed]
    assert completed and len(completed) < len(steps)
    assert all(r.proof_status == "Completed" and r.goals == [] for r in completed)
    # An empty goal list is not enough: e.g. "Incomplete: contains sorry" also has no goals.
    assert any(not r.goals and not r.is_completed for r in steps)


def test_responses_accept_negative_session_ids() -> None:
    """A server that maps REPL ids to LeanInteract-style session ids (-1, -2, ...) re-parses."""
    wire = {"env": -1, "sorries": [{"goal": "⊢ Nat", "proofState": -4}]}
    assert parse_response(wire).to_repl_dict() == wire
    step = parse_response({"proofState": -2, "goals": [], "proofStatus": "Completed"})
    assert isinstance(step, ProofStepResponse) and step.proof_state == -2


# LeanInteract 0.11.6 `lean_interact.interface`: every public name, so imports keep working.
LEAN_INTERACT_INTERFACE = [
    "REPLBaseModel",
    "BaseREPLQuery",
    "Name",
    "DataValue",
    "Options",
    "InfoTreeOptions",
    "CommandOptions",
    "Command",
    "FileCommand",
    "ProofStep",
    "PickleEnvironment",
    "UnpickleEnvironment",
    "PickleProofState",
    "UnpickleProofState",
    "Pos",
    "Message",
    "Sorry",
    "Tactic",
    "message_intersects_code",
    "Range",
    "Syntax",
    "BaseNode",
    "TacticNode",
    "CommandNode",
    "TermNode",
    "Node",
    "InfoTree",
    "DocString",
    "DeclModifiers",
    "DeclSignature",
    "BinderView",
    "DeclBinders",
    "DeclType",
    "DeclValue",
    "OpenDecl",
    "ScopeInfo",
    "DeclarationInfo",
    "BaseREPLResponse",
    "CommandResponse",
    "ProofStepResponse",
    "LeanError",
]


def test_interface_module_mirrors_lean_interact() -> None:
    import leanpool.interface as interface
    import leanpool.protocol as protocol

    missing = [name for name in LEAN_INTERACT_INTERFACE if not hasattr(interface, name)]
    assert missing == []
    assert set(interface.__all__) <= set(protocol.__all__)
    assert interface.CommandResponse is protocol.CommandResponse


# ------------------------------------------------------------ older REPL versions, deep trees


def _syntax_before_v4_22(pp: str) -> dict[str, Any]:
    """Syntax JSON as REPLs before v4.22.0 wrote it: no `kind`, no `argKinds`."""
    return {"range": {"synthetic": False, "start": pos(1, 0), "finish": pos(1, 4)}, "pp": pp}


@pytest.mark.parametrize(
    "wire",
    [
        # before v4.19.0: no proofStatus
        {"proofState": 1, "goals": ["⊢ Nat"]},
        {"proofState": 2, "goals": [], "traces": ["trace"]},
        # before v4.14.0: tactics without usedConstants
        {
            "tactics": [
                {
                    "tactic": "rfl",
                    "proofState": 0,
                    "pos": pos(1, 18),
                    "goals": "⊢ 1 = 1",
                    "endPos": pos(1, 21),
                }
            ],
            "env": 0,
        },
        # before v4.22.0: syntax without kind/argKinds
        {
            "infotree": [
                {
                    "node": {
                        "stx": _syntax_before_v4_22("rfl"),
                        "name": None,
                        "goalsBefore": ["⊢ 1 = 1"],
                        "goalsAfter": [],
                    },
                    "kind": "TacticInfo",
                    "children": [],
                }
            ],
            "env": 0,
        },
    ],
)
def test_responses_of_older_repl_versions_round_trip(wire: dict[str, Any]) -> None:
    response = parse_response(wire)
    assert response.to_repl_dict() == wire
    if isinstance(response, ProofStepResponse):
        assert response.proof_status == "" and not response.is_completed


def test_version_dependent_keys_are_written_when_set() -> None:
    step = ProofStepResponse(proof_state=1, proof_status="Completed")
    assert step.to_repl_dict() == {"proofState": 1, "goals": [], "proofStatus": "Completed"}
    wire = {"proofState": 1, "goals": [], "proofStatus": ""}  # present, even if empty: kept
    assert parse_response(wire).to_repl_dict() == wire
    tactic = {
        "tactic": "rfl",
        "proofState": 0,
        "pos": pos(1, 0),
        "goals": "⊢ True",
        "endPos": pos(1, 3),
        "usedConstants": [],
    }
    assert parse_response({"env": 0, "tactics": [tactic]}).to_repl_dict()["tactics"] == [tactic]


def _deep_tree(depth: int) -> dict[str, Any]:
    stx = {**_syntax_before_v4_22("x"), "kind": "k", "argKinds": []}
    root: dict[str, Any] = {"kind": "TermInfo", "node": None, "children": []}
    tree = root
    for level in range(depth):
        node = {"stx": stx, "isBinder": False, "expr": f"e{level}", "elaborator": None}
        child = {"kind": "TermInfo", "node": node, "children": [{"goalState": "⊢ Nat"}]}
        tree["children"].append(child)
        tree = child
    return {"infotree": [root], "env": 3}


@pytest.mark.parametrize("depth", [10, 300, 2000])
def test_info_trees_deeper_than_pydantic_and_python_recursion_limits(depth: int) -> None:
    # pydantic-core stops at 255 nested validations and Python's recursion at ~1000 frames;
    # Lean writes trees of any depth.
    wire = _deep_tree(depth)
    text = render_lean_json(wire)
    response = parse_response(text)
    assert isinstance(response, CommandResponse)
    deepest = list(response.infotree[0].dfs_walk())[-1]  # type: ignore[index]
    assert isinstance(deepest.node, TermNode) and deepest.node.expr == f"e{depth - 1}"
    assert render_lean_json(response.to_repl_dict()) == text


def test_invalid_node_deep_in_a_tree_is_still_refused() -> None:
    wire = _deep_tree(400)
    tree = wire["infotree"][0]
    for _ in range(350):
        tree = tree["children"][-1]
    tree["node"]["isBinder"] = "no"
    with pytest.raises(ProtocolError, match="isBinder"):
        parse_response(wire)


# ----------------------------------------------------------------------------- any depth
def _chain_response_text(levels: int) -> str:
    """A command response (compact JSON) whose info tree nests `levels` JSON levels deep: a
    chain of term nodes, each with a hole beside the rest of the chain, as the REPL writes for
    ``x + x + ...`` (Lean's own indented layout of 100,000 levels would be gigabytes)."""
    stx = json.dumps(_stx("x + x"))
    node = '{"stx": ' + stx + ', "isBinder": false, "expr": "x", "elaborator": null}'
    head = '{"node": ' + node + ', "kind": "TermInfo", "children": ['
    tail = ', {"goalState": "⊢ Nat"}]}'
    pairs = (levels - 4) // 2  # the response object and the infotree list add two levels
    leaf = '{"node": null, "kind": "TermInfo", "children": []}'
    return '{"infotree": [' + head * pairs + leaf + tail * pairs + '], "env": 0}'


def _same_json(first: Any, second: Any) -> bool:
    """`first == second` for JSON values of any depth (== itself recurses)."""
    pending = [(first, second)]
    while pending:
        a, b = pending.pop()
        if type(a) is not type(b):
            return False
        if isinstance(a, dict):
            if a.keys() != b.keys():
                return False
            pending.extend((a[key], b[key]) for key in a)
        elif isinstance(a, list):
            if len(a) != len(b):
                return False
            pending.extend(zip(a, b, strict=True))
        elif a != b:
            return False
    return True


@pytest.mark.slow
def test_a_response_100000_levels_deep_parses_and_dumps_on_every_python() -> None:
    text = _chain_response_text(100_000)
    response = parse_response(text)  # decoded iteratively, the tree validated bottom-up
    assert isinstance(response, CommandResponse) and response.infotree is not None
    trees = list(response.infotree[0].dfs_walk())
    assert len(trees) == 49_999 and trees[-1].node is None
    assert isinstance(trees[-2].node, TermNode) and trees[-2].children[1] == InfoTreeHole(
        goal_state="⊢ Nat"
    )
    # What a caller dumps or prints (the pool's pickling: tests/test_deep_json.py).
    assert _same_json(response.to_repl_dict(), loads_deep(text))
    shown = repr(response)
    assert shown.startswith("CommandResponse(env=0, infotree=[InfoTree(node=TermNode(stx=Syntax(")
    assert shown.count("InfoTreeHole(goal_state='⊢ Nat')") == 49_998


def test_deep_info_trees_copy_compare_and_print_like_shallow_ones() -> None:
    wire = _deep_tree(3000)
    response = parse_response(wire)
    assert isinstance(response, CommandResponse) and response.infotree is not None
    tree = response.infotree[0]
    for copied in (copy.deepcopy(tree), pickle.loads(pickle.dumps(tree))):
        assert copied == tree and copied is not tree
        assert [t.model_fields_set for t in copied.dfs_walk()] == [
            t.model_fields_set for t in tree.dfs_walk()
        ]
    assert pickle.loads(pickle.dumps(response)) == response
    changed = _deep_tree(3000)
    deepest = changed["infotree"][0]
    for _ in range(2999):
        deepest = deepest["children"][-1]
    deepest["node"]["expr"] = "different"
    assert parse_response(changed) != response  # the difference 3000 levels down counts
    with pytest.raises(TypeError):
        hash(tree)  # as for any pydantic model with a list field
    small = InfoTree(
        kind="TermInfo",
        node=None,
        children=[InfoTreeHole(goal_state="⊢ Nat"), InfoTree(kind="K", node=None, extra=1)],
    )
    assert repr(small) == (
        "InfoTree(node=None, kind='TermInfo', children=[InfoTreeHole(goal_state='⊢ Nat'), "
        "InfoTree(node=None, kind='K', extra=1)])"
    )
    assert pickle.loads(pickle.dumps(small)).children[1].__pydantic_extra__ == {"extra": 1}


def _nested_lists(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("depth", [300, 100_000])
def test_unknown_keys_nested_too_deep_to_keep_are_a_protocol_error(depth: int) -> None:
    # Anything but the tree itself is bounded by pydantic-core (~250 levels); deeper data
    # could not be pickled to the parent process or serialised. Lean writes none such.
    deep = _nested_lists(depth)
    with pytest.raises(ProtocolError, match=r"future\..*maximum validation depth") as raised:
        parse_response({"env": 0, "future": deep})
    assert len(str(raised.value)) < 1500  # the data is previewed, not dumped whole
    message = {**_message("info", "x"), "future": deep}
    with pytest.raises(ProtocolError, match=r"messages\.0\.future"):
        parse_response({"env": 0, "messages": [message]})
    wire = _deep_tree(20_000)
    tree = wire["infotree"][0]
    for _ in range(19_000):
        tree = tree["children"][-1]
    tree["node"]["future"] = deep  # in one node, deep in a deep tree
    with pytest.raises(ProtocolError, match="info-tree node holds data nested deeper"):
        parse_response(wire)
    assert parse_response({"env": 0, "future": _nested_lists(200)}).to_repl_dict()["future"]
