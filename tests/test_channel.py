"""The byte channel to a REPL (`leanpool._channel.Exchange`) against scripted REPLs: whose
clock runs when, and output nobody asked for, blamed on the REPL and never on a request."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import textwrap
import time
from collections.abc import Iterator

import pytest

from leanpool import LeanCrashError, LeanTimeoutError, ProtocolError, ServerNotRunningError
from leanpool._channel import NOT_RUN, Exchange
from leanpool._process import ReplProcess
from leanpool.protocol import Command, ResponseReader, encode_request
from leanpool.testing import sim_command

# A REPL that answers `{"env": n}` to each request; one whose text says STRAY gets a line
# nobody asked for in the same write as its answer, one that says LATER gets it 0.1 s after;
# one that says DIE is killed (SIGKILL) instead of answering; DEAF answers, then reads no more.
# Every request it reads is appended to the file named by its argument.
SCRIPTED = textwrap.dedent(
    """
    import os, sys, time
    log = open(sys.argv[1], "ab", buffering=0)
    pending, n = b"", 0
    while True:
        chunk = os.read(0, 65536)
        if not chunk:
            break
        pending += chunk
        while b"\\n\\n" in pending:
            request, pending = pending.split(b"\\n\\n", 1)
            log.write(request + b"\\n")
            answer = b'{"env": %d}\\n\\n' % n
            n += 1
            if b"DEAF" in request:  # answers, then reads nothing more
                os.write(1, answer)
                time.sleep(3600)
            if b"DIE" in request:
                os.kill(os.getpid(), 9)
            if b"STRAY" in request:
                answer += b"output nobody asked for\\n"
            os.write(1, answer)
            if b"LATER" in request:
                time.sleep(0.1)
                os.write(1, b"output nobody asked for\\n")
    """
)


@pytest.fixture
def scripted(tmp_path: object) -> Iterator[tuple[ReplProcess, str]]:
    log = os.path.join(str(tmp_path), "requests.log")
    proc = ReplProcess([sys.executable, "-c", SCRIPTED, log])
    yield proc, log
    proc.kill()


def _exchange(proc: ReplProcess, reader: ResponseReader, *texts: str) -> Exchange:
    payloads = [encode_request(Command(cmd=text)) for text in texts]
    exchange = Exchange(proc, reader, payloads, [10.0] * len(payloads))
    exchange.run_blocking()
    return exchange


def _received(log: str) -> str:
    with open(log, encoding="utf-8") as file:
        return file.read()


def test_output_right_behind_the_last_answer_ends_the_repl_and_keeps_the_answers(
    scripted: tuple[ReplProcess, str],
) -> None:
    proc, _log = scripted
    exchange = _exchange(proc, ResponseReader(), "first", "second STRAY")
    assert exchange.outcomes == [{"env": 0}, {"env": 1}]  # the answers stand
    assert isinstance(exchange.fault, ProtocolError)
    assert "more than it was asked for" in exchange.fault.message
    assert proc.wait_exit(5.0) is not None  # and the REPL is ended


def test_output_between_exchanges_ends_the_repl_before_anything_is_sent(
    scripted: tuple[ReplProcess, str],
) -> None:
    proc, log = scripted
    reader = ResponseReader()
    assert _exchange(proc, reader, "first LATER").outcomes == [{"env": 0}]
    time.sleep(0.5)  # the line nobody asked for arrives meanwhile
    exchange = _exchange(proc, reader, "second", "third")
    assert exchange.outcomes == [NOT_RUN, NOT_RUN]  # no request is blamed: none was sent
    assert isinstance(exchange.fault, ProtocolError)
    assert "nobody asked for" in exchange.fault.message
    assert "second" not in _received(log)
    assert proc.wait_exit(5.0) is not None


def test_a_repl_dead_while_idle_fails_no_request(scripted: tuple[ReplProcess, str]) -> None:
    proc, log = scripted
    reader = ResponseReader()
    assert _exchange(proc, reader, "first").outcomes == [{"env": 0}]
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait_exit(5.0) == -signal.SIGKILL
    exchange = _exchange(proc, reader, "second")
    assert exchange.outcomes == [NOT_RUN]
    assert isinstance(exchange.fault, LeanCrashError)
    assert "Between requests" in exchange.fault.message
    assert "second" not in _received(log)


@pytest.mark.parametrize("slow", [0, 1, 2, 3])
def test_a_request_over_its_timeout_times_out_at_any_position(slow: int) -> None:
    """Each request's clock starts when the REPL can start on it: a request that needs 1.5x
    its timeout fails with LeanTimeoutError wherever it sits; the ones before it are answered
    and the ones behind it never started (`NOT_RUN`). The others have no timeout at all."""
    proc = ReplProcess(sim_command())
    try:
        texts = [f"#eval {i}" + (" --!sim sleep_ms=750" if i == slow else "") for i in range(4)]
        payloads = [encode_request(Command(cmd=text)) for text in texts]
        timeouts = [0.5 if i == slow else None for i in range(4)]
        exchange = Exchange(proc, ResponseReader(), payloads, timeouts)
        outcomes = exchange.run_blocking()
    finally:
        proc.kill()
    assert all(isinstance(o, dict) for o in outcomes[:slow]), outcomes
    assert isinstance(outcomes[slow], LeanTimeoutError), outcomes
    assert outcomes[slow + 1 :] == [NOT_RUN] * (3 - slow)


def test_a_repl_killed_while_serving_is_that_requests_crash(
    scripted: tuple[ReplProcess, str],
) -> None:
    proc, _log = scripted
    exchange = _exchange(proc, ResponseReader(), "first", "second DIE", "third")
    assert exchange.outcomes[0] == {"env": 0} and exchange.outcomes[2] is NOT_RUN
    crash = exchange.outcomes[1]
    assert isinstance(crash, LeanCrashError) and crash.returncode == -signal.SIGKILL
    assert "While serving a request" in crash.message


def test_a_request_larger_than_the_pipe_is_written_as_the_repl_reads_it(
    scripted: tuple[ReplProcess, str],
) -> None:
    proc, log = scripted
    big = "first -- " + "x" * 1_000_000  # the pipe holds 64 KiB: the rest waits for room
    exchange = _exchange(proc, ResponseReader(), big, "second")
    assert exchange.outcomes == [{"env": 0}, {"env": 1}]
    assert len(_received(log)) > 1_000_000


def test_abandoning_an_exchange_kills_the_repl_only_once_something_was_written(
    scripted: tuple[ReplProcess, str],
) -> None:
    """An exchange interrupted from outside: before anything was written the stream is still
    in step and the REPL stays; after, its answer could only reach a later request: killed."""
    proc, _log = scripted
    reader = ResponseReader()
    assert _exchange(proc, reader, "first DEAF").outcomes == [{"env": 0}]  # reads no more
    with contextlib.suppress(BlockingIOError):
        while True:  # fill its stdin: the next request cannot be written at all
            os.write(proc.stdin_fd, b" " * 65536)
    payload = encode_request(Command(cmd="second"))
    unsent = Exchange(proc, reader, [payload], [10.0])
    unsent.abandon(KeyboardInterrupt())
    assert unsent.done and unsent.fault is None and proc.is_alive()

    proc2 = ReplProcess(proc.argv)
    try:
        sent = Exchange(proc2, ResponseReader(), [encode_request(Command(cmd="x DEAF"))], [10.0])
        time.sleep(0.2)  # written; its answer waits in the pipe, unread
        sent.abandon(KeyboardInterrupt())
        assert sent.done and isinstance(sent.fault, ServerNotRunningError)
        assert "interrupted" in sent.fault.message
        assert proc2.wait_exit(5.0) is not None  # killed: nobody may read that answer
    finally:
        proc2.kill()
