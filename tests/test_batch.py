"""Batch verification through the context manager: verdicts, results, summary, progress."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from leanpool import LeanCrashError, LeanPool, LeanTimeoutError
from leanpool._batch import Batch
from leanpool._verdict import Verdict
from leanpool._verify import Verification
from leanpool.protocol import CommandResponse
from leanpool.testing import sim_config


@pytest.fixture
def pool() -> LeanPool:
    with LeanPool(sim_config(), 2, timeout=5) as p:
        yield p


def test_batch_collects_every_verdict(pool: LeanPool) -> None:
    items = {
        "ok": "theorem a : 2 + 2 = 4 := by norm_num",
        "false": "theorem b : 2 + 2 = 5 := by norm_num",
        "sorry": "theorem c : 1 = 1 := by sorry",
        "hang": "theorem d : 1 = 1 := by rfl --!sim hang",
        "crash": "theorem e : 1 = 1 := by rfl --!sim crash",
    }
    with pool.batch(progress=False) as batch:
        for name, code in items.items():
            batch.submit(code, id=name, timeout=1.0 if name == "hang" else None)
    verdicts = {r.id: (r.verdict, r.reasons) for r in batch.results}
    assert verdicts == {
        "ok": ("passed", ()),
        "false": ("lean_error", ("error",)),
        "sorry": ("rejected", ("sorry",)),
        "hang": ("fault", ("fault:LeanTimeoutError",)),
        "crash": ("fault", (f"fault:{type(batch.results[4].result).__name__}",)),
    }
    assert isinstance(batch.results[3].result, LeanTimeoutError)
    assert isinstance(batch.results[4].result, LeanCrashError)
    summary = batch.summary()
    counts = (summary.total, summary.passed, summary.lean_error, summary.rejected, summary.fault)
    assert counts == (5, 1, 1, 1, 2)
    crash = type(batch.results[4].result).__name__
    assert summary.faults_by_kind == {"LeanTimeoutError": 1, crash: 1}
    assert summary.reasons["sorry"] == 1
    assert summary.latency_max is not None and summary.wall_seconds > 0
    assert "5 requests: 1 passed" in str(summary)
    # every one of them failed because of the code: the false proof, the sorry, the hang and
    # the crash (Lean died on it)
    assert [r.blame for r in batch.results] == [None, "proof", "proof", "proof", "proof"]
    assert summary.by_blame == {"proof": 4}
    assert "blame" not in batch.results[0].record()
    assert batch.results[3].record()["blame"] == "proof"


def test_a_failure_of_the_machine_is_told_apart_from_the_code_s(tmp_path: Path) -> None:
    """A REPL killed from outside (as the OOM killer does) while it checks a proof: with no
    retry left, the batch reports it as the machine's failure, and the results file says so."""
    results = tmp_path / "results.jsonl"
    with LeanPool(sim_config(), 1, timeout=30, infrastructure_retries=0) as pool:
        pool.run("#eval 0")

        def kill_the_repl_once_busy() -> None:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                worker = pool.stats().workers[0]
                if worker["in_flight"] and worker["repl_pid"]:
                    time.sleep(0.2)
                    os.kill(int(worker["repl_pid"]), signal.SIGKILL)
                    return
                time.sleep(0.02)

        killer = threading.Thread(target=kill_the_repl_once_busy)
        killer.start()
        with pool.batch(progress=False, results_path=results) as batch:
            batch.submit("theorem k : 1 = 1 := by rfl --!sim sleep_ms=1500", id="killed")
        killer.join()
        with pool.batch(progress=False) as after:
            after.submit("theorem f : 2 + 2 = 5 := by norm_num", id="false")
    (killed,) = batch.results
    assert killed.verdict == "fault" and killed.blame == "infrastructure"
    assert batch.summary().by_blame == {"infrastructure": 1}
    assert json.loads(results.read_text().splitlines()[0])["blame"] == "infrastructure"
    assert after.summary().by_blame == {"proof": 1}


def test_allow_sorry_counts_sorry_as_passed(pool: LeanPool) -> None:
    with pool.batch(allow_sorry=True) as batch:
        batch.submit("theorem c : 1 = 1 := by sorry")
    assert batch.results[0].passed


def test_progress_bar_runs(pool: LeanPool, capsys: pytest.CaptureFixture[str]) -> None:
    with pool.batch(progress=True) as batch:
        for i in range(20):
            batch.submit(f"theorem t{i} : {i} + 1 = {i + 1} := by decide")
    assert batch.summary().passed == 20
    assert "Verifying" in capsys.readouterr().err


class _LateCallbacks(Future[Any]):
    """A finished future whose done-callbacks have not run yet (they run on another thread, after
    the waiters woke: as a pool future's do)."""

    def __init__(self, result: Any) -> None:
        super().__init__()
        self.held: list[Callable[[Future[Any]], object]] = []
        self.set_result(result)

    def add_done_callback(self, fn: Callable[[Future[Any]], object]) -> None:
        self.held.append(fn)


class _LatePool:
    """Stands in for a pool: every request is answered at once, its callbacks held back."""

    def __init__(self) -> None:
        self.futures: list[_LateCallbacks] = []

    timeout = None

    def submit_verification(self, code: str, **options: Any) -> Future[Any]:
        response = CommandResponse(env=len(self.futures))
        self.futures.append(_LateCallbacks(Verification(Verdict("passed"), response)))
        return self.futures[-1]


def test_every_entry_has_its_verdict_even_before_its_callback_ran() -> None:
    late = _LatePool()
    with Batch(late, late, progress=False) as batch:  # type: ignore[arg-type]
        for i in range(5):
            batch.submit(f"#eval {i}")
    assert [r.verdict for r in batch.results] == ["passed"] * 5
    assert [r.result.env for r in batch.results] == [0, 1, 2, 3, 4]
    for future in late.futures:  # the callbacks run late: nothing is recorded twice
        for callback in future.held:
            callback(future)
    assert batch.summary().passed == 5


def test_every_entry_has_its_verdict_right_after_the_block_under_thread_switching() -> None:
    """On a real pool, with the interpreter switching threads as often as it can: the entry of
    the last request a batch waited for lacked its verdict about once in 200 blocks before
    `Batch.wait` filled in entries whose callback had not run (3000 blocks: 15 to 26 failed)."""
    previous = sys.getswitchinterval()
    with LeanPool(sim_config(), 1, progress=False) as pool:
        pool.verify("theorem t : 1 = 1 := rfl")  # repeats are answered from the cache
        sys.setswitchinterval(1e-6)
        try:
            for block in range(3000):
                with pool.batch(progress=False) as batch:
                    batch.submit("theorem t : 1 = 1 := rfl")
                assert batch.results[0].verdict == "passed", block
        finally:
            sys.setswitchinterval(previous)


def test_results_path_keeps_each_entry_and_resume_skips_them(
    pool: LeanPool, tmp_path: Path
) -> None:
    path = tmp_path / "results.jsonl"
    proofs = {f"t{i}": f"theorem t{i} : {i} + 1 = {i + 1} := by decide" for i in range(4)}
    proofs["bad"] = "theorem bad : 1 = 2 := by decide"
    with pool.batch(progress=False, results_path=path) as batch:
        for name, code in list(proofs.items())[:3]:
            batch.submit(code, id=name)
    written = [json.loads(line) for line in path.read_text().splitlines()]
    assert sorted(r["id"] for r in written) == ["t0", "t1", "t2"]
    assert all(r["verdict"] == "passed" and r["reasons"] == [] for r in written)

    with pool.batch(progress=False, results_path=path, resume=True) as batch:
        futures = {name: batch.submit(code, id=name) for name, code in proofs.items()}
    assert {n: f.result().resumed for n, f in futures.items()} == {
        "t0": True,
        "t1": True,
        "t2": True,
        "t3": False,
        "bad": False,
    }
    assert batch.summary().passed == 4 and batch.summary().lean_error == 1
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert sorted(r["id"] for r in lines) == sorted(proofs)  # each once
