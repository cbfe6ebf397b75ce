"""`LeanServerPool`: LeanInteract's pool API, served by a `LeanPool`.

LeanInteract's pool runs every request with the session cache on, so every id it returns can be
used in any later request. Here each request that names no state starts a new pool session
(sessions are spread over the workers), and a request naming an id goes to the session that made
it, on the worker that holds it (rebuilt if that worker was replaced). Independent chains therefore
run in parallel, and nothing is lost when a worker dies. Callers see LeanInteract's ids, -1, -2,
... in the order responses come back; each maps to the pool session's own id. Like
LeanInteract's, this bookkeeping is never evicted: for long-running loops, prefer `LeanPool` with
explicit `pool.session()` handles that you close.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from leanpool._errors import StateLostError
from leanpool._exports import publish
from leanpool._futures import failed_future, result_of
from leanpool._ids import (
    base_of,
    copy_id_containers,
    request_id_fields,
    response_id_paths,
    set_path,
)
from leanpool._pool import LeanPool, as_request, usable_cpus
from leanpool.protocol import parse_response

if TYPE_CHECKING:
    from leanpool._config import LeanREPLConfig
    from leanpool._pool_session import PoolSession
    from leanpool._server import Response
    from leanpool.protocol import BaseREPLQuery


class LeanServerPool:
    """Drop-in for ``lean_interact.pool.LeanServerPool`` (same constructor and methods)."""

    def __init__(
        self,
        config: LeanREPLConfig,
        num_workers: int | None = None,
        max_total_memory: float = 0.8,
        max_process_memory: float = 0.8,
        max_restart_attempts: int = 5,
    ) -> None:
        self.config = config
        self.num_workers = num_workers or max(1, usable_cpus() - 1)
        self._pool = LeanPool(
            config,
            self.num_workers,
            max_total_memory=max_total_memory,
            max_process_memory=max_process_memory,
            max_restart_attempts=max_restart_attempts,
        )
        self._owners: dict[int, PoolSession] = {}  # id base -> the session that made the state
        self._sessions_of: dict[int, PoolSession] = {}  # id(future) -> its session, until read
        self._lock = threading.Lock()
        # LeanInteract's ids (-1, -2, ...) <-> the sessions' own ids (-(id base | k)).
        self._public_ids = itertools.count(1)
        self._to_session_id: dict[int, int] = {}
        self._to_public_id: dict[int, int] = {}

    @property
    def pool(self) -> LeanPool:
        """The `LeanPool` doing the work (for stats, or to move to its API gradually)."""
        return self._pool

    # ---------------------------------------------------------------- LeanInteract's API
    def run(
        self, request: BaseREPLQuery, *, verbose: bool = False, timeout: float | None = None
    ) -> Response:
        future = self._submit(request, timeout)
        try:
            result: Response = future.result()
        finally:
            self._settled(future)
        return self._public(result)

    async def async_run(
        self, request: BaseREPLQuery, *, verbose: bool = False, timeout: float | None = None
    ) -> Response:
        future = self._submit(request, timeout)
        try:
            result: Response = await asyncio.wrap_future(future)
        finally:
            self._settled(future)
        return self._public(result)

    def run_batch(
        self,
        requests: Sequence[BaseREPLQuery],
        *,
        verbose: bool = False,
        timeout_per_cmd: float | None = None,
        show_progress: bool = False,
    ) -> list[Any]:
        """Results in input order; a failed request gives its exception in place.
        `show_progress` draws a progress bar on stderr (LeanInteract drew one with tqdm)."""
        futures = [self._submit_or_fail(r, timeout_per_cmd) for r in requests]

        def in_order() -> Iterator[Any]:
            for future in futures:
                try:
                    yield self._public(future.result())
                except Exception as exc:
                    yield exc
                finally:
                    self._settled(future)

        results = in_order()
        if show_progress:
            from leanpool._progress import track

            results = track(results, total=len(futures), description="Lean")
        return list(results)

    async def async_run_batch(
        self,
        requests: Sequence[BaseREPLQuery],
        *,
        verbose: bool = False,
        timeout_per_cmd: float | None = None,
        show_progress: bool = False,
    ) -> list[Any]:
        futures = [self._submit_or_fail(r, timeout_per_cmd) for r in requests]
        with contextlib.ExitStack() as stack:
            if show_progress:
                from leanpool._progress import ProgressTracker

                tracker = stack.enter_context(ProgressTracker(len(futures), "Lean"))
                for future in futures:
                    future.add_done_callback(lambda f: tracker.advance(result_of(f)))
            try:
                results = await asyncio.gather(
                    *(asyncio.wrap_future(f) for f in futures), return_exceptions=True
                )
                return [r if isinstance(r, BaseException) else self._public(r) for r in results]
            finally:
                for future in futures:
                    self._settled(future)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> LeanServerPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> LeanServerPool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await asyncio.to_thread(self.close)

    # ---------------------------------------------------------------- internals
    def _submit(self, request: BaseREPLQuery, timeout: float | None) -> Future[Any]:
        model = self._with_session_ids(as_request(request))
        session = self._session_for(model)
        future = session.submit(model, timeout=timeout)
        self._sessions_of[id(future)] = session
        future.add_done_callback(lambda f: self._remember(f, session))
        return future

    def _settled(self, future: Future[Any]) -> None:
        session = self._sessions_of.pop(id(future), None)
        if session is not None:
            self._remember(future, session)

    def _submit_or_fail(self, request: BaseREPLQuery, timeout: float | None) -> Future[Any]:
        try:
            return self._submit(request, timeout)
        except Exception as exc:  # LeanInteract's run_batch gives every error in its place
            return failed_future(exc)

    def _session_for(self, request: BaseREPLQuery) -> PoolSession:
        with self._lock:
            for _field, _kind, value in request_id_fields(request):
                session = self._owners.get(base_of(value)) if value < 0 else None
                if session is None:
                    raise StateLostError(
                        f"Id {value} was not returned by this pool: LeanServerPool ids come from "
                        "its own responses."
                    )
                return session
        return self._pool.session()

    def _with_session_ids(self, request: BaseREPLQuery) -> BaseREPLQuery:
        """`request` with the ids this pool returned replaced by the sessions' own ids."""
        update: dict[str, int] = {}
        with self._lock:
            for field_name, _kind, value in request_id_fields(request):
                if value < 0:
                    session_id = self._to_session_id.get(value)
                    if session_id is None:
                        raise StateLostError(
                            f"Id {value} was not returned by this pool: LeanServerPool ids come "
                            "from its own responses."
                        )
                    update[field_name] = session_id
        return request.model_copy(update=update) if update else request

    def _public(self, response: Response) -> Response:
        """`response` with every session id replaced by its LeanInteract-style id (-1, -2, ...),
        numbered in the order callers receive them."""
        wire = response.to_repl_dict()
        translated: dict[str, Any] | None = None
        with self._lock:
            for path, _kind, value in response_id_paths(wire):
                if value >= 0:
                    continue
                public = self._to_public_id.get(value)
                if public is None:
                    public = -next(self._public_ids)
                    self._to_public_id[value] = public
                    self._to_session_id[public] = value
                translated = translated if translated is not None else copy_id_containers(wire)
                set_path(translated, path, public)
        return parse_response(translated) if translated is not None else response

    def _remember(self, future: Future[Any], session: PoolSession) -> None:
        """Note which session owns the ids of a response, before its caller can use them.

        Runs as the future's done-callback *and* before each API method returns, because
        callbacks run after waiters wake up.
        """
        if future.cancelled() or future.exception() is not None:
            return
        wire = future.result().to_repl_dict()
        with self._lock:
            for _path, _kind, value in response_id_paths(wire):
                if value < 0:
                    self._owners[base_of(value)] = session


publish(__name__)
