"""Declaration details (`declarations: true`), for parity with LeanInteract.

Only LeanInteract's REPL fork produces these; upstream REPLs ignore the option. Their wire form is
taken from LeanInteract's models: absent optionals are left out.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, StrictBool, StrictStr

from leanpool.protocol._base import REPLBaseModel
from leanpool.protocol._infotree import Range

__all__ = [
    "BinderView",
    "DeclBinders",
    "DeclModifiers",
    "DeclSignature",
    "DeclType",
    "DeclValue",
    "DeclarationInfo",
    "DocString",
    "OpenDecl",
    "ScopeInfo",
]


class _DeclarationPart(REPLBaseModel):
    _repl_omit_every_none: ClassVar[bool] = True


class DocString(_DeclarationPart):
    content: StrictStr
    range: Range


class DeclModifiers(_DeclarationPart):
    doc_string: Annotated[DocString | None, Field(alias="docString")] = None
    visibility: Literal["regular", "private", "protected", "public"] = "regular"
    compute_kind: Annotated[
        Literal["regular", "meta", "noncomputable"], Field(alias="computeKind")
    ] = "regular"
    rec_kind: Annotated[Literal["default", "partial", "nonrec"], Field(alias="recKind")] = "default"
    is_protected: Annotated[StrictBool, Field(alias="isProtected")] = False
    is_unsafe: Annotated[StrictBool, Field(alias="isUnsafe")] = False
    attributes: list[StrictStr] = Field(default_factory=list)


class DeclSignature(_DeclarationPart):
    pp: StrictStr
    constants: list[StrictStr]
    range: Range


class BinderView(_DeclarationPart):
    id: StrictStr
    type: StrictStr
    binderInfo: StrictStr  # LeanInteract's (camelCase) field name


class DeclBinders(_DeclarationPart):
    pp: StrictStr
    groups: list[StrictStr]
    map: list[BinderView]
    range: Range


class DeclType(_DeclarationPart):
    pp: StrictStr
    constants: list[StrictStr]
    range: Range


class DeclValue(_DeclarationPart):
    pp: StrictStr
    constants: list[StrictStr]
    range: Range


class OpenDecl(_DeclarationPart):
    simple: dict[str, str | list[str]] | None = None
    rename: dict[str, str] | None = None


class ScopeInfo(_DeclarationPart):
    var_decls: Annotated[list[StrictStr], Field(default_factory=list, alias="varDecls")]
    include_vars: Annotated[list[StrictStr], Field(default_factory=list, alias="includeVars")]
    omit_vars: Annotated[list[StrictStr], Field(default_factory=list, alias="omitVars")]
    level_names: Annotated[list[StrictStr], Field(default_factory=list, alias="levelNames")]
    curr_namespace: Annotated[StrictStr, Field(alias="currNamespace")]
    open_decl: Annotated[list[OpenDecl], Field(default_factory=list, alias="openDecl")]


class DeclarationInfo(_DeclarationPart):
    pp: StrictStr
    range: Range
    scope: ScopeInfo
    name: StrictStr
    full_name: Annotated[StrictStr, Field(alias="fullName")]
    kind: StrictStr
    modifiers: DeclModifiers
    signature: DeclSignature
    binders: DeclBinders | None = None
    type: DeclType | None = None
    value: DeclValue | None = None
