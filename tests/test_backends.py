"""Worker backends: loky (default) and Ray actors (when Ray is installed)."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator

import psutil
import pytest

from leanpool import LeanCrashError, LeanPool
from leanpool._backends import is_worker_death
from leanpool.protocol import CommandResponse
from leanpool.testing import sim_config


def eval_value(response: object) -> str:
    assert isinstance(response, CommandResponse), response
    return next(m.data for m in response.messages if m.severity == "info")


def test_worker_death_is_recognised() -> None:
    from concurrent.futures.process import BrokenProcessPool

    from loky.process_executor import TerminatedWorkerError

    assert is_worker_death(TerminatedWorkerError("gone"))
    assert is_worker_death(BrokenProcessPool("gone"))
    assert not is_worker_death(ValueError("a bug"))


def test_loky_still_exposes_what_a_bounded_end_needs() -> None:
    """LokyWorker ends its worker within a bound by reading loky's private `_processes` and
    `_executor_manager_thread` (loky has no public equivalent): an upgrade that drops them
    must fail here, not turn every shutdown into an unbounded wait."""
    from leanpool._backends import LokyWorker

    worker = LokyWorker(sim_config(), {})
    try:
        _results, report = worker.warm_up().result(timeout=60)
        processes = worker._executor._processes  # type: ignore[attr-defined]
        assert [process.pid for process in processes.values()] == [report.pid]
        assert worker._executor._executor_manager_thread.is_alive()  # type: ignore[attr-defined]
    finally:
        worker.kill(wait=True)
    assert not psutil.pid_exists(report.pid) or (
        psutil.Process(report.pid).status() == psutil.STATUS_ZOMBIE
    )


@pytest.fixture(scope="module")
def ray_session() -> Iterator[None]:
    ray = pytest.importorskip("ray", reason="Ray is optional: pip install 'leanpool[ray]'")
    # "local": a Ray of our own, never a cluster another process on this machine runs
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        left = [
            p
            for p in psutil.Process().children(recursive=True)
            if "resource_tracker" not in " ".join(p.cmdline())
        ]
        if not [p for p in left if p.status() != psutil.STATUS_ZOMBIE]:
            return
        time.sleep(0.1)
    pytest.fail(f"Ray left processes behind: {[p.cmdline()[:3] for p in left]}")


@pytest.mark.allow_leftover_processes  # Ray's daemons live for the module; checked at its end
def test_pool_on_ray_actors(ray_session: None) -> None:
    from leanpool import ray_backend

    with LeanPool(sim_config(), 2, timeout=30, backend=ray_backend()) as pool:
        results = list(pool.map([f"#eval {i} * 11" for i in range(60)]))
        assert [eval_value(r) for r in results] == [str(i * 11) for i in range(60)]
        faults = list(pool.map(["#eval 1", "#eval 2 --!sim crash"], return_exceptions=True))
        assert isinstance(faults[1], LeanCrashError)
        os.kill(pool.stats().workers[0]["pid"], signal.SIGKILL)
        after = list(pool.map([f"#eval {i} + 500" for i in range(40)]))
        assert [eval_value(r) for r in after] == [str(i + 500) for i in range(40)]
        assert pool.stats().recycles.get("worker_died") == 1


def test_an_unknown_backend_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match=r"Unknown backend 'dask': use one of \('loky', 'ray'\)"):
        LeanPool(sim_config(), 1, backend="dask")
    with pytest.raises(TypeError, match="backend must be one of"):
        LeanPool(sim_config(), 1, backend=42)  # type: ignore[arg-type]


def test_backend_loky_by_name_is_the_default() -> None:
    with LeanPool(sim_config(), 1, timeout=30, backend="loky") as pool:
        assert eval_value(pool.run("#eval 6 * 7")) == "42"
        (worker,) = pool.stats().workers
        assert worker["node"] == {"id": None, "host": socket.gethostname()}
        assert list(pool.stats().nodes) == [socket.gethostname()]
