"""LeanServer on the simulator: requests, typed faults, concurrency, cancellation, process ends."""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import textwrap
import threading
import time

import psutil
import pytest

from leanpool import (
    LeanCrashError,
    LeanMemoryError,
    LeanTimeoutError,
    ProtocolError,
    ServerNotRunningError,
)
from leanpool._server import LeanServer
from leanpool.protocol import Command, CommandResponse, LeanError, ProofStep, ProofStepResponse
from leanpool.testing import sim_config


def eval_value(response: object) -> str:
    assert isinstance(response, CommandResponse), response
    infos = [m.data for m in response.messages if m.severity == "info"]
    assert infos, response
    return infos[0]


def pid_gone(pid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            proc = psutil.Process(pid)
            if proc.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def server() -> LeanServer:
    srv = LeanServer(sim_config())
    yield srv
    srv.kill()


def test_runs_commands_and_tactics(server: LeanServer) -> None:
    assert eval_value(server.run(Command(cmd="#eval 7 * 6"))) == "42"
    response = server.run(Command(cmd="theorem t (n : Nat) : n + 0 = n := by sorry"))
    assert isinstance(response, CommandResponse)
    [sorry] = response.sorries
    step = server.run(ProofStep(proof_state=sorry.proof_state, tactic="simp"))
    assert isinstance(step, ProofStepResponse)
    assert step.proof_status == "Completed"
    assert step.goals == []


def test_repl_level_errors_are_returned_not_raised(server: LeanServer) -> None:
    response = server.run(Command(cmd="#eval 1", env=99))
    assert isinstance(response, LeanError)
    assert response.message == "Unknown environment."
    response = server.run(ProofStep(proof_state=99, tactic="rfl"))
    assert isinstance(response, LeanError)
    assert response.message == "Unknown proof state."
    assert server.is_alive()


def test_run_dict_returns_raw_response(server: LeanServer) -> None:
    assert server.run_dict({"cmd": "#eval 2 + 2"})["env"] == 0


def test_timeout_kills_the_process_group_then_refuses_until_restart(server: LeanServer) -> None:
    pid = server.pid
    assert pid is not None
    started = time.monotonic()
    with pytest.raises(LeanTimeoutError) as caught:
        server.run(Command(cmd="#eval 1 --!sim hang"), timeout=0.5)
    assert time.monotonic() - started < 5
    assert isinstance(caught.value, TimeoutError)  # LeanInteract users catch TimeoutError
    assert pid_gone(pid)
    with pytest.raises(ServerNotRunningError, match="restart"):
        server.run(Command(cmd="#eval 1"))
    server.restart()
    assert eval_value(server.run(Command(cmd="#eval 1 + 1"))) == "2"


def test_hang_hard_ignoring_sigterm_is_still_killed(server: LeanServer) -> None:
    pid = server.pid
    assert pid is not None
    with pytest.raises(LeanTimeoutError):
        server.run(Command(cmd="#eval 1 --!sim hang_hard"), timeout=0.5)
    assert pid_gone(pid)


def test_crash_reports_signal_and_partial_output(server: LeanServer) -> None:
    with pytest.raises(LeanCrashError) as caught:
        server.run(Command(cmd="#eval 1 --!sim crash"), timeout=10)
    error = caught.value
    assert isinstance(error, ConnectionAbortedError)  # LeanInteract's type for a dead REPL
    assert error.returncode is not None and error.returncode != 0
    assert "SIGABRT" in str(error) or "134" in str(error)
    assert not server.is_alive()


def test_garbage_on_stdout_is_a_protocol_error(server: LeanServer) -> None:
    with pytest.raises(ProtocolError) as caught:
        server.run(Command(cmd="#eval 1 --!sim garbage"), timeout=10)
    assert caught.value.data
    assert not server.is_alive()


def test_stderr_flood_never_blocks(server: LeanServer) -> None:
    response = server.run(Command(cmd="#eval 5 --!sim stderr_kb=4096"), timeout=30)
    assert eval_value(response) == "5"
    assert len(server.stderr_tail()) > 0
    stdout, stderr = server.get_stdout_stderr()  # LeanInteract's name; never blocks
    assert stdout == "" and stderr == server.stderr_tail()


def test_huge_single_line_response(server: LeanServer) -> None:
    response = server.run(Command(cmd="#eval 3 --!sim huge_kb=16384"), timeout=60)
    assert isinstance(response, CommandResponse)
    assert max(len(m.data) for m in response.messages) >= 16384 * 1024


def test_rss_watchdog_kills_a_request_over_the_limit() -> None:
    srv = LeanServer(sim_config(), rss_limit_mb=200)
    try:
        started = time.monotonic()
        with pytest.raises(LeanMemoryError) as caught:
            srv.run(Command(cmd="#eval 1 --!sim oom"), timeout=60)
        assert time.monotonic() - started < 30
        assert caught.value.limit_mb == 200
        assert isinstance(caught.value, MemoryError)
    finally:
        srv.kill()


def test_address_space_hard_limit_gives_memory_error() -> None:
    srv = LeanServer(sim_config(memory_hard_limit_mb=400))
    try:
        with pytest.raises(LeanMemoryError):
            srv.run(Command(cmd="#eval 1 --!sim oom"), timeout=60)
    finally:
        srv.kill()


def test_threads_share_one_server_and_get_their_own_answers(server: LeanServer) -> None:
    answers: dict[tuple[int, int], str] = {}
    errors: list[BaseException] = []

    def work(thread: int) -> None:
        try:
            for i in range(25):
                value = thread * 1000 + i
                answers[(thread, i)] = eval_value(server.run(Command(cmd=f"#eval {value}")))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert answers == {(t, i): str(t * 1000 + i) for t in range(8) for i in range(25)}


def test_asyncio_tasks_share_one_server(server: LeanServer) -> None:
    async def main() -> list[str]:
        responses = await asyncio.gather(
            *(server.async_run(Command(cmd=f"#eval {i} * 3")) for i in range(200))
        )
        return [eval_value(r) for r in responses]

    assert asyncio.run(main()) == [str(i * 3) for i in range(200)]


def test_threads_and_asyncio_together(server: LeanServer) -> None:
    stop = threading.Event()
    seen: list[bool] = []

    def sync_user() -> None:
        i = 0
        while not stop.is_set():
            response = server.run(Command(cmd=f"#eval {i} + 100000"))
            seen.append(eval_value(response) == str(i + 100000))
            i += 1

    thread = threading.Thread(target=sync_user)
    thread.start()

    async def main() -> list[str]:
        return [
            eval_value(r)
            for r in await asyncio.gather(
                *(server.async_run(Command(cmd=f"#eval {i}")) for i in range(100))
            )
        ]

    try:
        assert asyncio.run(main()) == [str(i) for i in range(100)]
    finally:
        stop.set()
        thread.join()
    assert seen and all(seen)


def test_cancelled_async_request_is_drained_not_misdelivered(server: LeanServer) -> None:
    async def main() -> tuple[str, str]:
        slow = asyncio.ensure_future(server.async_run(Command(cmd="#eval 111 --!sim sleep_ms=300")))
        await asyncio.sleep(0.05)
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        first = eval_value(await server.async_run(Command(cmd="#eval 222")))
        second = eval_value(await server.async_run(Command(cmd="#eval 333")))
        return first, second

    assert asyncio.run(main()) == ("222", "333")
    assert server.is_alive()  # drained, not killed: its env ids are still valid
    assert isinstance(server.run(Command(cmd="#eval 1", env=0)), CommandResponse)


def test_kill_leaves_no_process(server: LeanServer) -> None:
    pid = server.pid
    assert pid is not None
    server.kill()
    assert pid_gone(pid)
    assert not server.is_alive()


def test_garbage_collected_server_leaves_no_process() -> None:
    srv = LeanServer(sim_config())
    pid = srv.pid
    assert pid is not None
    del srv
    gc.collect()
    assert pid_gone(pid)


OWNER_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from leanpool._server import LeanServer
    from leanpool.protocol import Command
    from leanpool.testing import sim_config
    server = LeanServer(sim_config())
    server.run(Command(cmd="#eval 1"))
    print(server.pid, flush=True)
    if sys.argv[1] == "exit":
        sys.exit(0)
    time.sleep(60)
    """
)


@pytest.mark.parametrize("how", ["exit", "sigkill", "sigterm"])
def test_repl_dies_with_its_owner(how: str) -> None:
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER_SCRIPT, how], stdout=subprocess.PIPE, text=True
    )
    try:
        assert owner.stdout is not None
        repl_pid = int(owner.stdout.readline())
        if how == "sigkill":
            owner.kill()
        elif how == "sigterm":
            owner.terminate()
        owner.wait(timeout=20)
        assert pid_gone(repl_pid, within=5), f"REPL {repl_pid} outlived its owner ({how})"
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()


def test_config_options_do_not_override_the_callers() -> None:
    config = sim_config(enable_incremental_optimization=True, enable_parallel_elaboration=True)
    srv = LeanServer(config)
    try:
        explicit = Command(cmd="#eval 1", incrementality=False)
        prepared = srv._prepare(explicit)
        assert prepared.incrementality is False
        assert prepared.set_options == [(["Elab", "async"], True)]
        again = srv._prepare(prepared)
        assert again.set_options == prepared.set_options  # not appended twice
        assert eval_value(srv.run(explicit)) == "1"
    finally:
        srv.kill()


def test_missing_executable_fails_clearly() -> None:
    config = sim_config()
    object.__setattr__(config.launch, "argv", ("/nonexistent/repl",))
    with pytest.raises(ServerNotRunningError, match="could not be started"):
        LeanServer(config)


def test_pid_reporting(server: LeanServer) -> None:
    assert server.pid is not None and server.pid != os.getpid()


def test_cgroup_backend_enforces_the_hard_limit_where_available() -> None:
    from leanpool._memory import cgroup_support

    support = cgroup_support()
    if not support.available:
        pytest.skip(f"no writable cgroup memory controller here: {support.reason}")
    srv = LeanServer(sim_config(memory_hard_limit_mb=300), memory_backend="cgroup")
    try:
        assert eval_value(srv.run(Command(cmd="#eval 1 --!sim rss_mb=100"))) == "1"
        with pytest.raises(LeanMemoryError, match="cgroup"):
            srv.run(Command(cmd="#eval 2 --!sim rss_mb=400"), timeout=60)
    finally:
        srv.kill()


# -------------------------------------------------------------------------------- verbose
_VERBOSE_SCRIPT = """
import sys
from leanpool import Command, LeanServer
from leanpool.testing import sim_config
with LeanServer(sim_config()) as server:
    server.run(Command(cmd="#eval 6 * 7"), verbose=sys.argv[1] == "1")
"""


@pytest.mark.parametrize("verbose", [True, False])
def test_verbose_shows_the_exchange_on_stderr_when_logging_is_not_set_up(verbose: bool) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _VERBOSE_SCRIPT, "1" if verbose else "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    if verbose:
        assert "#eval 6 * 7" in done.stderr and "'42'" in done.stderr
    else:
        assert done.stderr == ""


def test_verbose_goes_to_the_applications_logging(
    server: LeanServer, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    ours = logging.getLogger("leanpool")
    with caplog.at_level(logging.INFO):  # the application's handler takes INFO records...
        ours.setLevel(logging.WARNING)  # ... but our logger was left at WARNING
        try:
            server.run(Command(cmd="#eval 6 * 7"), verbose=True)
        finally:
            ours.setLevel(logging.NOTSET)
    sent = [r.getMessage() for r in caplog.records if r.name == "leanpool"]
    assert any(m.startswith("-> ") and "#eval 6 * 7" in m for m in sent)
    assert any(m.startswith("<- ") and "'42'" in m for m in sent)
