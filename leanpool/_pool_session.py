"""`PoolSession`: stateful work on a pool, with ids that stay valid.

A session lives on one slot at a time, so its env and proof-state ids name states on that slot's
worker. It is placed when its first request arrives (on a slot that already holds that request's
import header, when that keeps sessions balanced), and an idle slot may take it over when the
slot it lives on is stuck (a long or hung request) or far behind; see `Dispatcher._steal_for`.
Every state a session's request creates gets a pool-owned id, ``-(n << 20 | k)`` for the k-th
state named by the response of the pool's n-th session request (`leanpool._ids.based_id`), and
the parent keeps a *recipe* (the request) for it. When the worker is replaced (recycled, or it
died), the recipes a request needs travel with it to the new worker, which replays them on first
use: states are rebuilt, never silently swapped for another worker's, and `StateLostError` is
raised when a rebuild fails. A REPL restart inside the worker is handled there the same way,
from the worker's copy.

RL searches branch from one proof state many times: each branch is a cheap `ProofStep` on the
same worker, identical steps in flight are run once (deduplication), and batches of steps are
pipelined through the REPL.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Future
from types import EllipsisType
from typing import TYPE_CHECKING, Any

from leanpool._errors import PoolShutdownError, RequestError
from leanpool._exports import publish
from leanpool._ids import base_of, is_based, request_id_fields
from leanpool._worker import Recipe
from leanpool.protocol import BaseREPLQuery

if TYPE_CHECKING:
    from leanpool._dispatcher import Pending
    from leanpool._pool import PoolPort
    from leanpool._server import Response
    from leanpool._slot import Slot


class PoolSession:
    """A handle for stateful requests on a `LeanPool` (see `LeanPool.session`).

    The handle is what callers hold; where the session lives and how its states are rebuilt is
    its `SessionRecord`, which only the pool's dispatcher changes.
    """

    def __init__(self, pool: PoolPort, session_id: int) -> None:
        self._pool = pool
        self._record = SessionRecord(session_id)
        self.session_id = session_id
        self.closed = False

    @property
    def slot_index(self) -> int | None:
        """The slot the session lives on now (None: no request placed it yet)."""
        return self._record.slot_index

    def submit(
        self, request: BaseREPLQuery | str, *, timeout: float | EllipsisType | None = ...
    ) -> Future[Any]:
        """Queue a request on the session's worker; its future gives the response.

        `timeout`: seconds (default: the pool's; None or ``inf``: none).
        """
        if self.closed:
            raise PoolShutdownError("This session is closed.")
        if timeout is ...:
            timeout = self._pool.timeout
        return self._pool.submit(request, timeout=timeout, session=self)

    def run(
        self, request: BaseREPLQuery | str, *, timeout: float | EllipsisType | None = ...
    ) -> Response:
        result: Response = self.submit(request, timeout=timeout).result()
        return result

    async def async_run(
        self, request: BaseREPLQuery | str, *, timeout: float | EllipsisType | None = ...
    ) -> Response:
        result: Response = await asyncio.wrap_future(self.submit(request, timeout=timeout))
        return result

    def close(self) -> None:
        """Forget this session's states (requests already submitted still complete)."""
        if not self.closed:
            self.closed = True
            self._pool.close_session(self)

    def __enter__(self) -> PoolSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        where = "not placed yet" if self.slot_index is None else f"on slot {self.slot_index}"
        return f"<PoolSession {self.session_id} {where}, {state}>"


def record_of(session: PoolSession) -> SessionRecord:
    """The scheduler's record behind a handle (for the pool, which submits for it)."""
    return session._record


class SessionRecord:
    """The scheduler's side of a session: the slot it lives on, the ids it issued, and a recipe
    for every state it made. The dispatcher thread changes it; submitting threads only add id
    bases (`claim_base`) and read the id sets (`check_ids`)."""

    def __init__(self, session_id: int) -> None:
        self.session_id = session_id
        self.slot_index: int | None = None  # set by the dispatcher at the first request
        self.closed = False
        self._bases: set[int] = set()  # id bases of this session's requests
        self._issued: set[int] = set()  # ids its responses named (before callers saw them)
        self._recipes: dict[int, Recipe] = {}  # id_base -> how to rebuild its states
        # the (slot, generation) of the worker the recipes in the set were sent to
        self._sent: tuple[tuple[int, int], set[int]] = ((-1, -1), set())

    def check_ids(self, request: BaseREPLQuery) -> None:
        """Ids in a session request must come from this session's responses: another session's
        id may name a state on another worker, and would then fail or not, by placement; an id
        no response named would be replayed in vain."""
        for field_name, _kind, value in request_id_fields(request):
            if not is_based(value) or base_of(value) not in self._bases:
                raise RequestError(
                    f"{type(request).__name__}.{field_name}={value} is not an id returned by "
                    "this session: use the env / proof-state ids from this session's responses."
                )
            if value not in self._issued:
                raise RequestError(
                    f"{type(request).__name__}.{field_name}={value} was never issued: no "
                    "response of this session named it (yet)."
                )

    def bases(self) -> frozenset[int]:
        """The id bases of this session's requests."""
        return frozenset(self._bases)

    def claim_base(self, id_base: int) -> None:
        """Note that a request of this session gets ids ``-(id_base | k)``."""
        self._bases.add(id_base)

    def chain(self, request: BaseREPLQuery, skip: set[int] | None = None) -> list[Recipe]:
        """Recipes of the states `request` needs, transitively, oldest first (bases in `skip`
        are left out, with their own chains)."""
        seen = set(skip) if skip is not None else set()
        needed: list[Recipe] = []
        stack = [value for _f, _k, value in request_id_fields(request)]
        while stack:
            base = base_of(stack.pop())
            if base in seen:
                continue
            seen.add(base)
            recipe = self._recipes.get(base)
            if recipe is None:
                continue  # the worker reports the missing state (StateLostError)
            needed.append(recipe)
            stack.extend(value for _f, _k, value in request_id_fields(recipe.request))
        return list(reversed(needed))

    def recipes_to_send(self, request: BaseREPLQuery, slot: Slot) -> tuple[Recipe, ...]:
        """Recipes the slot's current worker has not seen for the states `request` needs."""
        where = (slot.index, slot.generation)
        if self._sent[0] != where:
            self._sent = (where, set())
        needed = self.chain(request, skip=self._sent[1])
        self._sent[1].update(recipe.id_base for recipe in needed)
        return tuple(needed)

    def record(self, pending: Pending, response: Any) -> None:
        """Keep the recipe of a request whose response named states."""
        if self.closed:
            return
        base = pending.id_base
        named = _ids_named(response, base) if base is not None else set()
        if base is not None and named:
            self._issued.update(named)
            self._recipes[base] = Recipe(base, pending.request, pending.header)
            task = pending.task
            if task is not None and self._sent[0] == (task.slot_index, task.generation):
                self._sent[1].add(base)  # that worker ran it itself

    def close(self) -> None:
        """Forget the recipes (the dispatcher also unbinds the record from its slot)."""
        self.closed = True
        self._recipes.clear()
        self._sent = ((-1, -1), set())


def _ids_named(response: Any, base: int) -> set[int]:
    """The session ids of request `base` that `response` names."""
    values = [getattr(response, "env", None), getattr(response, "proof_state", None)]
    for item in getattr(response, "sorries", None) or ():
        values.append(getattr(item, "proof_state", None))
    for item in getattr(response, "tactics", None) or ():
        values.append(getattr(item, "proof_state", None))
    return {v for v in values if isinstance(v, int) and is_based(v) and base_of(v) == base}


publish(__name__)
