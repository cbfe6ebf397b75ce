"""Header affinity: imports are paid once per worker and header, not once per command."""

from __future__ import annotations

import random

from leanpool import LeanPool
from leanpool.protocol import CommandResponse
from leanpool.testing import sim_config

HEADERS = ["import HeaderA", "import HeaderB", "import HeaderC\nimport HeaderD", "import HeaderE"]


def _workload(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [
        f"{rng.choice(HEADERS)}\n\ntheorem t{i} (n : Nat) : n + {i} = {i} + n := by sorry"
        for i in range(count)
    ]


def test_four_headers_200_commands_two_workers_pay_at_most_eight_imports() -> None:
    costs = {name: (1000, 50) for name in ("HeaderA", "HeaderB", "HeaderC", "HeaderD", "HeaderE")}
    commands = _workload(200, seed=7)
    with LeanPool(sim_config(imports=costs), 2, timeout=60) as pool:
        results = list(pool.map(commands))
        stats = pool.stats()
    assert all(isinstance(r, CommandResponse) and len(r.sorries) == 1 for r in results)
    assert 4 <= stats.header_imports <= 8, stats.header_imports
