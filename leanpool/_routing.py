"""What a request needs from a worker, decided in the parent before dispatch.

* **Import headers.** A command that starts with ``import`` lines would make the REPL re-import
  its whole header, the most expensive thing a client can ask for. `split_header` cuts such a
  command into the header and the body; the pool routes it to a worker that already imported that
  header and runs only the body on top of the header's environment. Positions in the answer are
  shifted back by the header's line count (`shift_positions`), so the caller sees positions in its
  own text, exactly as if the REPL had run the whole command.
* **Duplicates.** `dedup_key` identifies requests whose answers are interchangeable, so identical
  requests in flight at the same time are run once.

The header is recognised textually but conservatively: only ``import`` lines, blank lines and
ordinary comments (``--`` and ``/- -/``, not the ``/-!``/``/--`` doc comments Lean treats as
commands). Anything else (``module``, ``prelude``, ``public import``, ...) is left alone and the
command runs verbatim. The routing key is the list of imported modules in order, so formatting
and comments do not split one header into several.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from leanpool.protocol import BaseREPLQuery, Command

_MODULE_NAME = re.compile(r"^[A-Za-z_«][\w.'«»!?]*$")


@dataclass(frozen=True)
class HeaderSplit:
    """A command cut into its import header and its body."""

    key: tuple[str, ...]  # imported modules, in order, deduplicated
    header: str  # header text as written (sent to the REPL once per worker)
    body: str  # the rest of the command
    line_offset: int  # lines the header occupies: body line L is line L + offset for the caller


def split_header(cmd: str) -> HeaderSplit | None:
    """Split `cmd` into imports and body, or None when it has no plain import header."""
    if "import" not in cmd[:4096]:  # cheap exit for the common case
        return None
    lines = cmd.split("\n")
    modules: list[str] = []
    in_block_comment = False
    body_start: int | None = None
    for index, line in enumerate(lines):
        stripped = line.strip()
        if in_block_comment:
            if "-/" in stripped:
                in_block_comment = False
                if stripped.split("-/", 1)[1].strip():
                    return None  # code after a comment on the same line: keep it simple
            continue
        if not stripped or stripped.startswith("--"):
            continue
        if stripped.startswith("/-"):
            if stripped.startswith(("/-!", "/--")):
                body_start = index  # doc comments are commands in Lean
                break
            if "-/" in stripped[2:]:
                if stripped[2:].split("-/", 1)[1].strip():
                    return None
                continue
            in_block_comment = True
            continue
        if stripped.startswith("import ") or stripped == "import":
            names = stripped[len("import") :].split("--", 1)[0].split()
            if not names or not all(_MODULE_NAME.match(name) for name in names):
                return None
            modules.extend(names)
            continue
        body_start = index
        break
    if in_block_comment or body_start is None or not modules:
        return None
    body = "\n".join(lines[body_start:])
    if not body.strip():
        return None
    header = "\n".join(lines[:body_start]).rstrip()
    return HeaderSplit(
        key=tuple(dict.fromkeys(modules)),
        header=header,
        body=body,
        line_offset=body_start,
    )


def header_split_for(request: BaseREPLQuery) -> HeaderSplit | None:
    """The header split of an env-less `Command`, else None."""
    if type(request) is Command and request.env is None:
        return split_header(request.cmd)
    return None


def shift_positions(response: dict[str, Any], lines: int) -> dict[str, Any]:
    """A copy of a command response with every source position moved down by `lines`.

    Positions at line 0 (messages from tactic mode, which have no location) are left alone.
    """
    if lines == 0:
        return response
    shifted = dict(response)
    for key in ("messages", "sorries", "tactics"):
        items = response.get(key)
        if isinstance(items, list):
            shifted[key] = [_shift_item(item, lines) for item in items]
    infotree = response.get("infotree")
    if isinstance(infotree, list):
        shifted["infotree"] = [_shift_tree(node, lines) for node in infotree]
    return shifted


def _shift_pos(pos: Any, lines: int) -> Any:
    if isinstance(pos, dict) and isinstance(pos.get("line"), int) and pos["line"] > 0:
        return {**pos, "line": pos["line"] + lines}
    return pos


def _shift_item(item: Any, lines: int) -> Any:
    if not isinstance(item, dict):
        return item
    copied = dict(item)
    for key in ("pos", "endPos"):
        if key in copied:
            copied[key] = _shift_pos(copied[key], lines)
    return copied


_POSITION_KEYS = frozenset({"start", "finish", "pos", "endPos"})


def _shift_tree(node: Any, lines: int) -> Any:
    """A copy of an info-tree value with its positions moved; an explicit stack, because info
    trees nest deeper than Python's recursion allows."""
    if not isinstance(node, (dict, list)):
        return node
    root: Any = {} if isinstance(node, dict) else [None] * len(node)
    pending: list[tuple[Any, Any]] = [(node, root)]
    while pending:
        source, copied = pending.pop()
        is_dict = isinstance(source, dict)
        for key, value in source.items() if is_dict else enumerate(source):
            if is_dict and key in _POSITION_KEYS:
                copied[key] = _shift_pos(value, lines)
            elif isinstance(value, dict):
                copied[key] = {}
                pending.append((value, copied[key]))
            elif isinstance(value, list):
                copied[key] = [None] * len(value)
                pending.append((value, copied[key]))
            else:
                copied[key] = value
    return root


def dedup_key(request: BaseREPLQuery, timeout: float | None) -> str:
    """Requests with equal keys get interchangeable answers (ids aside)."""
    return f"{timeout!r}|" + json.dumps(request.to_repl_dict(), sort_keys=True, ensure_ascii=False)


def names_state(request: BaseREPLQuery) -> bool:
    """Whether the request refers to an env or proof state (only meaningful in a session)."""
    from leanpool._ids import request_id_fields

    return bool(request_id_fields(request))
