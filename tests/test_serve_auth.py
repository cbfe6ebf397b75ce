"""API keys and per-key limits of `leanpool serve` (leanpool/_serve/_auth.py, and the CLI's key
options in leanpool/_cli/_serve.py): 401 for a missing or wrong key, 429 with Retry-After past a
key's budget while other keys go on, 413 for a request larger than the budget, access logs that
never hold a key, and Kimina's client with a key. One service for the module, its keys from
$LEANPOOL_API_KEY."""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette", reason="the serve extra is not installed (leanpool[serve])")
pytest.importorskip("uvicorn", reason="the serve extra is not installed (leanpool[serve])")
httpx = pytest.importorskip("httpx", reason="the serve extra is not installed (leanpool[serve])")

from serve_process import Served, kimina_client_python, run_kimina_client, serve  # noqa: E402

from leanpool._cli._serve import api_keys  # noqa: E402
from leanpool._serve._auth import ANONYMOUS, KeyRing, Limiter, key_label  # noqa: E402
from leanpool._serve._http import HttpError  # noqa: E402

KEY_A = "alpha-7f3e9c1d2b4a"
KEY_B = "bravo-0e1d2c3b4a59"
BUDGET = 3


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    env = dict(os.environ, LEANPOOL_API_KEY=f"{KEY_A}, {KEY_B}")
    options = ("--max-in-flight-per-key", str(BUDGET), "--timeout", "30")
    with serve(tmp_path_factory.mktemp("auth"), *options, env=env) as served:
        yield served
        assert served.stop() == 0


def check(service: Served, headers: dict[str, str], count: int = 1) -> httpx.Response:
    body = {"snippets": [{"id": str(k), "code": f"#eval {k}"} for k in range(count)]}
    return httpx.post(service.url + "/api/check", json=body, headers=headers, timeout=60)


def test_requests_without_a_valid_key_get_401(service: Served) -> None:
    missing = check(service, {})
    assert missing.status_code == 401 and missing.json() == {"detail": "Missing API key"}
    assert missing.headers["www-authenticate"] == "Bearer"
    for wrong in (f"Bearer {KEY_A}x", "Bearer None", KEY_A[:-1], f"Basic {KEY_A}"):
        answer = check(service, {"Authorization": wrong})
        assert answer.status_code == 401, wrong
        assert answer.json() == {"detail": "Invalid API key"}
    for path in ("/v1/stats", "/metrics"):
        assert httpx.get(service.url + path, timeout=30).status_code == 401
    body = {"requests": ["#eval 1"]}
    assert httpx.post(service.url + "/v1/batch", json=body, timeout=30).status_code == 401
    assert httpx.post(service.url + "/v1/sessions", timeout=30).status_code == 401
    # Health needs no key, as on Kimina's server.
    assert httpx.get(service.url + "/health", timeout=30).json() == {"status": "ok"}
    assert httpx.get(service.url + "/v1/health", timeout=30).json()["auth"] is True


def test_either_key_works_with_or_without_bearer(service: Served) -> None:
    for header in (f"Bearer {KEY_A}", KEY_A, f"bearer {KEY_B}", f"Bearer  {KEY_B}"):
        answer = check(service, {"Authorization": header})
        assert answer.status_code == 200, header
        assert answer.json()["results"][0]["response"]["messages"][0]["data"] == "0"


def test_a_key_past_its_budget_gets_429_and_others_go_on(service: Served) -> None:
    headers_a = {"Authorization": f"Bearer {KEY_A}"}
    body = {"requests": [f"#eval {k} --!sim sleep_ms=1500" for k in range(BUDGET)]}
    with httpx.stream(
        "POST", service.url + "/v1/batch", json=body, headers=headers_a, timeout=60
    ) as holding:
        assert holding.status_code == 200  # A's whole budget is in flight now
        refused = check(service, headers_a)
        assert refused.status_code == 429
        assert "in flight for this API key" in refused.json()["detail"]
        assert int(refused.headers["retry-after"]) >= 1
        other = check(service, {"Authorization": f"Bearer {KEY_B}"})
        assert other.status_code == 200  # budgets are per key
        lines = [json.loads(line) for line in holding.iter_lines() if line]
    assert lines[-1] == {"done": True, "count": BUDGET}
    assert check(service, headers_a).status_code == 200  # the budget is back
    too_big = check(service, headers_a, count=BUDGET + 1)
    assert too_big.status_code == 413 and "split the request" in too_big.json()["detail"]


def test_access_log_names_keys_by_label_only(service: Served) -> None:
    check(service, {"Authorization": f"Bearer {KEY_A}"})
    assert service.access_log is not None
    text = service.access_log.read_text()
    assert KEY_A not in text and KEY_B not in text
    assert KEY_A[:8] not in text and KEY_B[:8] not in text
    keys = {json.loads(line)["key"] for line in text.splitlines()}
    assert {key_label(KEY_A), key_label(KEY_B)} <= keys
    assert KEY_A not in service.output() and KEY_B not in service.output()
    metrics = httpx.get(service.url + "/metrics", headers={"Authorization": KEY_B}, timeout=30).text
    assert KEY_A not in metrics and KEY_B not in metrics


def test_the_repls_never_see_the_keys(service: Served) -> None:
    """The service's environment holds the keys; its REPLs run in the sandbox, whose scrubbed
    environment leaves them out (a submission could print them otherwise)."""
    probe = "#eval 0 --!sim getenv=LEANPOOL_API_KEY getenv=HOME"
    body = {"requests": [probe]}
    headers = {"Authorization": f"Bearer {KEY_A}"}
    answer = httpx.post(service.url + "/v1/batch", json=body, headers=headers, timeout=60)
    first = json.loads(answer.text.splitlines()[0])
    shown = [message["data"] for message in first["response"]["messages"]]
    assert "LEANPOOL_API_KEY is not set" in shown
    assert any(text.startswith("HOME=") for text in shown)  # what Lean needs is passed
    assert KEY_A not in answer.text


@pytest.fixture(scope="module")
def client_python() -> Path:
    python, why = kimina_client_python()
    if python is None:
        pytest.skip(f"no environment for kimina-client 0.2.1 here: {why}")
    return python


def test_kimina_client_with_a_key(service: Served, client_python: Path) -> None:
    report: dict[str, Any] = run_kimina_client(client_python, service.url, KEY_A, "--keys-only")
    assert [r["status"] for r in report["keyed_check"]] == ["valid"] * 3
    assert [r["status"] for r in report["keyed_async_check"]] == ["valid"] * 3
    for result in report["wrong_key_check"]:  # the client turns the 401 into per-snippet errors
        assert result["status"] == "server_error" and "failed" in result["error"]


# --------------------------------------------------------------------------- parts
def test_key_ring() -> None:
    ring = KeyRing([KEY_A, KEY_B])
    assert ring.enabled and ring.labels == [key_label(KEY_A), key_label(KEY_B)]
    assert ring.identify(f"Bearer {KEY_B}") == key_label(KEY_B)
    assert ring.identify(KEY_A) == key_label(KEY_A)
    for header, status, detail in (
        (None, 401, "Missing API key"),
        ("  ", 401, "Missing API key"),
        ("Bearer ", 401, "Invalid API key"),  # as Kimina's server answers it
        (KEY_A + KEY_B, 401, "Invalid API key"),
    ):
        with pytest.raises(HttpError) as refused:
            ring.identify(header)
        assert (refused.value.status, refused.value.detail) == (status, detail)
    assert KeyRing([]).identify("Bearer None") == ANONYMOUS
    assert not KeyRing([]).enabled
    assert key_label(KEY_A).startswith("key:") and KEY_A not in key_label(KEY_A)


def test_limiter_budgets_and_retry_after() -> None:
    limiter = Limiter(per_key=4, workers=2)
    limiter.acquire("a", 3)
    with pytest.raises(HttpError) as refused:
        limiter.acquire("a", 2)
    assert refused.value.status == 429 and refused.value.headers["Retry-After"] == "1"
    limiter.acquire("b", 4)
    with pytest.raises(HttpError) as huge:
        limiter.acquire("c", 5)
    assert huge.value.status == 413
    limiter.release("a", 3)
    assert "a" not in limiter.in_flight and limiter.in_flight == {"b": 4}
    for _ in range(200):
        limiter.observe(10.0)  # slow requests: a longer wait is suggested, at most 60 s
    assert limiter.retry_after(4) == 20 and limiter.retry_after(1000) == 60
    assert limiter.refused == 1


def test_keys_come_from_the_option_or_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEANPOOL_API_KEY", "one,two  three")
    assert api_keys(argparse.Namespace(api_key=[])) == ("one", "two", "three")
    assert api_keys(argparse.Namespace(api_key=["given", "given"])) == ("given",)
    monkeypatch.delenv("LEANPOOL_API_KEY")
    assert api_keys(argparse.Namespace(api_key=[])) == ()


def test_one_key_cannot_starve_another_in_parallel(service: Served) -> None:
    """Many concurrent requests of key A: A's excess is refused at once (429), never queued;
    key B, sent meanwhile, is answered."""
    headers_a = {"Authorization": f"Bearer {KEY_A}"}
    statuses: list[int] = []

    def flood() -> None:
        body = {"snippets": [{"id": "x", "code": "#eval 1 --!sim sleep_ms=300"}]}
        answer = httpx.post(service.url + "/api/check", json=body, headers=headers_a, timeout=60)
        statuses.append(answer.status_code)

    threads = [threading.Thread(target=flood) for _ in range(3 * BUDGET)]
    for thread in threads:
        thread.start()
    time.sleep(0.05)
    assert check(service, {"Authorization": KEY_B}).status_code == 200
    for thread in threads:
        thread.join(60)
    assert statuses.count(200) >= 1 and set(statuses) <= {200, 429}
