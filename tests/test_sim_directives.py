"""Every `--!sim` directive and import cost does what it says, measured from outside the process.

CPU from the child's resource usage, RSS from /proc, hangs by a timeout that passes without an
answer, crashes by exit status, stderr by its size. Only lower bounds on time are asserted.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sim_process import SimProcess, responses, run_sim, sim_factory, wire

from leanpool.testing import sim_command

MB = 1024 * 1024


@pytest.fixture
def sim() -> Iterator[Callable[..., SimProcess]]:
    with sim_factory() as start:
        yield start


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _cpu_seconds_of_session(session: str) -> float:
    """CPU time (user + system) the simulator used for a whole session, from wait4's rusage."""
    proc = subprocess.Popen(sim_command(), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        assert proc.stdin is not None
        proc.stdin.write(session.encode())
        proc.stdin.close()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        if proc.returncode is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    return usage.ru_utime + usage.ru_stime


def _limit_address_space(megabytes: int) -> Callable[[], None]:
    def apply() -> None:
        limit = megabytes * MB
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


def test_cpu_ms_burns_real_cpu_time() -> None:
    plain = _cpu_seconds_of_session(wire({"cmd": "#eval 1"}))
    burnt = _cpu_seconds_of_session(wire({"cmd": "#eval 1 --!sim cpu_ms=700"}))
    assert burnt >= 0.7
    assert burnt > plain


def test_sleep_ms_delays_the_answer(sim: Callable[..., SimProcess]) -> None:
    process = sim()
    process.request({"cmd": "#eval 0"})  # start-up out of the way
    started = time.monotonic()
    answer = process.request({"cmd": "#eval 4 --!sim sleep_ms=300"})
    assert time.monotonic() - started >= 0.3
    assert answer["messages"][0]["data"] == "4"


def test_rss_mb_allocates_touched_memory_that_stays(sim: Callable[..., SimProcess]) -> None:
    process = sim()
    process.request({"cmd": "#eval 0"})
    before = _rss_bytes(process.pid)
    process.request({"cmd": "#eval 1 --!sim rss_mb=150"})
    assert _rss_bytes(process.pid) - before >= 150 * MB
    process.request({"cmd": "#eval 2"})
    assert _rss_bytes(process.pid) - before >= 150 * MB  # kept for the life of the process


def test_rss_mb_beyond_the_address_space_limit_panics_like_lean() -> None:
    result = run_sim(
        wire({"cmd": "#eval 1 --!sim rss_mb=2000"}), preexec_fn=_limit_address_space(300)
    )
    assert result.returncode == 1
    assert result.stderr == b"INTERNAL PANIC: out of memory\n"
    assert result.stdout == b""


def test_oom_allocates_until_allocation_fails() -> None:
    result = run_sim(
        wire({"cmd": "#eval 1"}, {"cmd": "#eval 2 --!sim oom"}),
        preexec_fn=_limit_address_space(300),
    )
    assert result.returncode == 1
    assert result.stderr == b"INTERNAL PANIC: out of memory\n"
    assert len(responses(result.stdout)) == 1


def test_stderr_kb_writes_exactly_that_much_to_stderr() -> None:
    result = run_sim(wire({"cmd": "#eval 5 --!sim stderr_kb=300"}))
    assert result.returncode == 0
    assert len(result.stderr) == 300 * 1024
    assert responses(result.stdout)[0]["messages"][0]["data"] == "5"


def test_stderr_kb_blocks_until_the_parent_drains_stderr() -> None:
    proc = subprocess.Popen(
        sim_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        proc.stdin.write(wire({"cmd": "#eval 6 --!sim stderr_kb=1024"}).encode())
        proc.stdin.close()
        proc.stdin = None  # already closed: communicate() must not flush it
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=1.0)  # stuck writing: nobody reads the 64 KiB pipe
        stdout, stderr = proc.communicate(timeout=60)  # draining unblocks it
        assert len(stderr) == 1024 * 1024
        assert responses(stdout)[0]["messages"][0]["data"] == "6"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_huge_kb_adds_one_info_message_of_that_size_on_one_line() -> None:
    result = run_sim(wire({"cmd": "#eval 3 --!sim huge_kb=2048"}))
    [answer] = responses(result.stdout)
    data = [m["data"] for m in answer["messages"]]
    assert data[0] == "3"
    assert len(data[1]) == 2048 * 1024
    longest = max(result.stdout.split(b"\n"), key=len)
    assert len(longest) > 2048 * 1024


def test_error_adds_an_error_message_at_the_directive() -> None:
    answers = responses(
        run_sim(
            wire(
                {"cmd": "theorem t : True := by sorry -- setup"},
                {"cmd": "#eval 1\n  --!sim error"},
                {"tactic": "trivial --!sim error", "proofState": 0},
            )
        ).stdout
    )
    error = answers[1]["messages"][-1]
    assert error["severity"] == "error"
    assert error["pos"] == {"line": 2, "column": 2}
    assert answers[1]["messages"][0]["data"] == "1"  # the answer itself is unchanged
    tactic_error = answers[2]["messages"][-1]
    assert tactic_error["severity"] == "error" and tactic_error["pos"] == {"line": 0, "column": 0}
    assert answers[2]["proofStatus"] == "Completed"


def test_crash_writes_a_partial_response_and_dies_by_sigabrt(tmp_path: Path) -> None:
    result = run_sim(wire({"cmd": "#eval 1"}, {"cmd": "#eval 2 --!sim crash"}), cwd=tmp_path)
    assert result.returncode == -signal.SIGABRT
    first, _, partial = result.stdout.partition(b"}\n\n")
    assert b'"data": "1"' in first
    assert partial.startswith(b"{") and not partial.endswith(b"\n\n")
    assert list(tmp_path.iterdir()) == []  # no core file


def test_hang_never_answers_and_sigterm_ends_it(sim: Callable[..., SimProcess]) -> None:
    process = sim()
    process.send({"cmd": "#eval 1 --!sim hang"})
    assert process.read_response(timeout=1.0) is None
    assert process.proc.poll() is None
    process.proc.terminate()
    assert process.wait() == -signal.SIGTERM


def test_hang_hard_ignores_sigterm_and_only_sigkill_ends_it(sim: Callable[..., SimProcess]) -> None:
    process = sim()
    process.send({"cmd": "#eval 1 --!sim hang_hard"})
    assert process.read_response(timeout=1.0) is None
    process.proc.terminate()
    assert process.alive_after(1.0)
    process.proc.kill()
    assert process.wait() == -signal.SIGKILL


def test_garbage_writes_a_non_json_line_and_exits_1() -> None:
    result = run_sim(wire({"cmd": "#eval 1 --!sim garbage"}, {"cmd": "#eval 2"}))
    assert result.returncode == 1
    assert result.stdout == b"this is not JSON\n"


def test_directives_combine_across_comments_and_unknown_ones_are_named() -> None:
    answers = responses(
        run_sim(
            wire(
                {"cmd": "#eval 1 --!sim stderr_kb=1 error\n--!sim huge_kb=1"},
                {"cmd": "#eval 2 --!sim explode"},
                {"cmd": "#eval 3 --!sim sleep_ms=abc"},
                {"cmd": "#eval 4"},
            )
        ).stdout
    )
    assert [m["severity"] for m in answers[0]["messages"]] == ["info", "error", "info"]
    assert len(answers[0]["messages"][2]["data"]) == 1024
    assert "'explode'" in answers[1]["message"] and "hang_hard" in answers[1]["message"]
    assert "'sleep_ms=abc'" in answers[2]["message"]
    assert answers[3]["messages"][0]["data"] == "4"


def test_import_memory_is_paid_once_per_process(sim: Callable[..., SimProcess]) -> None:
    process = sim("--import", "Big=0ms,120mb")
    process.request({"cmd": "#eval 0"})
    before = _rss_bytes(process.pid)
    assert process.request({"cmd": "import Big.Part\n#eval 1"})["env"] == 1
    after_first = _rss_bytes(process.pid)
    assert after_first - before >= 120 * MB
    process.request({"cmd": "import Big\n#eval 2"})
    assert _rss_bytes(process.pid) - after_first < 60 * MB


def test_import_time_is_paid_on_every_env_less_import(sim: Callable[..., SimProcess]) -> None:
    process = sim("--import", "Slow=300ms,0mb")
    process.request({"cmd": "#eval 0"})
    for _ in range(2):
        started = time.monotonic()
        process.request({"cmd": "import Slow\nimport Slow.Sub\n#eval 1"})
        assert time.monotonic() - started >= 0.3


def test_import_default_applies_to_unlisted_modules(sim: Callable[..., SimProcess]) -> None:
    process = sim("--import-default", "200ms,0mb")
    process.request({"cmd": "#eval 0"})
    started = time.monotonic()
    process.request({"cmd": "import A\nimport B"})
    assert time.monotonic() - started >= 0.4


def test_startup_ms_delays_the_first_answer() -> None:
    started = time.monotonic()
    result = run_sim(wire({"cmd": "#eval 1"}), "--startup-ms", "400")
    assert time.monotonic() - started >= 0.4
    assert result.returncode == 0


# ------------------------------------------------------------------- sandbox probes (unconfined)
# The simulator alone, started without any sandbox: each probe does the real thing. The same
# probes under leanpool's sandbox are in test_sandbox.py.
def _probe_messages(cmd: str, **popen: object) -> list[tuple[str, str]]:
    [answer] = responses(run_sim(wire({"cmd": cmd}), **popen).stdout)  # type: ignore[arg-type]
    return [(m["severity"], m["data"]) for m in answer["messages"]]


def test_getenv_reports_the_value_or_that_it_is_not_set() -> None:
    env = {**os.environ, "SIM_PROBE_VAR": "a=b c"}
    env.pop("SIM_PROBE_UNSET", None)
    messages = _probe_messages(
        "#eval 1 --!sim getenv=SIM_PROBE_VAR getenv=SIM_PROBE_UNSET", env=env
    )
    assert messages == [
        ("info", "1"),
        ("info", "SIM_PROBE_VAR=a=b c"),
        ("info", "SIM_PROBE_UNSET is not set"),
    ]


def test_write_creates_the_file_or_reports_the_os_error(tmp_path: Path) -> None:
    target = tmp_path / "made"
    missing = tmp_path / "no-such-dir" / "x"
    messages = _probe_messages(f"#eval 1 --!sim write={target} write={missing}")
    assert messages[1] == ("info", f"created {target}")
    assert target.is_file()
    severity, text = messages[2]
    assert severity == "error" and text.startswith(f"write {missing}: [Errno 2]")


def test_write_relative_paths_are_relative_to_the_working_directory(tmp_path: Path) -> None:
    messages = _probe_messages("#eval 1 --!sim write=rel.txt", cwd=tmp_path)
    assert messages[1] == ("info", "created rel.txt")
    assert (tmp_path / "rel.txt").is_file()


def test_connect_opens_a_tcp_connection_or_reports_the_error() -> None:
    import socket

    with socket.socket() as listener, socket.socket() as closed:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        port, refused = listener.getsockname()[1], closed.getsockname()[1]
        messages = _probe_messages(
            f"#eval 1 --!sim connect=127.0.0.1:{port} connect=127.0.0.1:{refused}"
        )
    assert messages[1] == ("info", f"connected to 127.0.0.1:{port}")
    severity, text = messages[2]
    assert severity == "error" and "Connection refused" in text, text


def test_spawn_starts_children_and_ends_them_before_answering(
    sim: Callable[..., SimProcess],
) -> None:
    import psutil

    process = sim()
    process.send({"cmd": "#eval 1 --!sim spawn=12"})
    answer = process.read_response(timeout=60)
    assert answer is not None
    assert answer["messages"][1] == {
        "severity": "info",
        "pos": {"line": 1, "column": 8},
        "endPos": {"line": 1, "column": 23},
        "data": "started 12 of 12 child processes",
    }
    assert psutil.Process(process.proc.pid).children() == []  # all ended and reaped


def test_spawn_reports_how_many_started_when_the_limit_stops_it() -> None:
    def limit_processes() -> None:  # for a non-root user, every fork then fails
        resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))

    if os.geteuid() == 0:
        pytest.skip("RLIMIT_NPROC is not enforced for root; test_sandbox.py checks the cgroup")
    messages = _probe_messages("#eval 1 --!sim spawn=5", preexec_fn=limit_processes)
    severity, text = messages[1]
    assert severity == "error" and text.startswith("started 0 of 5 child processes: "), text


def test_probe_values_are_checked_and_malformed_ones_named() -> None:
    answers = responses(
        run_sim(
            wire(
                {"cmd": "#eval 1 --!sim getenv="},
                {"cmd": "#eval 2 --!sim connect=localhost"},
                {"cmd": "#eval 3 --!sim connect=host:99999"},
                {"cmd": "#eval 4 --!sim spawn=0"},
                {"cmd": "#eval 5 --!sim spawn=x write="},
                {"cmd": "#eval 6 --!sim connect=[::1]:1 getenv=A=B"},
            )
        ).stdout
    )
    assert "'getenv='" in answers[0]["message"] and "getenv=NAME" in answers[0]["message"]
    assert "'connect=localhost'" in answers[1]["message"]
    assert "'connect=host:99999'" in answers[2]["message"]
    assert "'spawn=0'" in answers[3]["message"]
    assert "'spawn=x', 'write='" in answers[4]["message"]
    assert "'getenv=A=B'" in answers[5]["message"]  # [::1]:1 itself is well formed


def test_probes_run_in_order_before_the_error_directive_in_tactic_mode(tmp_path: Path) -> None:
    env = {**os.environ, "SIM_PROBE_VAR": "v"}
    answers = responses(
        run_sim(
            wire(
                {"cmd": "theorem t : True := by sorry"},
                {"tactic": "trivial --!sim getenv=SIM_PROBE_VAR error", "proofState": 0},
            ),
            env=env,
        ).stdout
    )
    messages = [(m["severity"], m["data"]) for m in answers[1]["messages"]]
    assert messages[0] == ("info", "SIM_PROBE_VAR=v")
    assert messages[1][0] == "error"
    assert answers[1]["proofStatus"] == "Completed"
