"""AutoLeanServer on the simulator: restarts, retries, memory gates, and ids that stay valid."""

from __future__ import annotations

import asyncio
import time

import pytest

from leanpool import LeanCrashError, LeanMemoryError, LeanTimeoutError, StateLostError
from leanpool._auto_server import AutoLeanServer
from leanpool._session_cache import ReplaySessionCache
from leanpool.protocol import Command, CommandResponse, LeanError, ProofStep, ProofStepResponse
from leanpool.testing import sim_config

THEOREM = "theorem t (a b : Nat) : a = b → b = a := by sorry"


def eval_value(response: object) -> str:
    assert isinstance(response, CommandResponse), response
    return next(m.data for m in response.messages if m.severity == "info")


@pytest.fixture
def auto() -> AutoLeanServer:
    server = AutoLeanServer(sim_config(), max_total_memory=None)
    yield server
    server.kill()


def test_session_ids_survive_three_restarts(auto: AutoLeanServer) -> None:
    base = auto.run(Command(cmd="def double (n : Nat) := 2 * n"), add_to_session_cache=True)
    assert isinstance(base, CommandResponse) and base.env < 0
    proof = auto.run(Command(cmd=THEOREM), add_to_session_cache=True)
    assert isinstance(proof, CommandResponse)
    state = proof.sorries[0].proof_state
    assert state is not None and state < 0
    step = auto.run(ProofStep(proof_state=state, tactic="intro h"), add_to_session_cache=True)
    assert isinstance(step, ProofStepResponse) and step.proof_state < 0
    for restart in range(3):
        if restart == 0:
            auto.restart()
        elif restart == 1:
            with pytest.raises(LeanCrashError):
                auto.run(Command(cmd="#eval 1 --!sim crash"))
        else:
            with pytest.raises(LeanTimeoutError):
                auto.run(Command(cmd="#eval 1 --!sim hang"), timeout=0.3)
        assert isinstance(auto.run(Command(cmd="#check double", env=base.env)), CommandResponse)
        closed = auto.run(ProofStep(proof_state=step.proof_state, tactic="exact h.symm"))
        assert isinstance(closed, ProofStepResponse) and closed.proof_status == "Completed"
        again = auto.run(ProofStep(proof_state=state, tactic="intro h"))
        assert isinstance(again, ProofStepResponse) and again.goals == step.goals
    assert auto.generation == 3
    assert sum(auto.restart_counts.values()) == 3


def test_proof_state_session_id_is_the_models_field(auto: AutoLeanServer) -> None:
    """In LeanInteract 0.11 the alias key got the session id, `.proof_state` kept the REPL's."""
    proof = auto.run(Command(cmd=THEOREM), add_to_session_cache=True)
    assert isinstance(proof, CommandResponse)
    state = proof.sorries[0].proof_state
    step = auto.run(ProofStep(proof_state=state, tactic="intro h"), add_to_session_cache=True)
    assert isinstance(step, ProofStepResponse)
    assert step.proof_state < 0
    assert step.to_repl_dict()["proofState"] == step.proof_state


def test_ids_from_a_dead_process_raise_state_lost(auto: AutoLeanServer) -> None:
    plain = auto.run(Command(cmd="def x := 1"))
    assert isinstance(plain, CommandResponse) and plain.env == 0  # REPL ids, as LeanInteract
    auto.restart()
    with pytest.raises(StateLostError, match="restarted"):
        auto.run(Command(cmd="#check x", env=plain.env))
    fresh = auto.run(Command(cmd="def y := 2"))
    assert isinstance(fresh, CommandResponse) and fresh.env > plain.env  # ids keep growing
    assert isinstance(auto.run(Command(cmd="#check y", env=fresh.env)), CommandResponse)


def test_restarts_after_faults_without_being_asked(auto: AutoLeanServer) -> None:
    with pytest.raises(LeanCrashError):
        auto.run(Command(cmd="#eval 1 --!sim crash"))
    assert eval_value(auto.run(Command(cmd="#eval 40 + 2"))) == "42"
    assert auto.restart_counts["crash"] == 1


def test_deterministic_crash_is_retried_only_as_asked() -> None:
    server = AutoLeanServer(sim_config(), max_total_memory=None, fault_retries=2)
    try:
        with pytest.raises(LeanCrashError):
            server.run(Command(cmd="#eval 1 --!sim crash"))
        assert server.generation == 2  # two retries, each on a fresh REPL, then the error
        with pytest.raises(LeanTimeoutError):  # timeouts are never retried
            server.run(Command(cmd="#eval 1 --!sim hang"), timeout=0.3)
        assert server.generation == 3
    finally:
        server.kill()


def test_process_memory_gate_restarts_before_the_next_request() -> None:
    server = AutoLeanServer(
        sim_config(), max_total_memory=None, max_process_memory=0.5, rss_limit_mb=300
    )
    try:
        kept = server.run(Command(cmd="def k := 3"), add_to_session_cache=True)
        assert isinstance(kept, CommandResponse)
        server.run(Command(cmd="#eval 1 --!sim rss_mb=200"))
        assert server.rss_mb() >= 150
        assert eval_value(server.run(Command(cmd="#eval 2"))) == "2"
        assert server.restart_counts["process_memory"] == 1
        assert server.rss_mb() < 150
        assert isinstance(server.run(Command(cmd="#check k", env=kept.env)), CommandResponse)
    finally:
        server.kill()


def test_system_memory_gate_gives_up_with_a_typed_error() -> None:
    server = AutoLeanServer(sim_config(), max_total_memory=0.0, max_restart_attempts=2)
    try:
        started = time.monotonic()
        with pytest.raises(LeanMemoryError, match="max_total_memory"):
            server.run(Command(cmd="#eval 1"))
        assert time.monotonic() - started < 15
    finally:
        server.kill()


def test_run_batch_isolates_a_crash_to_its_request(auto: AutoLeanServer) -> None:
    requests = [Command(cmd=f"#eval {i}") for i in range(10)]
    requests[4] = Command(cmd="#eval 4 --!sim crash")
    results = auto.run_batch(requests)
    assert isinstance(results[4], LeanCrashError)
    assert [eval_value(r) for i, r in enumerate(results) if i != 4] == [
        str(i) for i in range(10) if i != 4
    ]


def test_run_batch_timeout_applies_per_request(auto: AutoLeanServer) -> None:
    requests = [Command(cmd="#eval 1 --!sim sleep_ms=200") for _ in range(5)]
    results = auto.run_batch(requests, timeouts=[0.5] * 5)  # 1 s in all, 0.2 s each
    assert all(isinstance(r, CommandResponse) for r in results)


def test_session_cache_methods(auto: AutoLeanServer) -> None:
    first = auto.run(Command(cmd="def a := 1"), add_to_session_cache=True)
    assert isinstance(first, CommandResponse)
    assert first.env in auto.session_cache
    auto.remove_from_session_cache(first.env)
    assert first.env not in auto.session_cache
    auto.run(Command(cmd="def b := 1"), add_to_session_cache=True)
    auto.clear_session_cache(force=True)
    assert auto.session_cache.is_empty()


def test_eager_replay_cache_replays_at_restart() -> None:
    server = AutoLeanServer(
        sim_config(), max_total_memory=None, session_cache=ReplaySessionCache(lazy=False)
    )
    try:
        kept = server.run(Command(cmd="def z := 5"), add_to_session_cache=True)
        assert isinstance(kept, CommandResponse)
        server.restart()
        assert server.session_cache.get_repl_id(kept.env, server) is not None
    finally:
        server.kill()


def test_unknown_session_id_passes_through_as_lean_error_or_state_lost(
    auto: AutoLeanServer,
) -> None:
    with pytest.raises(StateLostError):
        auto.run(Command(cmd="#eval 1", env=-77))
    assert isinstance(auto.run(Command(cmd="#eval 1", env=12345)), LeanError)


def test_async_run_restarts_and_replays(auto: AutoLeanServer) -> None:
    async def main() -> str:
        kept = await auto.async_run(Command(cmd="def w := 9"), add_to_session_cache=True)
        assert isinstance(kept, CommandResponse)
        with pytest.raises(LeanCrashError):
            await auto.async_run(Command(cmd="#eval 0 --!sim crash"))
        response = await auto.async_run(Command(cmd="#eval 6 * 7", env=kept.env))
        return eval_value(response)

    assert asyncio.run(main()) == "42"


def test_a_replay_runs_within_the_timeout_of_the_request_that_needs_it(
    auto: AutoLeanServer,
) -> None:
    slow = auto.run(Command(cmd=f"{THEOREM} --!sim sleep_ms=3000"), add_to_session_cache=True)
    state = slow.sorries[0].proof_state
    auto.restart()
    started = time.monotonic()
    with pytest.raises(LeanTimeoutError):  # the 3 s replay, cut at the request's 0.5 s
        auto.run(ProofStep(proof_state=state, tactic="intro h"), timeout=0.5)
    assert time.monotonic() - started < 2.5
    step = auto.run(ProofStep(proof_state=state, tactic="intro h"), timeout=10)
    assert isinstance(step, ProofStepResponse)  # the state was not lost: rebuilt this time

    async def main() -> None:
        auto.restart()
        with pytest.raises(LeanTimeoutError):
            await auto.async_run(ProofStep(proof_state=state, tactic="intro h"), timeout=0.5)

    asyncio.run(main())


def test_a_repl_killed_during_a_replay_is_a_crash_not_a_lost_state(auto: AutoLeanServer) -> None:
    import os
    import signal
    import threading

    slow = auto.run(Command(cmd=f"{THEOREM} --!sim sleep_ms=2000"), add_to_session_cache=True)
    state = slow.sorries[0].proof_state
    auto.restart()
    auto.run(Command(cmd="#eval 1"))  # the new REPL is up
    pid = auto.pid
    assert pid is not None
    threading.Timer(0.5, os.kill, (pid, signal.SIGKILL)).start()  # in the middle of the replay
    with pytest.raises(LeanCrashError):
        auto.run(ProofStep(proof_state=state, tactic="intro h"), timeout=10)
    step = auto.run(ProofStep(proof_state=state, tactic="intro h"), timeout=10)
    assert isinstance(step, ProofStepResponse)


def test_ids_of_a_plain_server_are_the_repls_own_and_usable_until_a_restart(
    auto: AutoLeanServer,
) -> None:
    """Without the session cache: in the first process the ids are the REPL's own (as
    LeanInteract's), every one usable; after a restart an old id raises StateLostError and new
    ones keep growing past the old ones, usable again."""
    proof = auto.run(Command(cmd=THEOREM))
    assert isinstance(proof, CommandResponse)
    assert (proof.env, proof.sorries[0].proof_state) == (0, 0)
    step = auto.run(ProofStep(proof_state=0, tactic="intro h"))
    assert isinstance(step, ProofStepResponse) and step.proof_state == 1
    done = auto.run(ProofStep(proof_state=step.proof_state, tactic="exact h.symm"))
    assert isinstance(done, ProofStepResponse) and done.proof_status == "Completed"
    assert isinstance(auto.run(Command(cmd="#check t", env=proof.env)), CommandResponse)
    auto.restart()
    with pytest.raises(StateLostError):
        auto.run(ProofStep(proof_state=step.proof_state, tactic="exact h.symm"))
    with pytest.raises(StateLostError):
        auto.run(Command(cmd="#check t", env=proof.env))
    again = auto.run(Command(cmd=THEOREM))
    assert isinstance(again, CommandResponse)
    state = again.sorries[0].proof_state
    assert again.env > proof.env and state is not None and state > done.proof_state
    after = auto.run(ProofStep(proof_state=state, tactic="intro h"))
    assert isinstance(after, ProofStepResponse) and after.proof_state > state


def test_output_out_of_turn_in_a_batch_fails_neither_request(auto: AutoLeanServer) -> None:
    """The REPL writes a line nobody asked for while it serves the next request of a batch: the
    stream fails on that request, which did nothing wrong. It runs again on a fresh REPL: both
    requests get their own answers and the REPL alone takes the blame (one protocol restart)."""
    results = auto.run_batch(
        [Command(cmd="#eval 1 --!sim stray_ms=50"), Command(cmd="#eval 2 --!sim sleep_ms=500")]
    )
    assert [eval_value(r) for r in results] == ["1", "2"]
    assert auto.restart_counts["protocol"] == 1
