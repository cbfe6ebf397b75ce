"""State ids in requests and responses, and the session ids of caller-owned id spaces."""

from __future__ import annotations

from leanpool._ids import (
    ID_BASE_STEP,
    base_of,
    based_id,
    copy_id_containers,
    get_path,
    is_based,
    request_id_fields,
    response_id_paths,
    set_path,
)
from leanpool.protocol import Command, PickleProofState, ProofStep


def test_response_id_paths_names_every_state() -> None:
    response = {
        "env": 3,
        "sorries": [{"proofState": 4, "goal": "⊢ True"}, {"proofState": 5, "goal": "⊢ False"}],
        "tactics": [{"proofState": 6, "tactic": "rfl"}],
    }
    assert list(response_id_paths(response)) == [
        (("env",), "env", 3),
        (("sorries", 0, "proofState"), "proofState", 4),
        (("sorries", 1, "proofState"), "proofState", 5),
        (("tactics", 0, "proofState"), "proofState", 6),
    ]
    step = {"proofState": 7, "goals": [], "proofStatus": "Completed"}
    assert list(response_id_paths(step)) == [(("proofState",), "proofState", 7)]


def test_based_ids_find_their_request_again() -> None:
    base = 7 * ID_BASE_STEP
    ids = [based_id(base, k) for k in range(3)]
    assert ids == [-base, -(base + 1), -(base + 2)]
    assert all(is_based(i) and base_of(i) == base for i in ids)
    assert not is_based(-1) and not is_based(-(ID_BASE_STEP - 1))  # a cache's own counter
    assert base_of(based_id(base, ID_BASE_STEP - 1)) == base


def test_request_id_fields_and_paths_written_back() -> None:
    assert request_id_fields(Command(cmd="x", env=3)) == [("env", "env", 3)]
    assert request_id_fields(Command(cmd="x")) == []
    assert request_id_fields(ProofStep(proof_state=4, tactic="rfl")) == [
        ("proof_state", "proofState", 4)
    ]
    pickle = PickleProofState(proof_state=5, pickle_to="p.olean")
    assert request_id_fields(pickle) == [("proof_state", "proofState", 5)]
    response = {"env": 1, "sorries": [{"proofState": 2}]}
    copied = copy_id_containers(response)
    set_path(copied, ("sorries", 0, "proofState"), -9)
    assert get_path(copied, ("sorries", 0, "proofState")) == -9
    assert response["sorries"][0]["proofState"] == 2  # the original is untouched
    assert get_path(copied, ("tactics", 0, "proofState")) is None
