"""`LeanPool.verify` on the simulator: the cheats a model finds are rejected with their reasons,
honest proofs pass, and the reference statement is compared by Lean, not as text."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import CancelledError

import pytest

from leanpool import LeanPool, RequestError
from leanpool._selftest._verdicts import CASES, STATEMENT
from leanpool._verdict import VerdictPolicy
from leanpool._verify import (
    Submission,
    declared_theorems,
    judge,
    plan_submission,
    reference_declaration,
)
from leanpool.protocol import CommandResponse, LeanError, ProofStepResponse
from leanpool.testing import sim_config


@pytest.fixture
def pool() -> Iterator[LeanPool]:
    with LeanPool(sim_config(), 2, timeout=30, progress=False) as p:
        yield p


def test_cheats_and_honest_proofs(pool: LeanPool) -> None:
    """The table `leanpool selftest` runs on real Lean: the simulator must agree with it."""
    futures = {
        name: pool.submit_verification(code, formal_statement=statement)
        for name, code, statement, _status, _reasons in CASES
    }
    got = {name: (f.result().status, f.result().reasons) for name, f in futures.items()}
    expected = {name: (status, reasons) for name, _c, _s, status, reasons in CASES}
    assert got == expected
    assert all(f.result().passed == (expected[n][0] == "passed") for n, f in futures.items())


def test_native_computation_as_lean_4_28_reports_it() -> None:
    with LeanPool(sim_config(lean_version="v4.28.0"), 1) as pool:
        verification = pool.verify("theorem t : 2 + 2 = 4 := by native_decide")
        lenient = pool.verify("theorem t : 2 + 2 = 4 := by native_decide", allow_native=True)
    assert verification.reasons == ("native:Lean.ofReduceBool", "native:Lean.trustCompiler")
    assert verification.axioms == {"t": ["Lean.ofReduceBool", "Lean.trustCompiler"]}
    assert lenient.passed


def test_allowed_custom_axioms_are_held_to_the_list(pool: LeanPool) -> None:
    code = "axiom my_ax : 1 = 1\naxiom cheat : False\ntheorem a : 1 = 1 := my_ax\n"
    code += "theorem b : 2 + 2 = 5 := cheat.elim"
    verification = pool.verify(code, allowed_axioms=("propext", "my_ax"))
    assert verification.status == "rejected"
    assert verification.reasons == ("axiom:cheat",)  # asked of Lean: `a` passes, `b` does not
    assert verification.axioms == {"a": ["my_ax"], "b": ["cheat"]}


def test_sorry_can_be_allowed(pool: LeanPool) -> None:
    assert pool.verify("theorem t : 1 = 1 := by sorry", allow_sorry=True).passed


def test_the_reference_is_read_in_the_trusted_header_and_positions_stay_the_users(
    pool: LeanPool,
) -> None:
    code = "theorem add_comm' (a b : Nat) : a + b = b + a := by\n  exact foo"
    verification = pool.verify(code, formal_statement=STATEMENT, header="import Mathlib")
    assert verification.status == "lean_error"
    response = verification.response
    assert isinstance(response, CommandResponse)
    error = next(m for m in response.messages if m.severity == "error")
    # The text Lean saw was header, blank line, code: the error is on the code's 2nd line, as if
    # the reference line were not there; and the reference's own sorry warning is not shown.
    plain = pool.run("import Mathlib\n\n" + code)
    assert isinstance(plain, CommandResponse)
    expected = next(m for m in plain.messages if m.severity == "error")
    assert (error.start_pos, error.end_pos, error.data) == (
        expected.start_pos,
        expected.end_pos,
        expected.data,
    )
    assert not any("sorry" in m.data for m in response.messages)


def test_a_reference_that_does_not_elaborate_is_a_fault(pool: LeanPool) -> None:
    # A statement naming something the header does not have: Lean reports an unknown
    # identifier on the reference line, so no verdict on the submission can be reached.
    verification = pool.verify(
        "theorem t : 1 = 1 := rfl", formal_statement="theorem t : type_of% @no_such := by sorry"
    )
    assert (verification.status, verification.reasons) == ("fault", ("reference_error",))
    assert "no_such" in verification.verdict.details["errors"][0]
    assert not verification.passed


def test_bad_input_is_refused_at_once(pool: LeanPool) -> None:
    with pytest.raises(RequestError, match="Empty submission"):
        pool.verify("  \n")
    with pytest.raises(RequestError, match="holds no theorem"):
        pool.verify("theorem t : True := trivial", formal_statement="def x := 1")
    with pytest.raises(TypeError, match="allow_sory"):
        pool.verify("theorem t : True := trivial", allow_sory=True)
    with pytest.raises(RequestError, match="timeout"):
        pool.verify("theorem t : True := trivial", timeout=-1)


def test_async_verify_and_identical_verifications_run_once() -> None:
    with LeanPool(sim_config(), 1) as pool:

        async def main() -> list[str]:
            code = "theorem t : 3 + 3 = 6 := by norm_num --!sim sleep_ms=200"
            found = await asyncio.gather(*(pool.async_verify(code) for _ in range(5)))
            return [v.status for v in found]

        assert asyncio.run(main()) == ["passed"] * 5
        stats = pool.stats()
    assert stats.submitted == 2  # the submission and its one check, for all five


def test_cancelling_a_verification_cancels_its_request() -> None:
    with LeanPool(sim_config(), 1, dedup=False) as pool:
        blocker = pool.submit("#eval 1 --!sim sleep_ms=500")
        future = pool.submit_verification("theorem t : 1 = 1 := rfl")
        assert future.cancel()
        blocker.result(timeout=30)
        pool.shutdown(wait=True)
        assert pool.stats().cancelled >= 1


def test_batch_verifies_commands_with_their_statements(pool: LeanPool) -> None:
    with pool.batch(progress=False) as batch:
        batch.submit(
            "theorem add_comm' (a b : Nat) : a + b = b + a := by omega",
            id="ok",
            formal_statement=STATEMENT,
        )
        batch.submit("theorem add_comm' : True := trivial", id="other", formal_statement=STATEMENT)
        batch.submit("axiom c : False\ntheorem z : False := c", id="cheat")
    verdicts = {r.id: (r.verdict, r.reasons) for r in batch.results}
    assert verdicts == {
        "ok": ("passed", ()),
        "other": ("rejected", ("statement_mismatch",)),
        "cheat": ("rejected", ("forbidden_command:axiom",)),
    }
    summary = batch.summary()
    assert (summary.passed, summary.rejected) == (1, 2)
    assert summary.reasons == {"statement_mismatch": 1, "forbidden_command:axiom": 1}


# ---------------------------------------------------------------- planning, without a pool
def test_declared_theorems_follow_namespaces() -> None:
    code = (
        "theorem a : True := trivial\nnamespace Foo\nlemma b : True := trivial\n"
        "namespace Bar\ntheorem c : True := trivial\nend Bar\nend Foo\n"
        "section\ntheorem _root_.d : True := trivial\nend\n-- theorem e : True := trivial"
    )
    assert declared_theorems(code) == ["a", "Foo.b", "Foo.Bar.c", "d"]


def test_reference_declaration_is_one_line() -> None:
    statement = "/-- doc -/\ntheorem foo\n  (a : Nat)\n  (h : 0 < a) :\n  a ≠ 0 := by\n  sorry"
    name, line = reference_declaration(statement)
    assert name == "foo"
    assert line == "theorem __leanpool_reference (a : Nat) (h : 0 < a) : a ≠ 0 := sorry"


def test_plan_puts_the_reference_after_the_trusted_header() -> None:
    plan = plan_submission(
        Submission("theorem foo : True := trivial", "theorem foo : True := by sorry", "import M")
    )
    assert plan.text.splitlines() == [
        "import M",
        "",
        "theorem __leanpool_reference : True := sorry",
        "theorem foo : True := trivial",
    ]
    assert plan.reference_line == 3
    plain = plan_submission(Submission("import A\ntheorem foo : True := trivial"))
    assert plain.reference_line is None and plain.declared == ("foo",)


def test_each_kind_of_answer_judged_alone() -> None:
    def verdict_of(result: object) -> str:
        return judge(None, VerdictPolicy(check_axioms=False), result)[0].status

    assert verdict_of(CommandResponse(env=0)) == "passed"
    assert verdict_of(LeanError(message="Unknown environment.")) == "lean_error"
    done = ProofStepResponse(proof_state=1, goals=[], proof_status="Completed")
    assert verdict_of(done) == "passed"
    open_goals = ProofStepResponse(
        proof_state=1, goals=["⊢ True"], proof_status="Incomplete: open goals remain"
    )
    assert verdict_of(open_goals) == "rejected"  # Lean accepted the step; the proof is not done
    assert verdict_of(CancelledError()) == "fault"
