"""Every exception leanpool raises, in one place.

The hierarchy is shallow on purpose: callers either catch `LeanPoolError` (anything that went
wrong outside Lean itself) or one precise kind. Each class also derives from the builtin that
LeanInteract raised in the same situation, so code written against LeanInteract keeps working
(`except TimeoutError`, `except ConnectionAbortedError`, `except MemoryError`,
`except json.JSONDecodeError`, ...). docs/migrating.md maps every exception LeanInteract raises.

Lean *compile* errors are not exceptions: they are `Message`s with severity ``"error"`` inside a
normal response, and REPL-level refusals ("Unknown environment.") come back as a `LeanError`
response, as in LeanInteract.

All exceptions pickle with their extra attributes, because they cross process boundaries
(pool workers send them back to the parent).
"""

from __future__ import annotations

import json
import subprocess
from typing import Any, Literal

from leanpool._exports import publish

__all__ = [
    "LeanCrashError",
    "LeanMemoryError",
    "LeanPoolError",
    "LeanSetupError",
    "LeanTimeoutError",
    "PoolShutdownError",
    "ProtocolError",
    "RequestError",
    "ServerNotRunningError",
    "StateLostError",
    "TruncatedResponseError",
    "WorkerCrashedError",
]

_TAIL_CHARS = 4000


def _tail(text: str | bytes | None, limit: int = _TAIL_CHARS) -> str:
    """The last `limit` characters of a process's output, decoded leniently."""
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return text if len(text) <= limit else "…" + text[-limit:]


# Whose fault a failure is: the code's ("proof": it ran too long, grew past its limit, or made
# Lean die), the machine's or leanpool's ("infrastructure": a REPL killed from outside, a lost
# worker, no worker to run it, a REPL that would not start, a state lost with its REPL), the
# caller's ("request": refused before it was sent), or nobody's ("shutdown").
Blame = Literal["proof", "infrastructure", "request", "shutdown"]
# Signals a REPL gets from outside, never from Lean itself: the kernel's OOM killer, an admin,
# a container runtime (leanpool's own kills end requests as timeouts or memory errors instead).
_OUTSIDE_SIGNALS = frozenset({9, 15})  # SIGKILL, SIGTERM


class LeanPoolError(Exception):
    """Base class of every error leanpool raises on its own behalf.

    `blame` says whose fault it is (see `Blame`): a batch counts only "proof" failures against
    the code, and the pool runs a request again once when its REPL failed for infrastructure
    reasons (`LeanPool(infrastructure_retries=...)`).
    """

    @property
    def blame(self) -> Blame:
        return "infrastructure"

    def __init__(self, message: str = "", **details: Any) -> None:
        super().__init__(message)
        self._record(message, details)

    def _record(self, message: str, details: dict[str, Any]) -> None:
        self.message = message
        for key, value in details.items():
            setattr(self, key, value)
        self._details = details

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, self._details))

    def __str__(self) -> str:
        return self.message


def _rebuild(cls: type[LeanPoolError], message: str, details: dict[str, Any]) -> LeanPoolError:
    return cls(message, **details)


class RequestError(LeanPoolError, ValueError):
    """A request the REPL would mis-read or refuse; it was never sent.

    Examples: an empty request, a negative id on the wire, a value of the wrong type.
    """

    @property
    def blame(self) -> Blame:
        return "request"


class _DecodeErrorFields:
    """What `json.JSONDecodeError` carries (`msg`, `doc`, `pos`, `lineno`, `colno`), for leanpool
    errors that are also JSONDecodeErrors: LeanInteract raised one where they are raised, and
    code catching it reads these. `msg` follows `message`; `doc` and `pos` are details, so they
    survive pickling like the others."""

    message: str
    doc: str
    pos: int
    lineno: int
    colno: int

    @property
    def msg(self) -> str:
        return self.message

    @msg.setter
    def msg(self, value: str) -> None:
        self.message = value

    def _decode_details(self, details: dict[str, Any]) -> dict[str, Any]:
        """`details` with `doc` (default: `data` or `partial`, decoded) and `pos` filled in."""
        doc = details.get("doc")
        if not isinstance(doc, str):
            raw = details.get("data", details.get("partial", b""))
            doc = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)
        pos = details.get("pos")
        if not isinstance(pos, int) or not 0 <= pos <= len(doc):
            pos = 0
        # as json.JSONDecodeError computes them
        self.lineno = doc.count("\n", 0, pos) + 1
        self.colno = pos - doc.rfind("\n", 0, pos)
        return {**details, "doc": doc, "pos": pos}


class ProtocolError(_DecodeErrorFields, LeanPoolError, json.JSONDecodeError):
    """The REPL wrote something that is not a well-framed JSON response.

    `data` holds the offending bytes (truncated). The process that wrote them cannot be trusted
    any more and is killed. Also a `json.JSONDecodeError` (so a `ValueError`), which LeanInteract
    raised for output that is not JSON: `doc` is the text, `pos` where decoding failed.
    """

    data: bytes

    def __init__(self, message: str = "", **details: Any) -> None:
        details = self._decode_details(details)
        # json.JSONDecodeError.__init__ needs (msg, doc, pos) and formats args; ours are plain.
        ValueError.__init__(self, message)
        self._record(message, details)

    @property
    def blame(self) -> Blame:
        """What the REPL wrote outside its answers comes, as a rule, from the code it ran
        (``IO.println`` reaching the real stdout): running it again would do it again."""
        return "proof"


class LeanTimeoutError(LeanPoolError, TimeoutError):
    """A request did not finish within its timeout; its REPL process group was killed."""

    timeout: float | None

    @property
    def blame(self) -> Blame:
        return "proof"


class LeanCrashError(LeanPoolError, ConnectionAbortedError):
    """The REPL process died while serving a request.

    `returncode` is the exit status (negative: killed by that signal) and `stderr_tail` the
    last lines it wrote to stderr.
    """

    returncode: int | None
    stderr_tail: str

    @property
    def blame(self) -> Blame:
        """Lean dying on the code is the code's fault; a REPL killed from outside is not."""
        returncode = getattr(self, "returncode", None)
        if returncode is not None and -returncode in _OUTSIDE_SIGNALS:
            return "infrastructure"
        return "proof"


class TruncatedResponseError(_DecodeErrorFields, LeanCrashError, json.JSONDecodeError):
    """The REPL died in the middle of an answer: a crash, and also a `json.JSONDecodeError`.

    LeanInteract read up to the end of the output and parsed what it got, so a REPL that died
    mid-answer raised `json.JSONDecodeError` there (one that died before answering raised
    `ConnectionAbortedError`). Both clauses catch this error. `partial` holds the start of the
    answer (bytes), `doc` the same text and `pos` where it breaks off.
    """

    partial: bytes

    def __init__(self, message: str = "", **details: Any) -> None:
        details = self._decode_details(details)
        super().__init__(message, **details)


class WorkerCrashedError(LeanCrashError):
    """A pool worker process died (not just its REPL) while running the request."""

    @property
    def blame(self) -> Blame:
        return "infrastructure"


class LeanMemoryError(LeanPoolError, MemoryError):
    """A memory limit was hit: the hard limit, the RSS watchdog, or an out-of-memory death."""

    limit_mb: float | None
    rss_mb: float | None

    @property
    def blame(self) -> Blame:
        return "proof"  # the request grew its REPL past the limit (or Lean ran out on it)


class ServerNotRunningError(LeanPoolError, ChildProcessError):
    """The server is not usable: it was killed, or a fault ended it and nobody restarted it."""


class StateLostError(LeanPoolError, LookupError, ValueError):
    """An env or proof-state id names a REPL state that is gone and cannot be rebuilt.

    Also a `ValueError`: LeanInteract raised ``ValueError("Could not replay the cached state...")``.
    """


class PoolShutdownError(LeanPoolError, RuntimeError):
    """The pool was shut down before this request could run."""

    @property
    def blame(self) -> Blame:
        return "shutdown"


class LeanSetupError(LeanPoolError, RuntimeError, subprocess.CalledProcessError):
    """An external setup step (elan, git, lake) failed.

    Carries `step` (what was being done), `command` (the command line), `returncode` and
    `output_tail` (the end of its combined output). A `RuntimeError`, as LeanInteract raised for
    a missing Lake or a failed REPL build, and a `subprocess.CalledProcessError`, which escaped
    from its project setups (`lake build`, `lake update`): `cmd` is `command`, `output` (also
    `stdout`) is `output_tail`, `stderr` is None (the output is combined).
    """

    step: str = ""
    command: list[str] | None = None
    returncode: int | None = None  # type: ignore[assignment]  # CalledProcessError: an int
    output_tail: str = ""

    # CalledProcessError's attributes, which its __init__ (not called) would set.
    @property
    def cmd(self) -> list[str] | None:
        return self.command

    @cmd.setter
    def cmd(self, value: list[str] | None) -> None:
        self.command = value

    @property
    def output(self) -> str:
        return self.output_tail

    @output.setter
    def output(self, value: str) -> None:
        self.output_tail = value

    @property
    def stderr(self) -> None:
        return None

    @stderr.setter
    def stderr(self, value: object) -> None:
        pass

    @classmethod
    def from_step(
        cls,
        step: str,
        command: list[str] | None = None,
        returncode: int | None = None,
        output: str | bytes | None = None,
        hint: str = "",
    ) -> LeanSetupError:
        tail = _tail(output)
        parts = [f"Setup step failed: {step}."]
        if command:
            parts.append(f"Command: {' '.join(command)}")
        if returncode is not None:
            parts.append(f"Exit status: {returncode}")
        if hint:
            parts.append(hint)
        if tail.strip():
            parts.append("Output (tail):\n" + tail.rstrip())
        return cls(
            "\n".join(parts), step=step, command=command, returncode=returncode, output_tail=tail
        )


def crash_error(
    what: str,
    returncode: int | None,
    stderr_tail: str | bytes | None,
    cls: type[LeanCrashError] = LeanCrashError,
    partial: bytes = b"",
) -> LeanCrashError:
    """A crash error whose message names the exit status or signal and shows stderr's tail.

    With `partial` (what the REPL wrote of an answer before it died), a `TruncatedResponseError`.
    """
    import signal

    if returncode is None:
        status = "it is gone (exit status unknown)"
    elif returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        status = f"killed by {name}"
    else:
        status = f"exit status {returncode}"
    tail = _tail(stderr_tail)
    message = f"{what}: the REPL process died ({status})."
    if tail.strip():
        message += "\nstderr (tail):\n" + tail.rstrip()
    if not partial.strip():
        return cls(message, returncode=returncode, stderr_tail=tail)
    message += f"\nPartial response before it died: {partial!r}"
    doc = partial.decode("utf-8", errors="replace")
    try:
        json.loads(doc)
        pos = len(doc)
    except json.JSONDecodeError as exc:
        pos = exc.pos  # where the answer breaks off, as json.loads reports it
    return TruncatedResponseError(
        message, returncode=returncode, stderr_tail=tail, partial=partial, doc=doc, pos=pos
    )


# Faults of the REPL process itself, as opposed to a bad request or a state that is gone: a
# request that meets one may succeed when run again on a fresh REPL.
PROCESS_FAULTS: tuple[type[LeanPoolError], ...] = (
    LeanCrashError,
    LeanMemoryError,
    LeanTimeoutError,
    ProtocolError,
    ServerNotRunningError,
)


def retry_on_fresh_repl(error: BaseException) -> bool:
    """Whether running the request again on a fresh REPL may give it the answer it never got:
    its REPL failed for infrastructure reasons (killed from outside, would not start). Not a
    lost worker (the pool already ran those again) nor a lost state (gone)."""
    return (
        isinstance(error, (LeanCrashError, ServerNotRunningError))
        and not isinstance(error, WorkerCrashedError)
        and error.blame == "infrastructure"
    )


def fault_label(error: BaseException) -> str:
    """A failure in one lowercase word: "timeout", "memory", "protocol", "crash", "refused" (bad
    input), "state_lost", "shutdown", "cancelled", or "error" for anything else. The one naming
    behind an AutoLeanServer's `restart_counts` and the service's metrics (`_stats.result_kind`
    names failures by class instead, for `PoolStats.failed`)."""
    if isinstance(error, LeanTimeoutError):
        return "timeout"
    if isinstance(error, LeanMemoryError):
        return "memory"
    if isinstance(error, ProtocolError):
        return "protocol"
    if isinstance(error, LeanCrashError):
        return "crash"
    if isinstance(error, RequestError):
        return "refused"
    if isinstance(error, StateLostError):
        return "state_lost"
    if isinstance(error, PoolShutdownError):
        return "shutdown"
    # Both asyncio's and concurrent.futures' (distinct classes before Python 3.11).
    return "cancelled" if type(error).__name__ == "CancelledError" else "error"


publish(__name__)
