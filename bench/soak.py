"""`make soak`: a long run of a pool in a hostile world, checking what must always hold.

Two workloads run side by side on one pool for `--seconds`:

* batches: `pool.map` over commands with faults mixed in (crash, hang, garbage, memory over the
  limit, stderr floods, output out of turn), some callers cancelling requests they submitted;
* search sessions: branching tactic episodes from asyncio, as an RL loop drives them.

Meanwhile a chaos thread, every 0.3 to 1.5 s, does one of: SIGKILL a worker or a REPL; SIGSTOP
one for a moment (0.1 s), for longer than the pool's grace, or SIGSTOP then SIGCONT after the pool
gave up on it. At the end it checks, and prints as JSON:

* every request got exactly one result, and every answer is its own (a command's value, a tactic
  step's goal naming its own episode's variable);
* faults are of the kind their request asked for, or one that a stop or kill explains;
* no session state was lost; nothing the pool started is left running.

Exit status 0 when everything held, 1 otherwise. The chaos test in `make test`
(tests/test_pool_chaos.py) is a 10-second version of the same checks.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import sys
import threading
import time
from collections import Counter
from concurrent.futures import CancelledError
from typing import Any

import psutil

from leanpool import (
    LeanCrashError,
    LeanError,
    LeanMemoryError,
    LeanPool,
    LeanPoolError,
    LeanTimeoutError,
    ProofStep,
    ProofStepResponse,
    ProtocolError,
    StateLostError,
    WorkerCrashedError,
)
from leanpool.protocol import CommandResponse
from leanpool.testing import sim_config

FAULTS: dict[str, tuple[str, type[BaseException] | None]] = {
    "crash": ("--!sim crash", LeanCrashError),
    "hang": ("--!sim hang", LeanTimeoutError),
    "memory": ("--!sim rss_mb=300 sleep_ms=100", LeanMemoryError),
    "garbage": ("--!sim garbage", ProtocolError),
    "stderr": ("--!sim stderr_kb=256", None),
    "stray": ("--!sim stray_ms=5", None),
}
# What a stop or kill of a worker or REPL may turn any request into.
CHAOS_ERRORS = (LeanTimeoutError, LeanCrashError, WorkerCrashedError, ProtocolError)
GRACE = 2.0


class Soak:
    def __init__(self, seconds: float, workers: int, seed: int) -> None:
        self.seconds = seconds
        self.workers = workers
        self.rng = random.Random(seed)
        self.counts: Counter[str] = Counter()
        self.problems: list[str] = []
        self.examples: dict[str, str] = {}  # the first message of each kind of error
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def problem(self, text: str) -> None:
        with self.lock:
            if len(self.problems) < 50:
                self.problems.append(text)

    # ---------------------------------------------------------------- chaos
    def chaos(self, pool: LeanPool) -> None:
        rng = random.Random(self.rng.random())
        while not self.stop.wait(rng.uniform(0.3, 1.5)):
            workers = [w for w in pool.stats().workers if w["pid"]]
            if not workers:
                continue
            worker = rng.choice(workers)
            pid = worker["pid"] if rng.random() < 0.5 else worker["repl_pid"]
            if not pid:
                continue
            what = rng.choice(["kill", "pause", "stop_past_grace", "stop_and_continue_late"])
            with contextlib.suppress(ProcessLookupError):
                if what == "kill":
                    os.kill(pid, signal.SIGKILL)
                else:
                    os.kill(pid, signal.SIGSTOP)
                    time.sleep(0.1 if what == "pause" else GRACE + rng.uniform(0.5, 2.0))
                    os.kill(pid, signal.SIGCONT)
                self.count(f"chaos_{what}")

    def count(self, key: str, n: int = 1) -> None:
        with self.lock:
            self.counts[key] += n

    # ---------------------------------------------------------------- batches
    def batches(self, pool: LeanPool) -> None:
        rng = random.Random(self.rng.random())
        base = 0
        while not self.stop.is_set():
            kinds = rng.choices(["ok", *FAULTS], [80, 2, 1, 2, 2, 5, 8], k=200)
            requests = [
                f"#eval {base + i} * 7 {FAULTS[k][0] if k in FAULTS else ''}".rstrip()
                for i, k in enumerate(kinds)
            ]
            futures = [pool.submit(r) for r in requests]
            cancelled = {i for i in range(len(futures)) if rng.random() < 0.03}
            for i in cancelled:
                if not futures[i].cancel():
                    cancelled.discard(i)
            for i, (kind, future) in enumerate(zip(kinds, futures, strict=True)):
                try:
                    outcome: Any = future.result(timeout=300)
                except CancelledError as exc:
                    outcome = exc
                except LeanPoolError as exc:
                    outcome = exc
                except Exception as exc:  # a bug: any other exception is a problem
                    outcome = exc
                self.check_command(base + i, kind, i in cancelled, outcome)
            base += len(requests)

    def check_command(self, n: int, kind: str, cancelled: bool, outcome: Any) -> None:
        self.count("requests")
        if cancelled:
            if not isinstance(outcome, CancelledError):
                self.problem(f"#{n}: cancelled, but got {outcome!r:.200}")
            self.count("cancelled")
            return
        if isinstance(outcome, CommandResponse):
            values = [m.data for m in outcome.messages if m.severity == "info"]
            if not values or values[0] != str(n * 7):
                self.problem(f"#{n} ({kind}): WRONG ANSWER {values[:1]}")
            self.count("answered")
            return
        expected = FAULTS[kind][1] if kind in FAULTS else None
        allowed = (*CHAOS_ERRORS, *([expected] if expected else []))
        if not isinstance(outcome, allowed):
            self.problem(f"#{n} ({kind}): unexpected {outcome!r:.300}")
        self.count(f"error_{type(outcome).__name__}")
        self.examples.setdefault(type(outcome).__name__, str(outcome)[:300])

    # ---------------------------------------------------------------- sessions
    async def episode(self, pool: LeanPool, e: int, rng: random.Random) -> None:
        tactics = ["skip", "skip --!sim cpu_ms=10", "omega", "constructor", "skip --!sim crash"]
        with pool.session() as session:
            text = f"import HA\ntheorem t{e} (x{e} : Nat) : x{e} = x{e} := by sorry"
            try:
                root = await asyncio.wait_for(session.async_run(text, timeout=5), 300)
            except LeanPoolError:
                self.count("episode_root_failed")
                return
            states = [root.sorries[0].proof_state]
            for _ in range(40):
                tactic = rng.choices(tactics, [40, 30, 10, 10, 2])[0]
                step = ProofStep(proof_state=rng.choice(states), tactic=tactic)
                self.count("steps")
                try:
                    result = await asyncio.wait_for(session.async_run(step, timeout=5), 300)
                except StateLostError as exc:
                    self.problem(f"episode {e}: state lost: {exc}")
                    continue
                except LeanPoolError as exc:
                    if not isinstance(exc, CHAOS_ERRORS):
                        self.problem(f"episode {e}: unexpected {exc!r:.300}")
                    self.count(f"step_error_{type(exc).__name__}")
                    self.examples.setdefault(f"step_{type(exc).__name__}", str(exc)[:300])
                    continue
                except TimeoutError:
                    self.problem(f"episode {e}: no result within 300 s")
                    continue
                if isinstance(result, ProofStepResponse):
                    if not all(f"x{e}" in goal for goal in result.goals):
                        self.problem(f"episode {e}: WRONG STATE {result.goals}")
                    if tactic.startswith("skip"):
                        states.append(result.proof_state)
                elif not isinstance(result, LeanError):
                    self.problem(f"episode {e}: unexpected answer {result!r:.200}")

    def sessions(self, pool: LeanPool) -> None:
        rng = random.Random(self.rng.random())

        async def main() -> None:
            e = 0
            while not self.stop.is_set():
                await asyncio.gather(*(self.episode(pool, e + k, rng) for k in range(8)))
                e += 8

        asyncio.run(main())

    # ---------------------------------------------------------------- run
    def run(self) -> dict[str, Any]:
        config = sim_config(imports={"HA": (200, 20)})
        before = {p.pid for p in psutil.Process().children(recursive=True)}
        started = time.monotonic()
        pool = LeanPool(
            config,
            self.workers,
            timeout=1.0,
            memory_limit_mb=250,
            worker_grace=GRACE,
            dedup=False,
            progress=False,
            max_tasks_per_worker=500,
        )
        with pool:
            threads = [
                threading.Thread(target=self.chaos, args=(pool,), daemon=True),
                threading.Thread(target=self.batches, args=(pool,), daemon=True),
                threading.Thread(target=self.sessions, args=(pool,), daemon=True),
            ]
            for thread in threads:
                thread.start()
            time.sleep(self.seconds)
            self.stop.set()
            for thread in threads:
                thread.join(timeout=600)
                if thread.is_alive():
                    self.problem(f"{thread.name} did not finish within 600 s of the end")
            stats = pool.stats()
        time.sleep(1.0)
        left = [
            p.pid
            for p in psutil.Process().children(recursive=True)
            if p.pid not in before
            and p.is_running()
            and p.status() != psutil.STATUS_ZOMBIE
            and "resource_tracker" not in " ".join(p.cmdline())
        ]
        if left:
            self.problem(f"processes left running: {left}")
        if stats.done + stats.cancelled != stats.submitted:
            self.problem(f"stats: {stats.done} done + {stats.cancelled} cancelled != submitted")
        return {
            "seconds": round(time.monotonic() - started, 1),
            "workers": self.workers,
            "ok": not self.problems,
            "problems": self.problems,
            "counts": dict(sorted(self.counts.items())),
            "examples": self.examples,
            "pool": {
                "submitted": stats.submitted,
                "done": stats.done,
                "cancelled": stats.cancelled,
                "failed": stats.failed,
                "restarts": stats.restarts,
                "recycles": stats.recycles,
                "states_rebuilt": stats.states_rebuilt,
            },
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args(argv)
    report = Soak(args.seconds, args.workers, args.seed).run()
    report["seed"] = args.seed
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
