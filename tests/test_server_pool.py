"""LeanServerPool (LeanInteract's pool API on LeanPool), including LeanInteract's known bugs."""

from __future__ import annotations

import asyncio

import pytest

from leanpool import LeanCrashError, LeanServerPool, StateLostError
from leanpool.protocol import Command, CommandResponse, ProofStep, ProofStepResponse
from leanpool.testing import sim_config


@pytest.fixture
def server_pool() -> LeanServerPool:
    with LeanServerPool(sim_config(), num_workers=2) as pool:
        yield pool


def test_every_returned_id_is_usable_later(server_pool: LeanServerPool) -> None:
    base = server_pool.run(Command(cmd="def inc (n : Nat) := n + 1"))
    assert isinstance(base, CommandResponse) and base.env < 0
    proof = server_pool.run(
        Command(cmd="theorem t (a : Nat) : inc a = a + 1 := by sorry", env=base.env)
    )
    assert isinstance(proof, CommandResponse)
    state = proof.sorries[0].proof_state
    step = server_pool.run(ProofStep(proof_state=state, tactic="rfl"))
    assert isinstance(step, ProofStepResponse) and step.proof_status == "Completed"
    with pytest.raises(StateLostError):
        server_pool.run(Command(cmd="#eval 1", env=-5))


def test_run_batch_keeps_order_and_returns_exceptions_in_place(
    server_pool: LeanServerPool,
) -> None:
    results = server_pool.run_batch(
        [Command(cmd="#eval 1"), Command(cmd="#eval 2 --!sim crash"), Command(cmd="#eval 3")]
    )
    assert isinstance(results[0], CommandResponse)
    assert isinstance(results[1], LeanCrashError)
    assert isinstance(results[2], CommandResponse)


def test_many_concurrent_async_calls_do_not_starve(server_pool: LeanServerPool) -> None:
    """In LeanInteract 0.11, beyond a few concurrent pool.async_run calls, everything hung."""

    async def main() -> list[object]:
        return await asyncio.wait_for(
            asyncio.gather(*(server_pool.async_run(Command(cmd=f"#eval {i}")) for i in range(80))),
            timeout=120,
        )

    results = asyncio.run(main())
    assert len(results) == 80 and all(isinstance(r, CommandResponse) for r in results)


def test_async_run_batch_works(server_pool: LeanServerPool) -> None:
    """In LeanInteract 0.11, async_run_batch raised ValueError (or never returned)."""
    results = asyncio.run(
        server_pool.async_run_batch([Command(cmd=f"#eval {i} * 2") for i in range(20)])
    )
    values = [next(m.data for m in r.messages if m.severity == "info") for r in results]
    assert values == [str(i * 2) for i in range(20)]


def test_ids_count_down_from_minus_one_as_in_leaninteract(server_pool: LeanServerPool) -> None:
    first = server_pool.run(Command(cmd="def a := 1"))
    second = server_pool.run(Command(cmd="theorem t : a = 1 := by sorry", env=-1))
    assert isinstance(first, CommandResponse) and isinstance(second, CommandResponse)
    assert (first.env, second.env, second.sorries[0].proof_state) == (-1, -2, -3)
    step = server_pool.run(ProofStep(proof_state=-3, tactic="rfl"))
    assert isinstance(step, ProofStepResponse) and step.proof_state == -4
    assert step.model_dump(by_alias=True)["proofState"] == -4
    batch = server_pool.run_batch([Command(cmd="#eval 1", env=-2), Command(cmd="#eval 2")])
    assert sorted(r.env for r in batch) == [-6, -5]
    together = asyncio.run(server_pool.async_run_batch([Command(cmd="#eval 3", env=-1)]))
    assert together[0].env == -7


def test_batches_show_a_progress_bar_when_asked(
    server_pool: LeanServerPool, capsys: pytest.CaptureFixture[str]
) -> None:
    requests = [Command(cmd=f"#eval {i}") for i in range(5)]
    results = server_pool.run_batch(requests, show_progress=True)
    assert [r.messages[0].data for r in results] == [str(i) for i in range(5)]
    assert "5/5" in capsys.readouterr().err
    results = asyncio.run(server_pool.async_run_batch(requests, show_progress=True))
    assert [r.messages[0].data for r in results] == [str(i) for i in range(5)]
    assert "5/5" in capsys.readouterr().err
    server_pool.run_batch(requests)  # no bar unless asked
    assert capsys.readouterr().err == ""
