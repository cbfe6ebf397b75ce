"""Lean's JSON text format: `Lean.Json.pretty` reproduced character for character.

The REPL writes every response with `toString` on a `Lean.Json`, which is `Json.pretty` with an
80-column width: `Json.render` builds a `Std.Format` document (objects with keys in *descending*
order, `Format.bracket` around arrays and objects, one `group` per key/value pair) and
`Format.pretty` lays it out (Wadler-style groups, measured up to the next line break *including*
the text that follows the group). Python's `json` module cannot produce this layout, and a
simulator or a test comparing bytes with real transcripts needs it exactly, so the algorithm is
ported here (hand-written because no library implements Lean's variant). Widths are counted in
code points, as Lean's `String.length` does.

Only the stdlib is imported: the REPL simulator, started thousands of times, uses this module.
"""

from __future__ import annotations

import decimal
import json
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

__all__ = [
    "escape_lean_string",
    "lean_number_text",
    "loads_deep",
    "loads_iteratively",
    "render_lean_json",
]

# Format document nodes, as tuples for speed: (kind, ...).
_TEXT = 0  # (_TEXT, text)
_LINE = 1  # (_LINE,)  a space when its group is flattened, else a newline plus indentation
_NEST = 2  # (_NEST, indent, doc)
_CONCAT = 3  # (_CONCAT, [doc, ...])  Lean's `append`, n-ary
_GROUP = 4  # (_GROUP, doc)

_Doc = tuple[Any, ...]

_LINE_DOC: _Doc = (_LINE,)
_COMMA: _Doc = (_TEXT, ",")

_NEEDS_ESCAPE = re.compile(r'[\x00-\x1f"\\]')
_ESCAPES = {code: f"\\u{code:04x}" for code in range(0x20)}
_ESCAPES.update({ord('"'): '\\"', ord("\\"): "\\\\", ord("\n"): "\\n", ord("\r"): "\\r"})


def loads_deep(text: str | bytes | bytearray) -> Any:
    """`json.loads`, also for values nested deeper than the interpreter lets `json.loads` go.

    Lean renders JSON of any depth (a long chain ``a + b + c + ...`` nests its info tree once per
    operand), while CPython's C decoder recurses and raises `RecursionError` past a limit that
    depends on the interpreter: 994 levels on 3.10 and 3.11 (the recursion limit, less the
    caller's frames), 1,497 on 3.12.1 and 9,998 on 3.13.0 (C-stack limits of their own, which
    `sys.setrecursionlimit` cannot lift). Such input is parsed again by `loads_iteratively`, which
    returns the same value: the common, shallow case costs one `json.loads` and nothing more.
    Malformed input raises `json.JSONDecodeError` (a `ValueError`), as `json.loads` does.
    """
    try:
        return json.loads(text)
    except RecursionError:
        pass
    if not isinstance(text, str):  # decoded exactly as json.loads decodes bytes
        text = bytes(text).decode(json.detect_encoding(text), "surrogatepass")
    return loads_iteratively(text)


# --- the iterative decoder ----------------------------------------------------------------
# Why hand-written: no well-kept library fits. ijson (C backend, wheels for 3.10-3.13) builds
# objects iteratively, but its `items()` gives every event a prefix string as long as the path
# to it, so its time and memory grow with depth squared (8,000 levels: 0.5 GB, 100,000: killed);
# its event stream is linear but differs from `json.loads` (no NaN/Infinity, a lone "\ud800"
# escape becomes "?", integers past 64 bits or 1e400 are errors with floats, trailing data and
# leading zeros are accepted). orjson, msgspec and pydantic-core's jiter recurse and stop at
# fixed depths (1024, 1000, 200 levels). So the structure (brackets, commas, colons, keys) is
# walked here with an explicit stack, and every scalar is decoded by the C scanner of the stdlib
# (`json.loads`'s own), which makes strings and numbers identical to `json.loads` by
# construction; errors have `json.loads`'s messages and positions, 3.13's trailing-comma ones
# included. About 4-5x slower than `json.loads`, linear in time and memory at any depth.

# json's own scanner (C; used here for scalars only) and string scanner, both left out of
# typeshed; whitespace is json's: space, tab, LF, CR.
_ScanValue = Callable[[str, int], tuple[Any, int]]
_ScanString = Callable[[str, int, bool], tuple[str, int]]
_SCAN_VALUE: _ScanValue = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
_SCAN_STRING: _ScanString = json.decoder.scanstring  # type: ignore[attr-defined]
# `*` always matches: the end of the whitespace run at a position
_SKIP_SPACE = cast(Callable[[str, int], "re.Match[str]"], re.compile(r"[ \t\n\r]*").match)
_TRAILING_COMMA_ERRORS = sys.version_info >= (3, 13)  # json's messages since 3.13
_SPACE = r"[ \t\n\r]*"
_PLAIN_KEY = r'"([^"\\\x00-\x1f]*)"'  # no escape, no control character (an error, strictly)
# The common steps, one regex each; anything else takes the slow path, which mirrors json's.
_FIRST_KEY = re.compile(_SPACE + _PLAIN_KEY + _SPACE + ":" + _SPACE)
_NEXT_KEY = re.compile(_SPACE + "," + _SPACE + _PLAIN_KEY + _SPACE + ":" + _SPACE)
_NEXT_ITEM = re.compile(_SPACE + "," + _SPACE)
_CLOSE_OBJECT = re.compile(_SPACE + "}")
_CLOSE_ARRAY = re.compile(_SPACE + "]")


def loads_iteratively(text: str) -> Any:
    """`json.loads(text)` without recursion: the same value (types, key order, last duplicate
    key wins, NaN and Infinity accepted) or the same error, at any nesting depth."""
    scan_value, skip_space = _SCAN_VALUE, _SKIP_SPACE
    first_key, next_key, next_item = _FIRST_KEY.match, _NEXT_KEY.match, _NEXT_ITEM.match
    close_object, close_array = _CLOSE_OBJECT.match, _CLOSE_ARRAY.match
    memo: dict[str, str] = {}  # one str object per distinct key, as json.loads keeps
    containers: list[Any] = []  # open objects and arrays, innermost last
    keys: list[str | None] = []  # per open container: the key of its next value (None: array)
    value: Any
    if text.startswith("\ufeff"):
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    end = skip_space(text, 0).end()
    while True:
        # A value starts at `end`: a container opens, or a whole scalar is read.
        char = text[end : end + 1]
        if char == "{":
            plain = first_key(text, end + 1)
            if plain is not None:
                key, end = plain.group(1), plain.end()
            elif (empty := close_object(text, end + 1)) is not None:
                key, end = None, empty.end()
            else:
                key, end = _slow_first_key(text, end + 1)
            if key is not None:
                containers.append({})
                keys.append(memo.setdefault(key, key))
                continue
            value = {}
        elif char == "[":
            empty = close_array(text, end + 1)
            if empty is None:
                containers.append([])
                keys.append(None)
                end = skip_space(text, end + 1).end()
                continue
            value, end = [], empty.end()
        else:
            try:
                value, end = scan_value(text, end)
            except StopIteration as stop:
                raise json.JSONDecodeError("Expecting value", text, stop.value) from None
        # `value` ends at `end`: store it, then close each container that ends right after it.
        while containers:
            container, key = containers[-1], keys[-1]
            if key is None:
                container.append(value)
                comma = next_item(text, end)
                if comma is not None:
                    end = comma.end()
                    if _TRAILING_COMMA_ERRORS and text[end : end + 1] == "]":
                        message = "Illegal trailing comma before end of array"
                        raise json.JSONDecodeError(message, text, text.rindex(",", 0, end))
                    break
                closing = close_array(text, end)
                if closing is None:
                    end = skip_space(text, end).end()
                    raise json.JSONDecodeError("Expecting ',' delimiter", text, end)
            else:
                container[key] = value
                plain = next_key(text, end)
                if plain is not None:
                    key, end = plain.group(1), plain.end()
                    keys[-1] = memo.setdefault(key, key)
                    break
                closing = close_object(text, end)
                if closing is None:
                    key, end = _slow_next_key(text, end)
                    keys[-1] = memo.setdefault(key, key)
                    break
            end = closing.end()
            value = containers.pop()
            keys.pop()
        else:
            end = skip_space(text, end).end()
            if end != len(text):
                raise json.JSONDecodeError("Extra data", text, end)
            return value


def _slow_first_key(text: str, end: int) -> tuple[str, int]:
    """After ``{`` (not empty): the key and where its value starts, or json's error."""
    end = _SKIP_SPACE(text, end).end()
    if text[end : end + 1] != '"':
        raise json.JSONDecodeError("Expecting property name enclosed in double quotes", text, end)
    return _key_and_colon(text, end + 1)


def _slow_next_key(text: str, end: int) -> tuple[str, int]:
    """After a member's value, not followed by ``}``: the next key and where its value starts."""
    end = _SKIP_SPACE(text, end).end()
    if text[end : end + 1] != ",":
        raise json.JSONDecodeError("Expecting ',' delimiter", text, end)
    comma = end
    end = _SKIP_SPACE(text, end + 1).end()
    char = text[end : end + 1]
    if char != '"':
        if _TRAILING_COMMA_ERRORS and char == "}":
            message = "Illegal trailing comma before end of object"
            raise json.JSONDecodeError(message, text, comma)
        raise json.JSONDecodeError("Expecting property name enclosed in double quotes", text, end)
    return _key_and_colon(text, end + 1)


def _key_and_colon(text: str, end: int) -> tuple[str, int]:
    key, end = _SCAN_STRING(text, end, True)
    end = _SKIP_SPACE(text, end).end()
    if text[end : end + 1] != ":":
        raise json.JSONDecodeError("Expecting ':' delimiter", text, end)
    return key, _SKIP_SPACE(text, end + 1).end()


def escape_lean_string(text: str) -> str:
    """`Json.renderString`: quotes, and escapes for `"`, `\\`, LF, CR and other chars < U+0020.

    Everything else, including DEL, U+2028 and all non-ASCII text, is written raw.
    """
    if _NEEDS_ESCAPE.search(text) is None:
        return f'"{text}"'
    return '"' + text.translate(_ESCAPES) + '"'


def lean_number_text(value: int | float | decimal.Decimal) -> str:
    """`JsonNumber.toString` for a number given as Python int, float or Decimal."""
    if isinstance(value, int):
        return str(value)
    number = decimal.Decimal(repr(value)) if isinstance(value, float) else value
    if not number.is_finite():
        raise ValueError(f"Lean JSON has no representation for {value!r}")
    sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)
    mantissa = int("".join(map(str, digits)) or "0")
    if exponent >= 0:  # an integer written with an exponent: Lean shifts it into the mantissa
        return ("-" if sign and mantissa else "") + str(mantissa * 10**exponent)
    return _mantissa_exponent_text(-mantissa if sign else mantissa, -exponent)


def _mantissa_exponent_text(mantissa: int, exponent: int) -> str:
    """Lean's rendering of mantissa * 10^-exponent (exponent > 0), including its `e` notation."""
    sign = "" if mantissa >= 0 else "-"
    magnitude = abs(mantissa)
    shown_exponent = 9 + len(str(magnitude)) - exponent
    shown_exponent = shown_exponent if shown_exponent < 0 else 0
    scale = 10 ** (exponent - abs(shown_exponent))
    left = str(magnitude // scale)
    if magnitude % scale == 0 and shown_exponent == 0:
        return sign + left
    right = str(scale + magnitude % scale)[1:].rstrip("0")
    suffix = f"e{shown_exponent}" if shown_exponent else ""
    return f"{sign}{left}.{right}{suffix}"


def _bracket(left: str, items: list[_Doc], right: str) -> _Doc:
    """`Format.bracket l (joinSep items ("," ++ line)) r` = group (nest l.length (l ++ f ++ r))."""
    parts: list[_Doc] = [(_TEXT, left)]
    for index, item in enumerate(items):
        if index:
            parts.append(_COMMA)
            parts.append(_LINE_DOC)
        parts.append(item)
    parts.append((_TEXT, right))
    return (_GROUP, (_NEST, len(left), (_CONCAT, parts)))


def _leaf_document(value: object) -> _Doc | None:
    """The document of a scalar; None for an object or array."""
    if value is None:
        return (_TEXT, "null")
    if value is True:
        return (_TEXT, "true")
    if value is False:
        return (_TEXT, "false")
    if isinstance(value, str):
        return (_TEXT, escape_lean_string(value))
    if isinstance(value, (int, float, decimal.Decimal)):
        return (_TEXT, lean_number_text(value))
    if isinstance(value, Mapping) or (
        isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray))
    ):
        return None
    raise TypeError(f"not a JSON value: {type(value).__name__}")


# An object or array being rendered: (keys, or None for an array; its values; their documents).
_Frame = tuple[list[str] | None, list[Any], list[_Doc]]


def _open(value: Any) -> _Frame:
    if isinstance(value, Mapping):
        keys = sorted(value, reverse=True)  # Lean folds its key map into descending order
        for key in keys:
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys must be strings, got {key!r}")
        return (keys, [value[key] for key in keys], [])
    return (None, list(value), [])


def _close(frame: _Frame) -> _Doc:
    keys, _, docs = frame
    if keys is None:
        return _bracket("[", docs, "]")
    pairs: list[_Doc] = [
        (_GROUP, (_CONCAT, [(_TEXT, escape_lean_string(key) + ":"), _LINE_DOC, doc]))
        for key, doc in zip(keys, docs, strict=True)
    ]
    return _bracket("{", pairs, "}")


def _document(value: object) -> _Doc:
    """`Json.render`: the Format document of a JSON value.

    An explicit stack rather than recursion: info trees nest deeper than Python's recursion limit.
    """
    leaf = _leaf_document(value)
    if leaf is not None:
        return leaf
    stack = [_open(value)]
    while True:
        _, values, docs = frame = stack[-1]
        if len(docs) < len(values):
            child = values[len(docs)]
            doc = _leaf_document(child)
            if doc is None:
                stack.append(_open(child))
            else:
                docs.append(doc)
            continue
        stack.pop()
        done = _close(frame)
        if not stack:
            return done
        stack[-1][2].append(done)


# --- Format.pretty -------------------------------------------------------------------------
# A measurement is (found_line, found_flattened_hard_line, space), Lean's `SpaceResult`.
_Measure = tuple[bool, bool, int]
_NOTHING: _Measure = (False, False, 0)


def _measure(doc: _Doc, flatten: bool, budget: int) -> _Measure:
    """`spaceUptoLine`: the width of `doc` up to its first line break, stopping past `budget`."""
    kind = doc[0]
    if kind == _TEXT:
        text: str = doc[1]
        newline = text.find("\n")
        if newline < 0:
            return (False, False, len(text))
        return (True, flatten, newline)
    if kind == _LINE:
        return (False, False, 1) if flatten else (True, False, 0)
    if kind == _NEST:
        return _measure(doc[2], flatten, budget)
    if kind == _GROUP:
        return _measure(doc[1], True, budget)
    result = _NOTHING
    for child in doc[1]:  # _CONCAT: `merge` folded over the children
        if result[2] > budget or result[0]:
            break
        found_line, hard, space = _measure(child, flatten, budget - result[2])
        result = (found_line, hard, result[2] + space)
    return result


class _Group:
    """A `WorkGroup`: items still to print (a stack, next item last) and whether it is flat."""

    __slots__ = ("flatten", "items")

    def __init__(self, flatten: bool, items: list[tuple[_Doc, int]]) -> None:
        self.flatten = flatten
        self.items = items


def _measure_groups(groups: list[_Group], budget: int, result: _Measure = _NOTHING) -> _Measure:
    """`spaceUptoLine'`: continue `result` over the pending items, innermost group first."""
    for group in reversed(groups):
        for doc, _indent in reversed(group.items):
            if result[2] > budget or result[0]:
                return result
            found_line, hard, space = _measure(doc, group.flatten, budget - result[2])
            result = (found_line, hard, result[2] + space)
    return result


def _push_group(
    items: list[tuple[_Doc, int]], rest: list[_Group], column: int, width: int
) -> _Group:
    """`pushGroup`: flatten the group if it, plus what follows up to a line break, fits."""
    available = max(width - column, 0)
    own = _measure_groups([_Group(True, items)], available)
    total = _measure_groups(rest, available, own)
    return _Group(not own[1] and total[2] <= available, items)


def _pretty(doc: _Doc, width: int) -> str:
    """`Format.pretty`: the `be` loop, iterative."""
    out: list[str] = []
    column = 0
    groups = [_Group(False, [(doc, 0)])]
    while groups:
        group = groups[-1]
        if not group.items:
            groups.pop()
            continue
        item, indent = group.items.pop()
        kind = item[0]
        if kind == _TEXT:
            text: str = item[1]
            newline = text.find("\n")
            if newline < 0:
                out.append(text)
                column += len(text)
                continue
            out.append(text[:newline])
            out.append("\n" + " " * indent)
            column = indent
            group.items.append(((_TEXT, text[newline + 1 :]), indent))
            groups.pop()  # after a hard line break, decide again whether the rest is flat
            groups.append(_push_group(group.items, groups, column, width))
        elif kind == _LINE:
            if group.flatten:
                out.append(" ")
                column += 1
            else:
                out.append("\n" + " " * indent)
                column = indent
        elif kind == _NEST:
            group.items.append((item[2], indent + item[1]))
        elif kind == _CONCAT:
            group.items.extend((child, indent) for child in reversed(item[1]))
        elif group.flatten:  # _GROUP inside a flat group is flat too
            group.items.append((item[1], indent))
        else:
            groups.append(_push_group([(item[1], indent)], groups, column, width))
    return "".join(out)


def render_lean_json(value: object, width: int = 80) -> str:
    """The text Lean's `Json.pretty value width` produces (no trailing newline).

    `value` is what `json.loads` returns (dicts, lists, str, int, float, bool, None; Decimal is
    accepted too). Object keys come out in descending order whatever the dict's order.
    """
    return _pretty(_document(value), width)
