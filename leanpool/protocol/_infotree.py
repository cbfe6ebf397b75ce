"""Lean info trees as the REPL serialises them (`infotree` option), with LeanInteract's helpers.

A tree node is ``{"kind", "node", "children"}``; `node` is filled only for tactic, term and
command infos. Children may also be unassigned holes, ``{"goalState": "<goal>"}``, which only
appear with ``infotree: "full"`` (the filtered modes drop them).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import (
    Discriminator,
    Field,
    ModelWrapValidatorHandler,
    StrictBool,
    StrictStr,
    Tag,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic_core import PydanticCustomError

from leanpool.protocol._base import Pos, REPLBaseModel

if TYPE_CHECKING:
    from leanpool.protocol._responses import Sorry

__all__ = [
    "BaseNode",
    "CommandNode",
    "InfoTree",
    "InfoTreeHole",
    "Node",
    "Range",
    "Syntax",
    "TacticNode",
    "TermNode",
]


class Range(REPLBaseModel):
    """Where a piece of syntax sits; equality ignores `synthetic`, as in LeanInteract."""

    synthetic: StrictBool
    start: Pos
    finish: Pos

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Range):
            return NotImplemented
        return self.start == other.start and self.finish == other.finish

    def __hash__(self) -> int:
        return hash((self.start, self.finish))


class Syntax(REPLBaseModel):
    """A syntax object: `pp` is null when Lean could not pretty-print it.

    `kind` and `argKinds` exist since REPL v4.22.0 (PR #89): left out on the wire when not set.
    """

    _repl_omit_unset: ClassVar[frozenset[str]] = frozenset({"kind", "arg_kinds"})

    pp: StrictStr | None
    range: Range
    kind: StrictStr = ""
    arg_kinds: Annotated[list[StrictStr], Field(default_factory=list, alias="argKinds")]


class BaseNode(REPLBaseModel):
    """What every filled node carries: its syntax."""

    stx: Syntax


class TacticNode(BaseNode):
    """A tactic run, with the goals before and after it."""

    name: StrictStr | None
    goals_before: Annotated[list[StrictStr], Field(default_factory=list, alias="goalsBefore")]
    goals_after: Annotated[list[StrictStr], Field(default_factory=list, alias="goalsAfter")]


class CommandNode(BaseNode):
    """A command; `elaborator` is null when Lean recorded none (LeanInteract requires a str)."""

    elaborator: StrictStr | None


class TermNode(BaseNode):
    """An elaborated term; `expectedType` is absent (not null) on the wire when unknown."""

    _repl_omit_none: ClassVar[frozenset[str]] = frozenset({"expected_type"})

    is_binder: Annotated[StrictBool, Field(alias="isBinder")]
    expr: StrictStr
    expected_type: Annotated[StrictStr | None, Field(alias="expectedType")] = None
    elaborator: StrictStr | None


def _node_kind(value: Any) -> str:
    """Pick the node class from its keys, so a term node never validates as a command node."""
    if isinstance(value, dict):
        if "goalsBefore" in value or "goalsAfter" in value or "name" in value:
            return "tactic"
        if "expr" in value or "isBinder" in value:
            return "term"
        return "command"
    if isinstance(value, TacticNode):
        return "tactic"
    if isinstance(value, TermNode):
        return "term"
    return "command"


Node = (
    Annotated[
        Annotated[TacticNode, Tag("tactic")]
        | Annotated[TermNode, Tag("term")]
        | Annotated[CommandNode, Tag("command")],
        Discriminator(_node_kind),
    ]
    | None
)
"""The `node` of an info tree: filled for tactic, term and command infos, else None."""


class InfoTreeHole(REPLBaseModel):
    """An unassigned metavariable in the tree, shown as its pretty-printed goal."""

    goal_state: Annotated[StrictStr, Field(alias="goalState")]


def _child_kind(value: Any) -> str:
    if isinstance(value, InfoTreeHole) or (isinstance(value, dict) and "goalState" in value):
        return "hole"
    return "tree"


def _raw_children(value: Any) -> list[Any]:
    """The children of a wire tree node that is itself a parent, else []."""
    if isinstance(value, dict) and "goalState" not in value:
        children = value.get("children")
        if isinstance(children, list):
            return children
    return []


# The validation context of the nodes `InfoTree._build_bottom_up` validates.
_BOTTOM_UP: dict[str, str] = {"leanpool": "info tree built bottom-up"}


class InfoTree(REPLBaseModel):
    """One info-tree node and its children.

    `kind` is the Lean `Info` constructor name (`"TacticInfo"`, `"CommandInfo"`, ...). It is a
    plain string, not LeanInteract's closed `Literal`, because every Lean release may add kinds
    (v4.33 writes `ErrorNameInfo`, `DocElabInfo`, `DocInfo`, which LeanInteract would reject).

    Trees of any depth (a chain ``a + b + c + ...`` nests once per operand) parse, pickle,
    copy, compare, print, walk and convert with `to_repl_dict`. pydantic's own `model_dump` and
    `model_dump_json` stop near 250 levels (pydantic-core's limit): for deeper trees use
    `to_repl_dict`, which gives the wire dict.
    """

    node: Node
    kind: StrictStr
    children: list[
        Annotated[
            Annotated[InfoTree, Tag("tree")] | Annotated[InfoTreeHole, Tag("hole")],
            Discriminator(_child_kind),
        ]
    ] = Field(default_factory=list)

    @model_validator(mode="wrap")
    @classmethod
    def _validate_deep_trees(
        cls, data: Any, handler: ModelWrapValidatorHandler[InfoTree], info: ValidationInfo
    ) -> InfoTree:
        """pydantic-core gives up below 255 nested validations, and real trees (large Mathlib
        proofs, `infotree: "full"`) can be deeper: such a tree is then built bottom-up. Not
        within that building, whose nodes hold no raw sub-trees: there the depth is in the
        node's own data (a deep unknown key), and it is an error."""
        try:
            return handler(data)
        except ValidationError as exc:
            if (
                info.context is _BOTTOM_UP
                or not isinstance(data, dict)
                or all(error["type"] != "recursion_depth_exceeded" for error in exc.errors())
            ):
                raise
        return cls._build_bottom_up(data)

    @classmethod
    def _build_bottom_up(cls, data: dict[str, Any]) -> InfoTree:
        """Validate each node once its sub-trees are built, with an explicit stack (each
        validation then sees model instances one level down, so nothing nests)."""
        stack: list[tuple[dict[str, Any], list[Any], Iterator[Any]]] = [
            (data, [], iter(_raw_children(data)))
        ]
        while True:
            raw, built, pending = stack[-1]
            for child in pending:
                if _raw_children(child):
                    stack.append((child, [], iter(_raw_children(child))))
                    break
                built.append(child)  # leaves and holes are shallow: validated with the parent
            else:
                stack.pop()
                tree = _validate_node(cls, {**raw, "children": built} if built else raw)
                if not stack:
                    return tree
                stack[-1][1].append(tree)

    def to_repl_dict(self) -> dict[str, Any]:
        """The wire object, built with an explicit stack: trees outgrow Python's recursion."""
        root = self._wire_without_children()
        stack = [(self, root)]
        while stack:
            tree, out = stack.pop()
            children: list[dict[str, Any]] = []
            for child in tree.children:
                if isinstance(child, InfoTree):
                    wire = child._wire_without_children()
                    stack.append((child, wire))
                else:
                    wire = child.to_repl_dict()
                children.append(wire)
            out["children"] = children
        return root

    def _wire_without_children(self) -> dict[str, Any]:
        shallow = self.model_copy(update={"children": []})
        wire = REPLBaseModel.to_repl_dict(shallow)
        del wire["children"]
        return wire

    # Pickling (results travel from pool workers to the parent), deep copies and equality
    # recurse once per level in pydantic and in the C pickler, so a tree deeper than about
    # 250 levels would fail there; each of them works on the tree flattened, node by node.
    def __reduce__(self) -> tuple[Any, tuple[list[_FlatNode]]]:
        return (_unflatten, (_flatten(self),))

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> InfoTree:
        return _unflatten(copy.deepcopy(_flatten(self), memo))

    def __eq__(self, other: object) -> bool:
        """pydantic's equality (same class, fields, unknown keys and private attributes),
        compared level by level."""
        if not isinstance(other, InfoTree):
            return NotImplemented
        pending: list[tuple[InfoTree, InfoTree]] = [(self, other)]
        while pending:
            mine, theirs = pending.pop()
            if mine is theirs:
                continue
            if (
                type(mine) is not type(theirs)
                or len(mine.children) != len(theirs.children)
                or _without_children(mine.__dict__) != _without_children(theirs.__dict__)
                or mine.__pydantic_extra__ != theirs.__pydantic_extra__
                or mine.__pydantic_private__ != theirs.__pydantic_private__
            ):
                return False
            for child, counterpart in zip(mine.children, theirs.children, strict=True):
                if isinstance(child, InfoTree) and isinstance(counterpart, InfoTree):
                    pending.append((child, counterpart))
                elif child != counterpart:
                    return False
        return True

    __hash__ = None  # type: ignore[assignment]  # as before: children is a list, unhashable

    def __repr__(self) -> str:
        """pydantic's repr (set fields and unknown keys), written out level by level."""
        out: list[str] = []
        pending: list[InfoTree | str] = [self]
        while pending:
            item = pending.pop()
            if isinstance(item, str):
                out.append(item)
                continue
            parts: list[InfoTree | str] = [f"{type(item).__name__}("]
            for index, (name, value) in enumerate(item.__repr_args__()):
                label = ("" if index == 0 else ", ") + ("" if name is None else f"{name}=")
                if name != "children" or not isinstance(value, list):
                    parts.append(f"{label}{value!r}")
                    continue
                parts.append(label + "[")
                for position, child in enumerate(value):
                    if position:
                        parts.append(", ")
                    parts.append(child if isinstance(child, InfoTree) else repr(child))
                parts.append("]")
            parts.append(")")
            pending.extend(reversed(parts))
        return "".join(out)

    def dfs_walk(self) -> Iterator[InfoTree]:
        """This tree and every sub-tree, depth first, parents before children; holes skipped.

        Iterative on purpose: Mathlib-scale trees are deeper than Python's recursion limit.
        """
        stack: list[InfoTree] = [self]
        while stack:
            tree = stack.pop()
            yield tree
            stack.extend(child for child in reversed(tree.children) if isinstance(child, InfoTree))

    def leaves(self) -> Iterator[InfoTree]:
        """Sub-trees without children, in depth-first order."""
        return (tree for tree in self.dfs_walk() if not tree.children)

    def commands(self) -> Iterator[InfoTree]:
        """Sub-trees of command infos."""
        return (
            tree
            for tree in self.dfs_walk()
            if tree.kind == "CommandInfo" and isinstance(tree.node, CommandNode)
        )

    def _commands_elaborated_by(self, elaborator: str) -> Iterator[InfoTree]:
        for tree in self.commands():
            assert isinstance(tree.node, CommandNode)
            if tree.node.elaborator == elaborator:
                yield tree

    def variables(self) -> Iterator[InfoTree]:
        """`variable` commands."""
        return self._commands_elaborated_by("Lean.Elab.Command.elabVariable")

    def theorems(self) -> Iterator[InfoTree]:
        """Declarations whose last syntax argument is a `theorem` (this includes `lemma`s that
        Mathlib expands to theorems)."""
        for tree in self.commands():
            assert isinstance(tree.node, CommandNode)
            stx = tree.node.stx
            if (
                stx.kind == "Lean.Parser.Command.declaration"
                and stx.arg_kinds
                and stx.arg_kinds[-1] == "Lean.Parser.Command.theorem"
            ):
                yield tree

    def docs(self) -> Iterator[InfoTree]:
        """Module doc comments (``/-! ... -/``)."""
        return self._commands_elaborated_by("Lean.Elab.Command.elabModuleDoc")

    def namespaces(self) -> Iterator[InfoTree]:
        """`namespace` commands."""
        return self._commands_elaborated_by("Lean.Elab.Command.elabNamespace")

    def pp_up_to(self, end_pos: Pos) -> str:
        """The node's pretty-printed text from its start up to `end_pos` (exclusive).

        Assumes `pp` keeps the source's line layout, as for tactic and command nodes. Unlike
        LeanInteract, a cut on the node's first line counts `end_pos.column` from the source line
        start (where the node begins at `start.column`), and lines split on ``"\\n"`` only.
        Raises `ValueError` without a node or `pp`, or when `end_pos` lies outside the node.
        """
        if self.node is None:
            raise ValueError("This info-tree node has no syntax (node is None).")
        stx = self.node.stx
        start, finish = stx.range.start, stx.range.finish
        if not start <= end_pos <= finish:
            raise ValueError(
                f"end_pos {end_pos!r} lies outside the node's range {start!r}..{finish!r}."
            )
        if stx.pp is None:
            raise ValueError("This info-tree node has no pretty-printed text (pp is None).")
        lines = stx.pp.split("\n")
        last = end_pos.line - start.line
        if last >= len(lines):
            return stx.pp
        cut = end_pos.column - (start.column if last == 0 else 0)
        return "\n".join([*lines[:last], lines[last][: max(cut, 0)]])

    def theorem_for_sorry(self, sorry: Sorry) -> InfoTree | None:
        """The theorem sub-tree whose range contains `sorry`, or None (also for a sorry from
        tactic mode, which has no position)."""
        if sorry.start_pos is None or sorry.end_pos is None:
            return None
        for tree in self.theorems():
            assert tree.node is not None
            theorem_range = tree.node.stx.range
            if theorem_range.start <= sorry.start_pos and sorry.end_pos <= theorem_range.finish:
                return tree
        return None


# A tree node without its sub-trees: its class, its pydantic state (`__getstate__`) whose
# children list holds None where a sub-tree was, and those sub-trees come next (preorder).
_FlatNode = tuple[type[InfoTree], dict[str, Any]]


def _without_children(fields: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if name != "children"}


def _flatten(root: InfoTree) -> list[_FlatNode]:
    flat: list[_FlatNode] = []
    pending = [root]
    while pending:
        tree = pending.pop()
        state = tree.__getstate__()
        fields = dict(state["__dict__"])
        fields["children"] = [
            None if isinstance(child, InfoTree) else child for child in tree.children
        ]
        flat.append((type(tree), {**state, "__dict__": fields}))
        pending.extend(child for child in reversed(tree.children) if isinstance(child, InfoTree))
    return flat


def _unflatten(flat: list[_FlatNode]) -> InfoTree:
    """The tree `_flatten` took apart, built from the leaves up (no validation: the parts were
    valid)."""
    built: list[InfoTree] = []  # finished sub-trees, the next one in preorder on top
    for cls, state in reversed(flat):
        fields = state["__dict__"]
        fields["children"] = [
            built.pop() if child is None else child for child in fields["children"]
        ]
        tree = cls.__new__(cls)
        tree.__setstate__(state)
        built.append(tree)
    [root] = built
    return root


def _validate_node(cls: type[InfoTree], node: dict[str, Any]) -> InfoTree:
    """One node of a tree built bottom-up (its sub-trees already built). Data nested too deeply
    in the node itself is reported as such, and not as a recursion error: the validations
    enclosing this one would take that for a deep tree and build it bottom-up again."""
    try:
        return cls.model_validate(node, context=_BOTTOM_UP)
    except ValidationError as exc:
        deep = [error for error in exc.errors() if error["type"] == "recursion_depth_exceeded"]
        if not deep:
            raise
        where = ".".join(str(part) for part in deep[0]["loc"][:2])
        raise PydanticCustomError(
            "info_tree_node_too_deep",
            "an info-tree node holds data nested deeper than about 250 levels (at {where}); "
            "only the tree itself may be deeper",
            {"where": where},
        ) from None
