"""Shared fixtures. Every test must end every process it started: `no_leftover_processes`
checks after each test that the test process has no child processes left (REPLs, simulators,
pool workers), kills any it finds and fails the test."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import psutil
import pytest


def _descendants() -> list[psutil.Process]:
    try:
        return psutil.Process().children(recursive=True)
    except psutil.Error:
        return []


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    alive = []
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            # loky's resource tracker lives as long as the test process, by design.
            if (
                proc.is_running()
                and proc.status() != psutil.STATUS_ZOMBIE
                and "resource_tracker" not in " ".join(proc.cmdline())
            ):
                alive.append(proc)
    return alive


@pytest.fixture(autouse=True)
def no_leftover_processes(request: pytest.FixtureRequest) -> Iterator[None]:
    before = {p.pid for p in _descendants()}
    yield
    if request.node.get_closest_marker("allow_leftover_processes"):
        return
    deadline = time.monotonic() + 5.0
    leftover: list[psutil.Process] = []
    while time.monotonic() < deadline:
        leftover = [p for p in _alive(_descendants()) if p.pid not in before]
        if not leftover:
            return
        time.sleep(0.05)
    described = []
    for proc in leftover:
        with contextlib.suppress(psutil.Error):
            described.append(f"{proc.pid} {' '.join(proc.cmdline())[:120]}")
            proc.kill()
    pytest.fail("processes left running after the test: " + "; ".join(described))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "allow_leftover_processes: skip the leftover-process check for this test"
    )
