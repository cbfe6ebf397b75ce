"""LeanPool on the simulator: the executor API, ordering, sessions, routing, recycling, stats."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from typing import Any

import psutil
import pytest

from leanpool import LeanPool, LeanREPLConfig, LeanTimeoutError, PoolShutdownError, RequestError
from leanpool._backends import WorkerHandle, loky_worker
from leanpool._control import ControlPage
from leanpool._server import LeanServer
from leanpool._worker import WorkItem
from leanpool.protocol import Command, CommandResponse, LeanError, ProofStep, ProofStepResponse
from leanpool.testing import sim_config


def eval_value(response: object) -> str:
    assert isinstance(response, CommandResponse), response
    return next(m.data for m in response.messages if m.severity == "info")


@pytest.fixture(scope="module")
def config():  # type: ignore[no-untyped-def]
    return sim_config()


@pytest.fixture
def pool(config):  # type: ignore[no-untyped-def]
    with LeanPool(config, 2, timeout=30) as p:
        yield p


# -------------------------------------------------------------------------------- the seed
def _seed_worker(config, task_id):  # type: ignore[no-untyped-def]
    from leanpool import AutoLeanServer, Command

    server = AutoLeanServer(config)
    result = server.run(Command(cmd=f"#eval {task_id} * {task_id}"))
    server.kill()
    return f"Task {task_id}: {result.messages[0].data if hasattr(result, 'messages') else 'Error'}"


def test_seed_quick_start_with_leanpool_names(config) -> None:  # type: ignore[no-untyped-def]
    """The LeanInteract guide's quick start, with only the import changed."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(processes=2) as mp_pool:
        results = mp_pool.starmap(_seed_worker, [(config, task_id) for task_id in range(5)])
    assert results == [f"Task {i}: {i * i}" for i in range(5)]


def test_the_same_job_with_pool_map(pool: LeanPool) -> None:
    results = pool.map(f"#eval {i} * {i}" for i in range(5))
    assert [eval_value(r) for r in results] == [str(i * i) for i in range(5)]


# -------------------------------------------------------------------------------- executor API
def test_map_500_commands_in_order(pool: LeanPool) -> None:
    results = list(pool.map([Command(cmd=f"#eval {i} + 1000") for i in range(500)]))
    assert [eval_value(r) for r in results] == [str(i + 1000) for i in range(500)]
    stats = pool.stats()
    assert stats.done >= 500 and stats.queued == 0 and stats.running == 0
    assert all(w["pid"] for w in stats.workers)


def test_submit_run_and_plain_strings(pool: LeanPool) -> None:
    future = pool.submit("#eval 2 ^ 10")
    assert eval_value(future.result()) == "1024"
    assert eval_value(pool.run(Command(cmd="#eval 3 * 3"))) == "9"


def test_map_unordered_and_return_exceptions(pool: LeanPool) -> None:
    requests = [f"#eval {i}" for i in range(20)]
    requests[7] = "#eval 7 --!sim crash"
    results = list(pool.map(requests, ordered=False, return_exceptions=True))
    assert len(results) == 20
    crashes = [r for r in results if isinstance(r, Exception)]
    assert len(crashes) == 1
    assert sorted(eval_value(r) for r in results if not isinstance(r, Exception)) == sorted(
        str(i) for i in range(20) if i != 7
    )


def test_map_raises_first_failure_by_default(pool: LeanPool) -> None:
    from leanpool import LeanCrashError

    with pytest.raises(LeanCrashError):
        list(pool.map(["#eval 1", "#eval 2 --!sim crash", "#eval 3"]))


def test_imap_unordered_with_index(pool: LeanPool) -> None:
    pairs = list(pool.imap_unordered((f"#eval {i} * 2" for i in range(50)), with_index=True))
    assert sorted(index for index, _ in pairs) == list(range(50))
    assert all(eval_value(r) == str(i * 2) for i, r in pairs)


def test_streaming_keeps_a_bounded_window(config) -> None:  # type: ignore[no-untyped-def]
    with LeanPool(config, 2, max_in_flight=40) as pool:
        peak = 0
        for count, _result in enumerate(pool.imap_unordered(f"#eval {i}" for i in range(2000))):
            if count % 100 == 0:
                stats = pool.stats()
                peak = max(peak, stats.queued + stats.running)
        assert count == 1999
        assert peak <= 40


def test_async_run_and_async_map(pool: LeanPool) -> None:
    async def main() -> tuple[str, list[str]]:
        single = eval_value(await pool.async_run("#eval 5 * 5"))
        ordered = [
            eval_value(r)
            async for r in pool.async_map([f"#eval {i}" for i in range(30)], ordered=True)
        ]
        return single, ordered

    single, ordered = asyncio.run(main())
    assert single == "25"
    assert ordered == [str(i) for i in range(30)]


def test_bad_input_is_a_clear_error(pool: LeanPool) -> None:
    with pytest.raises(RequestError, match="Empty"):
        pool.submit("   ")
    with pytest.raises(RequestError, match="Cannot send"):
        pool.submit(42)  # type: ignore[arg-type]
    with pytest.raises(RequestError, match="session"):
        pool.submit(Command(cmd="#eval 1", env=0))
    with pytest.raises(TypeError, match="frobnicate"):
        pool.submit("#eval 1", frobnicate=True)
    results = list(pool.map(["#eval 1", "", "#eval 3"], return_exceptions=True))
    assert isinstance(results[1], RequestError)
    assert eval_value(results[2]) == "3"


def test_unknown_pool_option_is_rejected_before_starting(config) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TypeError, match="max_tota_memory"):
        LeanPool(config, 1, max_tota_memory=0.5)


def test_cancel_before_start_and_shutdown_cancel_futures(config) -> None:  # type: ignore[no-untyped-def]
    pool = LeanPool(config, 1, dedup=False)
    blocker = pool.submit("#eval 0 --!sim sleep_ms=1500")
    deadline = time.monotonic() + 30
    while not blocker.running() and time.monotonic() < deadline:
        time.sleep(0.01)
    waiting = [pool.submit(f"#eval {i}") for i in range(1, 200)]
    assert waiting[-1].cancel()
    pool.shutdown(wait=True, cancel_futures=True)
    assert eval_value(blocker.result()) == "0"
    outcomes = []
    for future in waiting:
        try:
            outcomes.append(eval_value(future.result()))
        except CancelledError:
            outcomes.append("cancelled")
    assert outcomes[-1] == "cancelled"
    assert "cancelled" in outcomes[:-1]
    with pytest.raises(PoolShutdownError):
        pool.submit("#eval 1")


def test_identical_requests_in_flight_run_once(pool: LeanPool) -> None:
    futures = [pool.submit("#eval 99 --!sim sleep_ms=300") for _ in range(10)]
    assert {eval_value(f.result(timeout=30)) for f in futures} == {"99"}  # each one its own
    assert pool.stats().deduplicated >= 9


# -------------------------------------------------------------------------------- sessions
def test_session_keeps_ids_valid(pool: LeanPool) -> None:
    with pool.session() as session:
        base = session.run("def double (n : Nat) := 2 * n")
        assert isinstance(base, CommandResponse) and base.env < 0
        proof = session.run(
            Command(cmd="theorem t (a b : Nat) : a = b → b = a := by sorry", env=base.env)
        )
        state = proof.sorries[0].proof_state
        branches = [
            session.submit(ProofStep(proof_state=state, tactic=t))
            for t in ("intro h", "omega", "simp", "intro h")
        ]
        results = [f.result() for f in branches]
        assert all(isinstance(r, ProofStepResponse) for r in results)
        after_intro = results[0]
        done = session.run(ProofStep(proof_state=after_intro.proof_state, tactic="exact h.symm"))
        assert done.proof_status == "Completed"
        with pytest.raises(RequestError):
            session.submit(Command(cmd="#eval 1", env=0))
        with pool.session() as other, pytest.raises(RequestError, match="this session"):
            other.submit(ProofStep(proof_state=state, tactic="omega"))  # another session's id


def test_session_survives_a_killed_worker(pool: LeanPool) -> None:
    session = pool.session()
    proof = session.run("theorem t (p q : Prop) : p ∧ q → q ∧ p := by sorry")
    state = proof.sorries[0].proof_state
    step = session.run(ProofStep(proof_state=state, tactic="intro h"))
    worker_pid = pool.stats().workers[session.slot_index]["pid"]
    os.kill(worker_pid, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while pool.stats().workers[session.slot_index]["pid"] in (worker_pid, None):
        if time.monotonic() > deadline:
            break
        pool.run(f"#eval {time.monotonic_ns()}")  # traffic lets the pool notice
        time.sleep(0.05)
    again = session.run(ProofStep(proof_state=step.proof_state, tactic="constructor"))
    assert isinstance(again, ProofStepResponse)
    assert pool.stats().recycles.get("worker_died", 0) >= 1
    session.close()


def test_session_ids_never_issued_are_refused_before_sending(pool: LeanPool) -> None:
    with pool.session() as session:
        env = session.run("def x := 1").env  # the first state of this session's request
        with pytest.raises(RequestError, match="never issued"):  # its fifth: nothing named it
            session.run(ProofStep(proof_state=env - 5, tactic="rfl"))
        with pytest.raises(RequestError, match="this session"):  # not even our request's id
            session.run(ProofStep(proof_state=-(1 << 40), tactic="rfl"))
        assert pool.stats().submitted == 1  # the refused requests never reached the pool


# -------------------------------------------------------------------------------- recycling
class _CountingWorkers:
    """A backend of loky workers that counts the requests sent to each worker process, and
    which of them ended before the pool was shut down (recycled)."""

    def __init__(self) -> None:
        self.sent: list[int] = []  # per worker process, in the order they were started
        self.recycled: list[bool] = []
        self.closing = False

    def __call__(self, config: LeanREPLConfig, options: dict[str, Any]) -> _CountedWorker:
        self.sent.append(0)
        self.recycled.append(False)
        return _CountedWorker(loky_worker(config, options), self, len(self.sent) - 1)


class _CountedWorker:
    def __init__(self, inner: WorkerHandle, book: _CountingWorkers, index: int) -> None:
        self._inner, self._book, self._index = inner, book, index

    @property
    def control(self) -> ControlPage | None:
        return self._inner.control

    def submit(self, items: list[WorkItem]) -> Future[Any]:
        self._book.sent[self._index] += len(items)
        return self._inner.submit(items)

    def warm_up(self) -> Future[Any]:
        return self._inner.warm_up()

    def shutdown(self, wait: bool = False) -> None:
        self._book.recycled[self._index] |= not self._book.closing
        self._inner.shutdown(wait)

    def kill(self, wait: bool = False) -> None:
        self._book.recycled[self._index] |= not self._book.closing
        self._inner.kill(wait)


def test_each_worker_process_serves_exactly_max_tasks_staggered(config) -> None:  # type: ignore[no-untyped-def]
    """`max_tasks_per_worker=n`: every worker serves exactly n requests and is then replaced;
    the first worker of slot i is replaced after n - i*n/workers (staggered), however many
    tasks are in flight (before: up to 2n, the tasks already queued on it)."""
    book = _CountingWorkers()
    requests = [f"#eval {i} --!sim sleep_ms=5" for i in range(40)]
    with LeanPool(config, 2, max_tasks_per_worker=6, dedup=False, backend=book) as pool:  # type: ignore[arg-type]
        assert [eval_value(r) for r in pool.map(requests)] == [str(i) for i in range(40)]
        recycles = pool.stats().recycles
        book.closing = True
    quotas = [6, 3] + [6] * (len(book.sent) - 2)  # slot 0 first after 6, slot 1 after 6 - 3
    assert sum(book.sent) == 40
    assert book.recycled[:2] == [True, True], book.recycled
    for sent, quota, recycled in zip(book.sent, quotas, book.recycled, strict=True):
        if recycled:
            assert sent == quota, (book.sent, book.recycled)
        else:  # still running at the end
            assert sent <= quota, (book.sent, book.recycled)
    assert recycles.get("max_tasks") == sum(book.recycled) >= 4


def test_memory_limit_gives_memory_error_and_is_recorded(config) -> None:  # type: ignore[no-untyped-def]
    from leanpool import LeanMemoryError

    with LeanPool(config, 1, memory_limit_mb=250, timeout=60) as pool:
        with pytest.raises(LeanMemoryError):
            pool.run("#eval 1 --!sim rss_mb=400")
        assert eval_value(pool.run("#eval 2")) == "2"
        stats = pool.stats()
        assert stats.failed.get("LeanMemoryError") == 1
        assert stats.restarts.get("memory", 0) + stats.restarts.get("process_memory", 0) >= 1


# -------------------------------------------------------------------------------- affinity
HEADER_COMMAND = "import Mathlib\n-- a comment\nimport Aesop\n\ntheorem t : 1 + 1 = 2 := by sorry"


def test_header_affinity_positions_match_a_verbatim_run(pool: LeanPool) -> None:
    server = LeanServer(sim_config())
    try:
        verbatim = server.run(Command(cmd=HEADER_COMMAND))
    finally:
        server.kill()
    routed = pool.run(HEADER_COMMAND)
    assert isinstance(routed, CommandResponse) and isinstance(verbatim, CommandResponse)
    assert routed.messages == verbatim.messages
    assert [(s.start_pos, s.end_pos, s.goal) for s in routed.sorries] == [
        (s.start_pos, s.end_pos, s.goal) for s in verbatim.sorries
    ]
    assert pool.stats().header_imports >= 1


def test_lean_error_response_passes_through(pool: LeanPool) -> None:
    with pool.session() as session:
        response = session.run(ProofStep(proof_state=session_state(session), tactic="foo_bar"))
    assert isinstance(response, (LeanError, ProofStepResponse))


def session_state(session) -> int:  # type: ignore[no-untyped-def]
    proof = session.run("theorem u : True := by sorry")
    return proof.sorries[0].proof_state


def test_stats_shape(pool: LeanPool) -> None:
    pool.run("#eval 1")
    stats = pool.stats().as_dict()
    for key in (
        "submitted",
        "running",
        "done",
        "failed",
        "restarts",
        "recycles",
        "workers",
        "queued",
        "latency_p50",
        "latency_p99",
    ):
        assert key in stats
    assert stats["workers"][0]["rss_mb"] is None or stats["workers"][0]["rss_mb"] >= 0


def test_no_worker_survives_shutdown(config) -> None:  # type: ignore[no-untyped-def]
    pool = LeanPool(config, 2)
    pool.run("#eval 1")
    worker_pids = [w["pid"] for w in pool.stats().workers if w["pid"]]
    pool.shutdown()
    for pid in worker_pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_cancelled_requests_never_reach_the_repl(config) -> None:  # type: ignore[no-untyped-def]
    """Requests cancelled before their worker's REPL read them never run there, whether they
    waited in the parent or already sat on the worker behind a busy REPL; `stats().cancelled`
    counts them. The probe: the REPL numbers each command it runs (env ids), so the command
    after the blocker gets the next id only if nothing ran in between."""
    with LeanPool(config, 1, dedup=False) as pool:
        first = pool.run("#eval 0")
        repl = pool.stats().workers[0]["repl_pid"]
        os.kill(repl, signal.SIGSTOP)  # the REPL cannot answer the blocker until we let it
        try:
            blocker = pool.submit("#eval 1")
            _wait_for(blocker.running)
            queued = [pool.submit(f"#eval {i}") for i in range(2, 12)]
            _wait_for(lambda: any(f.running() for f in queued))  # some sit on the worker
            assert all(f.cancel() for f in queued)
            pool.stats()  # the dispatcher has handled every cancellation (events in order)
        finally:
            os.kill(repl, signal.SIGCONT)
        assert blocker.result(timeout=30).env == first.env + 1
        probe = pool.run("#eval 99")
        stats = pool.stats()
    assert probe.env == first.env + 2  # nothing ran between the blocker and the probe
    assert stats.cancelled == 10 and stats.done == 3, stats


def _wait_for(condition: Callable[[], bool], within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"not within {within} s"
        time.sleep(0.01)


def test_a_request_over_its_timeout_fails_wherever_its_worker_batches_it(config) -> None:  # type: ignore[no-untyped-def]
    """Requests that need 1.5x their timeout, between requests without one: each slow one
    gets LeanTimeoutError, every other its own answer, whatever batches the worker got."""
    slow = {1, 3, 4}
    with LeanPool(config, 1, dedup=False) as pool:
        futures = [
            pool.submit(f"#eval {i} --!sim sleep_ms=750", timeout=0.5)
            if i in slow
            else pool.submit(f"#eval {i}")
            for i in range(6)
        ]
        for i, future in enumerate(futures):
            if i in slow:
                assert isinstance(future.exception(timeout=60), LeanTimeoutError), i
            else:
                assert eval_value(future.result(timeout=60)) == str(i)


def test_default_worker_count_honours_the_cpu_affinity() -> None:
    """Restricted to one CPU (as a cgroup quota or `taskset` would), the pool starts one
    worker, though `os.cpu_count()` still counts every CPU of the machine."""
    code = (
        "import os\n"
        "os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})\n"
        "from leanpool import LeanPool\n"
        "from leanpool.testing import sim_config\n"
        "pool = LeanPool(sim_config())\n"
        "print(pool.max_workers, os.cpu_count())\n"
        "pool.shutdown()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    workers, cpus = map(int, done.stdout.split())
    assert workers == 1 and (cpus > 1 or os.cpu_count() == 1)
