"""Tactic-mode sessions over HTTP (leanpool/_serve/_sessions.py, the session routes of
_native.py): proof-state ids named by one HTTP request stay valid in the session's later requests,
branch, stream through /v1/batch, mean nothing in another session, and expire when idle. One
service for the module, with sessions that live one second when idle."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("starlette", reason="the serve extra is not installed (leanpool[serve])")
pytest.importorskip("uvicorn", reason="the serve extra is not installed (leanpool[serve])")
httpx = pytest.importorskip("httpx", reason="the serve extra is not installed (leanpool[serve])")

from serve_process import Served, serve  # noqa: E402

from leanpool._serve._http import HttpError  # noqa: E402
from leanpool._serve._sessions import SessionRegistry  # noqa: E402

THEOREM = "theorem t (n : Nat) : n + 0 = n := by sorry"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    options = ("--session-ttl", "1", "--timeout", "30")
    with serve(tmp_path_factory.mktemp("sessions"), *options, access_log=False) as served:
        yield served
        assert served.stop() == 0


def open_session(service: Served, body: Any = None) -> str:
    answer = httpx.post(service.url + "/v1/sessions", json=body, timeout=30)
    assert answer.status_code == 201, answer.text
    session: str = answer.json()["session"]
    return session


def run(service: Served, session: str, *requests: Any) -> list[dict[str, Any]]:
    answer = httpx.post(
        f"{service.url}/v1/sessions/{session}/run", json={"requests": list(requests)}, timeout=60
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["session"] == session
    results: list[dict[str, Any]] = answer.json()["results"]
    return results


def test_proof_states_stay_valid_across_the_requests_of_a_session(service: Served) -> None:
    session = open_session(service)
    (opened,) = run(service, session, {"id": "root", "cmd": THEOREM})
    assert opened["id"] == "root"
    state = opened["response"]["sorries"][0]["proofState"]
    assert state < 0  # a pool-owned session id
    # Later HTTP requests branch from it, as often as they like.
    steps = run(
        service,
        session,
        {"tactic": "simp", "proofState": state},
        {"tactic": "omega", "proofState": state},
        {"tactic": "intro h", "proofState": state},
    )
    assert steps[0]["response"]["proofStatus"] == "Completed"
    assert steps[1]["response"]["proofStatus"] == "Completed"
    assert [step["index"] for step in steps] == [0, 1, 2]
    # Streamed through /v1/batch, in the same session.
    body = {"session": session, "requests": [{"tactic": "rfl", "proofState": state}]}
    with httpx.stream("POST", service.url + "/v1/batch", json=body, timeout=60) as answer:
        lines = [json.loads(line) for line in answer.iter_lines() if line]
    assert lines[0]["response"]["proofStatus"] == "Completed"
    assert lines[-1] == {"done": True, "count": 1}


def test_ids_of_another_session_are_refused(service: Served) -> None:
    first, second = open_session(service), open_session(service, {"ttl": 30})
    (opened,) = run(service, first, THEOREM)
    state = opened["response"]["sorries"][0]["proofState"]
    (refused,) = run(service, second, {"tactic": "simp", "proofState": state})
    assert refused["error"]["kind"] == "RequestError"
    assert "not an id returned by this session" in refused["error"]["message"]


def test_closing_and_unknown_sessions(service: Served) -> None:
    session = open_session(service)
    closed = httpx.delete(f"{service.url}/v1/sessions/{session}", timeout=30)
    assert closed.status_code == 200 and closed.json() == {"session": session, "closed": True}
    for answer in (
        httpx.post(
            f"{service.url}/v1/sessions/{session}/run", json={"requests": ["#eval 1"]}, timeout=30
        ),
        httpx.delete(f"{service.url}/v1/sessions/{session}", timeout=30),
        httpx.post(service.url + "/v1/batch", json={"requests": ["#eval 1"], "session": "x"}),
    ):
        assert answer.status_code == 404
        assert answer.json() == {"detail": "Unknown or expired session."}
    bad = httpx.post(service.url + "/v1/sessions", json={"ttl": -1}, timeout=30)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "ttl"]


def test_an_idle_session_expires(service: Served) -> None:
    session = open_session(service)
    run(service, session, "#eval 1")
    deadline = time.monotonic() + 30
    while True:  # the service's ttl is 1 s: it is closed soon after, by the janitor or on use
        answer = httpx.post(
            f"{service.url}/v1/sessions/{session}/run", json={"requests": ["#eval 2"]}, timeout=30
        )
        if answer.status_code == 404:
            break
        assert answer.status_code == 200
        assert time.monotonic() < deadline, "the session never expired"
        time.sleep(1.5)
    stats = httpx.get(service.url + "/v1/stats", timeout=30).json()["service"]
    assert stats["sessions_expired"] >= 1


# --------------------------------------------------------------------------- the registry
class _FakeSession:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


class _FakePool:
    def session(self) -> _FakeSession:
        return _FakeSession()


def test_registry_limits_keys_and_expires_only_idle_sessions() -> None:
    registry = SessionRegistry(_FakePool(), ttl=10.0, per_key=2)  # type: ignore[arg-type]
    first = registry.open("key:a")
    second = registry.open("key:a", ttl=99)
    assert second.ttl == 10.0  # never more than the service's
    with pytest.raises(HttpError) as full:
        registry.open("key:a")
    assert full.value.status == 429 and "Retry-After" in full.value.headers
    other = registry.open("key:b", ttl=1)
    with pytest.raises(HttpError) as foreign:
        registry.get("key:b", first.id)  # another key's session looks unknown
    assert foreign.value.status == 404
    first.busy = 1
    now = time.monotonic() + 60
    assert registry.expire(now) == 2  # second and other; first is busy
    assert registry.get("key:a", first.id) is first and len(registry) == 1
    assert second.session.closed and other.session.closed  # type: ignore[attr-defined]
    registry.close_all()
    assert first.session.closed and len(registry) == 0  # type: ignore[attr-defined]
