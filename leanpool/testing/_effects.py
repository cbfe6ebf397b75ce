"""Real costs and real failures, so a pool under test meets what Lean does to it.

Time is spent for real (sleeping or burning CPU), memory is allocated *and touched* (so RSS
grows), and fatal ends are the real thing: SIGABRT, exit status 1 with Lean's allocator message,
a process that ignores SIGTERM.

The sandbox probes (`probe`: ``getenv``, ``write``, ``connect``, ``spawn``) do for real what
model-written Lean code could do through ``IO``, and report what the operating system answered.
"""

from __future__ import annotations

import os
import resource
import signal
import sys
import threading
import time
from typing import NoReturn

__all__ = [
    "burn_cpu",
    "crash",
    "exhaust_memory",
    "garbage",
    "hang",
    "hold_memory",
    "probe",
    "sleep_ms",
    "stray_output_later",
    "write_stderr_kib",
]

_PAGE = 4096
_CHUNK = 64 * 1024 * 1024
_HELD: list[bytearray] = []  # memory that stays allocated for the life of the process


def sleep_ms(milliseconds: int) -> None:
    if milliseconds > 0:
        time.sleep(milliseconds / 1000)


def burn_cpu(milliseconds: int) -> None:
    """Busy-loop until the process has used `milliseconds` more CPU time."""
    deadline = time.process_time() + milliseconds / 1000
    counter = 0
    while time.process_time() < deadline:
        for _ in range(1000):
            counter += 1


def _allocate_touched(size: int) -> bytearray:
    block = bytearray(size)
    block[::_PAGE] = b"\x01" * len(range(0, size, _PAGE))  # write every page: RSS, not just VSZ
    return block


def _out_of_memory() -> NoReturn:
    """Lean's allocator on failure: a panic line on stderr, exit status 1."""
    _HELD.clear()
    os.write(2, b"INTERNAL PANIC: out of memory\n")
    os._exit(1)


def hold_memory(megabytes: int) -> None:
    """Allocate and touch `megabytes` MB, kept until the process ends."""
    remaining = megabytes * 1024 * 1024
    try:
        while remaining > 0:
            size = min(remaining, _CHUNK)
            _HELD.append(_allocate_touched(size))
            remaining -= size
    except MemoryError:
        _out_of_memory()


def exhaust_memory() -> NoReturn:
    """Allocate and touch memory until allocation fails (or the kernel kills the process)."""
    try:
        while True:
            _HELD.append(_allocate_touched(_CHUNK))
    except MemoryError:
        _out_of_memory()


def write_stderr_kib(kibibytes: int) -> None:
    """Chatter on stderr; a blocking write if nobody reads the pipe."""
    if kibibytes <= 0:
        return
    line = b"simrepl: noise on stderr, as a chatty Lean process would write\n"
    total = kibibytes * 1024
    payload = (line * (total // len(line) + 1))[:total]
    sys.stderr.flush()
    view = memoryview(payload)
    while view:
        written = os.write(2, view)
        view = view[written:]


def crash(partial_response: bytes) -> NoReturn:
    """Die mid-response: a prefix on stdout, then SIGABRT (without a core file)."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    sys.stdout.flush()
    os.write(1, partial_response)
    os.abort()


def hang(ignore_sigterm: bool = False) -> NoReturn:
    """Never answer. With `ignore_sigterm`, only SIGKILL ends the process."""
    if ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True:
        time.sleep(3600)


def garbage() -> NoReturn:
    """Write a line that is not JSON, then exit 1."""
    sys.stdout.flush()
    os.write(1, b"this is not JSON\n")
    os._exit(1)


def probe(kind: str, value: str) -> tuple[str, str]:
    """Run one sandbox probe; (severity, message text) for the response."""
    if kind == "getenv":
        found = os.environ.get(value)
        return "info", f"{value}={found}" if found is not None else f"{value} is not set"
    if kind == "write":
        return _write(value)
    if kind == "connect":
        return _connect(value)
    if kind == "spawn":
        return _spawn(int(value))
    raise ValueError(f"unknown probe {kind!r}")


def _write(path: str) -> tuple[str, str]:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    except OSError as error:
        return "error", f"write {path}: {error}"
    os.close(fd)
    return "info", f"created {path}"


def _connect(address: str) -> tuple[str, str]:
    import socket  # only when asked: the simulator's start-up stays light

    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=2):
            pass
    except OSError as error:
        return "error", f"connect {address}: {error}"
    return "info", f"connected to {address}"


def _spawn(count: int) -> tuple[str, str]:
    """Fork `count` children that live at once (each waits on a pipe), then end and reap them."""
    read_end, write_end = os.pipe()
    children: list[int] = []
    failure: OSError | None = None
    try:
        for _ in range(count):
            try:
                pid = os.fork()
            except OSError as error:
                failure = error
                break
            if pid == 0:  # the child: wait until the parent closes the pipe, then leave
                os.close(write_end)
                try:
                    os.read(read_end, 1)
                finally:
                    os._exit(0)
            children.append(pid)
    finally:
        os.close(write_end)  # every child's read returns: they exit
        os.close(read_end)
        for pid in children:
            os.waitpid(pid, 0)
    started = f"started {len(children)} of {count} child processes"
    if failure is not None:
        return "error", f"{started}: {failure}"
    return "info", started


STRAY_LINE = b"simrepl: output nobody asked for (--!sim stray_ms)\n"


def stray_output_later(milliseconds: int, stdout_lock: threading.Lock) -> None:
    """Write `STRAY_LINE` to stdout `milliseconds` from now, between whole responses."""

    def write() -> None:
        with stdout_lock:
            os.write(1, STRAY_LINE)

    timer = threading.Timer(milliseconds / 1000, write)
    timer.daemon = True
    timer.start()
