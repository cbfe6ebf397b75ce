"""The Lean REPL protocol: request/response models, parsing, and the bytes on the pipes.

Models carry LeanInteract's class names, field names and wire aliases (`leanpool.interface` is the
drop-in for `lean_interact.interface`). `to_repl_dict()` gives any model's exact wire object;
`parse_request`/`parse_response` classify wire JSON as the REPL does; `encode_request` and
`ResponseReader` frame it on stdin/stdout.
"""

from __future__ import annotations

from leanpool._exports import publish
from leanpool.protocol._base import Pos, REPLBaseModel
from leanpool.protocol._declarations import (
    BinderView,
    DeclarationInfo,
    DeclBinders,
    DeclModifiers,
    DeclSignature,
    DeclType,
    DeclValue,
    DocString,
    OpenDecl,
    ScopeInfo,
)
from leanpool.protocol._infotree import (
    BaseNode,
    CommandNode,
    InfoTree,
    InfoTreeHole,
    Node,
    Range,
    Syntax,
    TacticNode,
    TermNode,
)
from leanpool.protocol._parse import Response, parse_request, parse_response, response_class_for
from leanpool.protocol._requests import (
    BaseREPLQuery,
    Command,
    CommandOptions,
    DataValue,
    FileCommand,
    InfoTreeOptions,
    Name,
    Options,
    PickleEnvironment,
    PickleProofState,
    ProofStep,
    UnpickleEnvironment,
    UnpickleProofState,
)
from leanpool.protocol._responses import (
    BaseREPLResponse,
    CommandResponse,
    LeanError,
    Message,
    ProofStepResponse,
    Sorry,
    Tactic,
    message_intersects_code,
)
from leanpool.protocol._wire import ResponseReader, encode_request, repl_reads_as

__all__ = [
    "BaseNode",
    "BaseREPLQuery",
    "BaseREPLResponse",
    "BinderView",
    "Command",
    "CommandNode",
    "CommandOptions",
    "CommandResponse",
    "DataValue",
    "DeclBinders",
    "DeclModifiers",
    "DeclSignature",
    "DeclType",
    "DeclValue",
    "DeclarationInfo",
    "DocString",
    "FileCommand",
    "InfoTree",
    "InfoTreeHole",
    "InfoTreeOptions",
    "LeanError",
    "Message",
    "Name",
    "Node",
    "OpenDecl",
    "Options",
    "PickleEnvironment",
    "PickleProofState",
    "Pos",
    "ProofStep",
    "ProofStepResponse",
    "REPLBaseModel",
    "Range",
    "Response",
    "ResponseReader",
    "ScopeInfo",
    "Sorry",
    "Syntax",
    "Tactic",
    "TacticNode",
    "TermNode",
    "UnpickleEnvironment",
    "UnpickleProofState",
    "encode_request",
    "message_intersects_code",
    "parse_request",
    "parse_response",
    "repl_reads_as",
    "response_class_for",
]

publish(__name__)
