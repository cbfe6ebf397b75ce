"""Header affinity: imports are paid once per worker and header, not once per command."""

from __future__ import annotations

import random

import pytest

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


def test_a_restart_re_imports_the_header_and_counts_it() -> None:
    from leanpool import LeanCrashError
    from leanpool.protocol import ProofStep, ProofStepResponse

    with LeanPool(sim_config(imports={"HeaderA": (100, 10)}), 1, timeout=30) as pool:
        session = pool.session()
        root = session.run("import HeaderA\ntheorem t (p : Prop) (h : p) : p := by sorry")
        state = root.sorries[0].proof_state
        assert pool.stats().header_imports == 1
        with pytest.raises(LeanCrashError):
            session.run(ProofStep(proof_state=state, tactic="skip --!sim crash"))
        step = session.run(ProofStep(proof_state=state, tactic="exact h"))
        assert isinstance(step, ProofStepResponse) and step.proof_status == "Completed"
        assert pool.stats().header_imports == 2  # the header again, for the rebuilt state


def test_without_affinity_every_command_pays_its_import_and_stats_say_so() -> None:
    import time

    costs = {name: (100, 10) for name in ("HeaderA", "HeaderB", "HeaderC", "HeaderD", "HeaderE")}
    commands = _workload(30, seed=3)
    with LeanPool(sim_config(imports=costs), 2, timeout=60, header_affinity=False) as pool:
        started = time.monotonic()
        results = list(pool.map(commands))
        elapsed = time.monotonic() - started
        stats = pool.stats()
    assert all(isinstance(r, CommandResponse) and len(r.sorries) == 1 for r in results)
    assert stats.header_imports == 30
    assert elapsed >= 30 * 0.1 / 2  # the imports were really paid, on two workers
