"""`leanpool serve`'s Kimina endpoints (leanpool/_serve/_kimina.py): the shapes Kimina's server
writes, checked with httpx, and Kimina's own clients (kimina-client 0.2.1 on Python 3.12, and
the legacy Lean4Client's requests) driving the service unchanged. One service for the module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette", reason="the serve extra is not installed (leanpool[serve])")
pytest.importorskip("uvicorn", reason="the serve extra is not installed (leanpool[serve])")
httpx = pytest.importorskip("httpx", reason="the serve extra is not installed (leanpool[serve])")

from serve_process import Served, kimina_client_python, run_kimina_client, serve  # noqa: E402

from leanpool._errors import LeanCrashError, LeanTimeoutError, RequestError  # noqa: E402
from leanpool._serve._kimina import check_result, describe_error, verify_result  # noqa: E402

WRONG = "import Mathlib\ntheorem w : 2 + 2 = 5 := by decide"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("kimina"), "--timeout", "30") as served:
        yield served
        assert served.stop() == 0


def check(service: Served, body: dict[str, Any], path: str = "/api/check") -> httpx.Response:
    return httpx.post(service.url + path, json=body, timeout=60)


def test_health_and_root_answer_ok_without_a_key(service: Served) -> None:
    for path in ("/", "/health", "/health/"):
        answer = httpx.get(service.url + path, headers={"Authorization": "Bearer None"})
        assert answer.status_code == 200, path
        assert answer.json() == {"status": "ok"}


def test_check_answers_each_snippet_in_order_in_kimina_shapes(service: Served) -> None:
    body = {
        "snippets": [
            {"id": "eval", "code": "#eval 6 * 7"},
            {"id": "wrong", "code": WRONG},
            {"id": "sorry", "code": "theorem s : 1 + 1 = 2 := by sorry"},
            {"id": "empty", "code": ""},
        ],
        "timeout": 20,
        "debug": False,
        "reuse": True,
        "infotree": None,
        "unknown_field": "ignored, as Kimina ignores it",
    }
    answer = check(service, body)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    results = answer.json()["results"]
    assert [r["id"] for r in results] == ["eval", "wrong", "sorry", "empty"]
    for result in results:
        assert isinstance(result["time"], float) and result["time"] >= 0
        assert ("response" in result) != ("error" in result), result
        assert "diagnostics" not in result
    assert results[0]["response"]["messages"][0]["data"] == "42"
    error = results[1]["response"]["messages"][0]
    assert error["severity"] == "error"
    # Positions refer to the snippet as sent, its import line included (Kimina's PR 56).
    assert error["pos"]["line"] == 2 and error["endPos"]["line"] == 2
    assert results[2]["response"]["sorries"][0]["goal"] == "⊢ 1 + 1 = 2"
    assert results[3]["error"].startswith("Empty snippet"), results[3]  # never "valid"


def test_trailing_slash_debug_and_infotree(service: Served) -> None:
    body = {"snippets": [{"id": "a", "code": "#eval 1"}], "debug": True, "infotree": "original"}
    answer = check(service, body, "/api/check/")
    assert answer.status_code == 200, answer.text
    assert answer.json()["results"][0]["diagnostics"] == {}


@pytest.mark.allow_leftover_processes  # the hung and the crashed REPLs are replaced, by design
def test_timeouts_and_crashes_are_that_snippets_error_only(service: Served) -> None:
    body = {
        "snippets": [
            {"id": "hang", "code": "#eval 1 --!sim hang"},
            {"id": "crash", "code": "#eval 2 --!sim crash"},
            {"id": "fine", "code": "#eval 3"},
        ],
        "timeout": 1,
    }
    results = {r["id"]: r for r in check(service, body).json()["results"]}
    assert results["hang"]["error"] == "Lean REPL command timed out in 1.0 seconds"
    assert results["hang"]["time"] == 1.0
    assert results["crash"]["error"].startswith("Lean REPL crashed")
    assert "timed out" not in results["crash"]["error"]  # the client's analyze(): server_error
    assert results["fine"]["response"]["messages"][0]["data"] == "3"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"snippets": []}, "`snippets` must be non empty"),
        ({"snippets": [{"id": "a", "code": "1"}, {"id": "a", "code": "2"}]}, "unique ids"),
        ({"snippets": [{"id": "a", "code": "1"}], "infotree": "everything"}, "infotree"),
        ({"snippets": [{"id": "a", "code": "1"}], "timeout": -1}, "timeout"),
        ({"snippets": [{"code": "1"}]}, "id"),
        ({"timeout": 3}, "snippets"),
    ],
)
def test_bad_check_requests_are_422_in_fastapi_shape(
    service: Served, body: dict[str, Any], message: str
) -> None:
    answer = check(service, body)
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert isinstance(detail, list) and detail[0]["loc"][0] == "body"
    assert message in str(detail)


def test_malformed_json_is_400(service: Served) -> None:
    answer = httpx.post(service.url + "/api/check", content=b'{"snippets": [', timeout=30)
    assert answer.status_code == 400
    assert "Malformed JSON" in answer.json()["detail"]


def test_legacy_verify_and_one_pass_verify_batch(service: Served) -> None:
    body = {
        "codes": [
            {"custom_id": 7, "proof": "#eval 7", "code": "#eval 8"},  # proof wins over code
            {"custom_id": "b", "code": WRONG},
            {"custom_id": "slow", "code": "#eval 9 --!sim sleep_ms=3000"},
        ],
        "timeout": 1,
        "infotree_type": None,
        "disable_cache": False,
    }
    for path in ("/verify", "/one_pass_verify_batch"):
        results = check(service, body, path).json()["results"]
        assert [r["custom_id"] for r in results] == ["7", "b", "slow"]  # strings, as Kimina's
        assert results[0]["response"]["messages"][0]["data"] == "7"
        assert isinstance(results[0]["response"]["time"], float)
        assert "error" not in results[0]
        assert results[1]["response"]["messages"][0]["pos"]["line"] == 2
        assert results[2] == {
            "custom_id": "slow",
            "error": "Lean REPL command timed out in 1.0 seconds",
        }
    neither = check(service, {"codes": [{"custom_id": 1}]}, "/verify")
    assert neither.status_code == 422
    assert neither.json()["detail"][0]["loc"] == ["body", "codes", 0]


def test_result_shapes_for_every_outcome() -> None:
    timeout = LeanTimeoutError("no answer", timeout=5.0)
    assert check_result("a", timeout, 5.2, 5.0, False) == {
        "id": "a",
        "time": 5.0,
        "error": "Lean REPL command timed out in 5.0 seconds",
    }
    crashed = check_result("b", LeanCrashError("died"), 0.5, 5.0, True)
    assert crashed["error"].startswith("Lean REPL crashed") and crashed["diagnostics"] == {}
    assert "timed out" not in describe_error(RequestError("bad"), 5.0)
    assert verify_result("c", timeout, 5.2, 5.0) == {
        "custom_id": "c",
        "error": "Lean REPL command timed out in 5.0 seconds",
    }


@pytest.fixture(scope="module")
def client_python() -> Path:
    python, why = kimina_client_python()
    if python is None:
        pytest.skip(f"no environment for kimina-client 0.2.1 here: {why}")
    return python


@pytest.mark.allow_leftover_processes  # one snippet times out: its REPL is replaced
def test_kimina_clients_work_unchanged(service: Served, client_python: Path) -> None:
    report: dict[str, Any] = run_kimina_client(client_python, service.url)
    assert report["sync_health"] == report["async_health"] == {"status": "ok"}
    assert report["sync_test"] == report["async_test"] == "passed"  # `#check Nat`, exactly
    for prefix, key in (("s", "sync_check"), ("a", "async_check")):
        results = report[key]
        ids = [r["id"] for r in results]
        expected = [f"{prefix}{i}" for i in range(20)] + [
            f"{prefix}{k}" for k in ("wrong", "sorry", "valid")
        ]
        if prefix == "a":
            expected.append("aslow")
            assert ids == expected  # the async client keeps input order
        assert sorted(ids) == sorted(expected)  # every snippet exactly once (sync: as completed)
        by_id = {r["id"]: r for r in results}
        for i in range(20):
            assert by_id[f"{prefix}{i}"]["status"] == "valid"
            assert by_id[f"{prefix}{i}"]["response"]["messages"][0]["data"] == str(7 * i)
        assert by_id[f"{prefix}wrong"]["status"] == "lean_error"
        assert by_id[f"{prefix}sorry"]["status"] == "sorry"
        assert by_id[f"{prefix}valid"]["status"] == "valid"
    slow = {r["id"]: r for r in report["async_check"]}["aslow"]
    assert slow["status"] == "timeout_error" and slow["time"] == 2.0
    assert report["sync_bare_string"][0]["status"] == "valid"
    assert report["sync_api_check"][0]["response"]["messages"][0]["data"] == "42"
    # The legacy Lean4Client: gone from kimina-client 0.2.1; its requests, sent as it sends
    # them (with "Bearer None"), are answered, and 0.2.1's legacy models read the answers.
    assert report["lean4client_import"].startswith("ImportError")
    assert report["legacy_root"] == {"status": "ok"}
    for path in ("/verify", "/one_pass_verify_batch"):
        legacy = report[path]
        assert legacy["status"] == 200 and legacy["content_type"] == "application/json"
        assert [r["custom_id"] for r in legacy["results"]] == ["7", "b"]
        assert [p["is_valid_no_sorry"] for p in legacy["parsed"]] == [True, False]
        assert all(isinstance(p["time"], float) for p in legacy["parsed"])
