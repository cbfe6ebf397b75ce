"""Real costs and real failures, so a pool under test meets what Lean does to it.

Time is spent for real (sleeping or burning CPU), memory is allocated *and touched* (so RSS
grows), and fatal ends are the real thing: SIGABRT, exit status 1 with Lean's allocator message,
a process that ignores SIGTERM.

The sandbox probes (`probe`: ``getenv``, ``write``, ``connect``, ``spawn``) do for real what
model-written Lean code could do through ``IO``, and report what the operating system answered.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import mmap
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
    "map_module",
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


_MAPPED: list[mmap.mmap] = []  # imported modules' data, mapped for the life of the process
_FILE_CHUNK = b"\x4c" * (1024 * 1024)  # a module file's bytes: any, but not a sparse hole


def map_module(directory: str, name: str, megabytes: int, private_copy: bool = False) -> str:
    """Load one module's data as Lean loads an ``.olean`` (lean4 src/library/module.cpp,
    `lean_read_module_data_parts`): the file is mapped read-only with ``MAP_PRIVATE``, so every
    process that imports it shares its pages through the page cache (they count in each one's
    RSS as file pages, ``RssFile``, and sit in RAM once), and its pages are touched, as the
    import walks the module's objects. Where the mapping fails, Lean reads the data into
    memory it allocates instead; `private_copy` does that from the start (``RssAnon``).

    The file (`megabytes` MB, one per module and size) is made once per machine in
    `directory` and reused by every simulator. Returns how the data was loaded.
    """
    path = _module_file(directory, name, megabytes)
    if path is None:  # no shared file can be made here: the memory is paid privately
        hold_memory(megabytes)
        return "private (no module file)"
    with open(path, "rb") as file:
        if not private_copy:
            try:
                mapped = mmap.mmap(file.fileno(), 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)
            except OSError:  # an address-space limit, for one: Lean falls back to a copy
                pass
            else:
                _MAPPED.append(mapped)
                mapped[::_PAGE]  # one read per page: resident, shared
                return "mapped"
        try:
            copy = bytearray(megabytes * 1024 * 1024)
            file.readinto(copy)
        except MemoryError:
            _out_of_memory()
        _HELD.append(copy)
        return "private copy"


def _module_file(directory: str, name: str, megabytes: int) -> str | None:
    """The path of the module's file, made (under a lock, atomically) if missing."""
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
    path = os.path.join(directory, f"{safe}-{megabytes}mb.olean")
    size = megabytes * 1024 * 1024
    with contextlib.suppress(FileNotFoundError):
        if os.path.getsize(path) == size:
            return path
    try:
        os.makedirs(directory, exist_ok=True)
        with open(path + ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one writer per machine; the others wait
            with contextlib.suppress(FileNotFoundError):
                if os.path.getsize(path) == size:
                    return path
            scratch = f"{path}.{os.getpid()}.tmp"
            with open(scratch, "wb") as out:
                for _ in range(megabytes):
                    out.write(_FILE_CHUNK)
            os.replace(scratch, path)
        return path
    except OSError as error:
        if error.errno not in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC):
            raise
        return None


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
