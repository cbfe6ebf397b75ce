"""Record mode: proxy a real REPL transparently and save the session for replay.

Requests are read with the REPL's own framing and forwarded one per line (the REPL glues lines
anyway); each answer is copied through byte for byte. At the end `NAME.in` holds the requests and
`NAME.expected.out` the stdout, the same layout as the shared transcripts, so `--replay DIR`
serves them back.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from leanpool.testing._options import SimOptions
from leanpool.testing._wire import RequestReader, is_comment

__all__ = ["record_session"]


def _read_response(stream: IO[bytes]) -> bytes | None:
    """One response up to and including its blank line; None if the REPL's stdout ended."""
    lines: list[bytes] = []
    while True:
        line = stream.readline()
        if not line:
            return None
        lines.append(line)
        if line.strip() == b"" and len(lines) > 1:
            return b"".join(lines)


def record_session(options: SimOptions, stdin: IO[bytes], stdout: IO[bytes]) -> int:
    """Run `options.command`, relay stdin/stdout, write the pair; the REPL's exit status.

    Both files are written as the session goes (flushed after every exchange), so a recording
    survives the proxy being killed, which is how servers end their REPLs.
    """
    assert options.record is not None
    folder = Path(options.record)
    folder.mkdir(parents=True, exist_ok=True)
    name = options.name or f"session-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    recorded = 0
    child = subprocess.Popen(list(options.command), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert child.stdin is not None and child.stdout is not None
    reader = RequestReader(stdin)
    inputs = (folder / f"{name}.in").open("w", encoding="utf-8")
    outputs = (folder / f"{name}.expected.out").open("wb")
    try:
        while (text := reader.read()) != "":
            request = text.rstrip("\n")
            inputs.write(("\n\n" if inputs.tell() else "") + request)
            inputs.flush()
            try:
                child.stdin.write((request + "\n\n").encode("utf-8"))
                child.stdin.flush()
            except BrokenPipeError:
                break
            if is_comment(text):
                continue
            response = _read_response(child.stdout)
            if response is None:
                break
            outputs.write(response)
            outputs.flush()
            recorded += 1
            stdout.write(response)
            stdout.flush()
    finally:
        with contextlib.suppress(BrokenPipeError):
            child.stdin.close()
        status = child.wait()
        inputs.write("\n")
        inputs.close()
        outputs.close()
    print(f"simrepl: recorded {recorded} responses as {folder / name}", file=sys.stderr)
    return status if status >= 0 else 128 - status  # a signal's number, as a shell reports it
