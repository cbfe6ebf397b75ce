"""The exception hierarchy: builtin bases for LeanInteract users, and pickling across processes."""

from __future__ import annotations

import pickle

import pytest

from leanpool import (
    LeanCrashError,
    LeanMemoryError,
    LeanPoolError,
    LeanSetupError,
    LeanTimeoutError,
    PoolShutdownError,
    ProtocolError,
    RequestError,
    ServerNotRunningError,
    StateLostError,
    WorkerCrashedError,
)
from leanpool._errors import crash_error

BUILTIN_BASES = [
    (LeanTimeoutError, TimeoutError),
    (LeanCrashError, ConnectionAbortedError),
    (WorkerCrashedError, LeanCrashError),
    (LeanMemoryError, MemoryError),
    (ServerNotRunningError, ChildProcessError),
    (RequestError, ValueError),
    (ProtocolError, ValueError),
    (PoolShutdownError, RuntimeError),
    (LeanSetupError, RuntimeError),
    (StateLostError, LookupError),
    (StateLostError, ValueError),  # LeanInteract's failed replay
]


@pytest.mark.parametrize(("cls", "base"), BUILTIN_BASES)
def test_each_error_is_a_leanpool_error_and_its_builtin(cls: type, base: type) -> None:
    assert issubclass(cls, LeanPoolError)
    assert issubclass(cls, base)


@pytest.mark.parametrize("cls", [cls for cls, _ in BUILTIN_BASES])
def test_errors_pickle_with_their_details(cls: type[LeanPoolError]) -> None:
    error = cls("what happened", returncode=-6, extra=[1, 2])
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is cls
    assert str(copy) == "what happened"
    assert copy.returncode == -6 and copy.extra == [1, 2]


def test_crash_error_names_the_signal_and_keeps_stderr() -> None:
    error = crash_error("While serving a request", -6, b"Stack overflow detected. Aborting.")
    assert "SIGABRT" in str(error)
    assert "Stack overflow" in error.stderr_tail
    assert crash_error("x", 1, "").returncode == 1
    assert "exit status 1" in str(crash_error("x", 1, ""))


def test_setup_error_names_step_command_status_and_output() -> None:
    error = LeanSetupError.from_step(
        "build the REPL", ["lake", "build"], 1, "error: unknown package", hint="Check the log."
    )
    text = str(error)
    for part in ("build the REPL", "lake build", "Exit status: 1", "unknown package", "Check"):
        assert part in text
    assert error.step == "build the REPL" and error.returncode == 1
