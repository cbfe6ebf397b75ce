"""Response models and their parts, with LeanInteract's names, aliases and helper methods.

Lean compile errors are not exceptions: they are `Message`s with severity ``"error"`` inside a
normal response (`has_errors()`), and REPL-level refusals ("Unknown environment.") are a
`LeanError` value, as in LeanInteract.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, StrictInt, StrictStr

from leanpool.protocol._base import Pos, REPLBaseModel
from leanpool.protocol._declarations import DeclarationInfo
from leanpool.protocol._infotree import InfoTree

__all__ = [
    "BaseREPLResponse",
    "CommandResponse",
    "LeanError",
    "Message",
    "ProofStepResponse",
    "Sorry",
    "Tactic",
    "message_intersects_code",
]

# Both spellings: Lean switched from 'sorry' to `sorry` at v4.28.0-rc1.
_SORRY_WARNINGS = frozenset({"declaration uses 'sorry'", "declaration uses `sorry`"})


class Message(REPLBaseModel):
    """A Lean message; `endPos` is null (key still present) when Lean recorded no end."""

    start_pos: Annotated[Pos, Field(alias="pos")]
    end_pos: Annotated[Pos | None, Field(alias="endPos")] = None
    severity: Literal["error", "warning", "info", "trace"]
    data: StrictStr


class Sorry(REPLBaseModel):
    """An explicit `sorry` and the proof state it opened.

    `pos`/`endPos` are absent for sorries found inside tactic-mode steps; `proofState` is always
    written.
    """

    _repl_omit_none: ClassVar[frozenset[str]] = frozenset({"start_pos", "end_pos"})

    start_pos: Annotated[Pos | None, Field(alias="pos")] = None
    end_pos: Annotated[Pos | None, Field(alias="endPos")] = None
    goal: StrictStr
    proof_state: Annotated[StrictInt | None, Field(alias="proofState")] = None


class Tactic(REPLBaseModel):
    """One tactic of an `allTactics` command; `proofState` is the state *before* it.

    `usedConstants` exists since REPL v4.14.0: left out on the wire when it was not set.
    """

    _repl_omit_unset: ClassVar[frozenset[str]] = frozenset({"used_constants"})

    start_pos: Annotated[Pos, Field(alias="pos")]
    end_pos: Annotated[Pos, Field(alias="endPos")]
    goals: StrictStr
    tactic: StrictStr
    proof_state: Annotated[StrictInt | None, Field(alias="proofState")] = None
    used_constants: Annotated[list[StrictStr], Field(default_factory=list, alias="usedConstants")]


def message_intersects_code(
    msg: Message | Sorry, start_pos: Pos | None, end_pos: Pos | None
) -> bool:
    """Whether `msg` shares a line with the code between `start_pos` and `end_pos` (both
    optional; line granularity and missing positions count as overlapping, as in LeanInteract)."""
    if start_pos is not None and msg.end_pos is not None and msg.end_pos.line < start_pos.line:
        return False
    return not (
        end_pos is not None and msg.start_pos is not None and msg.start_pos.line > end_pos.line
    )


class BaseREPLResponse(REPLBaseModel):
    """What command and proof-step responses share: messages and sorries (omitted when empty)."""

    _repl_omit_empty: ClassVar[frozenset[str]] = frozenset({"messages", "sorries"})

    messages: list[Message] = Field(default_factory=list)
    sorries: list[Sorry] = Field(default_factory=list)

    def __init__(self, **data: Any) -> None:
        if type(self) is BaseREPLResponse:
            raise TypeError("BaseREPLResponse cannot be instantiated directly; use a subclass.")
        super().__init__(**data)

    def get_errors(self) -> list[Message]:
        """Messages of severity ``"error"``."""
        return [msg for msg in self.messages if msg.severity == "error"]

    def get_warnings(self) -> list[Message]:
        """Messages of severity ``"warning"``."""
        return [msg for msg in self.messages if msg.severity == "warning"]

    def has_errors(self) -> bool:
        """Whether any message is an error (a response arrives even when the code failed)."""
        return any(msg.severity == "error" for msg in self.messages)

    def lean_code_is_valid(
        self,
        start_pos: Pos | None = None,
        end_pos: Pos | None = None,
        allow_sorry: bool = True,
    ) -> bool:
        """No error among the messages overlapping the range; with ``allow_sorry=False`` also no
        overlapping sorry and no "declaration uses sorry" warning there."""
        overlapping = [m for m in self.messages if message_intersects_code(m, start_pos, end_pos)]
        if any(msg.severity == "error" for msg in overlapping):
            return False
        if allow_sorry:
            return True
        if any(message_intersects_code(s, start_pos, end_pos) for s in self.sorries):
            return False
        return not any(msg.data in _SORRY_WARNINGS for msg in overlapping)


class CommandResponse(BaseREPLResponse):
    """Answer to `Command`, `FileCommand` and environment (un)pickling: the new `env` id.

    An env id is returned even when the code has errors; check `has_errors()`.
    """

    _repl_omit_empty: ClassVar[frozenset[str]] = frozenset(
        {"messages", "sorries", "tactics", "declarations"}
    )
    _repl_omit_none: ClassVar[frozenset[str]] = frozenset({"infotree"})

    env: StrictInt
    tactics: list[Tactic] = Field(default_factory=list)
    declarations: list[DeclarationInfo] = Field(default_factory=list)
    infotree: list[InfoTree] | None = None


class ProofStepResponse(BaseREPLResponse):
    """Answer to `ProofStep` and proof-state (un)pickling: the new `proofState` id.

    Only `proof_status == "Completed"` (see `is_completed`) means the REPL verified the whole
    proof; an empty `goals` list alone does not (the proof may contain `sorry` or metavariables,
    or fail the kernel check). REPLs before v4.19.0 write no ``proofStatus``: it is then ``""``
    here and left out on the wire again.
    """

    _repl_omit_empty: ClassVar[frozenset[str]] = frozenset({"messages", "sorries", "traces"})
    _repl_omit_unset: ClassVar[frozenset[str]] = frozenset({"proof_status"})

    proof_status: Annotated[StrictStr, Field(alias="proofStatus")] = ""
    proof_state: Annotated[StrictInt, Field(alias="proofState")]
    goals: list[StrictStr] = Field(default_factory=list)
    traces: list[StrictStr] = Field(default_factory=list)

    @property
    def is_completed(self) -> bool:
        """Whether the REPL verified the proof (no goals, sorry or metavariable; kernel-checked)."""
        return self.proof_status == "Completed"


class LeanError(REPLBaseModel):
    """A REPL-level refusal such as ``Unknown environment.``; returned, not raised."""

    message: StrictStr = ""
