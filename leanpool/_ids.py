"""State ids: where they sit in requests and responses, and the three ways leanpool renames them.

The REPL numbers its environments and proof states 0, 1, 2, ... per process, and forgets them when
the process ends. Callers need ids that keep meaning something, so leanpool translates them in
up to three layers, each undone on the way back:

1. **Generations** (`AutoLeanServer`). A restarted REPL counts from 0 again; the server shifts
   the ids callers see past every id an earlier process gave, so an id of a dead process names
   nothing (``StateLostError``) instead of silently naming some other state.
2. **Session ids** (session caches). A state made by a request run with
   ``add_to_session_cache=True`` gets a negative id, bound to a REPL id and bound again after a
   restart by replaying its request. A cache's own counter gives -1, -2, ...; a caller that owns
   an id space (a pool session) gives each of its requests a *base*, a multiple of
   `ID_BASE_STEP`, and the k-th state that request's response names gets ``-(base | k)``
   (`based_id`). Bases never collide with the counter, and `base_of` finds a session id's
   request again.
3. **LeanServerPool's public ids**, LeanInteract's -1, -2, ..., each mapped to a pool session's
   id.

The helpers below find the ids: `request_id_fields` in a request model, `response_id_paths` in
a raw response dict (by path, so a translated copy can be written back with `set_path`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from leanpool.protocol import (
    BaseREPLQuery,
    Command,
    FileCommand,
    PickleEnvironment,
    PickleProofState,
    ProofStep,
    UnpickleProofState,
)

IdKind = Literal["env", "proofState"]
# Where a state id sits in a response dict: ("env",), ("sorries", 2, "proofState"), ...
IdPath = tuple[str | int, ...]

# The spacing of id bases (layer 2): the k-th state of base b is -(b | k), for k < ID_BASE_STEP.
ID_BASE_STEP = 1 << 20


def based_id(id_base: int, index: int) -> int:
    """The session id of the `index`-th state named by the response of request `id_base`."""
    return -(id_base | index)


def base_of(value: int) -> int:
    """The base of the request whose response named session id `value` (<= -ID_BASE_STEP)."""
    return -value & ~(ID_BASE_STEP - 1)


def is_based(value: int) -> bool:
    """Whether `value` is a session id of a caller-owned id space (it has a base)."""
    return value <= -ID_BASE_STEP


def response_id_paths(response: dict[str, Any]) -> Iterator[tuple[IdPath, IdKind, int]]:
    """Every state id a raw REPL response names, with its place and kind."""
    env = response.get("env")
    if isinstance(env, int):
        yield ("env",), "env", env
    state = response.get("proofState")
    if isinstance(state, int) and "goals" in response:
        yield ("proofState",), "proofState", state
    for list_key in ("sorries", "tactics"):
        for index, item in enumerate(response.get(list_key) or ()):
            value = item.get("proofState") if isinstance(item, dict) else None
            if isinstance(value, int):
                yield (list_key, index, "proofState"), "proofState", value


def get_path(response: dict[str, Any], path: IdPath) -> Any:
    node: Any = response
    for key in path:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def set_path(response: dict[str, Any], path: IdPath, value: int) -> None:
    node: Any = response
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def copy_id_containers(response: dict[str, Any]) -> dict[str, Any]:
    """Copy just the containers that hold ids (cheaper than a deep copy of big responses)."""
    copied = dict(response)
    for list_key in ("sorries", "tactics"):
        items = copied.get(list_key)
        if isinstance(items, list):
            copied[list_key] = [dict(item) if isinstance(item, dict) else item for item in items]
    return copied


def request_id_fields(request: BaseREPLQuery) -> list[tuple[str, IdKind, int]]:
    """The state ids a request names: (model field name, kind, value)."""
    found: list[tuple[str, IdKind, int]] = []
    if isinstance(request, (Command, FileCommand, PickleEnvironment, UnpickleProofState)):
        if request.env is not None:
            found.append(("env", "env", request.env))
    elif isinstance(request, (ProofStep, PickleProofState)):
        found.append(("proof_state", "proofState", request.proof_state))
    return found
