"""Bytes on the REPL's pipes: encoding one request, and cutting stdout into responses.

The REPL ends a request at the first blank line and treats a JSON parse failure (or an unknown
shape, a wrong type, a negative id) as fatal: it exits. So `encode_request` refuses, before
anything is written, every request the REPL would mis-read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, NoReturn

from leanpool._errors import ProtocolError, RequestError
from leanpool._leanjson import loads_deep
from leanpool.protocol._parse import REQUEST_SHAPES, parse_request
from leanpool.protocol._requests import BaseREPLQuery

__all__ = ["ResponseReader", "encode_request", "repl_reads_as"]

_TERMINATOR = b"\n\n"
_ID_KEYS = ("env", "proofState")
_ERROR_DATA_BYTES = 300
_ERROR_DOC_CHARS = 1 << 16

# Wire type of every key the upstream REPL decodes (JSON.lean). Keys only LeanInteract's fork
# knows (declarations, incrementality, setOptions) are ignored upstream, so not checked here.
_NAT, _TEXT, _BOOL, _STRING = (
    "a non-negative integer",
    "a non-empty string",
    "a boolean",
    "a string",
)
_WIRE_TYPES: dict[str, str] = {
    "proofState": _NAT,
    "env": _NAT,
    "tactic": _TEXT,
    "pickleTo": _TEXT,
    "unpickleEnvFrom": _TEXT,
    "unpickleProofStateFrom": _TEXT,
    "cmd": _TEXT,
    "path": _TEXT,
    "allTactics": _BOOL,
    "rootGoals": _BOOL,
    "infotree": _STRING,
}


def _has_wire_type(value: Any, expected: str) -> bool:
    if expected == _NAT:
        return type(value) is int and value >= 0
    if expected == _TEXT:
        return isinstance(value, str) and value != ""
    if expected == _BOOL:
        return type(value) is bool
    return isinstance(value, str)


def repl_reads_as(wire: Mapping[str, Any]) -> type[BaseREPLQuery] | None:
    """The request kind the REPL decodes `wire` as (first shape that decodes), or None (fatal).

    Stricter than the REPL in one way: empty strings are refused, as LeanInteract's models do.
    """
    for model, required, optional in REQUEST_SHAPES:
        if all(_has_wire_type(wire.get(key), _WIRE_TYPES[key]) for key in required) and all(
            wire.get(key) is None or _has_wire_type(wire[key], _WIRE_TYPES[key]) for key in optional
        ):
            return model
    return None


def encode_request(request: BaseREPLQuery | Mapping[str, Any]) -> bytes:
    """The exact bytes to write to the REPL's stdin: one JSON line and the blank-line terminator.

    A dict goes through `parse_request` first. Raises `RequestError` (nothing was sent) for what
    the REPL would mis-read or die on: negative (unresolved session) ids, wrong wire types, keys
    that make the REPL read another request kind, lone surrogates, non-JSON values.
    """
    if isinstance(request, BaseREPLQuery):
        model = request
    elif isinstance(request, Mapping):
        model = parse_request(request)
    else:
        raise RequestError(
            f"encode_request takes a request model or a dict, got {type(request).__name__}."
        )
    wire = model.to_repl_dict()
    _check_wire(model, wire)
    try:
        text = json.dumps(wire, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise RequestError(
            f"This {type(model).__name__} cannot be written as JSON: {exc}.", request=model
        ) from None
    try:
        payload = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = text[exc.start]
        raise RequestError(
            f"This {type(model).__name__} contains a lone surrogate (U+{ord(bad):04X}) in "
            f"{_where_string_has(wire, bad)}, which UTF-8 cannot encode; fix the text (it often "
            "comes from decoding bytes with errors='surrogateescape').",
            request=model,
        ) from None
    _check_one_line(payload)
    return payload + _TERMINATOR


def _check_wire(model: BaseREPLQuery, wire: dict[str, Any]) -> None:
    for key in _ID_KEYS:
        value = wire.get(key)
        if type(value) is int and value < 0:
            raise RequestError(
                f"{type(model).__name__} has {key}={value}: a negative id is a session id, and "
                "session ids must be resolved to REPL ids (>= 0) before the request goes on the "
                "wire (the REPL would reject it and exit).",
                request=model,
            )
    kind = _request_kind(model)
    reads_as = repl_reads_as(wire)
    if reads_as is kind:
        return
    if reads_as is not None:
        own = {key for k, req, opt in REQUEST_SHAPES if k is kind for key in (*req, *opt)}
        foreign = sorted(key for key in wire if key in _WIRE_TYPES and key not in own)
        raise RequestError(
            f"The REPL would read this {kind.__name__} as a {reads_as.__name__} because of the "
            f"key(s) {', '.join(foreign) or '(none)'}; do not mix keys of different request kinds.",
            request=model,
        )
    problems = []
    for shape, required, optional in REQUEST_SHAPES:
        if shape is not kind:
            continue
        for key in (*required, *optional):
            value = wire.get(key)
            if (value is not None or key in required) and not _has_wire_type(
                value, _WIRE_TYPES[key]
            ):
                problems.append(f"{key} must be {_WIRE_TYPES[key]}, got {value!r}")
    raise RequestError(
        f"The REPL cannot read this {kind.__name__}: {'; '.join(problems) or 'unknown shape'}.",
        request=model,
    )


def _request_kind(model: BaseREPLQuery) -> type[BaseREPLQuery]:
    for kind, _, _ in REQUEST_SHAPES:
        if isinstance(model, kind):
            return kind
    raise RequestError(
        f"{type(model).__name__} is not a REPL request kind (Command, FileCommand, ProofStep, "
        "PickleEnvironment, UnpickleEnvironment, PickleProofState or UnpickleProofState)."
    )


def _check_one_line(payload: bytes) -> None:
    """The REPL reads up to the first blank line and skips text starting with ``#``/``--``
    without answering: either would desynchronise the stream. `json.dumps` of an object never
    produces these; this guards the invariant the whole protocol rests on."""
    if b"\n" in payload or not payload.startswith(b"{"):
        raise RequestError(
            f"Encoded request is not a single JSON-object line: {payload[:_ERROR_DATA_BYTES]!r}"
        )


def _where_string_has(value: Any, char: str, path: str = "") -> str:
    """The wire key path of the first string containing `char` (error reporting only)."""
    if isinstance(value, str):
        return (path or "a string") if char in value else ""
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return ""
    for key, item in items:
        found = _where_string_has(item, char, f"{path}.{key}" if path else str(key))
        if found:
            return found
    return ""


# ------------------------------------------------------------------------------------------
# Reading responses

_WS = rb" \t\r\x0b\x0c"  # ASCII whitespace besides the newline
_CONTENT = re.compile(rb"[^\n" + _WS + rb"]")  # a byte that makes a line non-blank
_NOT_HORIZONTAL_SPACE = re.compile(rb"[^" + _WS + rb"]")  # content or a newline
_BLANK_LINE = re.compile(rb"\n[" + _WS + rb"]*\n")  # a line end followed by a blank line


class ResponseReader:
    """Cuts REPL stdout into decoded responses; feed it chunks of any size as they arrive.

    A response ends at the first blank (empty or ASCII-whitespace-only) line after its content;
    only ``b"\\n"`` splits lines (messages may contain raw U+2028 or U+0085). No line-length
    limit, and each byte is scanned once: a megabyte line arriving in 1-KiB chunks costs linear
    time. Hand-written because `asyncio.StreamReader.readline` limits line length and json's
    `raw_decode` would rescan a growing buffer on every chunk; the scanning itself is done by
    `re` and `bytearray.rfind` in C, not per line in Python.

    After a `ProtocolError` the stream is out of step: every later `feed` raises it again. When
    a chunk holds complete responses *before* the bad bytes, `feed` returns those first and keeps
    the error in `failure` (raised by the next `feed`): each request gets its own outcome.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()  # unconsumed bytes; a response in progress starts at 0
        self._scanned = 0  # bytes of _buffer already examined
        self._has_content = False  # a response is in progress (its "{" has arrived)
        # Index of a newline in the response followed, up to _scanned, by whitespace only: the
        # blank line that ends the response may be arriving in pieces. -1 if none.
        self._open_newline = -1
        self._failure: ProtocolError | None = None

    @property
    def buffered(self) -> bytes:
        """The partial response received so far (empty between responses): at EOF, what the
        process wrote of its last answer before dying."""
        return bytes(self._buffer) if self._has_content else b""

    @property
    def failure(self) -> ProtocolError | None:
        """The protocol error met so far, if any (the stream is unusable after it)."""
        return self._failure

    def feed(self, chunk: bytes | bytearray | memoryview) -> list[dict[str, Any]]:
        """Add bytes; return the responses they complete, in order."""
        if self._failure is not None:
            raise self._failure
        done: list[dict[str, Any]] = []
        try:
            self._feed(chunk, done)
        except ProtocolError:
            if not done:
                raise
        return done

    def _feed(self, chunk: bytes | bytearray | memoryview, done: list[dict[str, Any]]) -> None:
        buffer = self._buffer
        buffer += chunk
        end = len(buffer)
        pos = self._scanned
        start = 0  # where the current response starts; bytes before it are consumed
        while True:
            if not self._has_content:
                found = _CONTENT.search(buffer, pos)
                if found is None:  # only whitespace between responses: drop it
                    start = pos = end
                    break
                at = found.start()
                if buffer[at] != 0x7B:  # "{"
                    self._fail(
                        "REPL output is not a JSON response: the line does not start with '{'",
                        buffer[at : at + _ERROR_DATA_BYTES],
                    )
                start = pos = at
                self._has_content = True
            if self._open_newline >= 0:
                found = _NOT_HORIZONTAL_SPACE.search(buffer, pos)
                if found is None:
                    pos = end
                    break
                if buffer[found.start()] == 0x0A:  # that line was blank: the response is complete
                    done.append(self._decode(buffer, start, self._open_newline + 1))
                    self._has_content, self._open_newline = False, -1
                    start = pos = found.end()
                    continue
                self._open_newline, pos = -1, found.start()
            found = _BLANK_LINE.search(buffer, pos)
            if found is not None:
                done.append(self._decode(buffer, start, found.start() + 1))
                self._has_content = False
                start = pos = found.end()
                continue
            last_newline = buffer.rfind(b"\n", pos, end)
            if last_newline >= 0 and not _NOT_HORIZONTAL_SPACE.search(buffer, last_newline + 1):
                self._open_newline = last_newline
            pos = end
            break
        if start:
            del buffer[:start]
            pos -= start
            if self._open_newline >= 0:
                self._open_newline -= start
        self._scanned = pos

    def _decode(self, buffer: bytearray, start: int, stop: int) -> dict[str, Any]:
        raw = buffer[start:stop]
        try:
            value = loads_deep(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            self._fail(f"REPL response is not valid UTF-8 ({exc.reason} at byte {exc.start})", raw)
        except json.JSONDecodeError as exc:  # any depth decodes (loads_deep is iterative)
            self._fail(f"REPL response is not valid JSON ({exc})", raw, exc)
        if not isinstance(value, dict):
            self._fail(f"REPL response is JSON but not an object ({type(value).__name__})", raw)
        return value

    def _fail(
        self, problem: str, data: bytes | bytearray, cause: json.JSONDecodeError | None = None
    ) -> NoReturn:
        shown = bytes(data[:_ERROR_DATA_BYTES])
        more = "…" if len(data) > _ERROR_DATA_BYTES else ""
        # ProtocolError is also a json.JSONDecodeError (LeanInteract's error here): with the
        # decoder's own document and position when it was the decoder that failed.
        # Up to 64 KiB of it: errors travel between processes.
        where: dict[str, Any] = {}
        if cause is not None and len(cause.doc) <= _ERROR_DOC_CHARS:
            where = {"doc": cause.doc, "pos": cause.pos}
        self._failure = ProtocolError(f"{problem}: {shown!r}{more}", data=shown, **where)
        raise self._failure
