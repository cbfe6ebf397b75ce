"""Chaos: requests mixing every fault; each gets exactly one result, of the right kind."""

from __future__ import annotations

import random
from collections import Counter

from leanpool import (
    LeanCrashError,
    LeanMemoryError,
    LeanPool,
    LeanTimeoutError,
    ProtocolError,
)
from leanpool.protocol import CommandResponse
from leanpool.testing import sim_config

FAULTS = {
    "crash": ("--!sim crash", LeanCrashError),
    "hang": ("--!sim hang", LeanTimeoutError),
    "memory": ("--!sim rss_mb=300", LeanMemoryError),
    "garbage": ("--!sim garbage", ProtocolError),
    "stderr": ("--!sim stderr_kb=256", None),  # noisy but healthy
}


def test_chaos_exactly_one_result_of_the_right_kind() -> None:
    rng = random.Random(20261125)
    kinds: list[str] = []
    requests: list[str] = []
    for i in range(320):
        kind = rng.choices(["ok", *FAULTS], weights=[80, 4, 2, 3, 3, 8])[0]
        kinds.append(kind)
        directive = FAULTS[kind][0] if kind in FAULTS else ""
        requests.append(f"#eval {i} * 7 {directive}".rstrip())
    with LeanPool(sim_config(), 2, timeout=1.0, memory_limit_mb=200, dedup=False) as pool:
        results = list(pool.map(requests, return_exceptions=True))
        stats = pool.stats()
    assert len(results) == len(requests)
    seen: Counter[str] = Counter()
    for i, (kind, result) in enumerate(zip(kinds, results, strict=True)):
        expected = FAULTS[kind][1] if kind in FAULTS else None
        if expected is None:
            assert isinstance(result, CommandResponse), (i, kind, result)
            values = [m.data for m in result.messages if m.severity == "info"]
            assert values[0] == str(i * 7), (i, kind, result)
        else:
            assert isinstance(result, expected), (i, kind, result)
        seen[kind] += 1
    assert all(seen[kind] > 0 for kind in FAULTS), seen
    assert stats.done == len(requests)
    assert sum(stats.failed.get(e.__name__, 0) for _, e in FAULTS.values() if e) == sum(
        seen[k] for k in ("crash", "hang", "memory", "garbage")
    )
