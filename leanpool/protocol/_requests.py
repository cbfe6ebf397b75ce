"""Request models, with LeanInteract's class names, field names and wire aliases.

Ids are plain (possibly negative) ints here: negative ids are LeanInteract-style session ids that
a server resolves before sending; `encode_request` refuses them on the wire.

Fields are as lax as LeanInteract's (plain pydantic ``int``/``bool``/``str``): ``env="3"``,
``proof_state=2.0``, ``all_tactics="true"`` or ``1`` are converted, so the model always holds the
JSON type the REPL needs, and what cannot be converted (``"abc"``, ``1.5``, NaN, ``2`` for a bool)
is refused with pydantic's `ValidationError` before anything is sent. Wire JSON is read strictly
(`parse_request`), as the REPL reads it: ``{"env": "3"}`` kills a REPL, so it is refused there.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, ClassVar

from pydantic import BeforeValidator, Field

from leanpool.protocol._base import REPLBaseModel

__all__ = [
    "BaseREPLQuery",
    "Command",
    "CommandOptions",
    "DataValue",
    "FileCommand",
    "InfoTreeOptions",
    "Name",
    "Options",
    "PickleEnvironment",
    "PickleProofState",
    "ProofStep",
    "UnpickleEnvironment",
    "UnpickleProofState",
]

Name = list[str]
DataValue = bool | int | str | Name
Options = list[tuple[Name, DataValue]]
"""`set_option` pairs; on the wire ``[[["Elab", "async"], true]]``."""

NonEmptyStr = Annotated[str, Field(min_length=1)]


def _pairs_as_tuples(value: object) -> object:
    """``[[name, value], ...]`` (the wire form) as ``[(name, value), ...]``: lax validation converts
    lists to tuples itself, strict validation (`parse_request`) needs this done first."""
    if isinstance(value, list):
        return [
            tuple(item) if isinstance(item, list) and len(item) == 2 else item for item in value
        ]
    return value


class BaseREPLQuery(REPLBaseModel):
    """Base class of every request; absent optional fields are left out on the wire."""

    _repl_omit_every_none: ClassVar[bool] = True


class InfoTreeOptions(str, Enum):
    """How much of Lean's info tree the REPL returns (`infotree` key)."""

    full = "full"
    """Every node."""
    tactics = "tactics"
    """Only tactic nodes (children of dropped nodes move up)."""
    original = "original"
    """Tactic nodes whose syntax is not macro-generated."""
    substantive = "substantive"
    """Tactic nodes minus combinators such as `by`, `;`, `<;>`, parentheses and `·`."""


class CommandOptions(REPLBaseModel):
    """Options shared by `Command` and `FileCommand` (flat top-level keys on the wire).

    `declarations`, `incrementality` and `setOptions` exist only in LeanInteract's REPL fork;
    upstream REPLs ignore them.
    """

    _repl_omit_every_none: ClassVar[bool] = True

    all_tactics: Annotated[bool | None, Field(alias="allTactics")] = None
    """Also return every tactic with the proof state before it."""
    declarations: bool | None = None
    """Also return declaration details (REPL fork only)."""
    root_goals: Annotated[bool | None, Field(alias="rootGoals")] = None
    """Also return one pseudo-sorry per tactic block, at its start."""
    infotree: InfoTreeOptions | str | None = None
    """`"full"`, `"tactics"`, `"original"` or `"substantive"`; the REPL ignores other values."""
    incrementality: bool | None = None
    """Reuse elaboration of an unchanged prefix (REPL fork only)."""
    set_options: Annotated[
        Options | None, BeforeValidator(_pairs_as_tuples), Field(alias="setOptions")
    ] = None
    """Options set before running the command (REPL fork only)."""


class Command(BaseREPLQuery, CommandOptions):
    """Run Lean source text; without `env` its header (imports) starts a fresh environment."""

    cmd: NonEmptyStr
    env: int | None = None


class FileCommand(BaseREPLQuery, CommandOptions):
    """Run a file (path relative to the REPL's working directory) as if it were `cmd`."""

    path: NonEmptyStr
    env: int | None = None


class ProofStep(BaseREPLQuery):
    """Run one tactic (a single element of Lean's `tactic` syntax) on a proof state."""

    proof_state: Annotated[int, Field(alias="proofState")]
    tactic: NonEmptyStr


class PickleEnvironment(BaseREPLQuery):
    """Save an environment to a file; the answer echoes the same env id."""

    env: int
    pickle_to: Annotated[NonEmptyStr, Field(alias="pickleTo")]


class UnpickleEnvironment(BaseREPLQuery):
    """Load a pickled environment; the answer carries a new env id."""

    unpickle_env_from: Annotated[NonEmptyStr, Field(alias="unpickleEnvFrom")]


class PickleProofState(BaseREPLQuery):
    """Save a proof state to a file; the answer describes a *new* proof-state id (a copy)."""

    proof_state: Annotated[int, Field(alias="proofState")]
    pickle_to: Annotated[NonEmptyStr, Field(alias="pickleTo")]


class UnpickleProofState(BaseREPLQuery):
    """Load a pickled proof state, optionally on top of environment `env`."""

    unpickle_proof_state_from: Annotated[NonEmptyStr, Field(alias="unpickleProofStateFrom")]
    env: int | None = None
