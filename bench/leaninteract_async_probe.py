"""Probe (run in a subprocess): how many of N concurrent `LeanServerPool.async_run` calls finish.

LeanInteract 0.11.6 parks a default-executor thread per waiting caller in a blocking acquire
(``_acquire_worker_async`` in src/lean_interact/pool.py wraps it in ``asyncio.to_thread``), so
beyond a few concurrent calls nothing can run. The probe waits a fixed time, prints one JSON
line, kills the REPLs and exits without waiting for stuck threads.

Usage: python -m bench.leaninteract_async_probe REPL_DIR LAKE WORKERS CONCURRENCY WAIT_S
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time


async def _probe(pool: object, concurrency: int, wait_s: float) -> dict[str, object]:
    from lean_interact import Command

    begin = time.perf_counter()
    tasks = [
        asyncio.create_task(pool.async_run(Command(cmd=f"#eval {i}"), timeout=10))  # type: ignore[attr-defined]
        for i in range(concurrency)
    ]
    done, pending = await asyncio.wait(tasks, timeout=wait_s)
    return {
        "concurrency": concurrency,
        "completed": len(done),
        "still_waiting": len(pending),
        "waited_s": round(time.perf_counter() - begin, 2),
        "default_executor_threads": min(32, (os.cpu_count() or 1) + 4),
    }


def main(argv: list[str]) -> None:
    from lean_interact import LeanREPLConfig, LeanServerPool

    repl_dir, lake, workers, concurrency, wait_s = argv
    logging.getLogger("lean_interact").setLevel(logging.ERROR)
    config = LeanREPLConfig(
        local_repl_path=repl_dir,
        build_repl=False,
        lake_path=lake,
        enable_incremental_optimization=False,
        enable_parallel_elaboration=False,
    )
    pool = LeanServerPool(config, num_workers=int(workers))
    loop = asyncio.new_event_loop()
    try:
        result = loop.run_until_complete(_probe(pool, int(concurrency), float(wait_s)))
    finally:
        pool.close()
    print(json.dumps(result), flush=True)
    os._exit(0)  # stuck executor threads would keep a normal exit waiting forever


if __name__ == "__main__":
    main(sys.argv[1:])
