"""A pool worker's session cache: import headers kept as entries, and checkpoints of proof states.

**Headers.** An import header becomes an entry the worker's bodies run on (``env`` = its id); it is
imported the first time a body needs it and again, lazily, after a REPL restart. Its imports are
counted and timed, and a header whose import produced messages is refused (`HeaderNotShareable`):
its env cannot stand in for the caller's own import.

**Checkpoints.** After a REPL restart, a session's proof states are gone. Replaying them re-runs
every tactic on the way from the nearest state still there, which for a search tree costs as much
as the work itself. So once this worker's REPL has restarted (`CHECKPOINT_WINDOW`), each proof
state a session's request produces is pickled as soon as it exists (one ``pickleTo`` request on
the same REPL), and rebuilt with one ``unpickleProofStateFrom`` request on the header's env. The
REPL's unpickling inserts the state's constants into that env without re-checking them in the
kernel and restores the tactic state as it was (REPL/Snapshots.lean and REPL/Lean/Replay.lean,
leanprover-community/repl); unlike a replay, it runs no tactic. A worker whose REPL never
restarts pickles nothing: there checkpoints would cost a request each and never pay off. Replay
stays the fallback: for states made before the first restart or without a header, and for a
pickle that failed.
What a pickle cannot keep (scoped notation and attributes made in the session, the REPL's
README.md "Future work") does not concern a proof state on an imported header, which is all a
pool session's tactic steps work on.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any

from leanpool._errors import PROCESS_FAULTS, LeanPoolError
from leanpool._ids import request_id_fields, response_id_paths
from leanpool._session_cache import CacheEntry, RebuildInterrupted, ReplaySessionCache, RunRaw
from leanpool.protocol import BaseREPLQuery, PickleProofState, UnpickleProofState

HEADER_WARM_SECONDS = 60.0
# Proof states pickled after each REPL restart. Checkpoints pay off only where REPLs restart: a
# worker starts without them and pickles the next CHECKPOINT_WINDOW states after every restart,
# so a fault-free run pays nothing and a faulty one replays only what came before its first
# restart.
CHECKPOINT_WINDOW = 1000


class HeaderNotShareable(LeanPoolError):
    """The header produced messages: its env cannot stand in for the caller's own import."""


class WorkerCache(ReplaySessionCache):
    """The worker's session cache (see the module docstring). `checkpoints` is the directory
    its proof-state pickles go to, None for none (states are then replayed)."""

    def __init__(self, checkpoints: str | None = None) -> None:
        super().__init__(lazy=True)
        self.header_ids: set[int] = set()
        self.header_imports = 0
        self.states_rebuilt = 0  # replayed
        self.states_unpickled = 0
        self.import_seconds = 0.0  # time spent importing headers on requests' critical path
        self.timed_imports = 0
        self.checkpoints = checkpoints
        self._header_of: dict[int, int] = {}  # session state id -> the session id of its header
        self._header_used: dict[int, float] = {}  # header session id -> when a request last used it
        self._pickles: dict[int, str] = {}  # proof-state session id -> its pickle file
        self._starts = 0  # REPL generations begun (the first is no restart)
        self._states_made = 0
        self._checkpoint_until = 0  # checkpoint states made until this count

    def sandbox_write_paths(self) -> list[str]:
        return [self.checkpoints] if self.checkpoints is not None else []

    def root_requests(self) -> list[tuple[int, BaseREPLQuery]]:
        """What a standby REPL imports ahead of a restart: the headers requests used lately, the
        most recent first, so that a spare promoted before it is fully warm has the ones the
        next requests most likely need (each import takes seconds, and a worker's sessions
        move on: a header no request used for `HEADER_WARM_SECONDS` is imported when needed)."""
        roots = super().root_requests()
        now = time.monotonic()
        recent = {
            header: used
            for header, used in self._header_used.items()
            if now - used <= HEADER_WARM_SECONDS
        }
        return sorted(
            (root for root in roots if root[0] in recent or root[0] not in self.header_ids),
            key=lambda root: -recent.get(root[0], now),
        )

    # ---------------------------------------------------------------- caching
    def add(
        self,
        server: object,
        request: BaseREPLQuery,
        response: dict[str, Any],
        id_base: int | None = None,
        run_raw: RunRaw | None = None,
    ) -> dict[str, Any]:
        translated = super().add(server, request, response, id_base, run_raw)
        header = self._header_named_by(request)
        if header is None:
            return translated
        for (_path, kind, repl_id), (_p, _k, session_id) in zip(
            response_id_paths(response), response_id_paths(translated), strict=True
        ):
            self._header_of[session_id] = header
            if kind == "proofState":
                self._states_made += 1
                if self._checkpointing and run_raw is not None:
                    self._checkpoint(session_id, repl_id, run_raw)
        return translated

    @property
    def _checkpointing(self) -> bool:
        return self.checkpoints is not None and self._states_made <= self._checkpoint_until

    def reload(self, server: object, run_raw: RunRaw | None = None) -> None:
        super().reload(server, run_raw)
        self._starts += 1
        if self._starts > 1:  # a restart: REPLs fail here, so keep what they make from now on
            self._checkpoint_until = self._states_made + CHECKPOINT_WINDOW

    def _header_named_by(self, request: BaseREPLQuery) -> int | None:
        """The header whose env the request works on: named itself (a session's first command
        runs on it), or inherited from the state the request names (a tactic step)."""
        for _field, _kind, value in request_id_fields(request):
            if value in self.header_ids:
                return value
            header = self._header_of.get(value)
            if header is not None:
                return header
        return None

    def _checkpoint(self, session_id: int, repl_id: int, run_raw: RunRaw) -> None:
        assert self.checkpoints is not None
        target = os.path.join(self.checkpoints, f"{-session_id}.olean")
        try:
            run_raw(PickleProofState(proof_state=repl_id, pickle_to=target))
        except LeanPoolError:
            return  # no checkpoint: the state is replayed when needed
        self._pickles[session_id] = target

    def forget_bases(self, bases: set[int]) -> list[int]:
        """A pool session closed: drop its states and delete their checkpoints."""
        gone = super().forget_bases(bases)
        for session_id in gone:
            self._header_of.pop(session_id, None)
            target = self._pickles.pop(session_id, None)
            if target is not None:
                with contextlib.suppress(OSError):
                    os.unlink(target)
        return gone

    # ---------------------------------------------------------------- rebuilding
    def materialize(self, server: object, session_id: int, run_raw: RunRaw) -> int:
        # A request that names a header, or a state made on one, uses that header.
        header = session_id if session_id in self.header_ids else self._header_of.get(session_id)
        if header is not None:
            self._header_used[header] = time.monotonic()
        if self.get_repl_id(session_id, server) is not None:
            return super().materialize(server, session_id, run_raw)
        target = self._pickles.get(session_id)
        if target is not None and os.path.exists(target):  # the REPL dies on a missing file
            repl_id = self._unpickle(server, session_id, target, run_raw)
            if repl_id is not None:
                return repl_id
        if session_id not in self.header_ids:
            return super().materialize(server, session_id, run_raw)
        started = time.monotonic()
        try:
            return super().materialize(server, session_id, run_raw)
        finally:
            self.import_seconds += time.monotonic() - started
            self.timed_imports += 1

    def _unpickle(
        self, server: object, session_id: int, target: str, run_raw: RunRaw
    ) -> int | None:
        """The state's REPL id from its checkpoint, on its header's env; None to replay instead."""
        env = self.materialize(server, self._header_of[session_id], run_raw)
        try:
            response = run_raw(UnpickleProofState(unpickle_proof_state_from=target, env=env))
        except LeanPoolError as exc:
            del self._pickles[session_id]  # a broken checkpoint: replay from now on
            if isinstance(exc, PROCESS_FAULTS):  # the REPL died of it: not the request's fault
                raise RebuildInterrupted(f"Restoring a checkpoint failed: {exc}") from exc
            return None
        repl_id = response.get("proofState")
        if not isinstance(repl_id, int):
            del self._pickles[session_id]
            return None
        self.bind_state(server, session_id, "proofState", repl_id)
        self.states_unpickled += 1
        return repl_id

    def replayed(self, entry: CacheEntry, response: dict[str, Any]) -> None:
        """Count header imports and rebuilt states; refuse a header that is not shareable."""
        header_id = entry.ids.get((), entry.ids.get(("env",)))  # before / after its first bind
        if header_id in self.header_ids:
            self.header_imports += 1
            if response.get("messages") or "env" not in response:
                raise HeaderNotShareable(
                    "The import header produced messages; the command runs verbatim instead."
                )
        else:
            self.states_rebuilt += 1
