"""The exception hierarchy: builtin bases for LeanInteract users, and pickling across processes."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import pickle
import subprocess
from collections.abc import Iterator

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
    TruncatedResponseError,
    WorkerCrashedError,
)
from leanpool._errors import crash_error, fault_label
from leanpool._server import LeanServer
from leanpool.protocol import Command
from leanpool.testing import sim_config

BUILTIN_BASES = [
    (LeanTimeoutError, TimeoutError),
    (LeanCrashError, ConnectionAbortedError),
    (WorkerCrashedError, LeanCrashError),
    (LeanMemoryError, MemoryError),
    (ServerNotRunningError, ChildProcessError),
    (RequestError, ValueError),
    (ProtocolError, ValueError),
    (ProtocolError, json.JSONDecodeError),  # LeanInteract: output that is not JSON
    (TruncatedResponseError, LeanCrashError),
    (TruncatedResponseError, ConnectionAbortedError),
    (TruncatedResponseError, json.JSONDecodeError),  # LeanInteract: died in the middle of an answer
    (PoolShutdownError, RuntimeError),
    (LeanSetupError, RuntimeError),
    (LeanSetupError, subprocess.CalledProcessError),  # LeanInteract: a failed project build
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
    assert (vars(copy)["returncode"], vars(copy)["extra"]) == (-6, [1, 2])


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


def test_protocol_error_carries_json_decode_error_fields_and_pickles() -> None:
    try:
        json.loads('{"env": 0,\n "messages": [}')
    except json.JSONDecodeError as exc:
        decoded = exc
    error = ProtocolError(
        "REPL response is not valid JSON", data=b"...", doc=decoded.doc, pos=decoded.pos
    )
    assert (error.doc, error.pos, error.lineno, error.colno) == (
        decoded.doc,
        decoded.pos,
        decoded.lineno,
        decoded.colno,
    )
    assert error.msg == str(error) == "REPL response is not valid JSON"
    error.message += " (more)"  # what the channel does to add stderr's tail: msg follows
    assert error.msg.endswith("(more)")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.doc, copy.pos, copy.lineno, copy.data) == (error.doc, error.pos, 2, b"...")
    plain = ProtocolError("stray output", data=b"hello\n")
    assert (plain.doc, plain.pos, plain.lineno, plain.colno) == ("hello\n", 0, 1, 1)


def test_a_crash_with_part_of_an_answer_is_also_a_json_decode_error() -> None:
    partial = b'{"env": 1, "messages": [{"severity": "in'
    error = crash_error("While serving a request", -6, b"", partial=partial)
    assert type(error) is TruncatedResponseError
    assert error.partial == partial and error.doc == partial.decode()
    with pytest.raises(json.JSONDecodeError) as decoded:
        json.loads(error.doc)
    assert error.pos == decoded.value.pos  # where the answer breaks off, as json.loads says
    assert "SIGABRT" in str(error) and error.returncode == -6
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is TruncatedResponseError and copy.pos == error.pos
    assert copy.partial == partial and str(copy) == str(error)
    for nothing in (b"", b"  \n"):  # LeanInteract: no output at all is ConnectionAbortedError only
        quiet = crash_error("While serving a request", -6, b"", partial=nothing)
        assert type(quiet) is LeanCrashError and not isinstance(quiet, json.JSONDecodeError)


# What LeanInteract's own examples catch around `server.run` (its BEq+ reward function).
LEANINTERACT_FAULTS = (TimeoutError, ConnectionAbortedError, json.JSONDecodeError)


@pytest.fixture
def sim_server() -> Iterator[LeanServer]:
    server = LeanServer(sim_config())
    yield server
    server.kill()


@pytest.mark.parametrize(
    ("directive", "kind", "decode_error"),
    [
        ("garbage", ProtocolError, True),  # LeanInteract: json.JSONDecodeError
        ("crash", TruncatedResponseError, True),  # part of an answer, then SIGABRT: the same
        ("hang", LeanTimeoutError, False),  # LeanInteract: TimeoutError
    ],
)
def test_faults_are_caught_by_the_clause_leaninteract_code_uses(
    sim_server: LeanServer, directive: str, kind: type[Exception], decode_error: bool
) -> None:
    try:
        sim_server.run(Command(cmd=f"#eval 1 --!sim {directive}"), timeout=2)
    except LEANINTERACT_FAULTS as caught:
        assert type(caught) is kind
        assert isinstance(caught, json.JSONDecodeError) is decode_error
        if isinstance(caught, json.JSONDecodeError):
            assert caught.doc and isinstance(caught.pos, int) and caught.msg == str(caught)
    else:
        raise AssertionError(f"--!sim {directive} raised nothing")


def test_a_mid_answer_death_in_a_pool_worker_arrives_as_both_kinds() -> None:
    from leanpool import LeanPool

    with LeanPool(sim_config(), 1, progress=False) as pool:
        with pytest.raises(json.JSONDecodeError) as caught:  # pickled from the worker
            pool.run("#eval 1 --!sim crash", timeout=10)
        assert isinstance(caught.value, ConnectionAbortedError)
        assert caught.value.doc.startswith("{")


@pytest.mark.parametrize(
    ("error", "label"),
    [
        (LeanTimeoutError("t"), "timeout"),
        (LeanMemoryError("m"), "memory"),
        (ProtocolError("p", doc="x", pos=0), "protocol"),
        (LeanCrashError("c"), "crash"),
        (crash_error("run", -6, b"", partial=b'{"env"'), "crash"),  # TruncatedResponseError
        (WorkerCrashedError("w"), "crash"),
        (RequestError("r"), "refused"),
        (StateLostError("s"), "state_lost"),
        (PoolShutdownError("d"), "shutdown"),
        (ServerNotRunningError("n"), "error"),
        (concurrent.futures.CancelledError(), "cancelled"),
        (asyncio.CancelledError(), "cancelled"),
        (ValueError("v"), "error"),
    ],
)
def test_fault_label_names_each_failure_by_its_most_specific_class(
    error: BaseException, label: str
) -> None:
    assert fault_label(error) == label
