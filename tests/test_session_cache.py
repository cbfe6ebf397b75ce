"""Session caches: replay and pickle rebuilds, caller-owned ids, bookkeeping."""

from __future__ import annotations

from pathlib import Path

import pytest

from leanpool._auto_server import AutoLeanServer
from leanpool._ids import ID_BASE_STEP
from leanpool._session_cache import PickleSessionCache, ReplaySessionCache
from leanpool.protocol import Command, CommandResponse, ProofStep, ProofStepResponse
from leanpool.testing import sim_config


def test_caller_owned_ids_are_positional_and_rebuilt_after_restart() -> None:
    cache = ReplaySessionCache()
    server = AutoLeanServer(sim_config(), session_cache=cache, max_total_memory=None)
    try:
        base = 5 * ID_BASE_STEP
        [raw] = server.run_batch_raw(
            [Command(cmd="theorem t (p : Prop) (h : p) : p := by sorry")], id_bases=[base]
        )
        assert isinstance(raw, dict)
        assert raw["env"] == -(base | 0)
        assert raw["sorries"][0]["proofState"] == -(base | 1)
        server.restart()
        step = server.run(ProofStep(proof_state=-(base | 1), tactic="exact h"))
        assert isinstance(step, ProofStepResponse) and step.proof_status == "Completed"
    finally:
        server.kill()


def test_adopted_recipe_is_materialized_on_first_use() -> None:
    cache = ReplaySessionCache()
    server = AutoLeanServer(sim_config(), session_cache=cache, max_total_memory=None)
    try:
        base = 9 * ID_BASE_STEP
        cache.adopt(Command(cmd="def seven := 7"), id_base=base)
        response = server.run(Command(cmd="#check seven", env=-(base | 0)))
        assert isinstance(response, CommandResponse)
        assert "seven" in response.messages[0].data
    finally:
        server.kill()


def test_pickle_cache_unpickles_instead_of_replaying(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = PickleSessionCache(tmp_path)
    server = AutoLeanServer(sim_config(), session_cache=cache, max_total_memory=None)
    try:
        kept = server.run(Command(cmd="def nine := 9"), add_to_session_cache=True)
        assert isinstance(kept, CommandResponse)
        [pickled] = (tmp_path / "session_cache").glob("*.olean")
        from leanpool.sessioncache import PickleSessionState

        [state] = list(cache)  # LeanInteract's state class, with its pickle_file
        assert isinstance(state, PickleSessionState) and state.pickle_file == str(pickled)
        server.restart()

        def no_replay(*args: object, **kwargs: object) -> int:
            raise AssertionError("replayed instead of unpickled")

        monkeypatch.setattr(ReplaySessionCache, "materialize", no_replay)
        response = server.run(Command(cmd="#check nine", env=kept.env))
        assert isinstance(response, CommandResponse)
        assert "nine" in response.messages[0].data
        cache.clear()
        assert not list((tmp_path / "session_cache").glob("*.olean"))
    finally:
        server.kill()


def test_leaninteract_s_verbose_parameters_are_accepted(tmp_path: Path) -> None:
    for cache in (ReplaySessionCache(), PickleSessionCache(tmp_path)):
        with AutoLeanServer(sim_config(), session_cache=cache) as server:
            env = server.run(Command(cmd="def a := 1"), add_to_session_cache=True)
            assert isinstance(env, CommandResponse) and env.env == -1
            cache.remove(-1, verbose=True)
            assert cache.keys() == []
            server.run(Command(cmd="def b := 2"), add_to_session_cache=True)
            cache.clear(verbose=False)
            assert cache.is_empty()


def test_iterating_a_cache_lists_its_states_as_leaninteract_does() -> None:
    from leanpool.sessioncache import ReplaySessionState, SessionState

    cache = ReplaySessionCache()
    with AutoLeanServer(sim_config(), session_cache=cache, max_total_memory=None) as server:
        root = server.run(
            Command(cmd="theorem t (p : Prop) (h : p) : p := by sorry"), add_to_session_cache=True
        )
        assert isinstance(root, CommandResponse)
        state = root.sorries[0].proof_state
        assert state is not None
        states = list(cache)
        assert all(isinstance(s, ReplaySessionState) for s in states)  # LeanInteract's class
        assert all(isinstance(s, SessionState) for s in states)
        assert {(s.session_id, s.is_proof_state) for s in states} == {
            (root.env, False),
            (state, True),
        }
        assert cache[state].is_proof_state and not cache[root.env].is_proof_state
        request = cache[state].request  # what rebuilds it (as sent: with the config's options)
        assert isinstance(request, Command) and request.cmd.startswith("theorem t (p : Prop)")
        with pytest.raises(KeyError):
            cache[-999]
