"""Fault-injection directives: make one request misbehave on purpose.

Write ``--!sim key=value flag ...`` in a Lean line comment anywhere in a command's `cmd` or a
tactic's text; several in one comment or several comments combine. Being a comment, a directive
does not change what is elaborated (positions stay those of the text). Both the synthetic and the
replay mode obey them.

Costs, paid before the answer (in this order):
  stderr_kb=N   write N KiB to stderr first (blocks if the parent does not drain stderr)
  cpu_ms=N      burn N ms of real CPU time (busy loop measured with process time)
  sleep_ms=N    sleep N ms
  rss_mb=N      allocate and touch N MB that stay for the life of the process; if the allocation
                fails (RLIMIT_AS), print `INTERNAL PANIC: out of memory` and exit 1

Changes to the answer:
  error         add a message with "severity": "error" (a simulated Lean error)
  huge_kb=N     add an info message whose data is N KiB on one line
  heartbeats=N  elaboration takes N thousand heartbeats: past the command's `maxHeartbeats`
                (the last `set_option maxHeartbeats V` before the directive, decimal V, scope of
                `in` not modelled; default 200000; 0 = no limit), Lean's heartbeat error
  runaway       elaboration never ends: Lean's heartbeat error at a finite `maxHeartbeats`; at
                `set_option maxHeartbeats 0` the request never answers (as `hang`)

Probes of the sandbox, run before the answer, in the order written; each adds a message:
  getenv=NAME   info `NAME=value`, or info `NAME is not set`
  write=PATH    create (or truncate) the file PATH (relative: to the REPL's working directory):
                info `created PATH`, or the OS error as an error message
  connect=H:P   open a TCP connection to host H, port P (`[::1]:80` for IPv6; 2 s timeout):
                info `connected to H:P`, or the error as an error message
  spawn=N       start N child processes that all live at once, then end them: info `started N
                of N child processes`, or an error message with the count that started and the
                error that stopped the next one
  Values end at whitespace (a PATH cannot contain spaces).

After the answer (a REPL that misbehaves between requests):
  stray_ms=N    N ms after the answer, write a line to stdout that nobody asked for (as output
                of a task that outlived its command would)
  deaf          stop reading stdin after the answer, for good (as a wedged process would; it
                stays alive until SIGTERM or SIGKILL)

Failures instead of the answer:
  crash         write a prefix of the response (no terminator), then die by SIGABRT
                (no core file; Popen sees -6, a shell 134)
  oom           allocate and touch memory until it fails, then `INTERNAL PANIC: out of memory`
                on stderr and exit 1 (or the OOM killer's SIGKILL first)
  hang          never answer; SIGTERM ends the process
  hang_hard     never answer and ignore SIGTERM; only SIGKILL ends it
  garbage       write `this is not JSON` to stdout and exit 1

An unknown directive or a malformed value gets an error response naming it (nothing is done).
Examples: ``#eval 1 --!sim sleep_ms=200 error``, ``#eval 1 --!sim getenv=HOME write=/tmp/x``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from leanpool.testing._syntax import Source, tokenize

__all__ = [
    "DIRECTIVES_HELP",
    "Directives",
    "apply_answer_directives",
    "find_directives",
    "heartbeat_error",
    "max_heartbeats",
    "out_of_heartbeats",
    "problem_response",
]

DIRECTIVES_HELP = __doc__ or ""

_VALUED = ("stderr_kb", "cpu_ms", "sleep_ms", "rss_mb", "huge_kb", "stray_ms", "heartbeats")
_FLAGS = ("error", "crash", "oom", "hang", "hang_hard", "garbage", "deaf", "runaway")
# Lean 4 core's default `maxHeartbeats` (src/Lean/CoreM.lean), in thousands of heartbeats.
DEFAULT_MAX_HEARTBEATS = 200000
_PROBES = {"getenv": "NAME", "write": "PATH", "connect": "HOST:PORT", "spawn": "N"}
_MAX_SPAWN = 100_000
_DIRECTIVE = re.compile(r"--!sim\b([^\n]*)")
_HOST_PORT = re.compile(r"^(\[[^\]]+\]|[^:\[\]]+):(\d{1,5})$")


@dataclass(frozen=True)
class Directives:
    flags: frozenset[str] = frozenset()
    values: Mapping[str, int] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    span: tuple[int, int] | None = None  # offsets of the first directive comment
    probes: tuple[tuple[str, str], ...] = ()  # (getenv|write|connect|spawn, value), in order

    def value(self, key: str) -> int:
        return self.values.get(key, 0)

    def has(self, flag: str) -> bool:
        return flag in self.flags


def find_directives(text: str) -> Directives:
    """All directives in `text` (a `cmd` or `tactic`)."""
    flags: set[str] = set()
    values: dict[str, int] = {}
    problems: list[str] = []
    probes: list[tuple[str, str]] = []
    span: tuple[int, int] | None = None
    for match in _DIRECTIVE.finditer(text):
        span = span or (match.start(), match.end())
        for word in match.group(1).replace("--!sim", " ").split():
            if word.startswith("--"):
                break  # an ordinary comment follows
            key, equals, raw = word.partition("=")
            if not equals and key in _FLAGS:
                flags.add(key)
            elif equals and key in _VALUED and raw.isdigit():
                values[key] = values.get(key, 0) + int(raw)
            elif equals and key in _PROBES and _probe_value_ok(key, raw):
                probes.append((key, raw))
            else:
                problems.append(word)
    return Directives(frozenset(flags), values, tuple(problems), span, tuple(probes))


def max_heartbeats(text: str, directives: Directives) -> int:
    """The `maxHeartbeats` in force at the directive: the last ``set_option maxHeartbeats V``
    before it (thousands of heartbeats; 0: no limit), else Lean's default."""
    end = directives.span[0] if directives.span is not None else len(text)
    tokens = tokenize(text, 0, end)
    limit = DEFAULT_MAX_HEARTBEATS
    for first, name, value in zip(tokens, tokens[1:], tokens[2:], strict=False):
        if (first.text, name.text, value.kind) == ("set_option", "maxHeartbeats", "number"):
            limit = int(value.text) if value.text.isdigit() else limit
    return limit


def out_of_heartbeats(text: str, directives: Directives) -> int | None:
    """The limit the directives' elaboration runs past (None: it stays within it)."""
    if not (directives.has("runaway") or directives.value("heartbeats")):
        return None
    limit = max_heartbeats(text, directives)
    if limit == 0 or (not directives.has("runaway") and directives.value("heartbeats") <= limit):
        return None
    return limit


def heartbeat_error(limit: int) -> str:
    """Lean's message when a command's heartbeats are spent: `Lean.Core.throwMaxHeartbeat`
    (Lean 4 src/Lean/CoreM.lean; `MessageData.note`/`hint'` in src/Lean/Message.lean add the
    blank line and label), with the default `debug.moduleNameAtTimeout` (the ``at `whnf` ``)."""
    return (
        f"(deterministic) timeout at `whnf`, maximum number of heartbeats ({limit}) has been "
        "reached\n\nNote: Use `set_option maxHeartbeats <num>` to set the limit.\n\nHint: "
        "Additional diagnostic information may be available using the `set_option diagnostics "
        "true` command."
    )


def _probe_value_ok(key: str, raw: str) -> bool:
    if key == "spawn":
        return raw.isdigit() and 0 < int(raw) <= _MAX_SPAWN
    if key == "connect":
        match = _HOST_PORT.match(raw)
        return match is not None and 0 < int(match.group(2)) < 65536
    return bool(raw) and (key != "getenv" or "=" not in raw)


def problem_response(directives: Directives) -> dict[str, Any]:
    known = ", ".join(
        [*(f"{k}=N" for k in _VALUED), *(f"{k}={v}" for k, v in _PROBES.items()), *_FLAGS]
    )
    listed = ", ".join(f"'{p}'" for p in directives.problems)
    return {"message": f"simrepl: unknown or malformed directive {listed} (known: {known})"}


def apply_answer_directives(
    response: dict[str, Any],
    directives: Directives,
    text: str,
    command: bool,
    probed: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """Add the probes' messages (`probed`: severity and text, in order), then the `error` and
    `huge_kb` messages, to a command or proof-step response."""
    spent = out_of_heartbeats(text, directives) if command else None
    wanted = probed or directives.has("error") or directives.value("huge_kb") or spent
    if "message" in response or not wanted:
        return response
    if command and directives.span is not None:
        source = Source(text)
        (line, column), (end_line, end_column) = (
            source.position(directives.span[0]),
            source.position(directives.span[1]),
        )
    else:
        line = column = end_line = end_column = 0
    pos = {"line": line, "column": column}
    end_pos = {"line": end_line, "column": end_column}
    messages = list(response.get("messages", []))
    for severity, data in probed:
        messages.append({"severity": severity, "pos": pos, "endPos": end_pos, "data": data})
    if spent is not None:
        messages.append(
            {"severity": "error", "pos": pos, "endPos": end_pos, "data": heartbeat_error(spent)}
        )
    if directives.has("error"):
        data = "simrepl: simulated error (--!sim error)"
        messages.append({"severity": "error", "pos": pos, "endPos": end_pos, "data": data})
    if directives.value("huge_kb"):
        data = "x" * (directives.value("huge_kb") * 1024)
        messages.append({"severity": "info", "pos": pos, "endPos": end_pos, "data": data})
    return {**response, "messages": messages}
