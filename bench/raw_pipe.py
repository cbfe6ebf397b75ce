"""The baseline client: a bare loop over one simulator process's pipes.

It does only what the wire protocol requires (one JSON line plus a blank line out, lines up to a
blank line back), with no validation, no models, no timeouts and no fault handling, so it is the
least any client can spend per request on this simulator.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from typing import IO, Any

from leanpool.testing import sim_command


class RawPipe:
    def __init__(self, **sim_options: Any) -> None:
        self._proc = subprocess.Popen(
            sim_command(**sim_options),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._stdin: IO[bytes] = self._proc.stdin
        self._stdout: IO[bytes] = self._proc.stdout

    def run(self, request: dict[str, Any]) -> dict[str, Any]:
        self._stdin.write(json.dumps(request, ensure_ascii=False).encode("utf-8") + b"\n\n")
        self._stdin.flush()
        lines: list[bytes] = []
        while True:
            line = self._stdout.readline()
            if not line:
                raise ConnectionAbortedError("the simulator closed its stdout")
            if line.strip():
                lines.append(line)
            elif lines:
                break
        response: dict[str, Any] = json.loads(b"".join(lines))
        return response

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._stdin.close()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._stdout.close()

    def __enter__(self) -> RawPipe:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
