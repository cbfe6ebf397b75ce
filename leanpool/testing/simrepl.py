"""`leanpool-simrepl` / `python -m leanpool.testing.simrepl`: a Lean REPL stand-in.

Speaks the REPL's wire protocol exactly (``getLines``, ``parse`` and the ``repl`` loop in the
REPL's REPL/Main.lean): blank-line framed requests, comments skipped without an answer, the fatal
``uncaught exception`` exit on malformed input, responses in Lean's pretty JSON ending with a
blank line and flushed. Behind it: the toy elaborator (default), recorded sessions
(`--replay DIR`), or a real REPL being recorded (`--record DIR -- CMD`). Requests can carry
``--!sim`` fault-injection directives (see `--help`).

Started thousands of times by tests and benchmarks, so it imports only the stdlib and
`leanpool._leanjson`: no pydantic, loky or rich.
"""

from __future__ import annotations

import os
import random
import sys
import threading
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, Protocol

from leanpool.testing import _effects as effects
from leanpool.testing._directives import (
    Directives,
    apply_answer_directives,
    find_directives,
    max_heartbeats,
    problem_response,
)
from leanpool.testing._elaborator import header_modules
from leanpool.testing._imports import ImportCosts
from leanpool.testing._options import SimOptions, parse_options
from leanpool.testing._requests import Fatal, Request, decode_request
from leanpool.testing._wire import RequestReader, is_comment, response_bytes

__all__ = ["main", "serve"]


class _Backend(Protocol):
    def answer(self, request: Request) -> dict[str, Any]: ...


def _backend(options: SimOptions, costs: ImportCosts) -> _Backend:
    if options.replay:
        from leanpool.testing._replay import ReplayRepl, load_recordings

        return ReplayRepl(load_recordings(options.replay))
    from leanpool.testing._synthetic import SyntheticRepl

    return SyntheticRepl(
        options.tactics,
        costs,
        lean_version=options.lean_version,
        pickle_ms=options.pickle_ms,
        unpickle_ms=options.unpickle_ms,
    )


def _header(request: Request) -> list[str]:
    """Modules an env-less command or file imports (they are imported again on every request)."""
    if request.env is not None:
        return []
    text = request.text("cmd")
    if request.kind == "file":
        try:
            text = Path(request.text("path") or "").read_text(encoding="utf-8")
        except (OSError, ValueError):  # unreadable, or not UTF-8: the backend answers that
            return []
    return header_modules(text)[0] if request.kind in ("command", "file") and text else []


def _pay_costs(directives: Directives, request: Request, costs: ImportCosts) -> None:
    costs.pay(_header(request))
    effects.burn_cpu(directives.value("cpu_ms"))
    effects.sleep_ms(directives.value("sleep_ms"))
    if directives.value("rss_mb"):
        effects.hold_memory(directives.value("rss_mb"))
    if directives.has("oom"):
        effects.exhaust_memory()
    if directives.has("hang") or directives.has("hang_hard"):
        effects.hang(ignore_sigterm=directives.has("hang_hard"))
    if (
        directives.has("runaway")
        and request.kind in ("command", "file")
        and max_heartbeats(request.source_text, directives) == 0
    ):
        effects.hang()  # no limit: it runs until killed, as a runaway proof does
    if directives.has("garbage"):
        effects.garbage()


def _answer(backend: _Backend, request: Request) -> dict[str, Any]:
    try:
        return backend.answer(request)
    except Fatal:
        raise
    except Exception as error:  # a bug of the toy must not pass for a crash of Lean
        traceback.print_exc(file=sys.stderr)
        return {"message": f"simrepl internal error: {type(error).__name__}: {error}"}


def serve(options: SimOptions, stdin: IO[bytes], stdout: IO[bytes]) -> int:
    """The request loop; returns the exit status (0 at end of input, 1 after a fatal error)."""
    effects.sleep_ms(options.startup_ms)
    module_dir = os.fspath(options.module_dir) if options.module_dir is not None else None
    costs = ImportCosts(
        options.import_costs, options.default_cost, module_dir, options.private_imports
    )
    backend = _backend(options, costs)
    chance = random.Random(options.seed)
    reader = RequestReader(stdin)
    stdout_lock = threading.Lock()  # whole responses and stray lines never interleave
    while True:
        text = reader.read()
        if text == "":
            return 0
        if is_comment(text):
            continue
        crash_now = chance.random() < options.fail_rate  # one draw per request: reproducible
        try:
            request = decode_request(text)
            directives = find_directives(request.source_text)
            effects.write_stderr_kib(directives.value("stderr_kb"))
            if directives.problems:
                response = problem_response(directives)
            else:
                _pay_costs(directives, request, costs)
                probed = [effects.probe(kind, value) for kind, value in directives.probes]
                response = _answer(backend, request)
                command = request.kind in ("command", "file")
                response = apply_answer_directives(
                    response, directives, request.source_text, command, probed
                )
        except Fatal as fatal:
            stdout.write(fatal.output)
            stdout.flush()
            sys.stdout.flush()
            sys.stderr.write(f"uncaught exception: {fatal.text}\n")
            sys.stderr.flush()
            return 1
        data = response_bytes(response)
        if crash_now or (not directives.problems and directives.has("crash")):
            effects.crash(data[: max(1, (len(data) - 2) // 2)])
        with stdout_lock:
            stdout.write(data)
            stdout.flush()
        if directives.problems:
            continue
        if directives.value("stray_ms"):
            effects.stray_output_later(directives.value("stray_ms"), stdout_lock)
        if directives.has("deaf"):
            effects.hang()


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    try:
        if options.record is not None:
            from leanpool.testing._record import record_session

            return record_session(options, sys.stdin.buffer, sys.stdout.buffer)
        return serve(options, sys.stdin.buffer, sys.stdout.buffer)
    except BrokenPipeError:
        # The reader went away: nothing more can be said. Silence the interpreter's final flush.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
