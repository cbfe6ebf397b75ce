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
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Protocol

from leanpool import _worker
from leanpool._control import ControlPage
from leanpool._errors import LeanSetupError
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
    # Whether the worker may wait for a place to run (a Ray actor waits for a node with the
    # resources it asked for): the pool sends it work only once its warm-up has answered, and
    # gives up on it after `placement_timeout` seconds (None: waits as long as it takes).
    # These two and `node_lost` are read with defaults (False, None, no node is ever lost), so
    # that a handle written for an earlier leanpool keeps working.
    needs_placement: bool
    placement_timeout: float | None

    def submit(
        self, items: list[_worker.WorkItem]
    ) -> Future[tuple[list[_worker.WorkResult], _worker.WorkerReport]]: ...

    def warm_up(self) -> Future[tuple[list[_worker.WorkResult], _worker.WorkerReport]]:
        """Start the worker and its REPL now (a task with no items)."""

    def shutdown(self, wait: bool = False) -> None:
        """Let queued tasks finish, then end the worker (and its REPL)."""

    def kill(self, wait: bool = False) -> None:
        """End the worker and its REPL now (`wait`: until the process is gone)."""

    def node_lost(self, node: str | None) -> bool:
        """Whether the machine `node` (from the worker's report) is gone: the worker died with
        it, through no fault of the request it ran."""

    def placement(self) -> str:
        """What the worker asked for to be placed, for error messages."""


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
        self.needs_placement = False
        self.placement_timeout: float | None = None
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

    def node_lost(self, node: str | None) -> bool:
        return False  # this machine

    def placement(self) -> str:
        return "a local process"

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
    """The body of a Ray actor: the same process-local worker state as a loky worker.

    The config comes from the driver's machine; where its REPL or project is missing on this
    node, it is set up here first (`LeanREPLConfig.on_this_machine`). A failed setup does not
    kill the actor (the pool would only start another one on the same node, again and again):
    every request sent here gets the error, which names the node and the step.
    """

    def __init__(self, config: LeanREPLConfig, server_options: dict[str, Any]) -> None:
        import ray

        node: str = ray.get_runtime_context().get_node_id()
        setup_error: LeanSetupError | None = None
        try:
            config = config.on_this_machine()
        except Exception as exc:
            setup_error = _node_setup_error(exc, node)
        _worker.initialize(
            config, server_options, parent_pid=None, node=node, setup_error=setup_error
        )

    def serve(
        self, items: list[_worker.WorkItem]
    ) -> tuple[list[_worker.WorkResult], _worker.WorkerReport]:
        return _worker.serve(items)

    def warm_up(self) -> tuple[list[_worker.WorkResult], _worker.WorkerReport]:
        return _worker.warm_up()


def _node_setup_error(error: Exception, node: str) -> LeanSetupError:
    """`error`, raised while setting the config up on a Ray node, as one naming node and step."""
    import socket

    step = getattr(error, "step", "") or "set up the REPL and project on this node"
    return LeanSetupError(
        f"On Ray node {node} ({socket.gethostname()}), setup failed at: {step}.\n{error}",
        step=step,
        command=getattr(error, "command", None),
        returncode=getattr(error, "returncode", None),
        output_tail=getattr(error, "output_tail", ""),
    )


# Ray's default for its own placement wait is forever; the pool's, once no worker is up (see
# `RayWorker`). Long enough for an autoscaler to add a node and for a node's first setup.
DEFAULT_PLACEMENT_TIMEOUT = 600.0


class RayWorker:
    """A slot's worker as a Ray actor, on any node of a Ray cluster.

    Actors are spread over the nodes by default (``scheduling_strategy="SPREAD"``). The config's
    REPL and project are set up on each node that lacks them (see `_RayWorkerActor`). The pool
    replaces dead actors itself (``max_restarts=0``), exactly as it replaces dead loky workers;
    an actor that Ray cannot place waits in Ray's queue, and is sent no work until it runs.
    """

    needs_placement = True

    def __init__(
        self,
        config: LeanREPLConfig,
        server_options: dict[str, Any],
        ray_options: dict[str, Any],
        placement_timeout: float | None = DEFAULT_PLACEMENT_TIMEOUT,
    ) -> None:
        import ray

        self.placement_timeout = placement_timeout
        self._options = {
            "num_cpus": 1,
            "max_restarts": 0,
            "scheduling_strategy": "SPREAD",
            **ray_options,
        }
        self.control: ControlPage | None = None  # another machine's memory: Ray watches actors
        self._ray: Any = ray
        actor_class: Any = ray.remote(_RayWorkerActor)
        self._actor: Any = actor_class.options(**self._options).remote(config, server_options)

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

    def node_lost(self, node: str | None) -> bool:
        """Asked once the actor died: is its node still in the cluster? (Ray ends a lost node's
        actors after it marks the node dead, so by then this says so.)"""
        if node is None:
            return False
        try:
            nodes = self._ray.nodes()
        except Exception:  # the cluster itself is unreachable: nothing to tell
            return False
        return not any(n.get("NodeID") == node and n.get("Alive") for n in nodes)

    def placement(self) -> str:
        shown = {k: v for k, v in self._options.items() if k != "max_restarts"}
        return f"a Ray actor with {shown}"


class _OwnedRay:
    """The Ray instance leanpool started in this process (``ray.init`` when none was), ended
    once the last pool using it shuts down: processes leanpool starts are leanpool's to end. A
    Ray the user initialized is never ended by leanpool."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0

    def acquire(self, address: str | None) -> bool:
        """Make sure Ray is initialized; True when this caller now holds one we started."""
        try:
            import ray
        except ImportError as exc:
            raise ImportError("The Ray backend needs Ray: pip install 'leanpool[ray]'") from exc
        with self._lock:
            if not ray.is_initialized():
                ray.init(address=address)
                self._holders = 0
            elif self._holders == 0:
                return False  # the user's (or a pool's whose Ray was ended and started again)
            self._holders += 1
            return True

    def release(self) -> None:
        import ray

        with self._lock:
            self._holders -= 1
            if self._holders == 0:
                ray.shutdown()


_owned_ray = _OwnedRay()


class RayBackend:
    """What `ray_backend` returns: a worker factory (see there). Each pool using it `open`s it
    first, which joins or starts Ray, and calls what `open` returned at shutdown, which ends
    the Ray instance it started once no other pool uses it."""

    def __init__(
        self,
        address: str | None,
        placement_timeout: float | None,
        actor_options: dict[str, Any],
    ) -> None:
        if placement_timeout is not None and not placement_timeout > 0:
            raise ValueError(
                f"placement_timeout must be a positive number of seconds or None, got "
                f"{placement_timeout!r}"
            )
        self.address = address
        self.placement_timeout = placement_timeout
        self.actor_options = actor_options

    def open(self) -> Callable[[], None] | None:
        """Join Ray, or start it; the release to call at the pool's end, if it was started."""
        return _owned_ray.release if _owned_ray.acquire(self.address) else None

    def __call__(self, config: LeanREPLConfig, server_options: dict[str, Any]) -> WorkerHandle:
        return RayWorker(config, server_options, self.actor_options, self.placement_timeout)


def ray_backend(
    address: str | None = None,
    *,
    placement_timeout: float | None = DEFAULT_PLACEMENT_TIMEOUT,
    **actor_options: Any,
) -> RayBackend:
    """Workers as Ray actors: ``LeanPool(config, 64, backend=ray_backend(num_cpus=1))``.

    Each pool joins Ray as this process initialized it (``ray.init(...)`` before); else it
    starts it with `address` (Ray's: ``"auto"``, ``"ray://head:10001"``; None: ``RAY_ADDRESS``,
    else a new local instance) and shuts it down with the last pool that uses it. `actor_options`
    go to ``actor.options(...)`` (``num_cpus``, ``memory``, ``resources``,
    ``scheduling_strategy``, ``runtime_env``...); actors are spread over nodes unless
    `scheduling_strategy` says otherwise. A worker Ray cannot place waits; once no worker of
    the pool is up and one has waited `placement_timeout` seconds (None: for ever), the
    requests waiting for a worker fail with an error naming what was asked for.
    ``backend="ray"`` is ``ray_backend()``. Ray is optional: ``pip install 'leanpool[ray]'``.
    """
    return RayBackend(address, placement_timeout, actor_options)


BACKENDS = ("loky", "ray")


def worker_factory(backend: str | WorkerFactory | None) -> WorkerFactory:
    """A pool's `backend` argument as a factory: None or ``"loky"``, ``"ray"``, or a factory."""
    if backend is None or backend == "loky":
        return loky_worker
    if backend == "ray":
        return ray_backend()
    if isinstance(backend, str):
        raise ValueError(
            f"Unknown backend {backend!r}: use one of {BACKENDS}, "
            "or a factory such as ray_backend(...)."
        )
    if not callable(backend):
        raise TypeError(
            f"backend must be one of {BACKENDS} or a worker factory, got {type(backend).__name__}"
        )
    return backend


publish(__name__)
