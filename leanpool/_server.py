"""`LeanServer`: one Lean REPL process, with LeanInteract's API and typed faults.

Differences from LeanInteract that users can rely on (docs/migrating.md lists them all):

* stdout is read with an incremental framing reader (no line-length limit) and stderr is drained
  during every request into a bounded tail, so a REPL that floods stderr never blocks;
* faults raise typed errors: `LeanTimeoutError` (after killing the REPL's process group),
  `LeanCrashError`, `LeanMemoryError`, `ProtocolError`; afterwards the server refuses work with
  `ServerNotRunningError` until `restart()`;
* `async_run` is native asyncio (no thread per call). Cancelling an awaiting task *drains*: the
  REPL finishes the cancelled request in the background and its response is discarded before the
  next request is sent (the cancelled request's timeout still applies), so no caller ever reads a
  stale answer and the REPL's state (env and proof-state ids) survives the cancellation;
* `run()` never overrides fields the caller set (LeanInteract replaced ``incrementality`` and
  appended ``Elab.async`` unconditionally).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from leanpool._arguments import check_timeout
from leanpool._channel import NOT_RUN, SKIPPED, Exchange, Outcome
from leanpool._errors import LeanPoolError, ServerNotRunningError
from leanpool._exports import publish
from leanpool._fair_lock import FairLock
from leanpool._log import show_verbose_output
from leanpool._memory import (
    MB,
    MEMORY_METRICS,
    MemoryMetric,
    cgroup_support,
    pss_bytes,
    tree_rss_bytes,
)
from leanpool._process import ReplProcess
from leanpool._sandbox import (
    SandboxMode,
    SandboxPolicy,
    check_pass_env,
    check_sandbox,
    warn_missing_once,
)
from leanpool.protocol import (
    BaseREPLQuery,
    Command,
    CommandResponse,
    FileCommand,
    LeanError,
    ProofStepResponse,
    ResponseReader,
    encode_request,
    parse_request,
    parse_response,
)

if TYPE_CHECKING:
    from leanpool._config import LeanREPLConfig

logger = logging.getLogger("leanpool")

MemoryBackend = Literal["rlimit", "cgroup", "auto"]
Response = CommandResponse | ProofStepResponse | LeanError
_ELAB_ASYNC: tuple[list[str], bool] = (["Elab", "async"], True)


class LeanServer:
    """One REPL process. Thread-safe and asyncio-safe: requests are served one at a time.

    Args:
        config: a set-up `LeanREPLConfig` (its `launch` says what to start and where).
        rss_limit_mb: soft memory limit checked by a watchdog while a request runs; crossing it
            kills the REPL and raises `LeanMemoryError` for that request.
        memory_metric: what `rss_limit_mb` counts: ``"private"`` (default) the REPL's private
            memory, what it adds to the machine (resident minus shared pages: the ``.olean``
            files Lean maps are shared by every REPL importing them, lean4
            src/library/module.cpp), or ``"rss"`` its whole resident set, shared pages included.
        memory_backend: how ``config.memory_hard_limit_mb`` is enforced: ``"rlimit"``
            (RLIMIT_AS, LeanInteract's behaviour; size it at about twice the expected RSS because
            Lean maps its ``.olean`` files), ``"cgroup"`` (an exact resident limit where the
            machine allows per-process memory cgroups; `leanpool doctor` says whether it does) or
            ``"auto"`` (cgroup when available, else rlimit).
        watchdog_interval: seconds between RSS checks during a request (with `rss_limit_mb`).
        sandbox: ``"auto"`` (default) confines each REPL process: a scrubbed environment, a
            private scratch directory (`scratch_dir`, its ``TMPDIR``) as the only place it may
            write, and no network, limited reads and a process limit where the kernel offers
            them (docs/concepts/sandbox.md; `leanpool doctor` shows what is active). ``None``:
            the REPL runs as LeanInteract's does, with the owner's whole environment and rights.
        pass_env: names of variables of this process to pass to a sandboxed REPL on top of the
            ones Lean and Lake need (``pass_env=("LEAN_ABORT_ON_PANIC",)``).
    """

    def __init__(
        self,
        config: LeanREPLConfig,
        *,
        rss_limit_mb: float | None = None,
        memory_metric: MemoryMetric = "private",
        memory_backend: MemoryBackend = "rlimit",
        watchdog_interval: float = 0.05,
        sandbox: SandboxMode = "auto",
        pass_env: str | Sequence[str] | None = None,
    ) -> None:
        if not config.is_setup():
            raise ServerNotRunningError("The LeanREPLConfig is not set up; construct it first.")
        if memory_metric not in MEMORY_METRICS:
            raise ValueError(
                f"memory_metric must be one of {MEMORY_METRICS}, got {memory_metric!r}"
            )
        self.config = config
        self.rss_limit_mb = rss_limit_mb
        self.memory_metric: MemoryMetric = memory_metric
        self.memory_backend = memory_backend
        self.watchdog_interval = watchdog_interval
        self.sandbox = check_sandbox(sandbox)
        self.pass_env = check_pass_env(pass_env)
        self._sandbox_policy: SandboxPolicy | None = None
        if self.sandbox is not None:
            warn_missing_once()
        self._lock = FairLock()  # one request at a time, first come first served
        self._proc: ReplProcess | None = None
        self._reader = ResponseReader()
        self._dead_reason = "it has not been started"
        self._background: set[asyncio.Task[None]] = set()
        # Told each request's deadline, and its index in the caller's batch, as the REPL starts
        # on it; (None, None) when idle (a pool worker's feed for the parent).
        self.on_clock: Callable[[float | None, int | None], None] | None = None
        self.start()

    # ---------------------------------------------------------------- lifecycle
    @property
    def lean_version(self) -> str | None:
        return self.config.lean_version

    @property
    def pid(self) -> int | None:
        """The REPL's process id while it runs."""
        proc = self._proc
        return proc.pid if proc is not None and proc.is_alive() else None

    def start(self) -> None:
        """Start a fresh REPL process (ending the current one, if any)."""
        self._end_process()
        self._adopt_process(self._spawn_process())

    @property
    def scratch_dir(self) -> str | None:
        """The sandboxed REPL's private directory (its ``TMPDIR``, the one place it may write,
        removed when the process ends): where to send ``pickle_to`` paths. None without sandbox."""
        proc = self._proc
        sandbox = proc.sandbox if proc is not None else None
        return sandbox.scratch if sandbox is not None else None

    def _sandbox_write_paths(self) -> list[str]:
        """Directories besides the scratch directory that REPLs of this server may write."""
        return []

    def _policy(self) -> SandboxPolicy | None:
        if self.sandbox is None:
            return None
        if self._sandbox_policy is None:
            self._sandbox_policy = SandboxPolicy.for_config(
                self.config, self.pass_env, self._sandbox_write_paths()
            )
        return self._sandbox_policy

    def _adopt_process(self, proc: ReplProcess, reader: ResponseReader | None = None) -> None:
        """Serve requests with `proc` from now on (a fresh process, or a warm standby)."""
        self._end_process()
        self._proc = proc
        self._reader = reader or ResponseReader()
        self._dead_reason = ""
        logger.debug("REPL pid %d serving: %s", proc.pid, " ".join(proc.argv))

    def _spawn_process(self) -> ReplProcess:
        """Start a REPL process from the config, with the memory limits applied."""
        launch = self.config.launch
        hard_limit = self.config.memory_hard_limit_mb
        address_limit = cgroup_limit = None
        if hard_limit is not None:
            backend = self.memory_backend
            if backend == "auto":
                backend = "cgroup" if cgroup_support().available else "rlimit"
            if backend == "cgroup":
                cgroup_limit = float(hard_limit)
            else:
                address_limit = float(hard_limit)
        try:
            return ReplProcess(
                launch.argv,
                cwd=launch.cwd,
                env=launch.env,
                address_space_limit_mb=address_limit,
                cgroup_limit_mb=cgroup_limit,
                sandbox=self._policy(),
                memory_metric=self.memory_metric,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            self._dead_reason = f"it could not be started ({exc})"
            raise ServerNotRunningError(
                f"The Lean server could not be started: {' '.join(launch.argv)}: {exc}"
            ) from exc

    def restart(self) -> None:
        self.start()

    def is_alive(self) -> bool:
        proc = self._proc
        return proc is not None and not self._dead_reason and proc.is_alive()

    def kill(self) -> None:
        """End the REPL process group now (and reap it)."""
        self._end_process()
        self._dead_reason = "it was killed"

    def close(self) -> None:
        """End the REPL politely (EOF on stdin), killing it if it does not exit promptly."""
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.close()
        self._dead_reason = "it was closed"

    def _end_process(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()

    def get_memory_usage(self) -> float:
        """RSS of the REPL process tree, in MB."""
        proc = self._proc
        return tree_rss_bytes(proc.pid) / MB if proc is not None and proc.is_alive() else 0.0

    def rss_mb(self) -> float:
        """RSS of the REPL process itself, in MB (cheap: one read of /proc)."""
        proc = self._proc
        return proc.rss_bytes() / MB if proc is not None else 0.0

    def private_mb(self) -> float:
        """The REPL's private memory in MB: resident minus shared pages (one read of /proc)."""
        proc = self._proc
        return proc.private_bytes() / MB if proc is not None else 0.0

    def pss_mb(self) -> float:
        """The REPL's proportional set size in MB (shared pages divided among their users); the
        kernel walks the page tables for it, about 3 ms per GB mapped."""
        proc = self._proc
        return pss_bytes(proc.pid) / MB if proc is not None and proc.is_alive() else 0.0

    def memory_mb(self) -> float:
        """What `rss_limit_mb` counts (`memory_metric`), in MB."""
        proc = self._proc
        return proc.counted_bytes() / MB if proc is not None else 0.0

    def stderr_tail(self) -> str:
        """The last bytes the REPL wrote to stderr (bounded), for diagnostics."""
        proc = self._proc
        return proc.stderr_tail() if proc is not None else ""

    def get_stdout_stderr(self) -> tuple[str, str]:
        """(stdout not yet read as a response, stderr's tail), for diagnostics.

        LeanInteract read both pipes to EOF, which blocks while the REPL lives; this never
        blocks. After a fault the typed error carries the same information (`stderr_tail`).
        """
        pending = self._reader.buffered if self._proc is not None else b""
        return pending.decode("utf-8", errors="replace"), self.stderr_tail()

    def __enter__(self) -> LeanServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.kill()

    async def __aenter__(self) -> LeanServer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.kill()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self._end_process()

    # ---------------------------------------------------------------- requests
    def run_dict(
        self, request: dict[str, Any], verbose: bool = False, timeout: float | None = None
    ) -> dict[str, Any]:
        """Send one raw request dict and return the raw response dict."""
        timeout = check_timeout(timeout)
        payload = encode_request(request)
        outcome = self._run_payloads([payload], [timeout], verbose)[0]
        return self._unwrap(outcome)

    def run(
        self, request: BaseREPLQuery, *, verbose: bool = False, timeout: float | None = None
    ) -> Response:
        """Run one request; a REPL-level refusal comes back as `LeanError` (not raised)."""
        timeout = check_timeout(timeout)
        request = self._prepare(request)
        outcome = self._run_payloads([encode_request(request)], [timeout], verbose)[0]
        return parse_response(self._unwrap(outcome), request=request)

    async def async_run(
        self, request: BaseREPLQuery, *, verbose: bool = False, timeout: float | None = None
    ) -> Response:
        """`run` for asyncio callers, served on the event loop without a thread."""
        timeout = check_timeout(timeout)
        request = self._prepare(request)
        payload = encode_request(request)
        outcome = (await self._async_run_payloads([payload], [timeout], verbose))[0]
        return parse_response(self._unwrap(outcome), request=request)

    # ---------------------------------------------------------------- internals
    def _prepare(self, request: BaseREPLQuery) -> BaseREPLQuery:
        """Apply the config's Command options without overriding what the caller set."""
        if not isinstance(request, BaseREPLQuery):
            request = parse_request(request)
        if not isinstance(request, (Command, FileCommand)):
            return request
        update: dict[str, Any] = {}
        if self.config.enable_incremental_optimization and request.incrementality is None:
            update["incrementality"] = True
        if self.config.enable_parallel_elaboration:
            options = list(request.set_options or [])
            if not any(list(name) == ["Elab", "async"] for name, _ in options):
                update["set_options"] = [*options, _ELAB_ASYNC]
        return request.model_copy(update=update) if update else request

    def _unwrap(self, outcome: Outcome) -> dict[str, Any]:
        if isinstance(outcome, dict):
            return outcome
        if isinstance(outcome, LeanPoolError):
            raise outcome
        assert outcome is NOT_RUN or outcome is SKIPPED
        raise ServerNotRunningError(
            f"The request was not sent: the Lean server is not running: {self._dead_reason}. "
            "Call restart() to start a new REPL."
        )

    def _check_running(self) -> ReplProcess:
        proc = self._proc
        if proc is None or self._dead_reason:
            reason = self._dead_reason or "it has not been started"
            raise ServerNotRunningError(
                f"The Lean server is not running: {reason}. Call restart() to start a new REPL."
            )
        return proc

    def _new_exchange(
        self,
        payloads: list[bytes],
        timeouts: Sequence[float | None],
        skip: Callable[[int], bool] | None = None,
        indexes: Sequence[int] | None = None,
    ) -> Exchange:
        """`indexes[i]`: the caller's index of payload i, for `on_clock` (None: not reported)."""
        proc = self._check_running()
        hook = self.on_clock
        on_clock = None if hook is None else partial(_report_clock, hook, indexes)
        return Exchange(
            proc,
            self._reader,
            payloads,
            list(timeouts),
            rss_limit_mb=self.rss_limit_mb,
            watchdog_interval=self.watchdog_interval,
            skip=skip,
            on_clock=on_clock,
        )

    def _after_exchange(self, exchange: Exchange) -> None:
        self._observe(exchange.outcomes)
        fault = exchange.fault
        if fault is not None:
            first_line = fault.message.split("\n", 1)[0]
            self._dead_reason = f"a fault ended it ({type(fault).__name__}: {first_line})"
            self._end_process()

    def _observe(self, outcomes: list[Outcome]) -> None:
        """Hook: sees every outcome of every exchange (AutoLeanServer tracks ids here)."""

    def _exchange_locked(
        self,
        payloads: list[bytes],
        timeouts: Sequence[float | None],
        verbose: bool = False,
        skip: Callable[[int], bool] | None = None,
        indexes: Sequence[int] | None = None,
    ) -> list[Outcome]:
        """One pipelined exchange; the caller holds the server's lock.

        Whatever interrupts it (Ctrl-C, an exception from a signal handler) ends the REPL if a
        request was already written: its answer must not be read as the next request's.
        """
        exchange = self._new_exchange(payloads, timeouts, skip, indexes)
        if verbose:
            _log_sent(payloads)
        try:
            outcomes = exchange.run_blocking()
        except BaseException as exc:
            exchange.abandon(exc)
            raise
        finally:
            self._after_exchange(exchange)
        if verbose:
            _log_received(outcomes)
        return outcomes

    def _run_payloads(
        self, payloads: list[bytes], timeouts: Sequence[float | None], verbose: bool = False
    ) -> list[Outcome]:
        with self._lock:
            return self._exchange_locked(payloads, timeouts, verbose)

    async def _hold_async(self) -> ServerHold:
        """Take the server for an asyncio caller (queued fairly with threads and other tasks)."""
        await self._lock.acquire_async()
        return ServerHold(self._lock)

    async def _exchange_async(
        self,
        hold: ServerHold,
        payloads: list[bytes],
        timeouts: Sequence[float | None],
        verbose: bool = False,
    ) -> list[Outcome]:
        """`_exchange_locked` on the event loop. On cancellation the exchange is finished in the
        background (drained) and `hold` is handed to it, to be released when it is done."""
        exchange = self._new_exchange(payloads, timeouts)
        if verbose:
            _log_sent(payloads)
        loop = asyncio.get_running_loop()
        task = loop.create_task(exchange.run_async())
        try:
            outcomes = await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.done():
                hold.handed_off = True
                self._finish_in_background(task, exchange, hold)
                raise
            self._after_exchange(exchange)
            raise
        except BaseException as exc:  # the loop itself was interrupted: end what was sent
            exchange.abandon(exc)
            task.cancel()
            self._after_exchange(exchange)
            raise
        self._after_exchange(exchange)
        if verbose:
            _log_received(outcomes)
        return outcomes

    async def _async_run_payloads(
        self, payloads: list[bytes], timeouts: Sequence[float | None], verbose: bool = False
    ) -> list[Outcome]:
        hold = await self._hold_async()
        try:
            return await self._exchange_async(hold, payloads, timeouts, verbose)
        finally:
            hold.release()

    def _finish_in_background(
        self, task: asyncio.Task[list[Outcome]], exchange: Exchange, hold: ServerHold
    ) -> None:
        async def finish() -> None:
            try:
                await task
            except BaseException as exc:  # the drain itself failed or was cancelled
                exchange.abandon(exc)
                if not isinstance(exc, Exception):
                    raise
            finally:
                self._after_exchange(exchange)
                hold.handed_off = False
                hold.release()

        drain = asyncio.get_running_loop().create_task(finish())
        self._background.add(drain)
        drain.add_done_callback(self._background.discard)


class ServerHold:
    """The server's lock, held by one asyncio caller (or handed to a drain task)."""

    __slots__ = ("handed_off", "lock")

    def __init__(self, lock: FairLock) -> None:
        self.lock = lock
        self.handed_off = False

    def release(self) -> None:
        if not self.handed_off:
            self.lock.release()


__all__ = ["NOT_RUN", "LeanServer", "MemoryBackend", "Response"]


def _report_clock(
    hook: Callable[[float | None, int | None], None],
    indexes: Sequence[int] | None,
    deadline: float | None,
    position: int | None,
) -> None:
    """`on_clock` in the caller's terms: the exchange position becomes the caller's index."""
    hook(deadline, None if position is None or indexes is None else indexes[position])


def _log_sent(payloads: list[bytes]) -> None:
    show_verbose_output()
    for payload in payloads:
        logger.info("-> %s", payload.decode("utf-8").rstrip())


def _log_received(outcomes: list[Outcome]) -> None:
    show_verbose_output()
    for outcome in outcomes:
        logger.info("<- %s", outcome)


publish(__name__)
