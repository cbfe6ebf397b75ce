"""`LeanPool`: a `concurrent.futures`-style executor of Lean requests over REPL worker processes.

The path of one request::

  caller (any thread/loop)  parent: dispatcher thread      worker process (loky)       REPL
  ────────────────────────  ─────────────────────────────  ──────────────────────────  ───────
  pool.submit(cmd)->Future
   str->Command, header
   split, dedup key ─event─► identical one in flight? fold
                             queue per import header, or
                             the session's slot queue (an
                             idle slot may take a session
                             over from a stuck one)
                             a slot with room takes a batch
                             (prefers held headers)
                               ─── items (pickled) ─────►  _worker.serve(items)
                                                            AutoLeanServer.run_batch_raw
                                                             header env (cached) ──────► import once
                                                             bodies, pipelined ══stdin═══►
                                                                               ◄═stdout══
                                                             fault: typed error for that
                                                             request only; REPL restarted
                                                            shift positions, parse
                               ◄── results + WorkerReport ─
                             settle futures; recycle or
                             replace the worker (if it died,
                             its requests run again, once)
  future.result() ◄─────────  (done-callbacks: on callback
                              threads, never this one)

  future.cancel() ─event───► write its ticket on the      ·· control page (shared memory) ··
                             worker's control page ········► skipped if not yet written
                             heartbeat and deadline    ◄····  heartbeat every 0.2 s, the
                             watched: silent for           deadline of what the REPL serves
                             worker_grace -> replace

Everything the pool owns is ended by `shutdown()`, by leaving the ``with`` block (fast when
leaving by Ctrl-C), and at interpreter exit; the kernel ends workers whose parent died without
cleaning up (even by SIGKILL, even stopped ones), and their REPLs with them.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import os
import queue
import shutil
import tempfile
import threading
import time
import warnings
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FuturesTimeoutError
from functools import partial
from types import EllipsisType
from typing import TYPE_CHECKING, Any, Literal

from leanpool._arguments import check_timeout
from leanpool._backends import WorkerFactory, worker_factory
from leanpool._dispatcher import Dispatcher, DispatcherOptions, Pending, next_seq
from leanpool._errors import LeanPoolError, PoolShutdownError, RequestError
from leanpool._exports import publish
from leanpool._futures import PoolFuture, failed_future
from leanpool._ids import ID_BASE_STEP
from leanpool._memory_budget import default_budget_mb
from leanpool._pool_session import PoolSession, SessionRecord, record_of
from leanpool._preflight import enforce_preflight
from leanpool._routing import dedup_key, header_split_for, names_state
from leanpool._sandbox import SandboxMode, check_pass_env, check_sandbox, warn_missing_once
from leanpool._stats import PoolStats
from leanpool.protocol import BaseREPLQuery, Command, parse_request

if TYPE_CHECKING:
    from leanpool._batch import Batch
    from leanpool._config import LeanREPLConfig
    from leanpool._server import Response
    from leanpool._verdict import VerdictPolicy
    from leanpool._verify import Verification, Verifier

_live_pools: weakref.WeakSet[LeanPool] = weakref.WeakSet()
_exit_hook_lock = threading.Lock()
_exit_hook_registered = False
_RUN_OPTIONS = frozenset({"timeout", "verbose"})


def _kill_live_pools() -> None:
    for pool in list(_live_pools):
        with contextlib.suppress(Exception):
            pool._terminate()


def register_exit_hook() -> None:
    """Kill live pools at interpreter exit, *before* loky joins its workers.

    loky's exit hook waits for running tasks, which for a hung REPL without a timeout is
    forever. Hooks registered with ``threading._register_atexit`` run last-registered-first, so
    this is (re-)registered after loky registered its own (when the first worker started).
    """
    global _exit_hook_registered
    with _exit_hook_lock:
        if _exit_hook_registered:
            return
        _exit_hook_registered = True
    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        with contextlib.suppress(RuntimeError):  # interpreter already shutting down
            register(_kill_live_pools)


import atexit  # noqa: E402  (kept next to its use)

atexit.register(_kill_live_pools)


def as_request(request: BaseREPLQuery | str | dict[str, Any]) -> BaseREPLQuery:
    """A request model from what callers may pass: a model, Lean source text, or a REPL dict.

    A command with no text is refused however it comes: in a dataset it is a missing proof,
    and Lean would accept it without an error.
    """
    if isinstance(request, str):
        request = parse_request({"cmd": request})  # its errors name the problem (RequestError)
    elif isinstance(request, dict):
        request = parse_request(request)
    elif not isinstance(request, BaseREPLQuery):
        raise RequestError(
            f"Cannot send a {type(request).__name__} to Lean: pass a request model "
            "(Command, ProofStep, ...), Lean source text, or a dict in the REPL's JSON format."
        )
    if isinstance(request, Command) and not request.cmd.strip():
        raise RequestError("Empty command text: there is nothing for Lean to check.")
    return request


class LeanPool:
    """A pool of Lean REPL worker processes (see the module docstring for a request's path).

    Args:
        config: a set-up `LeanREPLConfig` (setup happens once, here in the parent).
        max_workers: worker processes, each owning one REPL (default: the CPUs this process may
            use, counting affinity and cgroup quotas).
        timeout: default per-request timeout in seconds (None: wait as long as Lean takes).
        memory_limit_mb: per-worker REPL memory limit: a request that crosses it gets
            `LeanMemoryError` and the REPL is replaced; between requests a REPL near it is
            restarted before it gets there. It counts the REPL's private memory, not the
            ``.olean`` pages every REPL shares (``memory_metric="rss"``: its whole RSS).
        max_tasks_per_worker: replace a worker after it served this many requests (staggered).
        header_affinity: send commands to the worker that already imported their header.
        progress: show a progress bar in `map`/`batch` (None: when attached to a terminal).
        dedup: run identical requests in flight at the same time once, and answer repeats of
            recent ones from a small cache (responses are deterministic).
        backend: where workers run: ``"loky"`` (default: local processes), ``"ray"`` (Ray
            actors spread over a Ray cluster's nodes: the Ray this process joined with
            ``ray.init``, else one started with Ray's defaults), or a factory such as
            ``ray_backend(address=..., num_cpus=2)``.
        worker_grace: seconds a busy worker may show no sign of life (a heartbeat every 0.2 s),
            or let a request overrun its timeout, before it is killed and replaced; its
            requests run again once on another worker (default 10).
        sandbox: ``"auto"`` (default): every worker's REPL runs in the sandbox `LeanServer`
            describes (scrubbed environment, private scratch directory, no network, limited
            reads and processes where the machine allows; `leanpool doctor` says what is
            active). ``None``: REPLs get the owner's whole environment and rights.
        pass_env: names of variables to pass to sandboxed REPLs besides those Lean needs.
        checkpoints: once a worker's REPL has restarted, pickle each proof state a session
            makes there (one ``pickleTo`` request, on the REPL that made it), so that after the
            next restart the state comes back with one unpickle instead of a replay of every
            tactic before it (default True). The pickles live in a private temporary directory,
            deleted as sessions close and at shutdown.
        memory_budget_mb: the most memory all workers and REPLs together may hold (shared
            ``.olean`` pages counted once). Near it the pool sends no new work and replaces
            the REPL holding the most, idle ones first, so that no request fails for it and the
            kernel kills nothing. ``"auto"`` (default): 80 % of the machine's (or container's)
            memory; None: no budget.
        infrastructure_retries: how many times a request runs again, on a fresh REPL, when
            its REPL failed for infrastructure reasons (killed from outside, as by the kernel's
            OOM killer; would not start): failures that are not the code's, see
            `LeanPoolError.blame` (default 1; 0: never). A lost worker's requests run again
            once as well (their own rule).
        heartbeat_budget: the default of `verify`'s and `batch`'s ``heartbeat_budget``: every
            ``set_option maxHeartbeats 0`` of a submission (``in`` forms too) is rewritten to
            this finite budget, in thousands of heartbeats as Lean counts them, so a runaway
            fails fast as a Lean error instead of a timeout and a restart; the verdict records
            it (docs/concepts/verdicts.md). None (default): submissions run as written.
        **server_options: passed to each worker's `AutoLeanServer` (``max_total_memory``,
            ``max_process_memory``, ``max_restart_attempts``, ``fault_retries``,
            ``memory_backend``, ...).
    """

    def __init__(
        self,
        config: LeanREPLConfig,
        max_workers: int | None = None,
        *,
        timeout: float | None = None,
        memory_limit_mb: float | None = None,
        max_tasks_per_worker: int | None = None,
        header_affinity: bool = True,
        progress: bool | None = None,
        dedup: bool = True,
        backend: str | WorkerFactory | None = None,
        max_batch: int = 64,
        max_in_flight: int | None = None,
        worker_grace: float = 10.0,
        sandbox: SandboxMode = "auto",
        pass_env: str | Sequence[str] | None = None,
        checkpoints: bool = True,
        memory_budget_mb: float | Literal["auto"] | None = "auto",
        infrastructure_retries: int = 1,
        heartbeat_budget: int | None = None,
        **server_options: Any,
    ) -> None:
        if not config.is_setup():
            raise LeanPoolError("The LeanREPLConfig is not set up; construct it first.")
        _check_server_options(server_options)
        server_options["sandbox"] = check_sandbox(sandbox)
        server_options["pass_env"] = check_pass_env(pass_env)
        if sandbox is not None:
            warn_missing_once()  # here, in the owner's process (workers stay quiet)
        _check_address_space(config, server_options.get("memory_backend", "rlimit"))
        enforce_preflight(config, stacklevel=3)  # a REPL that cannot serve this project
        if isinstance(infrastructure_retries, bool) or not (
            isinstance(infrastructure_retries, int) and infrastructure_retries >= 0
        ):
            raise ValueError(
                f"infrastructure_retries must be 0 or more, got {infrastructure_retries!r}"
            )
        if max_workers is not None and max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        if max_tasks_per_worker is not None and max_tasks_per_worker < 1:
            raise ValueError(f"max_tasks_per_worker must be at least 1, got {max_tasks_per_worker}")
        grace = check_timeout(worker_grace, "worker_grace")
        if grace is None:
            raise ValueError("worker_grace must be a finite number of seconds")
        factory = worker_factory(backend)
        self.config = config
        self.max_workers = max_workers or usable_cpus()
        self.timeout = check_timeout(timeout)
        self.memory_limit_mb = memory_limit_mb
        self.header_affinity = header_affinity
        self.progress = progress
        self.dedup = dedup
        if memory_limit_mb is not None:
            server_options.setdefault("rss_limit_mb", memory_limit_mb)
            server_options.setdefault("max_process_memory", 0.9)
        self.server_options = server_options
        self._checkpoints: str | None = None
        if checkpoints:
            # Workers make their own directories in here; removing it at shutdown also removes
            # what killed workers left (a worker on another machine keeps its own, see _worker).
            self._checkpoints = tempfile.mkdtemp(prefix="leanpool-checkpoints-")
            weakref.finalize(self, shutil.rmtree, self._checkpoints, True)
        worker_options = {**server_options, "checkpoints": self._checkpoints}
        self.max_in_flight = max_in_flight or max(32, self.max_workers * max_batch * 2)
        self._sessions = itertools.count(1)
        self._session_requests = itertools.count(1)
        self._verifier: Verifier | None = None
        if memory_budget_mb == "auto":
            memory_budget_mb = default_budget_mb()
        elif memory_budget_mb is not None and not (
            isinstance(memory_budget_mb, (int, float)) and memory_budget_mb > 0
        ):
            raise ValueError(
                f"memory_budget_mb must be a positive number of MB, 'auto' or None, got "
                f"{memory_budget_mb!r}"
            )
        self.memory_budget_mb = memory_budget_mb
        if heartbeat_budget is not None and (
            isinstance(heartbeat_budget, bool)
            or not isinstance(heartbeat_budget, int)
            or heartbeat_budget < 1
        ):
            raise ValueError(
                f"heartbeat_budget must be a positive number of thousands of heartbeats or "
                f"None, got {heartbeat_budget!r}"
            )
        self.heartbeat_budget = heartbeat_budget
        options = DispatcherOptions(
            memory_budget_mb=memory_budget_mb,
            infrastructure_retries=infrastructure_retries,
            workers=self.max_workers,
            max_batch=max_batch,
            max_tasks_per_worker=max_tasks_per_worker,
            result_cache_size=4096 if dedup else 0,
            worker_grace=grace,
        )
        opening = getattr(factory, "open", None)  # e.g. join or start Ray
        self._release_backend: Callable[[], None] | None = opening() if opening else None
        try:
            self._dispatcher = Dispatcher(config, worker_options, options, factory)
        except BaseException:
            self._close_backend()
            raise
        _live_pools.add(self)

    # ================================================================ submitting
    def submit(self, request: BaseREPLQuery | str, **run_options: Any) -> Future[Any]:
        """Queue one request; the future gives its response (or a typed error).

        Run options: ``timeout`` (seconds, default: the pool's; None or ``inf``: none) and
        ``verbose`` (accepted for LeanInteract compatibility; use logging to see traffic).
        The future can be cancelled until its result is set: a request its worker has not
        started is then skipped there.
        """
        unknown = set(run_options) - _RUN_OPTIONS
        if unknown:
            raise TypeError(f"Unknown run option(s) for LeanPool.submit: {sorted(unknown)}")
        return self._submit(request, timeout=run_options.get("timeout", self.timeout))

    def run(self, request: BaseREPLQuery | str, **run_options: Any) -> Response:
        """Run one request and wait for it."""
        result: Response = self.submit(request, **run_options).result()
        return result

    async def async_run(self, request: BaseREPLQuery | str, **run_options: Any) -> Response:
        """Run one request from asyncio; cancelling the awaiting task cancels a queued request."""
        result: Response = await asyncio.wrap_future(self.submit(request, **run_options))
        return result

    def map(
        self,
        requests: Iterable[BaseREPLQuery | str],
        *,
        timeout: float | None = None,
        ordered: bool = True,
        return_exceptions: bool = False,
        progress: bool | None = None,
    ) -> Iterator[Any]:
        """Like `Executor.map`: results in input order (or completion order).

        `timeout` bounds the whole iteration (`TimeoutError` when exceeded), as in
        `concurrent.futures`; the per-request timeout is the pool's. With
        ``return_exceptions=True`` a failed request yields its exception in place (like
        `asyncio.gather`) instead of ending the iteration. At most `max_in_flight` requests are
        queued at a time, so arbitrarily long inputs stream in bounded memory.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        completed: queue.SimpleQueue[int] = queue.SimpleQueue()
        window = _Window(self, requests, None if ordered else completed.put)
        window.fill()  # like Executor.map, work starts before the first result is asked for
        results = _results(window, completed, ordered, deadline, return_exceptions)
        return self._progress_wrap(results, window.total_hint, progress)

    def imap_unordered(
        self,
        requests: Iterable[BaseREPLQuery | str],
        *,
        return_exceptions: bool = False,
        with_index: bool = False,
    ) -> Iterator[Any]:
        """Results as they complete (``(index, result)`` pairs with `with_index`)."""
        completed: queue.SimpleQueue[int] = queue.SimpleQueue()
        window = _Window(self, requests, completed.put)
        window.fill()
        for index, result in _results(window, completed, False, None, return_exceptions, True):
            yield (index, result) if with_index else result

    async def async_map(
        self,
        requests: Iterable[BaseREPLQuery | str],
        *,
        ordered: bool = False,
        return_exceptions: bool = False,
        with_index: bool = False,
    ) -> AsyncIterator[Any]:
        """Async iterator of results (completion order by default), with bounded look-ahead:
        at most `max_in_flight` requests submitted and not yet yielded."""
        loop = asyncio.get_running_loop()
        completed: asyncio.Queue[int] = asyncio.Queue()
        window = _Window(self, requests, partial(_notify_loop, loop, completed))
        try:
            while True:
                found = window.next_done(ordered)
                while found is None and window.has_outstanding():
                    await completed.get()
                    found = window.next_done(ordered)
                if found is None:
                    return
                index, future = found
                window.yielded(index)
                result = _result_within(future, None, return_exceptions)
                yield (index, result) if with_index else result
        finally:
            window.cancel_rest()

    def verify(
        self,
        code: str,
        *,
        formal_statement: str | None = None,
        header: str | None = None,
        timeout: float | EllipsisType | None = ...,
        policy: VerdictPolicy | None = None,
        **policy_options: Any,
    ) -> Verification:
        """Judge `code` under the verdict policy (see `leanpool._verdict`): Lean's answer, the
        axioms of every theorem it declares and, with `formal_statement`, that it proves that
        statement. Policy options: ``allow_sorry``, ``allowed_axioms``, ``allow_native``,
        ``allow_metaprograms``, ``check_axioms`` (or a whole `VerdictPolicy` as `policy`)."""
        return self.submit_verification(
            code,
            formal_statement=formal_statement,
            header=header,
            timeout=timeout,
            policy=policy,
            **policy_options,
        ).result()

    async def async_verify(
        self,
        code: str,
        *,
        formal_statement: str | None = None,
        header: str | None = None,
        timeout: float | EllipsisType | None = ...,
        policy: VerdictPolicy | None = None,
        **policy_options: Any,
    ) -> Verification:
        """`verify` for asyncio; cancelling the awaiting task cancels the verification."""
        future = self.submit_verification(
            code,
            formal_statement=formal_statement,
            header=header,
            timeout=timeout,
            policy=policy,
            **policy_options,
        )
        return await asyncio.wrap_future(future)

    def submit_verification(
        self,
        code: str,
        *,
        formal_statement: str | None = None,
        header: str | None = None,
        timeout: float | EllipsisType | None = ...,
        policy: VerdictPolicy | None = None,
        **policy_options: Any,
    ) -> Future[Verification]:
        """`verify` without waiting: a future of the `Verification`. Bad input (no code, a
        reference statement with no theorem) raises `RequestError` here."""
        from leanpool._verify import Submission, Verifier

        self._check_open()
        if not isinstance(code, str) or not code.strip():
            raise RequestError("Empty submission: there is nothing for Lean to check.")
        timeout = check_timeout(self.timeout if timeout is ... else timeout)
        if self._verifier is None:
            self._verifier = Verifier(PoolPort(self), remember=self.dedup)
        return self._verifier.submit(
            Submission(code, formal_statement, header),
            self._policy(policy, policy_options),
            timeout,
        )

    def batch(
        self,
        progress: bool | None = None,
        *,
        allow_sorry: bool = False,
        policy: VerdictPolicy | None = None,
        results_path: str | os.PathLike[str] | None = None,
        resume: bool = False,
        **policy_options: Any,
    ) -> Batch:
        """A context manager collecting many requests; on exit all results are in.

        Commands are judged by the verdict policy (`verify`); its options as in `verify`.
        With `results_path`, each entry is appended to that JSONL file as it completes (a
        stopped run keeps what it finished); with `resume`, ids already there are not run again.
        """
        from leanpool._batch import Batch

        if allow_sorry:
            policy_options.setdefault("allow_sorry", True)
        return Batch(
            self,
            PoolPort(self),
            progress=self._want_progress(progress),
            policy=self._policy(policy, policy_options),
            results_path=results_path,
            resume=resume,
        )

    def _policy(self, policy: VerdictPolicy | None, options: dict[str, Any]) -> VerdictPolicy:
        """The verdict policy of one call: its own, else the pool's heartbeat budget."""
        import dataclasses

        built = make_policy(policy, options)
        if built.heartbeat_budget is None and self.heartbeat_budget is not None:
            built = dataclasses.replace(built, heartbeat_budget=self.heartbeat_budget)
        return built

    def session(self) -> PoolSession:
        """A handle for stateful work (env / proof-state ids that stay valid)."""
        self._check_open()
        return PoolSession(PoolPort(self), next(self._sessions))

    # ================================================================ lifecycle
    def stats(self) -> PoolStats:
        """Counts, failures by kind, restarts, recycles, per-worker RSS, queue, latencies."""
        self._dispatcher.refresh_stats()
        return self._dispatcher.stats.snapshot()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting requests; finish (or cancel) the queued ones; end every worker.

        Ctrl-C while it waits (also when leaving a ``with`` block) ends everything at once, as
        Ctrl-C inside the block does.
        """
        try:
            self._dispatcher.shutdown(wait=wait, cancel_futures=cancel_futures)
        except BaseException as exc:
            if not isinstance(exc, Exception):  # KeyboardInterrupt, SystemExit
                self._terminate()
            raise
        if wait:
            _live_pools.discard(self)
            self._remove_checkpoints()
            self._close_backend()

    def _terminate(self) -> None:
        """Fast teardown: cancel what waits, fail what runs, kill workers and REPLs."""
        self._dispatcher.shutdown(wait=True, cancel_futures=True, kill=True)
        _live_pools.discard(self)
        self._remove_checkpoints()
        self._close_backend()

    def _close_backend(self) -> None:
        """End what the backend started for this pool (a Ray instance, see `ray_backend`)."""
        release, self._release_backend = self._release_backend, None
        if release is not None:
            release()

    def _remove_checkpoints(self) -> None:
        if self._checkpoints is not None:
            shutil.rmtree(self._checkpoints, ignore_errors=True)

    def __enter__(self) -> LeanPool:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: object) -> None:
        if exc_type is None:
            self.shutdown(wait=True)
        elif issubclass(exc_type, Exception):
            self.shutdown(wait=True, cancel_futures=True)
        else:  # KeyboardInterrupt, SystemExit: leave now
            self._terminate()

    async def __aenter__(self) -> LeanPool:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *exc_info: object) -> None:
        await asyncio.to_thread(self.__exit__, exc_type, *exc_info)

    def __repr__(self) -> str:
        state = "shut down" if self._dispatcher.closing else "running"
        return f"<LeanPool {self.max_workers} workers, {state}>"

    # ================================================================ internals
    def _check_open(self) -> None:
        if self._dispatcher.closing:
            raise PoolShutdownError("The pool is shut down; it accepts no new requests.")

    def _submit(
        self,
        request: BaseREPLQuery | str,
        *,
        timeout: object,
        session: SessionRecord | None = None,
        urgent: bool = False,
    ) -> Future[Any]:
        """`urgent`: ahead of what waits (the second step of a verification, whose first step
        already ran: its caller has waited the longest)."""
        self._check_open()
        timeout = check_timeout(timeout)
        model = as_request(request)
        if session is None and names_state(model):
            raise RequestError(
                f"{type(model).__name__} names an env or proof state: ids are only meaningful "
                "on the worker that made them. Use pool.session() for stateful work."
            )
        if session is not None:
            session.check_ids(model)
        header = header_split_for(model) if self.header_affinity else None
        key = None
        if self.dedup:
            key = dedup_key(model, timeout)
            if session is not None:
                key = f"s{session.session_id}|{key}"
        future = PoolFuture(self._dispatcher.future_cancelled)
        pending = Pending(next_seq(), model, timeout, [future], header, session, key)
        pending.urgent = urgent
        if session is not None:
            pending.id_base = next(self._session_requests) * ID_BASE_STEP
            session.claim_base(pending.id_base)
        self._dispatcher.submit(pending)
        register_exit_hook()
        return future

    def _submit_safely(
        self, request: BaseREPLQuery | str, timeout: float | None = None
    ) -> Future[Any]:
        """`submit`, but bad input becomes a failed future (for map-like APIs)."""
        try:
            return self._submit(request, timeout=self.timeout if timeout is None else timeout)
        except (RequestError, TypeError, ValueError) as exc:
            return failed_future(exc if isinstance(exc, LeanPoolError) else RequestError(str(exc)))

    def _want_progress(self, progress: bool | None) -> bool:
        if progress is None:
            progress = self.progress
        if progress is None:
            from leanpool._progress import progress_wanted

            return progress_wanted()
        return progress

    def _progress_wrap(
        self, results: Iterator[Any], total: int | None, progress: bool | None
    ) -> Iterator[Any]:
        if not self._want_progress(progress):
            return results
        from leanpool._progress import track

        return track(results, total=total, description="Lean")


class PoolPort:
    """What sessions, batches and verifications may ask of their pool, and nothing more. They
    import nothing of this module: the pool hands them a port (it imports them, lazily, to make
    them), so none of them can reach into the pool's internals."""

    def __init__(self, pool: LeanPool) -> None:
        self._pool = pool

    @property
    def timeout(self) -> float | None:
        """The pool's default per-request timeout."""
        return self._pool.timeout

    def submit(
        self,
        request: BaseREPLQuery | str,
        *,
        timeout: object,
        session: PoolSession | None = None,
        urgent: bool = False,
    ) -> Future[Any]:
        """Queue a request (bad input raises `RequestError`); `urgent`: ahead of what waits."""
        record = record_of(session) if session is not None else None
        return self._pool._submit(request, timeout=timeout, session=record, urgent=urgent)

    def submit_or_fail(self, request: BaseREPLQuery | str, timeout: float | None) -> Future[Any]:
        """Queue a request; bad input becomes a failed future instead of an exception."""
        return self._pool._submit_safely(request, timeout)

    def session(self) -> PoolSession:
        return self._pool.session()

    def close_session(self, session: PoolSession) -> None:
        self._pool._dispatcher.close_session(record_of(session))

    def submit_verification(
        self,
        code: str,
        *,
        formal_statement: str | None,
        header: str | None,
        timeout: float | None,
        policy: VerdictPolicy,
    ) -> Future[Verification]:
        return self._pool.submit_verification(
            code,
            formal_statement=formal_statement,
            header=header,
            timeout=timeout,
            policy=policy,
        )


def usable_cpus() -> int:
    """The CPUs this process may use: loky's count honours affinity masks and cgroup CPU quotas
    (a container limited to 2 CPUs on a 64-core host), where `os.cpu_count` counts the host's."""
    from loky import cpu_count

    return max(1, int(cpu_count()))


def make_policy(policy: VerdictPolicy | None, options: dict[str, Any]) -> VerdictPolicy:
    """`policy`, or one built from keyword options (a clear error for an unknown one)."""
    import dataclasses

    from leanpool._verdict import VerdictPolicy

    if policy is not None:
        return dataclasses.replace(policy, **options) if options else policy
    known = {f.name for f in dataclasses.fields(VerdictPolicy)}
    unknown = set(options) - known
    if unknown:
        raise TypeError(
            f"Unknown verdict policy option(s): {sorted(unknown)}; the options are {sorted(known)}"
        )
    if "allowed_axioms" in options:
        options = {**options, "allowed_axioms": tuple(options["allowed_axioms"])}
    return VerdictPolicy(**options)


def _check_address_space(config: LeanREPLConfig, memory_backend: str) -> None:
    """Preflight: warn when the config's address-space limit leaves Lean too little room above
    the ``.olean`` files on its LEAN_PATH (see `address_space_problem`)."""
    from leanpool._memory import address_space_problem, cgroup_support, olean_total_bytes

    limit = config.memory_hard_limit_mb
    if not limit or memory_backend == "cgroup":
        return
    if memory_backend == "auto" and cgroup_support().available:
        return  # a cgroup limit counts resident pages, not address space
    total, _files = olean_total_bytes(config.launch.env.get("LEAN_PATH", ""))
    problem = address_space_problem(limit, total)
    if problem is not None:
        warnings.warn(problem, RuntimeWarning, stacklevel=3)


def _check_server_options(options: dict[str, Any]) -> None:
    from leanpool._auto_server import AutoLeanServer

    accepted = set(inspect.signature(AutoLeanServer.__init__).parameters) - {"self", "config"}
    accepted.discard("session_cache")
    unknown = set(options) - accepted
    if unknown:
        raise TypeError(
            f"Unknown LeanPool option(s): {sorted(unknown)}. Worker server options are: "
            f"{sorted(accepted)}"
        )


class _Window:
    """The requests of one iteration (`map`, `imap_unordered`, `async_map`) that were submitted and
    not yet given to the caller: at most `max_in_flight`, so long inputs stream in bounded memory,
    and what the caller abandons is exactly what gets cancelled.

    `notify(index)` is called (on a callback thread) when request `index` completes.
    """

    def __init__(
        self,
        pool: LeanPool,
        requests: Iterable[Any],
        notify: Callable[[int], object] | None = None,
    ) -> None:
        self.pool = pool
        self.total_hint: int | None = None
        with contextlib.suppress(TypeError):
            self.total_hint = len(requests)  # type: ignore[arg-type]
        self._source = iter(enumerate(requests))
        self._exhausted = False
        self._notify = notify
        self._unyielded: dict[int, Future[Any]] = {}  # in input order

    def fill(self) -> None:
        while not self._exhausted and len(self._unyielded) < self.pool.max_in_flight:
            try:
                index, request = next(self._source)
            except StopIteration:
                self._exhausted = True
                return
            future = self.pool._submit_safely(request)
            self._unyielded[index] = future
            if self._notify is not None:
                future.add_done_callback(partial(_index_done, self._notify, index))

    def has_outstanding(self) -> bool:
        self.fill()
        return bool(self._unyielded)

    def head(self) -> tuple[int, Future[Any]] | None:
        """The first request in input order not yet given to the caller."""
        self.fill()
        return next(iter(self._unyielded.items()), None)

    def next_done(self, ordered: bool) -> tuple[int, Future[Any]] | None:
        """A finished request to give next: the head if it is done (ordered), else any."""
        self.fill()
        if ordered:
            head = next(iter(self._unyielded.items()), None)
            return head if head is not None and head[1].done() else None
        return next(((i, f) for i, f in self._unyielded.items() if f.done()), None)

    def get(self, index: int) -> Future[Any] | None:
        return self._unyielded.get(index)

    def yielded(self, index: int) -> None:
        del self._unyielded[index]
        self.fill()

    def cancel_rest(self) -> None:
        """The caller stopped iterating: cancel what it will never see (workers skip what they
        have not started)."""
        for future in self._unyielded.values():
            future.cancel()


def _index_done(notify: Callable[[int], object], index: int, _future: Future[Any]) -> None:
    notify(index)


def _notify_loop(
    loop: asyncio.AbstractEventLoop, completed: asyncio.Queue[int], index: int
) -> None:
    # The loop is closed when its iteration was abandoned (and `asyncio.run` returned): nobody
    # waits for this result any more.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(completed.put_nowait, index)


def _results(
    window: _Window,
    completed: queue.SimpleQueue[int],
    ordered: bool,
    deadline: float | None,
    return_exceptions: bool,
    with_index: bool = False,
) -> Iterator[Any]:
    """The results of a window's requests, in input order or as they complete."""
    try:
        while True:
            if ordered:
                found = window.head()
            else:
                found = None
                while found is None and window.has_outstanding():
                    index = completed.get()
                    future = window.get(index)
                    found = (index, future) if future is not None else None
            if found is None:
                return
            index, future = found
            result = _result_within(future, deadline, return_exceptions)
            window.yielded(index)
            yield (index, result) if with_index else result
    finally:
        window.cancel_rest()


def _result_within(future: Future[Any], deadline: float | None, return_exceptions: bool) -> Any:
    """The request's result once it is there (by `deadline`, else TimeoutError); its exception
    is returned with `return_exceptions`, else raised."""
    remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
    try:
        return future.result(timeout=remaining)
    except FuturesTimeoutError:
        if future.done():  # the request itself timed out: that is its result
            if return_exceptions:
                return future.exception()
            raise
        raise
    except BaseException as exc:
        if return_exceptions and isinstance(exc, Exception):
            return exc
        raise


publish(__name__)
