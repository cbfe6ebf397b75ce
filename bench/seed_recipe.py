"""The seed's recipe (LeanInteract's multiprocessing guide, as several prover papers verify): a
``multiprocessing`` spawn `Pool` whose task creates one `AutoLeanServer` per command, so every
command pays a fresh REPL and its own import.

The task function lives in this importable module because spawned processes import it by name.
"""

from __future__ import annotations

import multiprocessing
import time
from multiprocessing.pool import Pool
from typing import Any

from bench.measure import classify


def _import_lean_interact() -> None:
    """Pool initializer: the guide imports LeanInteract at module top, once per process."""
    import logging

    import lean_interact  # noqa: F401

    logging.getLogger("lean_interact").setLevel(logging.ERROR)


def verify_one(config: Any, cmd: str, timeout: float | None) -> tuple[str, float]:
    """The guide's worker: a new AutoLeanServer, one command; returns (kind, seconds)."""
    from lean_interact import AutoLeanServer, Command

    started = time.perf_counter()
    try:
        with AutoLeanServer(config) as server:
            result: object = server.run(Command(cmd=cmd), timeout=timeout)
    except Exception as exc:
        result = exc
    return classify(result), time.perf_counter() - started


def start_pool(processes: int) -> Pool:
    """A spawn pool whose processes already imported LeanInteract (not timed)."""
    context = multiprocessing.get_context("spawn")
    return context.Pool(processes=processes, initializer=_import_lean_interact)
