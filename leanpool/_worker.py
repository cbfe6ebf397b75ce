"""What runs inside a pool worker process: one `AutoLeanServer`, kept as process-local state.

The parent sends *work items* in batches (one loky task per batch); `serve` runs a batch
pipelined through the REPL and sends back one `WorkResult` per item plus a `WorkerReport` (pid,
RSS, restarts) the parent uses for stats and recycling.

State lives in this importable module (`_state`), never in a closure or ``__main__`` global:
cloudpickle would ship those by value and every task would get a fresh server.

Header affinity on this side: an import header becomes a session-cache entry of the server,
imported the first time a body needs it (and again, lazily, after a REPL restart); bodies then
run with ``env`` = that entry. Pool sessions use the same cache with ids the parent owns, so the
parent can rebuild their states on a new worker from its own records (`Recipe`).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from leanpool._channel import Marker
from leanpool._control import BEAT_INTERVAL, WorkerControl
from leanpool._errors import LeanPoolError
from leanpool._process import die_with_parent
from leanpool._routing import HeaderSplit, header_split_for, shift_positions
from leanpool._worker_cache import HeaderNotShareable, WorkerCache
from leanpool.protocol import BaseREPLQuery, Command, parse_response

if TYPE_CHECKING:
    from leanpool._auto_server import AutoLeanServer
    from leanpool._config import LeanREPLConfig
    from leanpool._server import Response

logger = logging.getLogger("leanpool")
PSS_INTERVAL = 1.0  # seconds between reads of a REPL's PSS for the parent's stats
PSS_STALE_MB = 64.0  # ... unless its RSS moved by more than this since the last read


@dataclass(frozen=True)
class Recipe:
    """How to rebuild one session state on a worker that never saw it (sent by the parent)."""

    id_base: int
    request: BaseREPLQuery
    header: HeaderSplit | None = None


@dataclass(frozen=True)
class WorkItem:
    seq: int
    request: BaseREPLQuery
    timeout: float | None = None
    header: HeaderSplit | None = None  # run the body on this worker's env for the header
    id_base: int | None = None  # session request: cache it with ids -(id_base | k)
    recipes: tuple[Recipe, ...] = ()  # session states to know about before running
    ticket: int = 0  # its number on the worker's control page (0: none)
    forget: tuple[int, ...] = ()  # id bases of closed sessions: drop their states first


@dataclass(frozen=True)
class WorkResult:
    seq: int
    value: Response | LeanPoolError | Marker  # the request's result; `SKIPPED`: cancelled unstarted
    seconds: float  # time in the worker, from the batch's start to this result


@dataclass(frozen=True)
class WorkerCounts:
    """What a worker has done so far; counts of successive workers add up."""

    restarts: Mapping[str, int] = field(default_factory=dict)  # REPL restarts, by cause
    header_imports: int = 0
    states_rebuilt: int = 0  # session states replayed after a REPL restart or on a new worker
    import_seconds: float = 0.0  # header imports paid while requests waited
    timed_imports: int = 0
    states_unpickled: int = 0  # session states restored from their checkpoints

    def __add__(self, other: WorkerCounts) -> WorkerCounts:
        return WorkerCounts(
            dict(Counter(self.restarts) + Counter(other.restarts)),
            self.header_imports + other.header_imports,
            self.states_rebuilt + other.states_rebuilt,
            self.import_seconds + other.import_seconds,
            self.timed_imports + other.timed_imports,
            self.states_unpickled + other.states_unpickled,
        )


@dataclass(frozen=True)
class WorkerReport:
    pid: int
    repl_pid: int | None
    rss_mb: float
    counts: WorkerCounts = field(default_factory=WorkerCounts)
    private_mb: float = 0.0  # the REPL's private memory (resident minus shared pages)
    pss_mb: float = 0.0  # its proportional set size (shared pages split among their users)
    host: str = ""  # the machine's host name
    node: str | None = None  # the Ray node id (hex) of a Ray worker; None for a local one


class _WorkerState:
    def __init__(
        self,
        config: LeanREPLConfig,
        server_options: dict[str, Any],
        control: WorkerControl | None = None,
        node: str | None = None,
        setup_error: LeanPoolError | None = None,
    ) -> None:
        self.config = config
        self.setup_error = setup_error  # every request gets it (a Ray node's failed setup)
        self.host = socket.gethostname()
        self.node = node
        server_options = dict(server_options)
        self.server_options = server_options
        self.control = control
        self.server: AutoLeanServer | None = None
        self.items: list[WorkItem] = []  # the batch being run (for the control page)
        self.cache = WorkerCache(_checkpoint_directory(server_options.pop("checkpoints", None)))
        self.headers: dict[tuple[str, ...], int] = {}  # header key -> session id of its env
        self.unshareable: set[tuple[str, ...]] = set()
        self.verbatim_imports = 0  # commands that ran with their own import header
        self._pss = self._pss_read_at = self._pss_rss = 0.0
        self._pss_pid: int | None = None

    def get_server(self) -> AutoLeanServer:
        if self.setup_error is not None:
            raise self.setup_error
        if self.server is None:
            from leanpool._auto_server import AutoLeanServer

            self.server = AutoLeanServer(
                self.config, session_cache=self.cache, **self.server_options
            )
            if self.control is not None:
                self.server.on_clock = self._publish
        return self.server

    def _publish(self, deadline: float | None, index: int | None) -> None:
        """The control page learns what the REPL serves: its deadline and the item's ticket."""
        assert self.control is not None
        items = self.items
        ticket = items[index].ticket if index is not None and index < len(items) else 0
        self.control.publish(deadline, ticket)

    def header_env(self, header: HeaderSplit) -> int:
        env = self.headers.get(header.key)
        if env is None:
            env = self.cache.adopt(Command(cmd=header.header))
            self.cache.header_ids.add(env)
            self.headers[header.key] = env
        return env

    def repl_request(self, request: BaseREPLQuery, header: HeaderSplit | None) -> BaseREPLQuery:
        """What to send for a request: its body on the header's env, or the request itself."""
        if header is None or header.key in self.unshareable or not isinstance(request, Command):
            return request
        return request.model_copy(update={"cmd": header.body, "env": self.header_env(header)})

    def _pss_mb(self, server: AutoLeanServer | None, rss_mb: float) -> float:
        """The REPL's PSS, read at most every `PSS_INTERVAL` seconds: the kernel walks the
        page tables for it (about 3 ms per GB mapped), and a report goes with every batch.
        Read sooner when the RSS moved by more than `PSS_STALE_MB` since (an import mapped a
        header, a restart freed memory): a PSS from before that would mislead the stats."""
        if server is None:
            return 0.0
        now = time.monotonic()
        if (
            server.pid != self._pss_pid
            or now - self._pss_read_at >= PSS_INTERVAL
            or abs(rss_mb - self._pss_rss) > PSS_STALE_MB
        ):
            self._pss, self._pss_pid, self._pss_read_at = server.pss_mb(), server.pid, now
            self._pss_rss = rss_mb
        return self._pss

    def report(self) -> WorkerReport:
        server = self.server
        rss_mb = server.rss_mb() if server is not None else 0.0
        return WorkerReport(
            pid=os.getpid(),
            repl_pid=server.pid if server is not None else None,
            rss_mb=rss_mb,
            private_mb=server.private_mb() if server is not None else 0.0,
            pss_mb=self._pss_mb(server, rss_mb),
            counts=WorkerCounts(
                restarts=dict(server.restart_counts) if server is not None else {},
                header_imports=self.cache.header_imports + self.verbatim_imports,
                states_rebuilt=self.cache.states_rebuilt,
                import_seconds=self.cache.import_seconds,
                timed_imports=self.cache.timed_imports,
                states_unpickled=self.cache.states_unpickled,
            ),
            host=self.host,
            node=self.node,
        )


def _checkpoint_directory(root: str | None) -> str | None:
    """This worker's directory for proof-state pickles, removed when the worker exits: under the
    pool's `root`, which the pool removes at shutdown even after this process was killed; on
    another machine (Ray), where `root` does not exist, a temporary directory of its own."""
    if root is None:
        return None
    directory = tempfile.mkdtemp(
        prefix=f"worker-{os.getpid()}-" if os.path.isdir(root) else "leanpool-checkpoints-",
        dir=root if os.path.isdir(root) else None,
    )
    atexit.register(shutil.rmtree, directory, True)
    return directory


_state: _WorkerState | None = None


def initialize(
    config: LeanREPLConfig,
    server_options: dict[str, Any],
    parent_pid: int | None,
    control_path: str | None = None,
    node: str | None = None,
    setup_error: LeanPoolError | None = None,
) -> None:
    """Worker start-up: store the config (no setup here: failures would not be reported).

    With `parent_pid` (loky), also die with the parent: the kernel kills this process when the
    parent dies (Linux; even a stopped worker), and a thread checks as well (elsewhere, and to end
    the REPL first). With `control_path`, beat the heartbeat the parent watches. Ray manages its
    actors itself; a Ray worker names its `node`, and the `setup_error` its requests get.
    """
    global _state
    with contextlib.suppress(ValueError):  # only possible in the main thread
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    if parent_pid is not None:
        die_with_parent(parent_pid)
    control = WorkerControl(control_path) if control_path is not None else None
    _state = _WorkerState(config, server_options, control, node, setup_error)
    if parent_pid is not None or control is not None:
        threading.Thread(
            target=_watch,
            args=(parent_pid, control),
            name="leanpool-watch",
            daemon=True,
        ).start()


def _watch(parent_pid: int | None, control: WorkerControl | None) -> None:
    """Beat the heartbeat; if the parent dies (even by SIGKILL), end the REPL and this worker."""
    while parent_pid is None or os.getppid() == parent_pid:
        if control is not None:
            control.beat()
        time.sleep(BEAT_INTERVAL)
    state = _state
    if state is not None and state.server is not None:
        with contextlib.suppress(Exception):
            state.server.kill()
    os._exit(1)


def warm_up() -> tuple[list[WorkResult], WorkerReport]:
    """Start the REPL before the first request (failures surface with the first request)."""
    state = _state
    if state is None:
        raise RuntimeError("leanpool worker used before initialize()")
    with contextlib.suppress(LeanPoolError):
        state.get_server()
    return [], state.report()


def serve(items: list[WorkItem]) -> tuple[list[WorkResult], WorkerReport]:
    """Run a batch of work items; exactly one result per item, in order."""
    state = _state
    if state is None:  # used without the initializer (tests)
        raise RuntimeError("leanpool worker used before initialize()")
    started = time.monotonic()
    try:
        server = state.get_server()
    except LeanPoolError as exc:
        return [WorkResult(item.seq, exc, 0.0) for item in items], state.report()

    for item in items:
        if item.forget:
            state.cache.forget_bases(set(item.forget))
        for recipe in item.recipes:
            state.cache.adopt(state.repl_request(recipe.request, recipe.header), recipe.id_base)

    outcomes = _run(state, server, items)
    retry = [i for i, outcome in enumerate(outcomes) if isinstance(outcome, HeaderNotShareable)]
    if retry:
        for index in retry:
            header = items[index].header
            if header is not None:
                state.unshareable.add(header.key)
        again = _run(state, server, [items[i] for i in retry])
        for index, outcome in zip(retry, again, strict=True):
            outcomes[index] = outcome

    results: list[WorkResult] = []
    for item, outcome in zip(items, outcomes, strict=True):
        parsed: Response | LeanPoolError | Marker
        if isinstance(outcome, dict):
            if item.header is not None and item.header.key not in state.unshareable:
                outcome = shift_positions(outcome, item.header.line_offset)
            try:
                parsed = parse_response(outcome, request=item.request)
            except LeanPoolError as exc:
                parsed = exc
        else:
            parsed = outcome
        results.append(WorkResult(item.seq, parsed, time.monotonic() - started))
    return results, state.report()


def _run(
    state: _WorkerState, server: AutoLeanServer, items: list[WorkItem]
) -> list[dict[str, Any] | LeanPoolError | Marker]:
    requests: list[BaseREPLQuery] = []
    for item in items:
        request = state.repl_request(item.request, item.header)
        if header_split_for(request) is not None:  # the REPL imports it (no affinity, or unshared)
            state.verbatim_imports += 1
        requests.append(request)
    control = state.control

    def cancelled(index: int) -> bool:
        return control is not None and control.cancelled(items[index].ticket)

    state.items = items
    try:
        return server.run_batch_raw(
            requests,
            timeouts=[item.timeout for item in items],
            id_bases=[item.id_base for item in items],
            skip=cancelled if control is not None else None,
        )
    finally:
        state.items = []
