"""`AutoLeanServer`: a `LeanServer` that restarts itself and keeps its ids meaningful.

What it adds to `LeanServer`:

* **Restarts.** A crash, timeout, garbage on stdout or memory kill leaves the REPL dead; the next
  request starts a new one (process start is retried with bounded, jittered waits from tenacity).
  Before each request two memory gates may restart it proactively: the REPL's RSS against
  ``max_process_memory`` x its limit, and the machine's memory use against ``max_total_memory``
  (when the machine stays above it, the request waits with backoff and finally fails with
  `LeanMemoryError`, instead of LeanInteract's fixed 1+2+4+8+16 s).
* **Explicit retries.** The request that died with its process gets the typed error by default.
  ``fault_retries=n`` re-runs it up to n times after a crash or protocol fault (never after a
  timeout: that repeats deterministically).
* **Some failures are judged on a fresh REPL.** What a REPL holds depends on what ran before,
  and what it writes may be another request's output written out of turn. So a request that
  hits a memory limit, or meets output that is not a response, on a REPL that had served other
  requests runs once more on a fresh one; only a request that also fails there reports
  `LeanMemoryError` or `ProtocolError`.
* **Ids that stay valid.** Ids from ``add_to_session_cache=True`` requests are session ids
  (-1, -2, ...) replayed after restarts, for *every* state the response names (env, proof state,
  sorries' and tactics' proof states). Other ids are REPL ids offset per process generation: in the
  first process they equal the REPL's own ids (as in LeanInteract); after a restart they keep
  growing, and an id from a dead process raises `StateLostError` instead of silently naming some
  other state of the new process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)
from tenacity.wait import wait_base

from leanpool._arguments import check_timeout
from leanpool._channel import NOT_RUN, SKIPPED, Exchange, Marker, Outcome
from leanpool._errors import (
    LeanCrashError,
    LeanMemoryError,
    LeanPoolError,
    LeanTimeoutError,
    ProtocolError,
    RequestError,
    ServerNotRunningError,
    StateLostError,
    fault_label,
)
from leanpool._exports import publish
from leanpool._ids import copy_id_containers, request_id_fields, response_id_paths, set_path
from leanpool._memory import MemoryMetric, system_memory_fraction
from leanpool._sandbox import SandboxMode
from leanpool._server import LeanServer, MemoryBackend, Response, ServerHold
from leanpool._session_cache import BaseSessionCache, RebuildInterrupted, ReplaySessionCache
from leanpool._standby import Standby
from leanpool.protocol import BaseREPLQuery, encode_request, parse_response

if TYPE_CHECKING:
    from leanpool._config import LeanREPLConfig

logger = logging.getLogger("leanpool")

_SYSTEM_MEMORY_CHECK_INTERVAL = 0.25  # seconds; psutil's reading costs ~50 µs


class AutoLeanServer(LeanServer):
    """A REPL that restarts on faults and memory thresholds and keeps a session cache.

    Args (LeanInteract's, same order and defaults):
        config: the set-up `LeanREPLConfig`.
        max_total_memory: restart (and wait) when the machine's memory use reaches this fraction;
            ``None`` or ``1.0`` disables the check.
        max_process_memory: restart before a request when the REPL's memory reaches this
            fraction of its limit: what ``memory_metric`` counts against ``rss_limit_mb``, else
            its RSS against ``config.memory_hard_limit_mb`` (an address-space limit, which the
            mapped ``.olean`` files count in); ``None`` disables.
        max_restart_attempts: bound on consecutive start attempts and memory-gate waits.
        session_cache: where ``add_to_session_cache=True`` requests are kept (default: a new
            `ReplaySessionCache`).

    Keyword-only extras: ``fault_retries`` (see the module docstring), ``restart_wait`` (a
    tenacity wait strategy between failed start attempts), and `LeanServer`'s ``rss_limit_mb``,
    ``memory_metric``, ``memory_backend``, ``watchdog_interval``, ``sandbox`` and ``pass_env``.
    With the sandbox, the directory of its session cache's pickles (a `PickleSessionCache`'s,
    a pool worker's checkpoints) is writable for the REPLs too.
    """

    def __init__(
        self,
        config: LeanREPLConfig,
        max_total_memory: float | None = 0.8,
        max_process_memory: float | None = 0.8,
        max_restart_attempts: int = 5,
        session_cache: BaseSessionCache | None = None,
        *,
        fault_retries: int = 0,
        restart_wait: wait_base | None = None,
        rss_limit_mb: float | None = None,
        memory_metric: MemoryMetric = "private",
        memory_backend: MemoryBackend = "rlimit",
        watchdog_interval: float = 0.05,
        standby: bool = False,
        sandbox: SandboxMode = "auto",
        pass_env: str | Sequence[str] | None = None,
    ) -> None:
        self.max_total_memory = max_total_memory
        self.max_process_memory = max_process_memory
        self.max_restart_attempts = max(1, max_restart_attempts)
        self.session_cache: BaseSessionCache = (
            session_cache if session_cache is not None else ReplaySessionCache()
        )
        self.fault_retries = fault_retries
        self.restart_wait = restart_wait or wait_random_exponential(multiplier=0.05, max=1.0)
        self.restart_counts: Counter[str] = Counter()
        self._env_base = 0
        self._proof_state_base = 0
        self._max_env = -1
        self._max_proof_state = -1
        self._generation = -1
        self._answered_by_process = 0  # answers the current REPL process gave
        self._last_fault: LeanPoolError | None = None  # what ended the last REPL, if a fault
        self._next_system_check = 0.0
        self._restart_cause = "start"
        self.standby = standby
        self._standby: Standby | None = None
        self._roots_version = -1
        super().__init__(
            config,
            rss_limit_mb=rss_limit_mb,
            memory_metric=memory_metric,
            memory_backend=memory_backend,
            watchdog_interval=watchdog_interval,
            sandbox=sandbox,
            pass_env=pass_env,
        )

    def _sandbox_write_paths(self) -> list[str]:
        return self.session_cache.sandbox_write_paths()

    # ---------------------------------------------------------------- lifecycle
    @property
    def generation(self) -> int:
        """How many times the REPL was (re)started, minus one."""
        return self._generation

    def start(self) -> None:
        if self._promote_standby():
            return
        for attempt in Retrying(
            stop=stop_after_attempt(self.max_restart_attempts),
            wait=self.restart_wait,
            retry=retry_if_exception_type(ServerNotRunningError),
            reraise=True,
        ):
            with attempt:
                super().start()
        self._begin_generation()
        if self.standby and self._standby is None:
            self._standby = Standby(self._spawn_process, self.session_cache.root_requests)

    def kill(self) -> None:
        """End the REPL (and the standby, if any) now."""
        standby, self._standby = self._standby, None
        if standby is not None:
            standby.close()
        super().kill()

    def __del__(self) -> None:
        standby = getattr(self, "_standby", None)
        if standby is not None:
            standby.close()
        super().__del__()

    @property
    def standby_pid(self) -> int | None:
        """The standby REPL's process id, when one is ready or warming."""
        return self._standby.pid if self._standby is not None else None

    def _promote_standby(self) -> bool:
        """Replace the REPL by the warm standby; False when there is none ready."""
        taken = self._standby.take() if self._standby is not None else None
        if taken is None:
            return False
        proc, reader, warmed = taken
        self._adopt_process(proc, reader)
        self._begin_generation()
        self._observe(list(warmed.values()))
        for session_id, response in warmed.items():
            try:
                self.session_cache.bind_replayed(self, session_id, response)
            except LeanPoolError:  # e.g. a header the worker does not share: replayed on use
                continue
        logger.info("standby REPL pid %d took over (%d states warm)", proc.pid, len(warmed))
        return True

    def restart(self, verbose: bool = False) -> None:
        """Restart the REPL (session-cached states are replayed on first use)."""
        with self._lock:
            self._restart_locked("requested")

    def clear_session_cache(self, force: bool = False) -> None:
        """Forget every cached state; with ``force`` also restart to free the REPL's memory."""
        with self._lock:
            self.session_cache.clear()
            if force:
                self._restart_locked("clear_session_cache")

    def remove_from_session_cache(self, session_state_id: int) -> None:
        self.session_cache.remove(session_state_id)

    def run_dict(
        self, request: dict[str, Any], verbose: bool = False, timeout: float | None = None
    ) -> dict[str, Any]:
        raise NotImplementedError(
            "AutoLeanServer translates ids and restarts; use run() (or LeanServer.run_dict)."
        )

    def _restart_locked(self, cause: str) -> None:
        self._restart_cause = cause
        self.start()

    def _begin_generation(self) -> None:
        """A new REPL process: its ids restart at 0, so shift what callers see past the old ones."""
        self._generation += 1
        self._env_base += self._max_env + 1
        self._proof_state_base += self._max_proof_state + 1
        self._max_env = self._max_proof_state = -1
        self._answered_by_process = 0
        if self._generation > 0:
            self.restart_counts[self._restart_cause] += 1
            logger.info("REPL restarted (%s); generation %d", self._restart_cause, self._generation)
        self.session_cache.reload(self, self._run_raw_locked)

    # ---------------------------------------------------------------- requests
    def run(
        self,
        request: BaseREPLQuery,
        *,
        verbose: bool = False,
        timeout: float | None = None,
        add_to_session_cache: bool = False,
    ) -> Response:
        timeout = check_timeout(timeout)
        result = self.run_batch(
            [request], timeouts=[timeout], cache=[add_to_session_cache], verbose=verbose
        )[0]
        if isinstance(result, LeanPoolError):
            raise result
        return result

    def run_batch(
        self,
        requests: Sequence[BaseREPLQuery],
        *,
        timeouts: Sequence[float | None] | None = None,
        cache: Sequence[bool] | None = None,
        verbose: bool = False,
    ) -> list[Response | LeanPoolError]:
        """Run requests pipelined through the REPL; one result (or typed error) per request.

        A fault affects only the request the REPL was serving; the ones behind it never started
        and are sent again to the restarted REPL.
        """
        count = len(requests)
        raw = self.run_batch_raw(
            requests,
            timeouts=timeouts,
            id_bases=[0 if c else None for c in cache] if cache is not None else None,
            verbose=verbose,
        )
        results: list[Response | LeanPoolError] = []
        for request, outcome in zip(requests, raw, strict=True):
            if isinstance(outcome, dict):
                try:
                    results.append(parse_response(outcome, request=request))
                except LeanPoolError as exc:  # an answer the models refuse: its own error
                    results.append(exc)
            else:
                assert isinstance(outcome, LeanPoolError)  # SKIPPED needs a `skip`
                results.append(outcome)
        assert len(results) == count
        return results

    def run_batch_raw(
        self,
        requests: Sequence[BaseREPLQuery],
        *,
        timeouts: Sequence[float | None] | None = None,
        id_bases: Sequence[int | None] | None = None,
        verbose: bool = False,
        skip: Callable[[int], bool] | None = None,
    ) -> list[dict[str, Any] | LeanPoolError | Marker]:
        """`run_batch` returning response dicts (ids already in the caller's terms).

        ``id_bases[i]`` is None for "do not cache", 0 for "cache with the cache's own ids", or a
        multiple of 2**20 for "cache with ids -(base | k)" (the pool's sessions own their ids).
        ``skip(i)``, asked right before request i would be sent (and before the states it names
        are rebuilt), drops it as `SKIPPED` when its caller no longer wants it.
        """
        count = len(requests)
        if timeouts is None:
            timeouts = [None] * count
        elif len(timeouts) != count:
            raise RequestError(f"{len(timeouts)} timeouts for {count} requests.")
        checked = [check_timeout(t) for t in timeouts]
        bases: list[int | None] = list(id_bases) if id_bases is not None else [None] * count
        with self._lock:
            results = self._run_batch_locked(list(requests), checked, bases, verbose, skip)
        self._notify_standby()
        return results

    def _notify_standby(self) -> None:
        """Tell the standby when there are new root requests for it to run ahead of time."""
        if self._standby is not None and self.session_cache.roots_version != self._roots_version:
            self._roots_version = self.session_cache.roots_version
            self._standby.notify()

    async def async_run(
        self,
        request: BaseREPLQuery,
        *,
        verbose: bool = False,
        timeout: float | None = None,
        add_to_session_cache: bool = False,
    ) -> Response:
        timeout = check_timeout(timeout)
        hold = await self._hold_async()
        try:
            prepared = self._prepare(request)
            attempts = _Attempts()
            while True:
                fresh = self._answered_by_process == 0
                try:
                    if self._needs_preparation(prepared):
                        # Restarts and replays can take long (imports): keep them off the loop.
                        await self._in_thread(hold, self._ensure_ready, prepared, timeout)
                        fresh = fresh or self._answered_by_process == 0
                    repl_request = self._translate(prepared, timeout)
                except LeanPoolError as exc:
                    # Alive: its states cannot be rebuilt. Dead: the REPL failed while
                    # rebuilding them, a fault met on the way (as in `_run_batch_locked`).
                    if self.is_alive() or not self._again(attempts, exc, fresh):
                        raise
                    continue
                payload = encode_request(repl_request)
                outcome = (await self._exchange_async(hold, [payload], [timeout], verbose))[0]
                if isinstance(outcome, dict):
                    translated = self._to_caller(
                        prepared, outcome, 0 if add_to_session_cache else None
                    )
                    self._notify_standby()
                    return parse_response(translated, request=prepared)
                if self._again(attempts, outcome, fresh):
                    continue
                if outcome is NOT_RUN:
                    raise self._not_sent()
                assert isinstance(outcome, LeanPoolError)
                raise outcome
        finally:
            hold.release()

    async def _in_thread(self, hold: ServerHold, fn: Callable[..., None], *args: Any) -> None:
        """Run blocking server work (a restart, replays) in a thread for an asyncio caller.

        If the caller is cancelled meanwhile, the thread still uses the REPL: the server's lock
        is handed to a task that releases it only when the thread is done.
        """
        work = asyncio.ensure_future(asyncio.to_thread(fn, *args))
        try:
            await asyncio.shield(work)
        except asyncio.CancelledError:
            if not work.done():
                hold.handed_off = True

                async def release_when_done() -> None:
                    try:
                        with contextlib.suppress(Exception):
                            await work
                    finally:
                        hold.handed_off = False
                        hold.release()

                waiter = asyncio.get_running_loop().create_task(release_when_done())
                self._background.add(waiter)
                waiter.add_done_callback(self._background.discard)
            raise

    # ---------------------------------------------------------------- internals
    def _run_batch_locked(
        self,
        requests: list[BaseREPLQuery],
        timeouts: list[float | None],
        id_bases: list[int | None],
        verbose: bool,
        skip: Callable[[int], bool] | None = None,
    ) -> list[dict[str, Any] | LeanPoolError | Marker]:
        results: list[dict[str, Any] | LeanPoolError | Marker | None] = [None] * len(requests)
        prepared: list[BaseREPLQuery | None] = [None] * len(requests)
        for index, request in enumerate(requests):
            try:
                prepared[index] = self._prepare(request)
            except LeanPoolError as exc:
                results[index] = exc
        attempts = [_Attempts() for _ in requests]
        pending = [i for i in range(len(requests)) if results[i] is None]
        while pending:
            self._ensure_ready()
            generation = self._generation
            fresh = self._answered_by_process == 0  # before the states this round rebuilds
            sent: list[int] = []
            payloads: list[bytes] = []
            for index in pending:
                if skip is not None and skip(index):
                    results[index] = SKIPPED  # before rebuilding the states it names
                    continue
                to_send = prepared[index]
                assert to_send is not None
                try:
                    payloads.append(encode_request(self._translate(to_send, timeouts[index])))
                    sent.append(index)
                except LeanPoolError as exc:
                    if self.is_alive() and self._generation == generation:
                        results[index] = exc  # its states cannot be rebuilt
                        continue
                    # The REPL failed while rebuilding this request's states: a fault it met
                    # on its way, judged as if it had met it itself.
                    if not self._again(attempts[index], exc, fresh and not sent):
                        results[index] = exc
                    break  # what was encoded names ids of a dead process: send it again
            if not self.is_alive() or self._generation != generation:
                pending = [i for i in pending if results[i] is None]
                continue
            outcomes = self._exchange_locked(
                payloads,
                [timeouts[i] for i in sent],
                verbose,
                skip=None if skip is None else partial(_skip_sent, skip, sent),
                indexes=sent,
            )
            progressed = any(o is not NOT_RUN for o in outcomes)
            for position, (index, outcome) in enumerate(zip(sent, outcomes, strict=True)):
                answered = prepared[index]
                assert answered is not None
                if isinstance(outcome, dict):
                    results[index] = self._to_caller(answered, outcome, id_bases[index])
                elif outcome is SKIPPED:
                    results[index] = SKIPPED
                elif outcome is NOT_RUN and progressed:
                    continue  # behind a request that faulted: it never started
                elif not self._again(attempts[index], outcome, fresh and position == 0):
                    results[index] = self._not_sent() if outcome is NOT_RUN else outcome
            pending = [i for i in pending if results[i] is None]
        return [r for r in results if r is not None]

    def _again(self, attempts: _Attempts, outcome: Outcome, fresh_and_first: bool) -> bool:
        """Whether to run a request again after `outcome` (not an answer); True counts a try.

        - Not sent (the REPL was replaced before the request could be written, or died reading
          a checkpoint of the cache's own): again, a few times; a REPL that talks before it is
          asked anything would loop forever.
        - Memory limits and output that is not a response: once more on a fresh REPL, unless
          the REPL was fresh already and this was the first request it served (then nothing
          else can be to blame).
        - Crashes and protocol faults: ``fault_retries`` times.
        """
        if outcome is NOT_RUN or isinstance(outcome, (_NotSent, RebuildInterrupted)):
            attempts.resends += 1
            return attempts.resends <= _MAX_RESENDS
        if isinstance(outcome, _JUDGED_AFRESH) and not attempts.judged_afresh:
            attempts.judged_afresh = True
            if not fresh_and_first:
                return True
        if self._should_retry(outcome, attempts.fault_retries):
            attempts.fault_retries += 1
            return True
        return False

    def _should_retry(self, outcome: Outcome, retries: int) -> bool:
        retryable = isinstance(outcome, (LeanCrashError, ProtocolError)) and not isinstance(
            outcome, (LeanTimeoutError, LeanMemoryError)
        )
        return retryable and retries < self.fault_retries

    def _needs_preparation(self, request: BaseREPLQuery) -> bool:
        """Whether getting ready for `request` may block (restart, memory wait, replay)."""
        if not self.is_alive() or self._memory_gate_due():
            return True
        for _field, _kind, value in request_id_fields(request):
            if value < 0 and self.session_cache.get_repl_id(value, self) is None:
                return True
        return False

    def _translate(self, request: BaseREPLQuery, timeout: float | None) -> BaseREPLQuery:
        """Map the request's ids to REPL ids, replaying session states it names if needed
        (each replay within the request's `timeout`: a replay must not hang it)."""
        update: dict[str, int] = {}
        replay = partial(self._run_raw_locked, timeout=timeout)
        for field_name, kind, value in request_id_fields(request):
            if value < 0:
                repl_id = self.session_cache.materialize(self, value, replay)
            else:
                base = self._env_base if kind == "env" else self._proof_state_base
                if value < base:
                    raise StateLostError(
                        f"{'Environment' if kind == 'env' else 'Proof state'} {value} belonged to "
                        f"an earlier REPL process that was restarted ({self._restart_cause}); run "
                        "the request that made it with add_to_session_cache=True to keep it "
                        "across restarts."
                    )
                repl_id = value - base
            if repl_id != value:
                update[field_name] = repl_id
        return request.model_copy(update=update) if update else request

    def _to_caller(
        self, request: BaseREPLQuery, response: dict[str, Any], id_base: int | None
    ) -> dict[str, Any]:
        """The response with REPL ids replaced by what the caller should hold (and cached)."""
        only_message = "message" in response and len(response) == 1
        if id_base is not None and not only_message and response:
            return self.session_cache.add(
                self, request, response, id_base=id_base or None, run_raw=self._run_raw_locked
            )
        return self._to_caller_ids(response)

    def _to_caller_ids(self, response: dict[str, Any]) -> dict[str, Any]:
        if not self._env_base and not self._proof_state_base and self.session_cache.is_empty():
            return response
        translated: dict[str, Any] | None = None
        for path, kind, repl_id in response_id_paths(response):
            session_id = self.session_cache.session_id_for(self, repl_id, kind)
            if session_id is not None:
                value = session_id
            else:
                value = repl_id + (self._env_base if kind == "env" else self._proof_state_base)
            if value != repl_id:
                if translated is None:
                    translated = copy_id_containers(response)
                set_path(translated, path, value)
        return translated if translated is not None else response

    def _observe(self, outcomes: list[Outcome]) -> None:
        for outcome in outcomes:
            if isinstance(outcome, dict):
                for _path, kind, repl_id in response_id_paths(outcome):
                    if kind == "env":
                        self._max_env = max(self._max_env, repl_id)
                    else:
                        self._max_proof_state = max(self._max_proof_state, repl_id)

    def _after_exchange(self, exchange: Exchange) -> None:
        self._answered_by_process += sum(1 for o in exchange.outcomes if isinstance(o, dict))
        if exchange.fault is not None:
            self._restart_cause = _cause_of(exchange.fault)
            self._last_fault = exchange.fault
        super()._after_exchange(exchange)

    def _run_raw_locked(
        self, request: BaseREPLQuery, timeout: float | None = None
    ) -> dict[str, Any]:
        """Run a request whose ids are REPL ids (used to replay session states)."""
        outcome = self._exchange_locked([encode_request(request)], [timeout])[0]
        if isinstance(outcome, dict):
            return outcome
        if isinstance(outcome, LeanPoolError):
            raise outcome
        raise self._not_sent("A request replayed to rebuild a state")

    def _not_sent(self, what: str = "The request") -> _NotSent:
        fault = self._last_fault
        reason = fault.message if fault is not None else "the REPL was not running."
        return _NotSent(f"{what} was not sent, several times: {reason}")

    def _ensure_ready(
        self, materialize_for: BaseREPLQuery | None = None, timeout: float | None = None
    ) -> None:
        """Restart if needed and pass the memory gates (then replay what a request needs)."""
        if not self.is_alive():
            died_unseen = self._proc is not None and not self._dead_reason
            self._restart_locked("crash" if died_unseen else self._restart_cause)
        if self._process_memory_high():
            logger.info("REPL memory near its limit: restarting before the next request")
            self._restart_locked("process_memory")
        if self._system_check_due():
            self._wait_for_system_memory()
        if materialize_for is not None:
            self._translate(materialize_for, timeout)

    def _process_memory_high(self) -> bool:
        """The REPL's memory reached `max_process_memory` times its limit (a restart frees it)."""
        if self.max_process_memory is None:
            return False
        if self.rss_limit_mb:
            return self.memory_mb() >= self.max_process_memory * float(self.rss_limit_mb)
        hard_limit = self.config.memory_hard_limit_mb
        return bool(hard_limit) and self.rss_mb() >= self.max_process_memory * float(
            hard_limit or 0
        )

    def _memory_gate_due(self) -> bool:
        if self._process_memory_high():
            return True
        return self._system_check_due() and self._system_memory_high()

    def _system_check_due(self) -> bool:
        return (
            self.max_total_memory is not None
            and self.max_total_memory < 1.0
            and time.monotonic() >= self._next_system_check
        )

    def _system_memory_high(self) -> bool:
        assert self.max_total_memory is not None
        self._next_system_check = time.monotonic() + _SYSTEM_MEMORY_CHECK_INTERVAL
        return system_memory_fraction() >= self.max_total_memory

    def _wait_for_system_memory(self) -> None:
        if not self._system_memory_high():
            return
        # Our REPL may be what fills the machine: a restart frees its memory.
        self._restart_locked("system_memory")
        for attempt in Retrying(
            stop=stop_after_attempt(self.max_restart_attempts),
            wait=wait_random_exponential(multiplier=0.25, max=4.0),
            retry=retry_if_exception_type(LeanMemoryError),
            reraise=True,
        ):
            with attempt:
                if self._system_memory_high():
                    fraction = system_memory_fraction()
                    raise LeanMemoryError(
                        f"Machine memory use is {fraction:.0%}, above max_total_memory="
                        f"{self.max_total_memory:.0%}, even after restarting this REPL "
                        f"({self.max_restart_attempts} checks with backoff).",
                        limit_mb=None,
                        rss_mb=self.rss_mb(),
                    )


# Failures that may come from what ran before on the same REPL (see the module docstring).
_JUDGED_AFRESH = (LeanMemoryError, ProtocolError)
_MAX_RESENDS = 3  # rounds in which a REPL was replaced before a request could even be sent


@dataclass
class _Attempts:
    """What one request of a batch has been through (see `AutoLeanServer._again`)."""

    fault_retries: int = 0
    judged_afresh: bool = False
    resends: int = 0


class _NotSent(ServerNotRunningError):
    """A replay was not sent: the REPL was replaced first (it talked out of turn)."""


def _skip_sent(skip: Callable[[int], bool], sent: list[int], position: int) -> bool:
    """`skip` for the request at `position` of an exchange that sends the requests `sent`."""
    return skip(sent[position])


def _cause_of(error: LeanPoolError) -> str:
    if isinstance(error, ServerNotRunningError) and "interrupted" in error.message:
        return "interrupted"
    return fault_label(error)


__all__ = ["AutoLeanServer"]

publish(__name__)
