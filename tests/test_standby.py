"""Standby REPLs: a warm spare takes over after a fault, with its imports already done."""

from __future__ import annotations

import gc
import os
import time

import psutil
import pytest

from leanpool import LeanCrashError, LeanPool, LeanTimeoutError, _standby
from leanpool._auto_server import AutoLeanServer
from leanpool._standby import can_restore_priority
from leanpool.protocol import Command, CommandResponse, ProofStep, ProofStepResponse
from leanpool.testing import sim_config

HEADER_COST = {"HeaderA": (300, 20)}


def gone(pid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def server() -> AutoLeanServer:
    srv = AutoLeanServer(sim_config(imports=HEADER_COST), max_total_memory=None, standby=True)
    yield srv
    srv.kill()


def test_standby_takes_over_with_its_imports_done(server: AutoLeanServer) -> None:
    header = server.run(Command(cmd="import HeaderA"), add_to_session_cache=True)
    assert isinstance(header, CommandResponse) and header.env < 0
    assert server._standby is not None and server._standby.wait_idle(30)
    spare = server.standby_pid
    assert spare is not None and spare != server.pid
    with pytest.raises(LeanCrashError):
        server.run(Command(cmd="#eval 1 --!sim crash"))
    response = server.run(Command(cmd="theorem t : 1 = 1 := by rfl", env=header.env))
    assert isinstance(response, CommandResponse)
    assert server.pid == spare  # the spare became the REPL
    assert server._standby.promotions == 1
    assert server.session_cache.get_repl_id(header.env, server) is not None
    assert server.restart_counts["crash"] == 1


def test_states_built_on_top_are_replayed_on_the_spare(server: AutoLeanServer) -> None:
    header = server.run(Command(cmd="import HeaderA"), add_to_session_cache=True)
    proof = server.run(
        Command(cmd="theorem t (p : Prop) (h : p) : p := by sorry", env=header.env),
        add_to_session_cache=True,
    )
    state = proof.sorries[0].proof_state
    assert server._standby is not None and server._standby.wait_idle(30)
    with pytest.raises(LeanTimeoutError):
        server.run(Command(cmd="#eval 1 --!sim hang"), timeout=0.3)
    step = server.run(ProofStep(proof_state=state, tactic="exact h"))
    assert isinstance(step, ProofStepResponse) and step.proof_status == "Completed"


def test_a_new_spare_is_prepared_after_a_promotion(server: AutoLeanServer) -> None:
    server.run(Command(cmd="import HeaderA"), add_to_session_cache=True)
    assert server._standby is not None and server._standby.wait_idle(30)
    first = server.standby_pid
    server.restart()
    assert server.pid == first
    assert server._standby.wait_idle(30)
    assert server.standby_pid not in (None, first)


def test_kill_and_garbage_collection_end_the_spare_too() -> None:
    srv = AutoLeanServer(sim_config(), max_total_memory=None, standby=True)
    assert srv._standby is not None and srv._standby.wait_idle(30)
    spare = srv.standby_pid
    assert spare is not None
    srv.kill()
    assert gone(spare)
    other = AutoLeanServer(sim_config(), max_total_memory=None, standby=True)
    assert other._standby is not None and other._standby.wait_idle(30)
    spare, main = other.standby_pid, other.pid
    assert spare is not None and main is not None
    del other
    gc.collect()
    assert gone(spare) and gone(main)


def test_pool_workers_keep_standbys() -> None:
    with LeanPool(sim_config(imports=HEADER_COST), 1, timeout=30, standby=True) as pool:
        session = pool.session()
        root = session.run("import HeaderA\ntheorem t (p : Prop) (h : p) : p := by sorry")
        state = root.sorries[0].proof_state
        time.sleep(1.0)  # let the worker's spare warm its header (not required for correctness)
        with pytest.raises(LeanCrashError):
            session.run(ProofStep(proof_state=state, tactic="skip --!sim crash"))
        step = session.run(ProofStep(proof_state=state, tactic="exact h"))
        assert isinstance(step, ProofStepResponse) and step.proof_status == "Completed"


@pytest.mark.skipif(
    not can_restore_priority(), reason="this process may not raise a nice value back"
)
def test_spare_warms_at_low_priority_and_runs_at_ours_once_promoted(
    server: AutoLeanServer,
) -> None:
    base = os.getpriority(os.PRIO_PROCESS, 0)
    server.run(Command(cmd="import HeaderA"), add_to_session_cache=True)
    assert server._standby is not None and server._standby.wait_idle(30)
    spare = server.standby_pid
    assert spare is not None
    assert os.getpriority(os.PRIO_PROCESS, spare) == min(19, base + 10)
    assert os.getpriority(os.PRIO_PROCESS, server.pid) == base
    with pytest.raises(LeanCrashError):
        server.run(Command(cmd="#eval 1 --!sim crash"))
    assert isinstance(server.run(Command(cmd="#eval 2")), CommandResponse)
    assert server.pid == spare and os.getpriority(os.PRIO_PROCESS, spare) == base


def test_spare_keeps_our_priority_when_it_could_not_be_raised_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_standby, "can_restore_priority", lambda: False)
    srv = AutoLeanServer(sim_config(), max_total_memory=None, standby=True)
    try:
        srv.run(Command(cmd="#eval 1"))
        assert srv._standby is not None and srv._standby.wait_idle(30)
        spare = srv.standby_pid
        assert spare is not None
        assert os.getpriority(os.PRIO_PROCESS, spare) == os.getpriority(os.PRIO_PROCESS, 0)
    finally:
        srv.kill()


def test_taking_the_spare_waits_for_one_warm_up_request_at_most() -> None:
    """Python's locks are not fair: the warming thread could take the lock back for every
    header in turn while a take waits. A take waits for the import in progress only."""
    headers = [f"Header{k}" for k in range(4)]
    owner = AutoLeanServer(sim_config(imports={h: (400, 1) for h in headers}))
    roots = [(-(k + 1), Command(cmd=f"import {h}")) for k, h in enumerate(headers)]
    spare = _standby.Standby(owner._spawn_process, lambda: roots)
    try:
        deadline = time.monotonic() + 30
        while spare.pid is None and time.monotonic() < deadline:
            time.sleep(0.01)  # the first import starts in the step that started the process
        assert spare.pid is not None
        taken = spare.take()
        assert taken is not None
        proc, _reader, warmed = taken
        assert list(warmed) == [-1]  # the import in progress, then nothing more
        proc.kill()
    finally:
        spare.close()
        owner.kill()
