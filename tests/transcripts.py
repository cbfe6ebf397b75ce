"""Access to the real Lean REPL transcripts in ``../shared/repl-transcripts`` (never copied here).

Blocks are split exactly the way the REPL reads its input (``getLines`` and the ``repl`` loop in
REPL/Main.lean): a request is the run of lines up to the first blank line, each line stripped of
trailing ASCII whitespace and glued to the next without a separator; blocks starting with ``#``
or ``--`` get no response.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

TRANSCRIPTS_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "repl-transcripts"
_ASCII_WHITESPACE = " \t\n\r\x0b\x0c"


@dataclass(frozen=True)
class Transcript:
    name: str  # "core/calc"
    input_path: Path
    output_path: Path

    @property
    def input_text(self) -> str:
        return self.input_path.read_text(encoding="utf-8")

    @property
    def output_bytes(self) -> bytes:
        return self.output_path.read_bytes()

    def request_blocks(self) -> list[str]:
        """The request texts the REPL answers, in order (comment blocks dropped)."""
        return [b for b in repl_input_blocks(self.input_text) if not _is_comment(b)]

    def response_blocks(self) -> list[str]:
        """The response texts, split on the blank line that ends each response."""
        return split_response_blocks(self.output_bytes.decode("utf-8"))


def _is_comment(block: str) -> bool:
    return block.startswith("#") or block.startswith("--")


def repl_input_blocks(text: str) -> list[str]:
    """Split REPL input into request texts the way the REPL's ``getLines`` does."""
    blocks: list[str] = []
    current: list[str] = []
    for line in text.split("\n"):
        stripped = line.rstrip(_ASCII_WHITESPACE)
        if stripped == "":
            if current:
                blocks.append("".join(current))
                current = []
            continue
        current.append(stripped)
    if current:
        blocks.append("".join(current))
    return blocks


def split_response_blocks(text: str) -> list[str]:
    """Split REPL stdout into response texts (each without its terminating blank line)."""
    blocks: list[str] = []
    current: list[str] = []
    for line in text.split("\n"):
        if line.strip(_ASCII_WHITESPACE) == "":
            if current:
                blocks.append("\n".join(current))
                current = []
            continue
        current.append(line)
    if current:
        blocks.append("\n".join(current))
    return blocks


@cache
def all_transcripts() -> tuple[Transcript, ...]:
    found: list[Transcript] = []
    for sub in ("core", "mathlib"):
        folder = TRANSCRIPTS_DIR / sub
        if not folder.is_dir():
            continue
        for inp in sorted(folder.glob("*.in")):
            out = inp.with_suffix(".expected.out")
            if out.exists():
                found.append(Transcript(f"{sub}/{inp.stem}", inp, out))
    return tuple(found)


def require_transcripts() -> tuple[Transcript, ...]:
    """All transcripts, or skip the calling test with the reason when the folder is absent."""
    found = all_transcripts()
    if not found:
        pytest.skip(f"REPL transcripts not found at {TRANSCRIPTS_DIR} (expected beside the repo)")
    return found


def transcript_params() -> list[object]:
    """``pytest.mark.parametrize`` values, one per transcript (a single skipped case if absent)."""
    found = all_transcripts()
    if not found:
        return [
            pytest.param(
                None, marks=pytest.mark.skip(reason=f"no transcripts at {TRANSCRIPTS_DIR}")
            )
        ]
    return [pytest.param(t, id=t.name) for t in found]
