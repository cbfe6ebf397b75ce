"""Session caches: REPL states that survive restarts, addressed by stable negative ids.

A request run with ``add_to_session_cache=True`` is remembered together with *every* state id its
response names: the command's ``env``, a tactic step's ``proofState``, and the proof states of its
``sorries`` and ``tactics``. Each gets a session id (-1, -2, ...). After a restart the REPL's own
ids mean nothing, so a session id is *materialized* again on first use: its request is replayed
(after materializing the session ids that request itself names) and the ids at the same places in
the new response are bound to it. LeanInteract bound only the top-level id, and its proof-state ids
were lost on the way (its ``AutoLeanServer.run``, src/lean_interact/server.py, sets the session id
under the alias ``proofState``, so ``.proof_state`` keeps the REPL's id); here every id is kept,
for proof states too.

One cache can back several servers (the pool shares nothing across processes, but a thread pool of
servers can): bindings from session ids to REPL ids are kept per server and per REPL generation.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leanpool._errors import PROCESS_FAULTS, LeanPoolError, ServerNotRunningError, StateLostError
from leanpool._exports import publish
from leanpool._ids import (
    IdKind,
    IdPath,
    base_of,
    based_id,
    copy_id_containers,
    get_path,
    is_based,
    request_id_fields,
    response_id_paths,
    set_path,
)
from leanpool.protocol import (
    BaseREPLQuery,
    PickleEnvironment,
    PickleProofState,
    UnpickleEnvironment,
    UnpickleProofState,
)


@dataclass(frozen=True)
class SessionState:
    """One session id, as LeanInteract's caches list them (``for state in cache``,
    ``cache[session_id]``); `request` is what rebuilds it."""

    session_id: int
    is_proof_state: bool
    request: BaseREPLQuery


@dataclass(frozen=True)
class ReplaySessionState(SessionState):
    """A state a `ReplaySessionCache` rebuilds by replaying `request` (LeanInteract's name)."""


@dataclass(frozen=True)
class PickleSessionState(SessionState):
    """A state of a `PickleSessionCache`: `pickle_file` is where it was saved (LeanInteract's
    name), None when it was not (it is then replayed from `request`)."""

    pickle_file: str | None = None


@dataclass
class CacheEntry:
    """One cached request and the session ids of the states its response named."""

    request: BaseREPLQuery
    ids: dict[IdPath, int]
    kinds: dict[int, IdKind] = field(default_factory=dict)
    id_base: int | None = None  # set for entries whose ids are -(id_base | k)

    def id_for(self, index: int, path: IdPath) -> int | None:
        if self.id_base is not None:
            return based_id(self.id_base, index)
        return self.ids.get(path)


class _Bindings:
    """Where session ids live on one server's current REPL, both ways."""

    __slots__ = ("forward", "reverse")

    def __init__(self) -> None:
        self.forward: dict[int, int] = {}  # session id -> REPL id
        self.reverse: dict[tuple[IdKind, int], int] = {}  # (kind, REPL id) -> session id

    def bind(self, session_id: int, kind: IdKind, repl_id: int) -> None:
        self.forward[session_id] = repl_id
        self.reverse[(kind, repl_id)] = session_id

    def unbind(self, session_id: int) -> None:
        repl_id = self.forward.pop(session_id, None)
        if repl_id is not None:
            for key in [k for k, v in self.reverse.items() if v == session_id]:
                del self.reverse[key]


class RebuildInterrupted(ServerNotRunningError):
    """The REPL died while a cache restored a state from data of its own (a checkpoint it
    wrote), not while running anything of the caller's: the request is sent again, on a new
    REPL, and is not charged for it."""


# A function that runs a request (whose ids are already REPL ids) on a server and returns the
# raw response dict; supplied by the server doing the materialization.
RunRaw = Callable[[BaseREPLQuery], dict[str, Any]]


class BaseSessionCache:
    """Session ids, what produced them, and where each is materialized (per server)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._counter = itertools.count(1)
        self._states: dict[int, CacheEntry] = {}  # session id -> its state entry
        self._bindings: weakref.WeakKeyDictionary[object, _Bindings] = weakref.WeakKeyDictionary()
        self._materializing: set[tuple[int, int]] = set()
        self._adopted: dict[int, CacheEntry] = {}  # id_base -> entry (caller-owned id space)
        # Cached requests that name no state (import headers, roots of chains): what a standby
        # REPL can run ahead of time. `roots_version` changes whenever this set does.
        self._roots: dict[int, BaseREPLQuery] = {}
        self.roots_version = 0

    def root_requests(self) -> list[tuple[int, BaseREPLQuery]]:
        """(first session id, request) of every cached request that names no state."""
        with self._lock:
            return list(self._roots.items())

    def _note_root(self, session_id: int, request: BaseREPLQuery) -> None:
        if not request_id_fields(request):
            self._roots[session_id] = request
            self.roots_version += 1

    def bind_state(self, server: object, session_id: int, kind: IdKind, repl_id: int) -> None:
        """Bind one session id to a REPL id made another way (a state restored from a pickle)."""
        with self._lock:
            self._bindings_for(server).bind(session_id, kind, repl_id)

    def forget_bases(self, bases: set[int]) -> list[int]:
        """Drop every state whose id is -(base | k) for a base in `bases` (a pool session that
        closed); returns their session ids."""
        with self._lock:
            gone = [sid for sid in self._states if is_based(sid) and base_of(sid) in bases]
            for session_id in gone:
                self.remove(session_id)
            for base in bases:
                entry = self._adopted.pop(base, None)
                if entry is not None and self._roots.pop(based_id(base, 0), None) is not None:
                    self.roots_version += 1
            return gone

    def sandbox_write_paths(self) -> list[str]:
        """Directories the REPLs must be able to write to for this cache (its pickles)."""
        return []

    def bind_replayed(self, server: object, session_id: int, response: dict[str, Any]) -> None:
        """Bind the states of `response`, the answer to `session_id`'s request run elsewhere
        (a standby REPL ran it ahead of time), as if it had just been materialized."""
        with self._lock:
            entry = self._entry_for(session_id)
            if entry is not None:
                self._bind_response(self._bindings_for(server), entry, response)

    def adopt(self, request: BaseREPLQuery, id_base: int | None = None) -> int:
        """Register a request whose states are materialized only when first needed.

        Returns the session id of the first state its response will name. With `id_base`, the
        k-th state will be -(id_base | k) (the pool uses this to rebuild a session's states on a
        new worker from the parent's records).
        """
        with self._lock:
            if id_base is not None:
                entry = self._adopted.get(id_base)
                if entry is None:
                    entry = self._adopted[id_base] = CacheEntry(request, {}, id_base=id_base)
                    self._note_root(based_id(id_base, 0), request)
                return based_id(id_base, 0)
            session_id = -next(self._counter)
            entry = CacheEntry(request=request, ids={(): session_id})
            self._states[session_id] = entry
            self._note_root(session_id, request)
            return session_id

    def _entry_for(self, session_id: int) -> CacheEntry | None:
        entry = self._states.get(session_id)
        if entry is None and is_based(session_id):
            entry = self._adopted.get(base_of(session_id))
        return entry

    # -------------------------------------------------------------- LeanInteract's API
    def add(
        self,
        server: object,
        request: BaseREPLQuery,
        response: dict[str, Any],
        id_base: int | None = None,
        run_raw: RunRaw | None = None,
    ) -> dict[str, Any]:
        """Cache `request`; return `response` with every REPL id replaced by a session id.

        Ids come from the cache's counter, or are -(id_base | k) for the k-th state when the
        caller owns the id space. `run_raw` runs a request on the same REPL, for caches that
        ask the REPL for more (a pickle cache writes the state's pickle).
        """
        with self._lock:
            translated = copy_id_containers(response)
            entry = CacheEntry(request=request, ids={}, id_base=id_base)
            if id_base is not None:
                self._adopted[id_base] = entry
            bindings = self._bindings_for(server)
            for index, (path, kind, repl_id) in enumerate(response_id_paths(response)):
                session_id = -next(self._counter) if id_base is None else based_id(id_base, index)
                entry.ids[path] = session_id
                entry.kinds[session_id] = kind
                self._states[session_id] = entry
                bindings.bind(session_id, kind, repl_id)
                set_path(translated, path, session_id)
            first = next(iter(entry.ids.values()), None)
            if first is not None:
                self._note_root(first, request)
            return translated

    def remove(self, session_state_id: int, verbose: bool = False) -> None:
        """Forget a cached request (and all the session ids it produced). `verbose` is
        LeanInteract's parameter; nothing is printed."""
        with self._lock:
            entry = self._states.get(session_state_id)
            if entry is None:
                return
            for session_id in entry.ids.values():
                self._states.pop(session_id, None)
                if self._roots.pop(session_id, None) is not None:
                    self.roots_version += 1
                for bindings in self._bindings.values():
                    bindings.unbind(session_id)

    def reload(self, server: object, run_raw: RunRaw | None = None) -> None:
        """The server's REPL restarted: its REPL ids are gone (re-made lazily on first use)."""
        with self._lock:
            self._bindings[server] = _Bindings()

    def is_empty(self) -> bool:
        return not self._states

    def clear(self, verbose: bool = False) -> None:
        """Forget every cached state (`verbose`: LeanInteract's parameter, nothing printed)."""
        with self._lock:
            self._states.clear()
            self._adopted.clear()
            self._roots.clear()
            self.roots_version += 1
            for server in list(self._bindings):
                self._bindings[server] = _Bindings()

    def keys(self) -> list[int]:
        return list(self._states)

    def get_repl_id(self, session_state_id: int, server: object) -> int | None:
        """The REPL id bound to a session id on this server right now (None: not materialized)."""
        with self._lock:
            return self._bindings_for(server).forward.get(session_state_id)

    def __iter__(self) -> Iterator[SessionState]:
        with self._lock:
            return iter([self._state_view(session_id) for session_id in self._states])

    def __contains__(self, session_state_id: object) -> bool:
        return session_state_id in self._states

    def __getitem__(self, session_state_id: int) -> SessionState:
        with self._lock:
            return self._state_view(session_state_id)

    def _state_view(self, session_id: int) -> SessionState:
        entry = self._states[session_id]  # KeyError for an unknown id, as a dict would
        kind = entry.kinds.get(session_id, "env")
        return SessionState(session_id, kind == "proofState", entry.request)

    def __len__(self) -> int:
        return len(self._states)

    # -------------------------------------------------------------- materialization
    def session_id_for(self, server: object, repl_id: int, kind: IdKind) -> int | None:
        """Reverse lookup: the session id bound to this REPL id on this server, if any."""
        with self._lock:
            return self._bindings_for(server).reverse.get((kind, repl_id))

    def materialize(self, server: object, session_id: int, run_raw: RunRaw) -> int:
        """The REPL id of `session_id` on `server`, replaying its request if needed."""
        with self._lock:
            bindings = self._bindings_for(server)
            known = bindings.forward.get(session_id)
            if known is not None:
                return known
            entry = self._entry_for(session_id)
            if entry is None:
                raise StateLostError(
                    f"Session id {session_id} is not in the session cache (removed or never added)."
                )
            key = (id(server), session_id)
            if key in self._materializing:
                raise StateLostError(
                    f"Session id {session_id} depends on itself; cannot replay it."
                )
            self._materializing.add(key)
            try:
                request = self._resolve_request(server, entry.request, run_raw)
                try:
                    response = run_raw(request)
                except Exception as exc:
                    if isinstance(exc, (StateLostError, *PROCESS_FAULTS)):
                        # A process fault is reported as itself: the state is not lost, a later
                        # request rebuilds it (unlike a replay that answers differently).
                        raise
                    raise StateLostError(
                        f"Could not replay the cached request behind session id {session_id}: {exc}"
                    ) from exc
                self._bind_response(bindings, entry, response)
                if session_id not in bindings.forward:
                    raise StateLostError(
                        f"Replaying the request behind session id {session_id} gave a different "
                        f"answer (no state at the same place): {response!r:.300}"
                    )
                return bindings.forward[session_id]
            finally:
                self._materializing.discard(key)

    def replayed(self, entry: CacheEntry, response: dict[str, Any]) -> None:
        """Hook: an entry's request was (re)played and answered `response`, about to be bound.

        A subclass may count it, or raise to refuse the answer (nothing is bound then).
        """

    def _bind_response(
        self, bindings: _Bindings, entry: CacheEntry, response: dict[str, Any]
    ) -> None:
        """Bind the ids of a (re)played entry's response to its session ids, by position."""
        self.replayed(entry, response)
        adopted_first = entry.ids.pop((), None)  # adopted with the cache's counter
        for index, (path, kind, repl_id) in enumerate(response_id_paths(response)):
            session_id = entry.id_for(index, path)
            if session_id is None and index == 0 and adopted_first is not None:
                session_id = adopted_first
            if session_id is None:
                session_id = -next(self._counter)
            entry.ids[path] = session_id
            entry.kinds[session_id] = kind
            self._states[session_id] = entry
            bindings.bind(session_id, kind, repl_id)

    def _resolve_request(
        self, server: object, request: BaseREPLQuery, run_raw: RunRaw
    ) -> BaseREPLQuery:
        update: dict[str, int] = {}
        for field_name, _kind, value in request_id_fields(request):
            if value < 0:
                update[field_name] = self.materialize(server, value, run_raw)
        return request.model_copy(update=update) if update else request

    def _bindings_for(self, server: object) -> _Bindings:
        bindings = self._bindings.get(server)
        if bindings is None:
            bindings = self._bindings[server] = _Bindings()
        return bindings


class ReplaySessionCache(BaseSessionCache):
    """Rebuilds states by replaying their requests (LeanInteract's default cache).

    With ``lazy=False`` every cached state is replayed right after a restart instead of on first
    use (restarts take longer; first uses after them do not).
    """

    def __init__(self, lazy: bool = True) -> None:
        super().__init__()
        self.lazy = lazy

    def _state_view(self, session_id: int) -> SessionState:
        view = super()._state_view(session_id)
        return ReplaySessionState(view.session_id, view.is_proof_state, view.request)

    def reload(self, server: object, run_raw: RunRaw | None = None) -> None:
        super().reload(server, run_raw)
        if not self.lazy and run_raw is not None:
            for session_id in sorted(self._states, reverse=True):  # oldest (-1) first
                self.materialize(server, session_id, run_raw)


class PickleSessionCache(ReplaySessionCache):
    """Rebuilds states by unpickling them (the REPL's pickle requests), replaying as a fallback.

    When a request is cached, the state its response names first (the command's env, or the
    tactic step's proof state) is pickled to ``<working_dir>/session_cache/``; after a restart it
    is restored with one unpickle request instead of re-running everything that led to it. The
    REPL's pickles do not keep everything (scoped notation and attributes made in the session are
    lost: "Future work" in the REPL's README.md, and REPL/Lean/Replay.lean, which restores
    constants only), so prefer `ReplaySessionCache` unless replays are slow.
    Other states of the same response (sorries' proof states) are rebuilt by replay.
    """

    def __init__(self, working_dir: str | os.PathLike[str]) -> None:
        super().__init__(lazy=True)
        self.directory = Path(working_dir) / "session_cache"
        self._pickles: dict[int, tuple[IdKind, Path]] = {}

    def add(
        self,
        server: object,
        request: BaseREPLQuery,
        response: dict[str, Any],
        id_base: int | None = None,
        run_raw: RunRaw | None = None,
    ) -> dict[str, Any]:
        translated = super().add(server, request, response, id_base, run_raw)
        first = next(response_id_paths(response), None)
        if first is None or run_raw is None or first[0] not in (("env",), ("proofState",)):
            return translated
        path, kind, repl_id = first
        session_id = get_path(translated, path)
        digest = hashlib.sha256(request.model_dump_json().encode()).hexdigest()[:16]
        target = self.directory / f"{digest}_{os.getpid()}_{-session_id}.olean"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            if kind == "env":
                run_raw(PickleEnvironment(env=repl_id, pickle_to=str(target)))
            else:
                run_raw(PickleProofState(proof_state=repl_id, pickle_to=str(target)))
        except (LeanPoolError, OSError):
            return translated  # no pickle: this state is replayed instead
        self._pickles[session_id] = (kind, target)
        return translated

    def sandbox_write_paths(self) -> list[str]:
        return [str(self.directory)]

    def _state_view(self, session_id: int) -> SessionState:
        view = super()._state_view(session_id)
        pickle = self._pickles.get(session_id)
        return PickleSessionState(
            view.session_id,
            view.is_proof_state,
            view.request,
            str(pickle[1]) if pickle is not None else None,
        )

    def materialize(self, server: object, session_id: int, run_raw: RunRaw) -> int:
        with self._lock:
            known = self._bindings_for(server).forward.get(session_id)
            if known is not None:
                return known
            pickle = self._pickles.get(session_id)
            if pickle is not None and pickle[1].exists():
                kind, target = pickle
                unpickle: BaseREPLQuery = (
                    UnpickleEnvironment(unpickle_env_from=str(target))
                    if kind == "env"
                    else UnpickleProofState(unpickle_proof_state_from=str(target))
                )
                try:
                    response = run_raw(unpickle)
                except LeanPoolError:
                    response = {}
                repl_id = response.get(kind)
                if isinstance(repl_id, int):
                    self._bindings_for(server).bind(session_id, kind, repl_id)
                    return repl_id
            return super().materialize(server, session_id, run_raw)

    def remove(self, session_state_id: int, verbose: bool = False) -> None:
        entry = self._states.get(session_state_id)
        ids = list(entry.ids.values()) if entry is not None else [session_state_id]
        super().remove(session_state_id, verbose)
        for session_id in ids:
            pickle = self._pickles.pop(session_id, None)
            if pickle is not None:
                pickle[1].unlink(missing_ok=True)

    def clear(self, verbose: bool = False) -> None:
        super().clear(verbose)
        for _kind, target in self._pickles.values():
            target.unlink(missing_ok=True)
        self._pickles.clear()


__all__ = [
    "BaseSessionCache",
    "PickleSessionCache",
    "PickleSessionState",
    "ReplaySessionCache",
    "ReplaySessionState",
    "SessionState",
]

publish(__name__)
