"""The load of scenario 10, from Kimina's own client, against any server speaking Kimina's API.

Run as a script in the Kimina client's environment (Python 3.12 with ``kimina-client`` 0.2.1;
`bench.kimina`), so that both servers get exactly the same client, the same snippets and the
same batching: ``AsyncKiminaClient.check(snippets, batch_size=B, max_workers=C)``, whose calls
of ``api_check`` (one HTTP request per batch) are timed one by one. With ``--plain`` it uses
httpx alone with the same batching (where no Python 3.12 can hold kimina-client), so that
leanpool's side is still measured.

Workloads (seeded, the same on both sides):

- ``trivial``: ``theorem tN : True := trivial``, no imports: what a check costs the service.
- ``mixed``: whole proofs as an RL loop or a dataset evaluation sends them: 60 % under
  ``import Mathlib`` + ``import Aesop``, 25 % under ``import Mathlib``, 15 % without imports;
  each proof burns ``cpu_ms`` in the REPL; 10 % are wrong (a Lean error), 10 % end in ``sorry``.

Prints one JSON object: ``seconds`` (wall time of the whole load), ``calls`` and their
``latencies_s``, ``snippets``, ``results`` (by id, each counted once), ``lost`` (snippets
without exactly one result), ``outcomes`` (``analyze()``'s statuses: valid, sorry, lean_error,
repl_error, timeout_error, server_error).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections import Counter
from typing import Any

HEADERS = (("import Mathlib\nimport Aesop\n\n", 0.60), ("import Mathlib\n\n", 0.25), ("", 0.15))


def snippets(workload: str, count: int, seed: int, cpu_ms: int, run: int) -> list[tuple[str, str]]:
    """(id, code) pairs, drawn from `seed`; theorem names carry `run`, so that no run repeats
    another's snippets (a server that remembers recent answers would answer them from memory)."""
    rng = random.Random(seed)
    items = []
    for index in range(count):
        name = f"r{run}n{index}"
        if workload == "trivial":
            items.append((f"t{index}", f"theorem t{name} : True := trivial"))
            continue
        header = rng.choices([h for h, _ in HEADERS], [w for _, w in HEADERS])[0]
        a, b = rng.randrange(1000), rng.randrange(1000)
        draw = rng.random()
        if draw < 0.10:
            body = f"theorem p{name} : {a} + {b} = {a + b + 1} := by norm_num"
        elif draw < 0.20:
            body = f"theorem p{name} : {a} + {b} = {a + b} := by sorry"
        else:
            body = f"theorem p{name} : {a} + {b} = {a + b} := by norm_num"
        items.append((f"p{index}", f"{header}{body} --!sim cpu_ms={cpu_ms}"))
    return items


def _status(result: dict[str, Any]) -> str:
    """`ReplResponse.analyze()`'s status, for the plain driver."""
    if result.get("error"):
        return "timeout_error" if "timed out" in result["error"] else "server_error"
    response = result.get("response") or {}
    if "message" in response:
        return "repl_error"
    if any(m.get("severity") == "error" for m in response.get("messages") or []):
        return "lean_error"
    return "sorry" if response.get("sorries") else "valid"


async def with_kimina_client(args: argparse.Namespace, items: list[tuple[str, str]]) -> Any:
    from kimina_client import AsyncKiminaClient, Snippet

    client = AsyncKiminaClient(api_url=args.url, api_key=args.api_key, http_timeout=600)
    latencies: list[float] = []
    calls = client.api_check

    async def timed_call(*call_args: Any, **call_kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await calls(*call_args, **call_kwargs)
        finally:
            latencies.append(time.perf_counter() - started)

    client.api_check = timed_call  # type: ignore[method-assign]
    snips = [Snippet(id=snippet_id, code=code) for snippet_id, code in items]
    try:
        await client.check(  # a warm-up batch, not counted
            [Snippet(id="warm", code=f"theorem warm{args.run} : True := trivial")],
            show_progress=False,
        )
        latencies.clear()
        started = time.perf_counter()
        response = await client.check(
            snips,
            timeout=args.timeout,
            batch_size=args.batch_size,
            max_workers=args.concurrency,
            show_progress=False,
        )
        seconds = time.perf_counter() - started
    finally:
        await client.close()
    results = [(r.id, r.analyze().status.value) for r in response.results]
    return seconds, latencies, results


async def with_httpx(args: argparse.Namespace, items: list[tuple[str, str]]) -> Any:
    import httpx

    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    latencies: list[float] = []
    results: list[tuple[str, str]] = []
    gate = asyncio.Semaphore(args.concurrency)
    async with httpx.AsyncClient(base_url=args.url, headers=headers, timeout=600) as client:

        async def call(batch: list[tuple[str, str]]) -> None:
            async with gate:
                body = {
                    "snippets": [{"id": i, "code": c} for i, c in batch],
                    "timeout": args.timeout,
                    "debug": False,
                    "reuse": True,
                    "infotree": None,
                }
                started = time.perf_counter()
                answer = await client.post("/api/check", json=body)
                latencies.append(time.perf_counter() - started)
                answer.raise_for_status()
                results.extend((r["id"], _status(r)) for r in answer.json()["results"])

        await call([("warm", f"theorem warm{args.run} : True := trivial")])
        latencies.clear()
        results.clear()
        batches = [items[i : i + args.batch_size] for i in range(0, len(items), args.batch_size)]
        started = time.perf_counter()
        await asyncio.gather(*(call(batch) for batch in batches))
        seconds = time.perf_counter() - started
    return seconds, latencies, results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--api-key")
    parser.add_argument("--workload", choices=("trivial", "mixed"), required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--seed", type=int, default=20251125, help="draws the snippets")
    parser.add_argument("--run", type=int, default=0, help="a number no other run used")
    parser.add_argument("--cpu-ms", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=5)
    parser.add_argument("--timeout", type=int, default=60)
    parser.add_argument("--plain", action="store_true", help="httpx instead of kimina-client")
    args = parser.parse_args(argv)
    items = snippets(args.workload, args.count, args.seed, args.cpu_ms, args.run)
    driver = with_httpx if args.plain else with_kimina_client
    seconds, latencies, results = asyncio.run(driver(args, items))
    seen = Counter(snippet_id for snippet_id, _status in results)
    lost = sum(1 for snippet_id, _code in items if seen[snippet_id] != 1)
    report = {
        "client": "httpx" if args.plain else "kimina-client",
        "workload": args.workload,
        "snippets": len(items),
        "results": len(results),
        "lost": lost,
        "seconds": seconds,
        "calls": len(latencies),
        "latencies_s": latencies,
        "outcomes": dict(Counter(status for _id, status in results)),
    }
    json.dump(report, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
