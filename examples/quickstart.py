"""Quick start: LeanInteract's multiprocessing guide, then the same job with `LeanPool.map`.

Part 1 is the guide's quick start with only the import changed: one `AutoLeanServer` per process
of a `multiprocessing` pool, the config built once in the parent. Part 2 does the same job with a
`LeanPool`, which owns the processes, restarts what crashes and keeps one result per request.

    python examples/quickstart.py            # real Lean if installed, else the simulator
    python examples/quickstart.py --fast     # smaller (used by the tests)
"""

from __future__ import annotations

import multiprocessing as mp
from typing import TYPE_CHECKING

from _support import example_config, parse_args

from leanpool import AutoLeanServer, Command, LeanPool

if TYPE_CHECKING:
    from leanpool._config import LeanREPLConfig


def worker(config: LeanREPLConfig, task_id: int) -> str:
    """Worker function that runs in each process (the guide's code, only the import changed)"""
    server = AutoLeanServer(config)
    result = server.run(Command(cmd=f"#eval {task_id} * {task_id}"))
    return f"Task {task_id}: {result.messages[0].data if hasattr(result, 'messages') else 'Error'}"


def main() -> None:
    args = parse_args(__doc__ or "")
    # Pre-instantiate the config before multiprocessing: setup runs once, here in the parent.
    config = example_config(args)
    processes = 2 if args.fast else 4
    tasks = range(5)

    print("\n1. multiprocessing.Pool + AutoLeanServer (LeanInteract's quick start)")
    ctx = mp.get_context("spawn")
    with ctx.Pool(processes=processes) as pool:
        results = pool.starmap(worker, [(config, task_id) for task_id in tasks])
    for result in results:
        print(result)

    print("\n2. The same job with LeanPool.map")
    with LeanPool(config, max_workers=args.workers or processes) as lean_pool:
        commands = [Command(cmd=f"#eval {task_id} * {task_id}") for task_id in tasks]
        for task_id, response in zip(tasks, lean_pool.map(commands), strict=True):
            print(f"Task {task_id}: {response.messages[0].data}")


if __name__ == "__main__":
    main()
