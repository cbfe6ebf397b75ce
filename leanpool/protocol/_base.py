"""The shared pydantic base model and its exact REPL wire form, plus `Pos`.

`model_dump` stays pydantic's (LeanInteract users call it); `to_repl_dict` is the separate, exact
wire form: the REPL writes some keys even when null or empty and drops others, and a generic
`exclude_none` gets both kinds wrong (`Message.endPos: null` would vanish, `Sorry.pos` would not).
Keys that only some REPL versions write (`proofStatus`, `usedConstants`, `argKinds`, ...) are left
out when they were not set, so a response parsed from an older REPL round-trips unchanged.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, JsonValue

__all__ = ["Pos", "REPLBaseModel"]

# How a field appears on the wire.
_ALWAYS = 0  # key always written (None becomes null)
_OMIT_NONE = 1  # key left out when the value is None
_OMIT_EMPTY = 2  # key left out when the value is None or an empty list
_OMIT_UNSET = 3  # key left out when the field was not set (absent from the parsed wire object)


class REPLBaseModel(BaseModel):
    """Immutable; unknown keys kept (and sent back); fields accepted by name or by wire alias."""

    model_config = ConfigDict(frozen=True, extra="allow", populate_by_name=True)
    # Unknown keys hold JSON values. Validating them as such also bounds their depth (about
    # 250 levels, pydantic-core's limit): deeper data, which would later fail to pickle or to
    # serialise, is refused where it arrives (parse_response: a ProtocolError for that
    # response). Info trees are the exception, of any depth: see InfoTree.
    __pydantic_extra__: dict[str, JsonValue]

    # Wire rules, as field names: what the REPL leaves out; everything else is always written.
    _repl_omit_none: ClassVar[frozenset[str]] = frozenset()
    _repl_omit_empty: ClassVar[frozenset[str]] = frozenset()
    _repl_omit_every_none: ClassVar[bool] = False  # requests: every absent optional is left out
    # Keys added to the REPL's output in some release: absent on the wire of older REPLs.
    _repl_omit_unset: ClassVar[frozenset[str]] = frozenset()
    # (field name, wire key, rule), computed once per class.
    _repl_plan: ClassVar[tuple[tuple[str, str, int], ...]] = ()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        plan: list[tuple[str, str, int]] = []
        for name, info in cls.model_fields.items():
            if name in cls._repl_omit_unset:
                rule = _OMIT_UNSET
            elif name in cls._repl_omit_empty:
                rule = _OMIT_EMPTY
            elif name in cls._repl_omit_none or (
                cls._repl_omit_every_none and not info.is_required()
            ):
                rule = _OMIT_NONE
            else:
                rule = _ALWAYS
            plan.append((name, info.alias or name, rule))
        cls._repl_plan = tuple(plan)

    def to_repl_dict(self) -> dict[str, Any]:
        """This object exactly as the REPL writes or reads it (wire key names, REPL omissions)."""
        values = self.__dict__
        out: dict[str, Any] = {}
        for name, key, rule in self._repl_plan:
            value = values[name]
            if rule == _OMIT_UNSET:
                if name not in self.__pydantic_fields_set__:
                    continue
            elif rule and (value is None or (rule == _OMIT_EMPTY and not value)):
                continue
            out[key] = _wire_value(value)
        extra = self.__pydantic_extra__
        if extra:
            # After the fields on purpose: an extra key equal to a wire key only arises from
            # `model_copy(update={"proofState": ...})`, whose intent is to replace that value.
            for key, value in extra.items():
                out[key] = _wire_value(value)
        return out

    def __repr_args__(self) -> Any:
        """Show only what was set explicitly (as LeanInteract does), plus unknown keys."""
        explicitly_set = self.model_fields_set
        for name in type(self).model_fields:
            if name in explicitly_set:
                yield name, getattr(self, name)
        if self.__pydantic_extra__:
            yield from self.__pydantic_extra__.items()

    def __str__(self) -> str:
        """The repr, as in LeanInteract: ``print(response)`` shows ``CommandResponse(env=0)``."""
        return self.__repr__()


def _wire_value(value: Any) -> Any:
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if isinstance(value, REPLBaseModel):
        return value.to_repl_dict()
    if isinstance(value, (list, tuple)):
        return [_wire_value(item) for item in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {key: _wire_value(item) for key, item in value.items()}
    return value


class Pos(REPLBaseModel):
    """A source position: `line` 1-based, `column` 0-based in code points; ordered like tuples.

    As lax as LeanInteract's (``Pos(line="3", column=0)`` is line 3): callers build positions
    for `lean_code_is_valid`. Inside a REPL response too: `parse_response` reads the top-level
    keys strictly, but pydantic's strict mode stops at nested models, and a per-field check
    would cost a Python call per position of every info-tree node (the REPL writes numbers).
    """

    line: int
    column: int

    def _key(self) -> tuple[int, int]:
        return (self.line, self.column)

    def __lt__(self, other: Pos) -> bool:
        return self._key() < other._key()

    def __le__(self, other: Pos) -> bool:
        return self._key() <= other._key()

    def __gt__(self, other: Pos) -> bool:
        return self._key() > other._key()

    def __ge__(self, other: Pos) -> bool:
        return self._key() >= other._key()
