"""The verdict policy's own rules: what the text alone refuses, which axioms refuse a theorem,
and how `#print axioms` is read (Lean's two message forms)."""

from __future__ import annotations

import pytest

from leanpool._verdict import (
    STANDARD_AXIOMS,
    Verdict,
    VerdictPolicy,
    is_native_axiom,
    parse_axioms_message,
    strip_comments_and_strings,
)

POLICY = VerdictPolicy()


def test_comments_and_strings_are_blanked_with_newlines_kept() -> None:
    code = 'a -- axiom x\nb /- outer /- axiom -/ still -/ c "axiom \\" --" d'
    stripped = strip_comments_and_strings(code)
    assert len(stripped) == len(code)
    assert stripped.count("\n") == code.count("\n")
    assert "axiom" not in stripped
    assert stripped.split() == ["a", "b", "c", "d"]


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("axiom cheat : False\ntheorem t : 1 = 2 := cheat.elim", "forbidden_command:axiom"),
        ("set_option debug.skipKernelTC true in\ntheorem t : 1 = 1 := rfl", None),
        ('macro "#print" : command => `(#check 1)', "forbidden_command:macro"),
        ('elab "foo" : tactic => pure ()', "forbidden_command:elab"),
        ('notation "x" => 1', "forbidden_command:notation"),
        ('#eval IO.println "hi"', "forbidden_command:#eval"),
        ("run_cmd pure ()", "forbidden_command:run_cmd"),
        ("@[implemented_by f] def g : Nat := 1", "forbidden_command:@[implemented_by]"),
        ("@[simp, csimp] theorem x : 1 = 1 := rfl", "forbidden_command:@[csimp]"),
        ("#exit", "forbidden_command:#exit"),
    ],
)
def test_the_text_alone_refuses(code: str, reason: str | None) -> None:
    found = POLICY.forbidden(code)
    expected = reason or "forbidden_option:debug.skipKernelTC"
    assert expected in found, found


@pytest.mark.parametrize(
    "code",
    [
        "theorem t (h' : 1 = 1) : True := trivial",  # a primed name is no command
        "-- axiom cheat : False\ntheorem t : True := trivial",  # in a comment
        'theorem t : "axiom" = "axiom" := rfl',  # in a string
        "theorem axiomatic : True := trivial",  # a word that starts like one
        "theorem t : True := by\n  simp [Nat.add_comm]",
        "@[simp] theorem t : 1 = 1 := rfl",
    ],
)
def test_honest_text_passes_the_scan(code: str) -> None:
    assert POLICY.forbidden(code) == []


def test_metaprograms_can_be_allowed_but_custom_axioms_only_by_name() -> None:
    lenient = VerdictPolicy(allow_metaprograms=True)
    assert lenient.forbidden('#eval 1\nmacro "m" : term => `(1)') == []
    assert lenient.forbidden("axiom a : False") == ["forbidden_command:axiom"]
    named = VerdictPolicy(allowed_axioms=(*STANDARD_AXIOMS, "my_choice"))
    assert named.forbidden("axiom my_choice : False") == []  # `#print axioms` judges it


def test_axiom_reasons() -> None:
    assert POLICY.axiom_reasons(list(STANDARD_AXIOMS)) == []
    assert POLICY.axiom_reasons(["propext", "cheat"]) == ["axiom:cheat"]
    assert POLICY.axiom_reasons(["sorryAx"]) == ["sorry"]
    assert VerdictPolicy(allow_sorry=True).axiom_reasons(["sorryAx"]) == []
    native = ["Lean.ofReduceBool", "Lean.trustCompiler", "Foo.t._native.native_decide.ax_1_1"]
    assert POLICY.axiom_reasons(native) == [f"native:{name}" for name in native]
    assert VerdictPolicy(allow_native=True).axiom_reasons(native) == []
    assert all(is_native_axiom(name) for name in native)
    assert not is_native_axiom("Classical.choice")


def test_native_tactics_in_tactic_mode() -> None:
    assert POLICY.native_in_tactics("native_decide") == ["native:native_decide"]
    assert POLICY.native_in_tactics("decide +native") == ["native:decide+native"]
    assert POLICY.native_in_tactics("decide -- native_decide") == []
    assert VerdictPolicy(allow_native=True).native_in_tactics("native_decide") == []


def test_print_axioms_messages_in_both_forms() -> None:
    assert parse_axioms_message("'Foo.bar' depends on axioms: [propext, Classical.choice]") == (
        "Foo.bar",
        ["propext", "Classical.choice"],
    )
    assert parse_axioms_message("'t' does not depend on any axioms") == ("t", [])
    assert parse_axioms_message("'t' depends on axioms: [sorryAx]\n") == ("t", ["sorryAx"])
    assert parse_axioms_message("unknown constant 't'") is None


def test_verdict_text() -> None:
    assert str(Verdict("passed")) == "passed"
    assert str(Verdict("rejected", ("sorry", "axiom:cheat"))) == "rejected (sorry, axiom:cheat)"
    assert Verdict("passed").passed and not Verdict("rejected", ("sorry",)).passed
