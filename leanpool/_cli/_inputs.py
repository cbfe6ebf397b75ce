"""What `leanpool verify` reads: `.lean` files, directories of them, and JSONL datasets.

Reading never stops at a bad input: an unreadable file, a malformed JSONL line or a missing path
becomes an `InputProblem` in its place, so one typo in a 10,000-line dataset costs one line, not
the run. Ids are the user's (JSONL ``id``), else the file path (``.lean``) or ``path:line``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leanpool._leanjson import loads_deep

LEAN_SUFFIX = ".lean"
JSONL_SUFFIXES = (".jsonl", ".ndjson")
# Build outputs and dependency checkouts are never the user's proofs.
_SKIPPED_DIRECTORIES = frozenset({".lake", ".git", "lake-packages", "build", "__pycache__"})


@dataclass(frozen=True)
class ProofInput:
    """One proof to check: the command Lean will see, and where it came from."""

    id: Any
    source: str  # "path" or "path:line", for messages
    command: str
    header_lines: int = 0  # lines before the user's code (header + blank line), for positions
    code: str | None = None  # the user's code (None: `command` is all of it)
    header: str | None = None  # the dataset's header, trusted (the reference is read in it)
    formal_statement: str | None = None  # the reference statement the code must prove

    @property
    def submission(self) -> tuple[str, str | None]:
        """(code, header) as `LeanPool.verify` takes them."""
        return (self.code if self.code is not None else self.command), self.header


@dataclass(frozen=True)
class InputProblem:
    """An input that could not be turned into a proof (it gets the ``input_error`` verdict)."""

    id: Any
    source: str
    message: str


Input = ProofInput | InputProblem


def command_text(code: str, header: str | None) -> str:
    """The text Lean checks: the header, a blank line, then the proof.

    The pool recognises the import header and imports it once per worker (header affinity).
    """
    if header is None or not header.strip():
        return code
    return header.rstrip("\n") + "\n\n" + code


def read_inputs(paths: Iterable[str]) -> Iterator[Input]:
    """Every proof in `paths`, in order: files as given, directories sorted, JSONL by line."""
    for given in paths:
        path = Path(given)
        if path.is_dir():
            yield from _read_directory(path)
        elif not path.exists():
            yield InputProblem(given, given, f"{given}: no such file or directory")
        elif path.suffix in JSONL_SUFFIXES:
            yield from read_jsonl(path)
        elif path.suffix == LEAN_SUFFIX:
            yield read_lean_file(path)
        else:
            yield InputProblem(
                given,
                given,
                f"{given}: not a .lean or .jsonl file (give Lean files, directories of them, "
                "or JSONL datasets)",
            )


def _read_directory(directory: Path) -> Iterator[Input]:
    found: list[Path] = []
    for root, subdirectories, files in os.walk(directory):
        subdirectories[:] = sorted(d for d in subdirectories if d not in _SKIPPED_DIRECTORIES)
        found.extend(Path(root) / name for name in files if name.endswith(LEAN_SUFFIX))
    if not found:
        yield InputProblem(str(directory), str(directory), f"{directory}: no .lean files found")
    for path in sorted(found):
        yield read_lean_file(path)


def read_lean_file(path: Path) -> Input:
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return InputProblem(
            name, name, f"{name}: not valid UTF-8 ({exc.reason} at byte {exc.start})"
        )
    except OSError as exc:
        return InputProblem(name, name, f"{name}: cannot read it ({exc.strerror or exc})")
    if not text.strip():
        return InputProblem(name, name, f"{name}: the file is empty")
    return ProofInput(name, name, text)


def read_jsonl(path: Path) -> Iterator[Input]:
    name = str(path)
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        yield InputProblem(name, name, f"{name}: cannot read it ({exc.strerror or exc})")
        return
    with handle:
        line_number = 0
        while True:
            line_number += 1
            source = f"{name}:{line_number}"
            try:
                line = handle.readline()
            except UnicodeDecodeError as exc:
                # The decoder cannot resynchronise inside a file: report and stop reading it.
                yield InputProblem(source, source, f"{source}: not valid UTF-8 ({exc.reason})")
                return
            if not line:
                return
            if line.strip():
                yield parse_jsonl_line(line, source)


def parse_jsonl_line(line: str, source: str) -> Input:
    """One dataset line: ``{"id": ..., "code": "...", "header": "import Mathlib",
    "formal_statement": "theorem ... := by sorry"}`` (header and statement optional;
    ``statement`` is accepted for ``formal_statement``)."""
    try:
        record = loads_deep(line)  # a dataset's extra fields may nest deeply
    except json.JSONDecodeError as exc:
        return InputProblem(
            source, source, f"{source}: invalid JSON ({exc.msg}, column {exc.colno})"
        )
    if not isinstance(record, dict):
        kind = type(record).__name__
        return InputProblem(source, source, f"{source}: expected a JSON object, got a {kind}")
    item_id = record.get("id", source)
    code = record.get("code")
    header = record.get("header")
    if not isinstance(code, str):
        problem = 'missing the "code" field' if code is None else '"code" must be a string'
        return InputProblem(item_id, source, f"{source}: {problem}")
    if not code.strip():
        return InputProblem(item_id, source, f'{source}: "code" is empty')
    if header is not None and not isinstance(header, str):
        return InputProblem(item_id, source, f'{source}: "header" must be a string')
    statement = record.get("formal_statement", record.get("statement"))
    if statement is not None and (not isinstance(statement, str) or not statement.strip()):
        return InputProblem(
            item_id, source, f'{source}: "formal_statement" must be a non-empty string'
        )
    command = command_text(code, header)
    return ProofInput(
        item_id,
        source,
        command,
        command.count("\n") - code.count("\n"),
        code=code,
        header=header if header is not None and header.strip() else None,
        formal_statement=statement,
    )
