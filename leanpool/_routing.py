"""What a request needs from a worker, decided in the parent before dispatch.

* **Import headers.** A command that starts with an import header would make the REPL re-import
  it, the most expensive thing a client can ask for. `split_header` cuts such a command into the
  header and the body; the pool routes it to a worker that already imported that header and runs
  only the body on top of the header's environment. Positions in the answer are shifted back by
  the header's line count (`shift_positions`), so the caller sees positions in its own text,
  exactly as if the REPL had run the whole command.
* **Duplicates.** `dedup_key` identifies requests whose answers are interchangeable, so identical
  requests in flight at the same time are run once.

The header is read with Lean's own header grammar, and the routing key is its canonical form:
headers that differ only in ways Lean cannot see share a key, and headers that could import
different environments never do. Anything the reader is not sure of gets no key (`None`), and the
command runs verbatim. `split_header` documents the rules and the Lean sources they follow.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from leanpool.protocol import BaseREPLQuery, Command


@dataclass(frozen=True)
class HeaderSplit:
    """A command cut into its import header and its body."""

    # The canonical header: "module" and "prelude" when present, then one element per import, in
    # order, later exact duplicates dropped; an import's element is its modifiers and its module,
    # e.g. "Mathlib.Tactic", "public meta Lean.Elab", "all «My Module».Foo".
    key: tuple[str, ...]
    header: str  # header text as written (sent to the REPL once per worker)
    body: str  # the rest of the command, from the start of the line its first token is on
    line_offset: int  # lines the header occupies: body line L is line L + offset for the caller


class _Unsure(Exception):
    """The text is not a header this module can read with certainty."""


# Lean's identifier characters, ASCII part only (`Lean.isIdFirst`/`Lean.isIdRest`, in
# src/Init/Meta.lean, later src/Init/Meta/Defs.lean). Their non-ASCII letter-like ranges changed
# between Lean versions, so an unquoted non-ASCII character gets no key, not one version's reading.
_PLAIN_COMPONENT = re.compile(r"[A-Za-z_][A-Za-z0-9_'!?]*")
_ID_REST = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_'!?")
_ID_FIRST = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
# Words with a meaning in a key: a module name component spelled like one is quoted in the key.
_KEY_WORDS = frozenset({"module", "prelude", "public", "meta", "import", "all"})
_COMMENT_MARKERS = re.compile(r"/-|-/")
# Capitalised builtin tokens: Lean reads `import Type` as the keyword, not a module.
_CAPITALISED_TOKENS = frozenset({"Type", "Sort", "Prop"})


def split_header(cmd: str) -> HeaderSplit | None:
    """Split `cmd` into its import header and body, or None when it has no header read with
    certainty.

    The grammar is Lean's (``Lean.Parser.Module.header`` in src/Lean/Parser/Module.lean, Lean ≥
    4.22; older versions have the same shape without the module-system words)::

        header := ("module")? ("prelude")? import*
        import := atomic(("public")? ("meta")? "import") ("all")? ident

    One module per ``import`` keyword: ``import A B`` is ``import A`` followed by a command ``B``
    (a parse error), so it gets no key. Between tokens, Lean's ``whitespace``
    (src/Lean/Parser/Basic.lean): spaces, newlines, CRLF, ``--`` line comments and ``/- -/``
    block comments, which nest; ``/--`` and ``/-!`` are doc comments, tokens that start the body;
    a tab, a lone carriage return or an unterminated comment is an error (no key).

    The key keeps what changes the environment and drops what cannot:

    * whitespace and comments are dropped;
    * ``module``, ``prelude`` and each import's ``public``/``meta``/``all`` are kept;
    * the order of imports is kept: it is the order ``importModules`` (src/Lean/Environment.lean)
      loads modules in, hence module indices and the order of imported extension entries
      (instances, simp lemmas), which can decide what wins a tie;
    * an exact repeat of an earlier import (same modifiers, same module) is dropped: the import
      loop skips a module already imported with the same flags, so the environment is the same
      (its ``header.imports`` array aside);
    * a module is its `Name`: ``«Foo».Bar`` is ``Foo.Bar``, but ``«Foo.Bar»`` (one component with
      a dot) and ``«My Module»`` are other modules. ``Mathlib.Tactic`` is never ``Mathlib``.

    The body starts at the beginning of the line its first token is on, so its columns are the
    caller's; a body sharing a line with the header gets no key. Unquoted names must be ASCII and
    end at whitespace or a comment; a single-component unquoted name that could be a keyword
    (lowercase, ``_``, ``Type``...) gets no key: Lean would read a keyword there.
    """
    if "import" not in cmd[:4096]:  # cheap exit for the common case
        return None
    try:
        return _read_header(cmd)
    except _Unsure:
        return None


def _read_header(cmd: str) -> HeaderSplit | None:
    comments: list[tuple[int, int]] = []  # block comments seen: (start, end)
    key: list[str] = []
    pos = _skip_trivia(cmd, 0, comments)
    header_end = 0  # end of the header's last token
    for word in ("module", "prelude"):
        if _keyword_at(cmd, pos, word):
            key.append(word)
            header_end = pos + len(word)
            pos = _skip_trivia(cmd, header_end, comments)
    imports: dict[str, None] = {}  # insertion-ordered; a repeat keeps its first place
    while True:
        body_start = pos
        modifiers: list[str] = []
        for word in ("public", "meta"):
            if _keyword_at(cmd, pos, word):
                modifiers.append(word)
                pos = _skip_trivia(cmd, pos + len(word), comments)
        if not _keyword_at(cmd, pos, "import"):
            break  # `public`/`meta` without `import` belong to the body's first command
        pos = _skip_trivia(cmd, pos + len("import"), comments)
        if _keyword_at(cmd, pos, "all"):
            modifiers.append("all")
            pos = _skip_trivia(cmd, pos + len("all"), comments)
        name, header_end = _module_name(cmd, pos)
        imports.setdefault(" ".join([*modifiers, name]))
        pos = _skip_trivia(cmd, header_end, comments)
    if not imports or body_start >= len(cmd):
        return None
    line_start = cmd.rfind("\n", 0, body_start) + 1
    if line_start <= header_end:
        return None  # the body starts on the header's last line
    newline = line_start - 1
    if any(start < newline < end for start, end in comments):
        return None  # a comment runs from the header into the body's first line
    return HeaderSplit(
        key=(*key, *imports),
        header=cmd[:line_start].rstrip(),
        body=cmd[line_start:],
        line_offset=cmd.count("\n", 0, line_start),
    )


def _skip_trivia(text: str, pos: int, comments: list[tuple[int, int]]) -> int:
    """The position after the whitespace and comments at `pos` (Lean's `whitespace`)."""
    end = len(text)
    while pos < end:
        char = text[pos]
        if char in " \n":
            pos += 1
        elif char == "\r":
            if not text.startswith("\n", pos + 1):
                raise _Unsure  # "isolated carriage returns are not allowed"
            pos += 2
        elif char == "\t":
            raise _Unsure  # "tabs are not allowed"
        elif text.startswith("--", pos):
            newline = text.find("\n", pos)
            pos = end if newline < 0 else newline
        elif text.startswith("/-", pos):
            if pos + 2 < end and text[pos + 2] in "-!":
                return pos  # a doc comment is a token
            close = _comment_end(text, pos + 2)
            comments.append((pos, close))
            pos = close
        else:
            return pos
    return pos


def _comment_end(text: str, pos: int) -> int:
    """The end of the block comment whose body starts at `pos` (Lean's `finishCommentBlock`:
    ``/-`` opens a nested comment, ``-/`` closes one)."""
    depth = 1
    for marker in _COMMENT_MARKERS.finditer(text, pos):  # leftmost, as Lean scans
        depth += 1 if marker.group() == "/-" else -1
        if depth == 0:
            return marker.end()
    raise _Unsure  # "unterminated comment"


def _ends_token(text: str, pos: int) -> bool:
    """Whether a token ending at `pos` certainly ends there: whitespace, a comment or the end."""
    return pos >= len(text) or text[pos] in " \n\r\t" or text.startswith(("--", "/-"), pos)


def _keyword_at(text: str, pos: int, word: str) -> bool:
    """Whether the token at `pos` is the keyword `word` (not an identifier that starts with it)."""
    if not text.startswith(word, pos):
        return False
    after = pos + len(word)
    if _ends_token(text, after):
        return True
    if text[after] in _ID_REST:
        return False  # a longer identifier (`imports`, `public_lemma`)
    raise _Unsure  # `import.X`, `importα`, `public(`: read differently by different versions


def _module_name(text: str, pos: int) -> tuple[str, int]:
    """The canonical spelling of the module name at `pos` (Lean's `identFn`) and its end."""
    components: list[str] = []
    quoted: list[bool] = []
    while True:
        if text.startswith("«", pos):
            close = text.find("»", pos + 1)
            if close < 0:
                raise _Unsure  # "unterminated identifier escape"
            component = text[pos + 1 : close]
            if not component or not component.isprintable():
                raise _Unsure  # empty, or control characters (CRLF is normalised by some versions)
            components.append(component)
            quoted.append(True)
            pos = close + 1
        else:
            match = _PLAIN_COMPONENT.match(text, pos)
            if match is None:
                raise _Unsure
            components.append(match.group())
            quoted.append(False)
            pos = match.end()
        if text.startswith(".", pos):
            follower = text[pos + 1 : pos + 2]
            if follower in _ID_FIRST or follower == "«":
                pos += 1
                continue
            raise _Unsure  # a trailing dot, or a component only some versions accept
        break
    if not _ends_token(text, pos):
        raise _Unsure
    if len(components) == 1 and not quoted[0]:
        first = components[0]
        if not first[0].isupper() or first in _CAPITALISED_TOKENS:
            raise _Unsure  # may be a keyword, which Lean would not read as a module
    return ".".join(_component_key(component) for component in components), pos


def _component_key(component: str) -> str:
    """A name component as the key spells it: plain when it can be, else «quoted».

    One-to-one: a plain spelling has no dot, space or guillemet, and a component cannot contain
    ``»`` (Lean ends the escape there), so the key spells one `Name` one way.
    """
    if _PLAIN_COMPONENT.fullmatch(component) and component not in _KEY_WORDS:
        return component
    return f"«{component}»"


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
