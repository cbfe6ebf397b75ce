"""Where pool workers run: local loky processes (default) or Ray actors (many machines).

A backend starts *one* worker process per call. The pool never shares an executor between
workers: with loky, one worker's death breaks its whole executor (every running and queued
future fails with loky's ``TerminatedWorkerError``, a ``BrokenProcessPool``), so each slot owns
a single-worker executor and a death costs only that slot's in-flight work, which the pool
handles.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Protocol

from leanpool import _worker
from leanpool._control import ControlPage
from leanpool._exports import publish

if TYPE_CHECKING:
    from leanpool._config import LeanREPLConfig

# Ending a worker: how long it may take to end after being asked, then after being killed.
GRACEFUL_END_SECONDS = 5.0
KILLED_END_SECONDS = 5.0


class WorkerHandle(Protocol):
    """One worker process that runs `leanpool._worker.serve` on batches of work items.

    `control` is the page shared with a local worker (heartbeat, deadlines, cancellations), or
    None where the backend has none (Ray actors on other machines).
    """

    control: ControlPage | None

    def submit(
        self, items: list[_worker.WorkItem]
    ) -> Future[tuple[list[_worker.WorkResult], _worker.WorkerReport]]: ...

    def warm_up(self) -> Future[tuple[list[_worker.WorkResult], _worker.WorkerReport]]:
        """Start the worker and its REPL now (a task with no items)."""

    def shutdown(self, wait: bool = False) -> None:
        """Let queued tasks finish, then end the worker (and its REPL)."""

    def kill(self, wait: bool = False) -> None:
        """End the worker and its REPL now (`wait`: until the process is gone)."""


WorkerFactory = Callable[["LeanREPLConfig", dict[str, Any]], WorkerHandle]


def is_worker_death(error: BaseException) -> bool:
    """Whether a task failed because its worker process died (not because of the task)."""
    from concurrent.futures.process import BrokenProcessPool

    try:
        from loky.process_executor import TerminatedWorkerError
    except ImportError:  # pragma: no cover - loky is a dependency
        return isinstance(error, BrokenProcessPool)
    if isinstance(error, (BrokenProcessPool, TerminatedWorkerError)):
        return True
    return type(error).__name__ in ("RayActorError", "ActorDiedError", "WorkerCrashedError")


_QUIET_TRACKERS = "ignore:resource_tracker:UserWarning"


def _quiet_resource_trackers() -> None:
    """Keep loky's (and multiprocessing's) resource trackers from warning about leaked
    semaphores when this process dies without shutting its executors down (SIGKILL).

    The tracker outlives its parent precisely to unlink them: nothing leaks, and the warning
    would only land on the user's terminal after the fact. The trackers start as
    ``python <this interpreter's flags> -c ...``, and the flags include `sys.warnoptions`, so
    an ignore filter added there reaches them (and nothing else in this process).
    """
    if _QUIET_TRACKERS not in sys.warnoptions:
        sys.warnoptions.append(_QUIET_TRACKERS)


class LokyWorker:
    """A single-worker loky executor: one process, its own queues, its own failure domain."""

    def __init__(self, config: LeanREPLConfig, server_options: dict[str, Any]) -> None:
        from loky import ProcessPoolExecutor

        _quiet_resource_trackers()

        self.control: ControlPage | None = ControlPage()
        self._executor = ProcessPoolExecutor(
            max_workers=1,
            initializer=_worker.initialize,
            initargs=(config, server_options, os.getpid(), self.control.path),
            timeout=None,  # never retire an idle worker: it holds imports and proof states
        )
        self._ending: tuple[Any, list[Any]] | None = None

    def submit(
        self, items: list[_worker.WorkItem]
    ) -> Future[tuple[list[_worker.WorkResult], _worker.WorkerReport]]:
        future: Future[tuple[list[_worker.WorkResult], _worker.WorkerReport]]
        future = self._executor.submit(_worker.serve, items)
        return future

    def warm_up(self) -> Future[tuple[list[_worker.WorkResult], _worker.WorkerReport]]:
        future: Future[tuple[list[_worker.WorkResult], _worker.WorkerReport]]
        future = self._executor.submit(_worker.warm_up)
        return future

    def shutdown(self, wait: bool = False) -> None:
        self._end(wait, kill=False)

    def kill(self, wait: bool = False) -> None:
        self._end(wait, kill=True)

    def _end(self, wait: bool, kill: bool) -> None:
        """Ask (or force) the worker to end; with `wait`, return once it has, within
        `GRACEFUL_END_SECONDS` + `KILLED_END_SECONDS`: a worker that does not end when asked
        (stopped, or stuck) is killed."""
        # loky forgets its manager thread on the first shutdown() call, so a later
        # shutdown(wait=True) returns at once; keep our own handles to wait on.
        if self.control is not None:  # nobody watches an ending worker
            self.control.close()
            self.control = None
        if self._ending is None:
            # loky has no public way to name an executor's processes or its manager thread,
            # and its shutdown() neither bounds its wait nor ends a stopped worker: the pool
            # must do both. Hence two private attributes, read defensively (a loky without
            # them falls back to loky's own shutdown); tests/test_backends.py fails loudly if
            # an upgrade removes them.
            processes = getattr(self._executor, "_processes", None) or {}
            self._ending = (
                getattr(self._executor, "_executor_manager_thread", None),
                list(processes.values()),
            )
            self._executor.shutdown(wait=False, kill_workers=kill)
        if kill:  # loky kills from its manager thread; do not depend on that thread
            self._kill_processes()
        if not wait:
            return
        thread, processes = self._ending
        if any(_stopped(process.pid) for process in processes):
            self._kill_processes()  # a stopped worker cannot end when asked
        for process in processes:
            process.join(timeout=KILLED_END_SECONDS if kill else GRACEFUL_END_SECONDS)
        if any(process.is_alive() for process in processes):
            self._kill_processes()
            for process in processes:
                process.join(timeout=KILLED_END_SECONDS)
        if thread is not None:
            thread.join(timeout=KILLED_END_SECONDS)

    def _kill_processes(self) -> None:
        """SIGKILL the worker (its REPL dies with it: PR_SET_PDEATHSIG). loky's processes have
        no working ``kill()``: their Popen lacks it."""
        assert self._ending is not None
        for process in self._ending[1]:
            with contextlib.suppress(ProcessLookupError, TypeError):
                os.kill(process.pid, signal.SIGKILL)


def _stopped(pid: int | None) -> bool:
    """Whether the process is stopped (SIGSTOP, or a debugger's trace stop)."""
    if pid is None:
        return False
    try:
        import psutil

        return psutil.Process(pid).status() in (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP)
    except Exception:  # gone, or the platform cannot tell
        return False


def loky_worker(config: LeanREPLConfig, server_options: dict[str, Any]) -> WorkerHandle:
    return LokyWorker(config, server_options)


class _RayWorkerActor:
    """The body of a Ray actor: the same process-local worker state as a loky worker."""

    def __init__(self, config: LeanREPLConfig, server_options: dict[str, Any]) -> None:
        _worker.initialize(config, server_options, parent_pid=None)

    def serve(
        self, items: list[_worker.WorkItem]
    ) -> tuple[list[_worker.WorkResult], _worker.WorkerReport]:
        return _worker.serve(items)

    def warm_up(self) -> tuple[list[_worker.WorkResult], _worker.WorkerReport]:
        return _worker.warm_up()


class RayWorker:
    """A slot's worker as a Ray actor, on any node of a Ray cluster.

    The config's paths (REPL binary, project) must be valid on every node that may host a
    worker: a shared filesystem, or the same setup done on each node. The pool replaces dead
    actors itself (``max_restarts=0``), exactly as it replaces dead loky workers.
    """

    def __init__(
        self, config: LeanREPLConfig, server_options: dict[str, Any], ray_options: dict[str, Any]
    ) -> None:
        import ray

        if not ray.is_initialized():
            ray.init(ignore_reinit_error=True)
        options = {"num_cpus": 1, "max_restarts": 0, **ray_options}
        self.control: ControlPage | None = None  # another machine's memory: Ray watches actors
        self._ray: Any = ray
        actor_class: Any = ray.remote(_RayWorkerActor)
        self._actor: Any = actor_class.options(**options).remote(config, server_options)

    def submit(
        self, items: list[_worker.WorkItem]
    ) -> Future[tuple[list[_worker.WorkResult], _worker.WorkerReport]]:
        future: Future[tuple[list[_worker.WorkResult], _worker.WorkerReport]] = (
            self._actor.serve.remote(items).future()
        )
        return future

    def warm_up(self) -> Future[tuple[list[_worker.WorkResult], _worker.WorkerReport]]:
        future: Future[tuple[list[_worker.WorkResult], _worker.WorkerReport]] = (
            self._actor.warm_up.remote().future()
        )
        return future

    def shutdown(self, wait: bool = False) -> None:
        self._actor.__ray_terminate__.remote()  # runs after the tasks already queued

    def kill(self, wait: bool = False) -> None:
        self._ray.kill(self._actor, no_restart=True)


def ray_backend(**ray_options: Any) -> WorkerFactory:
    """Workers as Ray actors: ``LeanPool(config, 64, backend=ray_backend(num_cpus=1))``.

    `ray_options` go to ``actor.options(...)`` (resources, scheduling strategy, runtime env...).
    Ray is an optional dependency: ``pip install 'leanpool[ray]'``.
    """

    def factory(config: LeanREPLConfig, server_options: dict[str, Any]) -> WorkerHandle:
        return RayWorker(config, server_options, ray_options)

    return factory


publish(__name__)
