"""The Ray backend on a two-node cluster (`ray.cluster_utils.Cluster`, both nodes on this machine):
workers spread over nodes, a node lost in the middle of a batch, sessions moving to the surviving
node, no node with room, a node whose setup fails, and no Ray process left afterwards (the
leftover-process check of conftest.py runs after each test)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import pytest

from leanpool import LeanPool, LeanPoolError, LeanSetupError, PoolSession, ray_backend
from leanpool.protocol import CommandResponse, ProofStep, ProofStepResponse
from leanpool.testing import sim_config

ray = pytest.importorskip("ray", reason="Ray is optional: pip install 'leanpool[ray]'")
from ray.cluster_utils import Cluster  # noqa: E402

pytestmark = pytest.mark.timeout(180)


class TwoNodes:
    def __init__(self, cpus: int) -> None:
        self.cluster = Cluster(
            initialize_head=True,
            head_node_args={"num_cpus": cpus, "include_dashboard": False},
        )
        self.other = self.cluster.add_node(num_cpus=cpus)
        ray.init(address=self.cluster.address, log_to_driver=False)
        self.cluster.wait_for_nodes()
        self.head_id = self.cluster.head_node.node_id
        self.other_id = self.other.node_id

    def close(self) -> None:
        ray.shutdown()
        self.cluster.shutdown()


@pytest.fixture
def two_nodes(request: pytest.FixtureRequest) -> Iterator[TwoNodes]:
    nodes = TwoNodes(getattr(request, "param", 1))
    try:
        yield nodes
    finally:
        nodes.close()


def eval_value(response: object) -> str:
    assert isinstance(response, CommandResponse), response
    return response.messages[0].data


def wait_until_up(pool: LeanPool, workers: int, seconds: float = 60) -> list[dict[str, Any]]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        up = [w for w in pool.stats().workers if w["state"] == "up" and w["node"]]
        if len(up) == workers:
            return up
        time.sleep(0.1)
    raise AssertionError(f"workers not up after {seconds} s: {pool.stats().workers}")


@pytest.mark.parametrize("two_nodes", [2], indirect=True)
def test_backend_ray_joins_the_cluster_and_spreads_workers_over_its_nodes(
    two_nodes: TwoNodes,
) -> None:
    # Two CPUs per node: both workers would fit on one node; the default spreads them.
    with LeanPool(sim_config(), 2, timeout=30, progress=False, backend="ray") as pool:
        workers = wait_until_up(pool, 2)
        assert {w["node"]["id"] for w in workers} == {two_nodes.head_id, two_nodes.other_id}
        assert all(w["node"]["host"] for w in workers)
        results = list(pool.map([f"#eval {i} * 3 --!sim sleep_ms=20" for i in range(40)]))
        assert [eval_value(r) for r in results] == [str(i * 3) for i in range(40)]
        nodes = pool.stats().nodes
        assert set(nodes) == {two_nodes.head_id, two_nodes.other_id}
        assert sum(n["served"] for n in nodes.values()) == 40
        assert all(n["workers"] == 1 and n["served"] > 0 for n in nodes.values())
    assert ray.is_initialized()  # the user's Ray: the pool only joined it


def test_backend_ray_without_ray_starts_one_and_ends_it_at_shutdown() -> None:
    assert not ray.is_initialized()
    with LeanPool(sim_config(), 1, timeout=30, progress=False, backend="ray") as pool:
        assert ray.is_initialized()
        assert eval_value(pool.run("#eval 7 * 6")) == "42"
    assert not ray.is_initialized()  # and conftest checks that no Ray process is left


def test_headers_are_imported_once_across_nodes(two_nodes: TwoNodes) -> None:
    config = sim_config(imports={"HeaderA": (300, 10), "HeaderB": (300, 10)})
    commands = [f"import Header{'AB'[i % 2]}\n#eval {i}" for i in range(40)]
    with LeanPool(config, 2, timeout=30, progress=False, backend="ray") as pool:
        wait_until_up(pool, 2)
        assert [eval_value(r) for r in pool.map(commands)] == [str(i) for i in range(40)]
        stats = pool.stats()
        assert stats.header_imports == 2, stats  # each header on one node, once
        assert {w["node"]["id"] for w in stats.workers} == {two_nodes.head_id, two_nodes.other_id}


def test_a_node_lost_mid_batch_costs_no_request(two_nodes: TwoNodes) -> None:
    """One worker per node; the other node goes away while 120 requests run. Its running and
    queued requests run again on the surviving worker, each answered once and by its own
    result; no node has room for a replacement, and nothing waits for one."""
    with LeanPool(sim_config(), 2, timeout=30, progress=False, backend="ray") as pool:
        wait_until_up(pool, 2)
        futures = [pool.submit(f"#eval {i} + 1000 --!sim sleep_ms=40") for i in range(120)]
        deadline = time.monotonic() + 30
        while pool.stats().nodes.get(two_nodes.other_id, {}).get("served", 0) < 10:
            assert time.monotonic() < deadline, pool.stats()
            time.sleep(0.02)
        two_nodes.cluster.remove_node(two_nodes.other)
        values = [eval_value(f.result(timeout=120)) for f in futures]
        assert values == [str(i + 1000) for i in range(120)]
        stats = pool.stats()
        assert stats.recycles == {"worker_died": 1}
        assert stats.nodes[two_nodes.other_id]["worker_deaths"] == 1
        assert stats.nodes[two_nodes.other_id]["workers"] == 0
        assert stats.done == 120 and stats.ok == 120
        assert stats.retried >= 1  # what ran or waited on the lost node, sent again
        assert [w["state"] for w in stats.workers].count("starting") == 1  # waits for room
        added = two_nodes.cluster.add_node(num_cpus=1)  # room again: the replacement goes there
        workers = wait_until_up(pool, 2)
        assert {w["node"]["id"] for w in workers} == {two_nodes.head_id, added.node_id}
        assert eval_value(pool.run("#eval 5 * 5")) == "25"


def test_a_node_lost_mid_batch_is_charged_to_no_request(two_nodes: TwoNodes) -> None:
    """The actor of a lost node died through no fault of its requests: `worker_death_retries`
    is not spent on them (a request whose own worker died twice would fail)."""
    with LeanPool(sim_config(), 2, timeout=30, progress=False, backend="ray") as pool:
        wait_until_up(pool, 2)
        slots = pool._dispatcher.slots
        lost = next(s for s in slots if s.node == two_nodes.other_id)
        kept = next(s for s in slots if s.node == two_nodes.head_id)
        assert lost.worker is not None and kept.worker is not None
        two_nodes.cluster.remove_node(two_nodes.other)
        assert lost.worker.node_lost(lost.node) is True
        assert kept.worker.node_lost(kept.node) is False
        assert lost.serving_ticket() == 0  # no request charged
        assert kept.serving_ticket() is None  # not known: a death there charges its requests


def open_goal(session: PoolSession, name: str) -> int:
    response = session.run(f"theorem {name} (p q : Prop) (hp : p) (hq : q) : p ∧ q := by sorry")
    assert isinstance(response, CommandResponse) and response.sorries
    state = response.sorries[0].proof_state
    assert state is not None
    return state


def test_sessions_on_a_lost_node_move_to_the_surviving_one(two_nodes: TwoNodes) -> None:
    with LeanPool(sim_config(), 2, timeout=30, progress=False, backend="ray") as pool:
        wait_until_up(pool, 2)
        sessions = [pool.session() for _ in range(4)]
        states = [open_goal(s, f"t{k}") for k, s in enumerate(sessions)]
        halves = [
            s.run(ProofStep(proof_state=st, tactic="constructor"))
            for s, st in zip(sessions, states, strict=True)
        ]
        assert all(isinstance(h, ProofStepResponse) and len(h.goals) == 2 for h in halves)
        nodes = {
            pool._dispatcher.slots[s.slot_index].node for s in sessions if s.slot_index is not None
        }
        assert nodes == {two_nodes.head_id, two_nodes.other_id}  # balanced over both
        two_nodes.cluster.remove_node(two_nodes.other)
        for session, half in zip(sessions, halves, strict=True):
            assert isinstance(half, ProofStepResponse) and half.proof_state is not None
            done = session.run(ProofStep(proof_state=half.proof_state, tactic="exact hp"))
            assert isinstance(done, ProofStepResponse) and len(done.goals) == 1, done
            assert "q" in done.goals[0]
        stats = pool.stats()
        assert stats.session_moves >= 2 and stats.states_rebuilt >= 4
        survivors = {
            pool._dispatcher.slots[s.slot_index].node for s in sessions if s.slot_index is not None
        }
        assert survivors == {two_nodes.head_id}


def test_no_node_with_room_fails_waiting_requests_with_a_clear_error(two_nodes: TwoNodes) -> None:
    backend = ray_backend(num_cpus=4, placement_timeout=1.5)  # each node has 1 CPU
    started = time.monotonic()
    with LeanPool(sim_config(), 2, timeout=30, progress=False, backend=backend) as pool:
        future: Future[Any] = pool.submit("#eval 1")
        with pytest.raises(LeanPoolError, match=r"No pool worker could start.*'num_cpus': 4"):
            future.result(timeout=60)
        assert [w["state"] for w in pool.stats().workers] == ["starting", "starting"]
    assert time.monotonic() - started < 30  # shutting down does not wait for a place either


def test_a_node_whose_setup_fails_names_itself_and_the_step(
    two_nodes: TwoNodes, tmp_path: Any
) -> None:
    """A config whose REPL command is missing where the actor runs (deleted here after the
    config was made, as on a node that lacks it): each request gets the error, no restart
    loop."""
    tool = tmp_path / "repl"
    tool.write_text("#!/bin/sh\nexit 1\n")
    tool.chmod(0o755)
    config = sim_config().with_launch(sim_config().launch)
    config.repl_cmd = (str(tool),)
    config.launch = type(config.launch)((str(tool),), str(tmp_path), {}, None)
    tool.unlink()
    with LeanPool(config, 1, timeout=30, progress=False, backend="ray") as pool:
        with pytest.raises(LeanSetupError) as caught:
            pool.run("#eval 1")
        message = str(caught.value)
        assert "On Ray node " in message and caught.value.step in message
        node = message.split("On Ray node ")[1].split(" ")[0]
        assert node in (two_nodes.head_id, two_nodes.other_id)
        assert "same path on every machine" in message
        with pytest.raises(LeanSetupError):
            pool.run("#eval 2")
        assert pool.stats().recycles == {}
