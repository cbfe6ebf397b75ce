"""Pool sessions: where they are placed, and an idle worker taking one over from a stuck worker."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import as_completed

import pytest

from leanpool import LeanPool, LeanTimeoutError, PoolSession, PoolShutdownError
from leanpool.protocol import Command, CommandResponse, ProofStep, ProofStepResponse
from leanpool.testing import sim_config

HEADER = "import HeaderA"


@pytest.fixture
def pool() -> Iterator[LeanPool]:
    config = sim_config(imports={"HeaderA": (200, 10)})
    with LeanPool(config, 2, timeout=30, progress=False) as p:
        yield p


def open_goal(session: PoolSession, name: str, header: str = "") -> int:
    text = f"{header}\ntheorem {name} (p q : Prop) (hp : p) (hq : q) : p ∧ q := by sorry"
    response = session.run(text.lstrip("\n"))
    assert isinstance(response, CommandResponse) and response.sorries
    state = response.sorries[0].proof_state
    assert state is not None
    return state


def two_sessions_on_one_worker(
    pool: LeanPool, header: str
) -> tuple[PoolSession, int, PoolSession, int]:
    """Two sessions with an open goal each (after `header`) on the same worker of two.

    Placement takes the worker with the fewest sessions, then one holding the header, then the
    least loaded. With a header, a header-less session evens the counts and the header decides,
    so the other worker never imports it. Without one, load decides, and load varies: of three
    sessions on two workers, two share one."""
    first = pool.session()
    opened = [(first, open_goal(first, "first", header))]
    if header:
        open_goal(pool.session(), "filler")
    for k in range(2):
        session = pool.session()
        state = open_goal(session, f"second{k}", header)
        for earlier, earlier_state in opened:
            if earlier.slot_index == session.slot_index:
                return earlier, earlier_state, session, state
        opened.append((session, state))
    raise AssertionError(f"three sessions on {len(pool.stats().workers)} workers, none shared")


def test_a_session_is_placed_at_its_first_request(pool: LeanPool) -> None:
    session = pool.session()
    assert session.slot_index is None and "not placed yet" in repr(session)
    open_goal(session, "placed")
    assert session.slot_index in (0, 1)
    session.close()


def test_closing_a_session_frees_its_place_on_the_slot(pool: LeanPool) -> None:
    def sessions_on(slot: int) -> int:
        workers = pool.stats().workers
        return int(workers[slot]["sessions"])

    session = pool.session()
    open_goal(session, "closing")
    assert session.slot_index is not None
    slot = session.slot_index
    before = sessions_on(slot)
    session.close()
    session.close()  # closing twice unbinds once
    assert sessions_on(slot) == before - 1
    with pytest.raises(PoolShutdownError, match="session is closed"):
        session.submit(Command(cmd="#eval 1"))


def test_sessions_balance_first_then_join_the_worker_holding_their_header(pool: LeanPool) -> None:
    first, other, third = pool.session(), pool.session(), pool.session()
    open_goal(first, "one", HEADER)
    open_goal(other, "two")  # no header: the slot with fewer sessions
    assert other.slot_index != first.slot_index
    open_goal(third, "three", HEADER)  # a tie in sessions: the slot that holds the header
    assert third.slot_index == first.slot_index
    assert pool.stats().header_imports == 1


def test_an_idle_worker_takes_over_a_session_stuck_behind_a_hang(pool: LeanPool) -> None:
    pool.map([f"#eval {k}" for k in range(20)])  # a measured service time
    stuck, stuck_state, waiting, state = two_sessions_on_one_worker(pool, "")
    hung = stuck.submit(ProofStep(proof_state=stuck_state, tactic="skip --!sim hang"), timeout=8)
    time.sleep(0.3)  # let the hang start alone, so the steps below queue behind it
    tactics = ["constructor", "exact ⟨hp, hq⟩", *(f"skip -- {k}" for k in range(6))]
    steps = [waiting.submit(ProofStep(proof_state=state, tactic=t)) for t in tactics]
    # The first steps may already sit in the stuck worker (it keeps two tasks in flight); the
    # others wait in the parent, and the idle worker answers them while the hang goes on.
    during_hang = sum(not hung.done() for _ in as_completed(steps, timeout=30))
    results = [future.result() for future in steps]
    assert during_hang >= 1
    assert all(isinstance(r, ProofStepResponse) for r in results)
    statuses = [r.proof_status.split(":")[0] for r in results]
    assert statuses == ["Incomplete", "Completed"] + ["Incomplete"] * 6
    assert all("p ∧ q" in r.goals[0] for r in results[2:])  # rebuilt, not another state
    with pytest.raises(LeanTimeoutError):
        hung.result(timeout=30)
    stats = pool.stats()
    assert stats.session_moves >= 1 and waiting.slot_index != stuck.slot_index
    assert stats.states_rebuilt >= 1
    # the moved session keeps working on its new worker
    again = waiting.run(ProofStep(proof_state=results[0].proof_state, tactic="exact hp"))
    assert isinstance(again, ProofStepResponse)


def test_a_session_stays_when_importing_its_header_elsewhere_costs_more_than_the_wait() -> None:
    # 3 x a 2 s import (a header is imported again after restarts) outweighs a 2 s hang.
    config = sim_config(imports={"HeaderA": (2000, 10)})
    with LeanPool(config, 2, timeout=30, progress=False) as pool:
        pool.map([f"#eval {k}" for k in range(20)])
        stuck, stuck_state, waiting, state = two_sessions_on_one_worker(pool, HEADER)
        other = 1 - (stuck.slot_index or 0)
        hung = stuck.submit(
            ProofStep(proof_state=stuck_state, tactic="skip --!sim hang"), timeout=2
        )
        tactics = ("skip", "constructor", "exact ⟨hp, hq⟩", "exact And.intro hp hq")
        steps = [waiting.submit(ProofStep(proof_state=state, tactic=t)) for t in tactics]
        assert all(isinstance(f.result(timeout=30), ProofStepResponse) for f in steps)
        with pytest.raises(LeanTimeoutError):
            hung.result(timeout=30)
        stats = pool.stats()
        assert stats.session_moves == 0 and waiting.slot_index == stuck.slot_index
        assert stats.workers[other]["headers"] == 0  # never imported there


def test_a_session_stuck_behind_a_long_hang_moves_and_imports_its_header(pool: LeanPool) -> None:
    pool.map([f"#eval {k}" for k in range(20)])
    stuck, stuck_state, waiting, state = two_sessions_on_one_worker(pool, HEADER)
    other = 1 - (stuck.slot_index or 0)
    hung = stuck.submit(ProofStep(proof_state=stuck_state, tactic="skip --!sim hang"), timeout=8)
    time.sleep(0.3)
    tactics = ["constructor", "exact ⟨hp, hq⟩", *(f"skip -- {k}" for k in range(6))]
    steps = [waiting.submit(ProofStep(proof_state=state, tactic=t)) for t in tactics]
    during_hang = sum(not hung.done() for _ in as_completed(steps, timeout=30))
    results = [future.result() for future in steps]
    assert during_hang >= 1
    statuses = [r.proof_status.split(":")[0] for r in results]
    assert statuses == ["Incomplete", "Completed"] + ["Incomplete"] * 6
    assert all("p ∧ q" in r.goals[0] for r in results[2:])  # rebuilt, not another state
    with pytest.raises(LeanTimeoutError):
        hung.result(timeout=30)
    stats = pool.stats()
    assert stats.session_moves >= 1 and waiting.slot_index == other
    assert stats.workers[other]["headers"] >= 1  # the header came along with the session


def test_string_ids_are_converted_before_the_session_checks_them(pool: LeanPool) -> None:
    """A search that keeps states as strings (``ProofStep(proofState="…")``, as LeanInteract's
    lax models allow) runs unchanged; a numeric string that names no state of the session is
    refused by the session's own check, as the same int would be, before anything is sent."""
    from leanpool import RequestError

    session = pool.session()
    state = open_goal(session, "as_text")
    step = session.run(ProofStep(proof_state=str(state), tactic="exact ⟨hp, hq⟩"))
    assert isinstance(step, ProofStepResponse) and step.goals == []
    for foreign in ("2", "-3"):
        with pytest.raises(RequestError, match=rf"proof_state={int(foreign)} is not an id"):
            session.run(ProofStep(proof_state=foreign, tactic="simp"))
    with pytest.raises(RequestError, match=rf"proof_state={state - 1} was never issued"):
        session.run(ProofStep(proof_state=str(state - 1), tactic="simp"))
    session.close()
