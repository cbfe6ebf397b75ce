"""Decoding one request text exactly as the REPL does (``parse`` and ``repl`` in REPL/Main.lean).

Lean's derived `FromJson` decoders are tried in the REPL's order; the first shape that decodes
wins. A missing key counts as `null`, optional fields accept `null`, unknown keys are ignored, and
types are strict (an id must be a non-negative integer written without fraction or exponent that
Lean would keep). When nothing decodes, the REPL dies with ``uncaught exception``: `Fatal`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from leanpool._leanjson import render_lean_json

__all__ = ["Fatal", "Request", "decode_request"]

# kind -> (field -> (type, required)), in the REPL's classification order (Main.lean:398-411)
_SHAPES: tuple[tuple[str, dict[str, tuple[str, bool]]], ...] = (
    ("proof_step", {"proofState": ("nat", True), "tactic": ("string", True)}),
    ("pickle_environment", {"env": ("nat", True), "pickleTo": ("string", True)}),
    ("unpickle_environment", {"unpickleEnvFrom": ("string", True)}),
    ("pickle_proof_state", {"proofState": ("nat", True), "pickleTo": ("string", True)}),
    (
        "unpickle_proof_state",
        {"unpickleProofStateFrom": ("string", True), "env": ("nat", False)},
    ),
    (
        "command",
        {
            "cmd": ("string", True),
            "env": ("nat", False),
            "allTactics": ("bool", False),
            "rootGoals": ("bool", False),
            "infotree": ("string", False),
        },
    ),
    (
        "file",
        {
            "path": ("string", True),
            "env": ("nat", False),
            "allTactics": ("bool", False),
            "rootGoals": ("bool", False),
            "infotree": ("string", False),
        },
    ),
)
_LEAN_NUMBER = re.compile(r"(-?)(\d+)(?:\.(\d+))?(?:[eE]([-+]?)(\d+))?")


class Fatal(Exception):
    """The REPL dies: ``uncaught exception: <text>`` on stderr, exit status 1.

    That is what Lean's generated ``main`` does with an exception that nothing in REPL/Main.lean
    catches (``parse`` throws one; so do failed pickle reads and writes).

    `text` is what Lean prints after the prefix: a pretty-printed error object for requests that
    do not parse, the IO error's text for failed pickle reads and writes. `output` is what the
    dying process still writes on stdout first (a replayed crash mid-response).
    """

    def __init__(self, text: str, output: bytes = b"") -> None:
        super().__init__(text)
        self.text = text
        self.output = output

    @classmethod
    def error_object(cls, message: str) -> Fatal:
        return cls(render_lean_json({"message": message}))


@dataclass(frozen=True)
class Request:
    """A decoded request: its kind and its known fields (absent optional fields dropped)."""

    kind: str
    fields: Mapping[str, Any]

    @property
    def env(self) -> int | None:
        value = self.fields.get("env")
        return value if isinstance(value, int) else None

    @property
    def proof_state(self) -> int | None:
        value = self.fields.get("proofState")
        return value if isinstance(value, int) else None

    def text(self, key: str) -> str | None:
        value = self.fields.get(key)
        return value if isinstance(value, str) else None

    def flag(self, key: str) -> bool:
        return self.fields.get(key) is True

    @property
    def source_text(self) -> str:
        """The Lean text the request carries (`cmd` or `tactic`), where directives live."""
        return self.text("cmd") or self.text("tactic") or ""


def _lean_number(literal: str) -> int | Decimal:
    """A JSON number as Lean's parser keeps it: an int only when its exponent normalizes to 0."""
    match = _LEAN_NUMBER.fullmatch(literal)
    if match is None:
        raise ValueError(literal)
    sign, whole, fraction, exponent_sign, exponent = match.groups()
    mantissa = int(whole + (fraction or ""))
    scale = len(fraction or "")
    shift = int(exponent or 0)
    if exponent_sign == "-":
        scale += shift
    elif shift >= scale and shift - scale <= 4096:
        mantissa, scale = mantissa * 10 ** (shift - scale), 0
    elif shift < scale:
        scale -= shift
    else:
        return Decimal(literal)
    if scale == 0:
        return -mantissa if sign else mantissa
    return Decimal(literal)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"unexpected {name}")


def _field_error(value: Any, kind: str) -> str | None:
    if kind == "nat":
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        return None if ok else "expected a natural number"
    if kind == "bool":
        return None if isinstance(value, bool) else "expected a boolean"
    return None if isinstance(value, str) else "expected a string"


def _decode_shape(
    obj: Any, shape: dict[str, tuple[str, bool]]
) -> tuple[dict[str, Any], str | None]:
    fields: dict[str, Any] = {}
    for key, (kind, required) in shape.items():
        value = obj.get(key) if isinstance(obj, dict) else None
        if value is None:
            if required:
                return fields, f"property not found: {key}"
            continue
        problem = _field_error(value, kind)
        if problem is not None:
            return fields, f"{key}: {problem}"
        fields[key] = value
    return fields, None


def decode_request(text: str) -> Request:
    """Classify a request text, or raise Fatal with the REPL's error object."""
    try:
        obj = json.loads(
            text, parse_float=_lean_number, parse_int=_lean_number, parse_constant=_reject_constant
        )
    except (ValueError, RecursionError) as error:
        position = getattr(error, "pos", 0)
        reason = getattr(error, "msg", str(error))
        raise Fatal.error_object(f"Could not parse JSON:\noffset {position}: {reason}") from None
    last_error = "expected a JSON object"
    for kind, shape in _SHAPES:
        fields, problem = _decode_shape(obj, shape)
        if problem is None:
            return Request(kind, fields)
        last_error = problem
    raise Fatal.error_object(f"Could not parse as a valid JSON command:\n{last_error}")
