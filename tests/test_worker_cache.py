"""Checkpoints of pool-session proof states (leanpool._worker_cache): once a worker's REPL has
restarted, each proof state is pickled as it is made, and after the next restart it comes back
with one unpickle, not a replay of every tactic before it; its pickles go with its session, and
the pool's directory with the pool."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from leanpool import LeanCrashError, LeanPool, PoolSession
from leanpool.protocol import CommandResponse, ProofStep, ProofStepResponse
from leanpool.testing import sim_config

HEADER = "import HeaderA"
DEPTH = 5


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Temporary files of this process (the pool's checkpoint directory) go to `tmp_path`."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    yield tmp_path


def pickles_under(root: Path) -> list[Path]:
    return sorted(root.glob("leanpool-checkpoints-*/**/*.olean"))


def deep_state(session: PoolSession, name: str) -> tuple[int, list[str]]:
    """A proof state DEPTH tactic steps below a goal opened on HEADER, and its goals."""
    opened = session.run(f"{HEADER}\ntheorem {name} (n : Nat) : n + 0 = n ∧ 2 = 2 := by sorry")
    assert isinstance(opened, CommandResponse) and opened.sorries
    state = opened.sorries[0].proof_state
    goals: list[str] = []
    for _ in range(DEPTH):
        assert state is not None
        step = session.run(ProofStep(proof_state=state, tactic="skip"))
        assert isinstance(step, ProofStepResponse), step
        state, goals = step.proof_state, step.goals
    assert state is not None
    return state, goals


def first_restart(pool: LeanPool) -> None:
    """A REPL restart on the (one) worker: checkpoints start after one."""
    with pytest.raises(LeanCrashError):
        pool.run("#eval 0 --!sim crash")


def crash_and_continue(session: PoolSession, state: int) -> ProofStepResponse:
    with pytest.raises(LeanCrashError):
        session.run(ProofStep(proof_state=state, tactic="skip --!sim crash"))
    after = session.run(ProofStep(proof_state=state, tactic="skip"))
    assert isinstance(after, ProofStepResponse), after
    return after


@pytest.mark.parametrize("checkpoints", [True, False])
def test_after_a_crash_a_deep_state_is_unpickled_not_replayed(
    private_tmp: Path, checkpoints: bool
) -> None:
    config = sim_config(imports={"HeaderA": (50, 5)})
    with LeanPool(config, 1, timeout=30, progress=False, checkpoints=checkpoints) as pool:
        first_restart(pool)
        session = pool.session()
        state, goals = deep_state(session, "deep")
        assert len(pickles_under(private_tmp)) == (DEPTH + 1 if checkpoints else 0)
        after = crash_and_continue(session, state)
        assert after.goals == goals  # the same state, however it came back
        stats = pool.stats()
        assert stats.restarts.get("crash", 0) >= 1
        if checkpoints:
            # one unpickle on the re-imported header; no tactic ran again
            assert (stats.states_unpickled, stats.states_rebuilt) == (1, 0)
        else:  # the goal, then each of the DEPTH steps, replayed
            assert (stats.states_unpickled, stats.states_rebuilt) == (0, DEPTH + 1)


def test_a_worker_whose_repl_never_restarted_pickles_nothing(private_tmp: Path) -> None:
    """Checkpoints cost a request each: without restarts they would never pay off."""
    config = sim_config(imports={"HeaderA": (50, 5)})
    with LeanPool(config, 1, timeout=30, progress=False) as pool:
        deep_state(pool.session(), "calm")
        assert pickles_under(private_tmp) == []
        first_restart(pool)
        deep_state(pool.session(), "after")
        assert len(pickles_under(private_tmp)) == DEPTH + 1


def test_checkpoints_work_in_the_sandbox_and_fall_back_to_replay(private_tmp: Path) -> None:
    """The REPL writes its pickles from inside the sandbox; a pickle that is gone is replayed."""
    config = sim_config(imports={"HeaderA": (50, 5)})
    with LeanPool(config, 1, timeout=30, progress=False, sandbox="auto") as pool:
        first_restart(pool)
        session = pool.session()
        state, goals = deep_state(session, "sandboxed")
        pickles = pickles_under(private_tmp)
        assert len(pickles) == DEPTH + 1
        pickles[-1].unlink()  # the newest: the deep state's own checkpoint
        after = crash_and_continue(session, state)
        assert after.goals == goals
        stats = pool.stats()
        assert stats.states_rebuilt == 1 and stats.states_unpickled == 1  # its parent's pickle


def test_a_corrupt_checkpoint_costs_a_restart_not_the_request(private_tmp: Path) -> None:
    """Reading a broken pickle kills the REPL (the REPL treats it as fatal): the request runs
    again on a new one, which replays the state instead."""
    config = sim_config(imports={"HeaderA": (50, 5)})
    with LeanPool(config, 1, timeout=30, progress=False) as pool:
        first_restart(pool)
        session = pool.session()
        state, goals = deep_state(session, "corrupt")
        pickles_under(private_tmp)[-1].write_bytes(b"not a pickle")
        after = crash_and_continue(session, state)
        assert after.goals == goals
        stats = pool.stats()
        # first_restart, the crash, the corrupt read; then its parent came back from its own
        assert stats.restarts.get("crash", 0) == 3
        assert (stats.states_rebuilt, stats.states_unpickled) == (1, 1)


def test_pickles_go_with_their_session_and_the_directory_with_the_pool(
    private_tmp: Path,
) -> None:
    config = sim_config(imports={"HeaderA": (50, 5)})
    with LeanPool(config, 1, timeout=30, progress=False) as pool:
        first_restart(pool)
        kept, closed = pool.session(), pool.session()
        deep_state(kept, "kept")
        deep_state(closed, "closed")
        assert len(pickles_under(private_tmp)) == 2 * (DEPTH + 1)
        closed.close()
        pool.run("#eval 1")  # the next task tells the worker
        assert len(pickles_under(private_tmp)) == DEPTH + 1
    assert not list(private_tmp.glob("leanpool-checkpoints-*"))


def test_a_spare_warms_the_headers_in_use_most_recent_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Steps on a state made on a header count as uses of that header; a header no request
    used for HEADER_WARM_SECONDS is left for when it is needed."""
    from leanpool import _worker_cache
    from leanpool.protocol import Command

    now = [1000.0]
    monkeypatch.setattr(_worker_cache.time, "monotonic", lambda: now[0])

    class Server:  # the cache keeps bindings per server, weakly
        pass

    cache = _worker_cache.WorkerCache()
    server = Server()
    header_a = cache.adopt(Command(cmd="import A"))
    header_b = cache.adopt(Command(cmd="import B"))
    cache.header_ids |= {header_a, header_b}

    def run_raw(_request: object) -> dict[str, int]:
        return {"env": 0}

    cache.materialize(server, header_b, run_raw)
    now[0] += 1
    cache.materialize(server, header_a, run_raw)
    answer = cache.add(server, Command(cmd="def x := 1", env=header_b), {"env": 1}, id_base=1 << 20)
    assert [sid for sid, _ in cache.root_requests()] == [header_a, header_b]
    now[0] += _worker_cache.HEADER_WARM_SECONDS + 1  # A unused since; B's state used now
    cache.materialize(server, answer["env"], run_raw)
    assert [sid for sid, _ in cache.root_requests()] == [header_b]
