"""A producer/consumer pipeline with backpressure: generate candidate proofs, check them, tally.

The shape of an RL data loop: a *producer* (here a stand-in for a model sampling proofs) puts
candidates into a bounded `asyncio.Queue`; N *consumers* take them and `await pool.async_run(...)`;
results are aggregated as they arrive. When Lean is slower than the producer, `queue.put` waits
for room: memory stays bounded by the queue size plus the consumers' requests in flight, however
many candidates are generated. (`pool.async_map(requests)` is the one-line alternative when the
inputs are already an iterable; it keeps a bounded window in flight too.)

    python examples/async_pipeline.py            # real Lean if installed, else the simulator
    python examples/async_pipeline.py --fast
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter
from dataclasses import dataclass, field

from _support import example_config, parse_args

from leanpool import CommandResponse, LeanPool, LeanPoolError

TACTICS = ["decide", "rfl", "omega", "simp"]  # core Lean tactics: no import needed


@dataclass
class Candidate:
    index: int
    code: str


@dataclass
class Tally:
    verdicts: Counter[str] = field(default_factory=Counter)
    peak_queue: int = 0
    peak_in_flight: int = 0
    in_flight: int = 0
    producer_waits: int = 0


async def produce(
    queue: asyncio.Queue[Candidate | None], count: int, consumers: int, tally: Tally
) -> None:
    """Sample candidate proofs of `a + b = c` (sometimes with a wrong `c`), as fast as allowed."""
    sampler = random.Random(0)
    for index in range(count):
        a, b = sampler.randint(0, 99), sampler.randint(0, 99)
        c = a + b if sampler.random() < 0.6 else a + b + sampler.choice([-1, 1])
        tactic = sampler.choice(TACTICS)
        code = f"theorem candidate_{index} : {a} + {b} = {c} := by {tactic}"
        if queue.full():
            tally.producer_waits += 1  # backpressure: Lean is the bottleneck, so we wait
        await queue.put(Candidate(index, code))
        tally.peak_queue = max(tally.peak_queue, queue.qsize())
    for _ in range(consumers):
        await queue.put(None)  # one stop signal per consumer


async def consume(pool: LeanPool, queue: asyncio.Queue[Candidate | None], tally: Tally) -> None:
    while (candidate := await queue.get()) is not None:
        tally.in_flight += 1
        tally.peak_in_flight = max(tally.peak_in_flight, tally.in_flight)
        try:
            response = await pool.async_run(candidate.code)
            valid = isinstance(response, CommandResponse) and response.lean_code_is_valid(
                allow_sorry=False
            )
            tally.verdicts["passed" if valid else "lean_error"] += 1
        except LeanPoolError as exc:  # timeout, crash, memory: counted, the loop goes on
            tally.verdicts[f"fault ({type(exc).__name__})"] += 1
        finally:
            tally.in_flight -= 1


async def pipeline(pool: LeanPool, count: int, consumers: int, queue_size: int) -> Tally:
    queue: asyncio.Queue[Candidate | None] = asyncio.Queue(maxsize=queue_size)
    tally = Tally()
    await asyncio.gather(
        produce(queue, count, consumers, tally),
        *(consume(pool, queue, tally) for _ in range(consumers)),
    )
    return tally


def main() -> None:
    args = parse_args(__doc__ or "")
    config = example_config(args)
    workers = args.workers or os.cpu_count() or 1
    count = 120 if args.fast else 2000
    consumers = 4 * workers  # enough requests in flight to keep every worker busy
    queue_size = 2 * consumers
    started = time.monotonic()
    with LeanPool(config, max_workers=workers) as pool:
        tally = asyncio.run(pipeline(pool, count, consumers, queue_size))
    elapsed = time.monotonic() - started
    print(f"{count} candidates checked in {elapsed:.1f} s ({count / elapsed:.0f}/s)")
    for verdict, number in sorted(tally.verdicts.items()):
        print(f"  {verdict:<12} {number}")
    print(
        f"queue: peak {tally.peak_queue} of {queue_size}; in flight: peak {tally.peak_in_flight} "
        f"of {consumers}; the producer waited for room {tally.producer_waits} times"
    )


if __name__ == "__main__":
    main()
