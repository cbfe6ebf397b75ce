"""Batch verification through the context manager: verdicts, results, summary, progress."""

from __future__ import annotations

from concurrent.futures import CancelledError

import pytest

from leanpool import LeanPool, LeanTimeoutError
from leanpool._batch import verdict_of
from leanpool.protocol import CommandResponse, LeanError, ProofStepResponse
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
    verdicts = {r.id: r.verdict for r in batch.results}
    assert verdicts == {
        "ok": "passed",
        "false": "lean_error",
        "sorry": "lean_error",
        "hang": "fault",
        "crash": "fault",
    }
    assert isinstance(batch.results[3].result, LeanTimeoutError)
    summary = batch.summary()
    assert (summary.total, summary.passed, summary.lean_error, summary.fault) == (5, 1, 2, 2)
    assert summary.faults_by_kind == {"LeanTimeoutError": 1, "LeanCrashError": 1}
    assert summary.latency_max is not None and summary.wall_seconds > 0
    assert "5 requests: 1 passed" in str(summary)


def test_allow_sorry_counts_sorry_as_passed(pool: LeanPool) -> None:
    with pool.batch(allow_sorry=True) as batch:
        batch.submit("theorem c : 1 = 1 := by sorry")
    assert batch.results[0].passed


def test_progress_bar_runs(pool: LeanPool, capsys: pytest.CaptureFixture[str]) -> None:
    with pool.batch(progress=True) as batch:
        for i in range(20):
            batch.submit(f"#eval {i}")
    assert batch.summary().passed == 20
    assert "Verifying" in capsys.readouterr().err


def test_verdict_of_each_kind() -> None:
    assert verdict_of(CommandResponse(env=0)) == "passed"
    assert verdict_of(LeanError(message="Unknown environment.")) == "lean_error"
    done = ProofStepResponse(proof_state=1, goals=[], proof_status="Completed")
    assert verdict_of(done) == "passed"
    open_goals = ProofStepResponse(
        proof_state=1, goals=["⊢ True"], proof_status="Incomplete: open goals remain"
    )
    assert verdict_of(open_goals) == "lean_error"
    assert verdict_of(CancelledError()) == "fault"
