"""The REPL's bytes on stdin and stdout (``getLines``, ``printFlush``, ``repl`` in REPL/Main.lean).

Reading mirrors `getLines`: physical lines are stripped of trailing whitespace and glued without
a separator until a blank line, which is itself appended; at end of input whatever was read is
returned, so a request cut off by EOF is still processed, and an empty result means EOF.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

from leanpool._leanjson import render_lean_json

__all__ = ["RequestReader", "is_comment", "response_bytes"]

_LEAN_WHITESPACE = " \t\r\n"  # Lean's `Char.isWhitespace`


class RequestReader:
    """Reads one request text at a time from a binary stream."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream

    def read(self) -> str:
        """The next request text; "" means end of input."""
        parts: list[str] = []
        while True:
            line = self._stream.readline().decode("utf-8", errors="replace")
            if line.strip(_LEAN_WHITESPACE) == "":
                return "".join(parts) + line
            parts.append(line.rstrip(_LEAN_WHITESPACE))


def is_comment(request_text: str) -> bool:
    """Blocks the REPL skips without answering."""
    return request_text.startswith("#") or request_text.startswith("--")


def response_bytes(response: Mapping[str, Any]) -> bytes:
    """A response as the REPL writes it: Lean's pretty JSON, a newline and a blank line."""
    return (render_lean_json(response) + "\n\n").encode("utf-8")
