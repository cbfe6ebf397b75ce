"""`leanpool serve`'s own endpoints and service behaviour (leanpool/_serve/_app.py, _native.py,
_bridge.py, _http.py, _metrics.py, _accesslog.py): batches streamed as NDJSON, verdicts, health,
statistics, metrics, clear 4xx answers to bad input, cancellation when the client goes away,
and 200 requests in flight at once, each answered exactly once. One service for the module."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import replace
from typing import Any

import pytest

pytest.importorskip("starlette", reason="the serve extra is not installed (leanpool[serve])")
pytest.importorskip("uvicorn", reason="the serve extra is not installed (leanpool[serve])")
httpx = pytest.importorskip("httpx", reason="the serve extra is not installed (leanpool[serve])")

from serve_process import Served, serve  # noqa: E402

from leanpool import LeanTimeoutError  # noqa: E402
from leanpool._serve._bridge import Completions  # noqa: E402
from leanpool._serve._http import HttpError  # noqa: E402
from leanpool._serve._metrics import Metrics  # noqa: E402
from leanpool._serve._native import parse_items  # noqa: E402
from leanpool._serve._settings import ServeSettings  # noqa: E402
from leanpool._stats import StatsBook  # noqa: E402
from leanpool.protocol import CommandResponse, LeanError  # noqa: E402

POS = {"line": 1, "column": 0}

STATEMENT = "theorem add_comm' (a b : Nat) : a + b = b + a := by sorry"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("app"), "--timeout", "30", "--max-body-mb", "0.05") as s:
        yield s
        assert s.stop() == 0


def post(service: Served, path: str, body: Any, **options: Any) -> httpx.Response:
    return httpx.post(service.url + path, json=body, timeout=options.pop("timeout", 60), **options)


def stats(service: Served) -> dict[str, Any]:
    answer = httpx.get(service.url + "/v1/stats", timeout=30)
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()
    return data


def wait_idle(service: Served, seconds: float = 60) -> dict[str, Any]:
    """Until nothing is in flight for any key, and the pool runs nothing (bounded)."""
    deadline = time.monotonic() + seconds
    while True:
        now = stats(service)
        if not now["service"]["in_flight"] and not now["pool"]["running"]:
            return now
        assert time.monotonic() < deadline, now
        time.sleep(0.1)


# --------------------------------------------------------------------------- /v1/batch
def test_batch_streams_each_result_as_it_completes(service: Served) -> None:
    body = {
        "requests": [
            {"id": "slow", "cmd": "#eval 1 --!sim sleep_ms=3000"},
            {"id": "fast", "cmd": "#eval 2"},
            "#eval 3",
            {"tactic": "simp", "proofState": 0},  # names a state outside a session
        ]
    }
    with httpx.stream("POST", service.url + "/v1/batch", json=body, timeout=60) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "application/x-ndjson"
        lines = answer.iter_lines()
        first = json.loads(next(line for line in lines if line))
        # Streamed, not buffered: a line arrived while the slow request still runs (the four
        # stay in flight until the HTTP request ends).
        assert stats(service)["service"]["in_flight"] == {"anonymous": 4}
        assert first["index"] != 0
        rest = [json.loads(line) for line in lines if line]
    entries = {entry["index"]: entry for entry in [first, *rest[:-1]]}
    assert sorted(entries) == [0, 1, 2, 3]
    assert rest[-1] == {"done": True, "count": 4}
    assert entries[0]["id"] == "slow" and entries[0]["response"]["messages"][0]["data"] == "1"
    assert entries[1]["id"] == "fast" and entries[1]["response"]["messages"][0]["data"] == "2"
    assert "id" not in entries[2] and entries[2]["response"]["messages"][0]["data"] == "3"
    assert entries[3]["error"]["kind"] == "RequestError"
    assert "session" in entries[3]["error"]["message"]
    for entry in entries.values():
        assert entry["seconds"] >= 0


@pytest.mark.parametrize(
    ("body", "loc", "message"),
    [
        ({"requests": ["#eval 1"], "extra": 1}, ["body", "extra"], "Extra inputs"),
        ({"requests": [{"cmd": "#eval 1", "bogus": 2}]}, ["body", "requests", 0], "bogus"),
        ({"requests": ["#eval 1", 5]}, ["body", "requests", 1], "Lean text or an object"),
        ({"requests": ["#eval 1", "  "]}, ["body", "requests", 1], "nothing for Lean"),
        ({"requests": [{"cmd": "#eval 1", "env": "3"}]}, ["body", "requests", 0], "env"),
        ({"requests": [{"id": [1], "cmd": "#eval 1"}]}, ["body", "requests", 0, "id"], "id"),
        ({"requests": []}, ["body", "requests"], "at least 1"),
        ({"requests": ["#eval 1"], "timeout": 0}, ["body", "timeout"], "greater than 0"),
    ],
)
def test_bad_batches_are_422_naming_the_problem(
    service: Served, body: dict[str, Any], loc: list[Any], message: str
) -> None:
    answer = post(service, "/v1/batch", body)
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"][0]
    assert detail["loc"] == loc
    assert message in detail["msg"]


def test_malformed_empty_oversized_and_misrouted_requests(service: Served) -> None:
    url = service.url
    malformed = httpx.post(url + "/v1/batch", content=b"{not json", timeout=30)
    assert malformed.status_code == 400 and "Malformed JSON" in malformed.json()["detail"]
    empty = httpx.post(url + "/v1/verify", content=b"", timeout=30)
    assert empty.status_code == 400 and "Empty request body" in empty.json()["detail"]
    huge = {"requests": ["#eval 1 -- " + "x" * 100_000]}  # the service takes 0.05 MB at most
    too_big = post(service, "/v1/batch", huge)
    assert too_big.status_code == 413 and "larger than" in too_big.json()["detail"]
    wrong_method = httpx.get(url + "/v1/batch", timeout=30)
    assert wrong_method.status_code == 405 and wrong_method.json()["detail"]
    nowhere = httpx.get(url + "/v2/nothing", timeout=30)
    assert nowhere.status_code == 404 and nowhere.json()["detail"] == "Not Found"


def test_requests_naming_server_paths_need_the_sandbox() -> None:
    requests = [{"path": "Main.lean"}, {"env": 1, "pickleTo": "x.olean"}]
    ids, models = parse_items(requests, sandboxed=True)
    assert ids == [None, None] and len(models) == 2
    for index, request in enumerate(requests):
        with pytest.raises(HttpError) as refused:
            parse_items([request], sandboxed=False)
        assert refused.value.status == 422, index
        assert "sandbox" in str(refused.value.detail)


# --------------------------------------------------------------------------- /v1/verify
def test_verify_gives_verdicts_with_their_reasons(service: Served) -> None:
    body = {
        "submissions": [
            {"id": "honest", "code": "theorem add_comm' (x y : Nat) : x + y = y + x := by omega",
             "formal_statement": STATEMENT},
            {"id": "cheat", "code": "axiom cheat : False\ntheorem c : 2 + 2 = 5 := cheat.elim"},
            {"id": "sorry", "code": "theorem s : 1 = 1 := by sorry"},
            {"id": "weakened", "code": "theorem add_comm' (a b : Nat) : a + b = a + b := by rfl",
             "formal_statement": STATEMENT},
            {"id": "wrong", "code": "theorem w : 2 + 2 = 5 := by norm_num"},
            {"id": "no_theorem", "code": "theorem q : True := trivial",
             "formal_statement": "def x := 1"},
        ]
    }  # fmt: skip
    answer = post(service, "/v1/verify", body)
    assert answer.status_code == 200, answer.text
    results = {r["id"]: r for r in answer.json()["results"]}
    expected = {
        "honest": ("passed", []),
        "cheat": ("rejected", ["forbidden_command:axiom"]),
        "sorry": ("rejected", ["sorry"]),
        "weakened": ("rejected", ["statement_mismatch"]),
        "wrong": ("lean_error", ["error"]),
        "no_theorem": ("input_error", ["input_error"]),
    }
    assert {k: (r["status"], r["reasons"]) for k, r in results.items()} == expected
    assert results["honest"]["passed"] is True and "propext" not in results["honest"]["reasons"]
    assert "add_comm'" in results["honest"]["axioms"]
    assert results["no_theorem"]["error"]["kind"] == "RequestError"
    assert answer.json()["summary"] == {
        "passed": 1, "rejected": 3, "lean_error": 1, "input_error": 1,
    }  # fmt: skip

    # The request's own policy, and the streamed form.
    body = {"submissions": [{"id": "s", "code": "theorem s2 : 1 = 1 := by sorry"}],
            "policy": {"allow_sorry": True}, "stream": True}  # fmt: skip
    with httpx.stream("POST", service.url + "/v1/verify", json=body, timeout=60) as streamed:
        lines = [json.loads(line) for line in streamed.iter_lines() if line]
    assert lines[0]["status"] == "passed" and lines[0]["id"] == "s"
    assert lines[-1] == {"done": True, "count": 1, "summary": {"passed": 1}}
    unknown = post(service, "/v1/verify", {"submissions": [{"code": "x"}], "policy": {"x": 1}})
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"][:3] == [
        "body",
        "policy",
        "x",
    ]


# --------------------------------------------------------------------------- health, stats
def test_health_stats_and_metrics(service: Served) -> None:
    health = httpx.get(service.url + "/v1/health", timeout=30).json()
    assert health["status"] == "ok" and health["workers"] == 2
    assert health["simulator"] is True and health["auth"] is False
    now = stats(service)
    assert now["pool"]["submitted"] >= 1 and "workers" in now["pool"]
    assert now["service"]["sessions_open"] == 0
    metrics = httpx.get(service.url + "/metrics", timeout=30)
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = metrics.text.splitlines()
    samples = [line for line in lines if line and not line.startswith("#")]
    for sample in samples:
        name, value = sample.rsplit(" ", 1)
        float(value)  # every sample has a number
        assert name.startswith("leanpool_"), sample
    assert any(
        s.startswith('leanpool_http_requests_total{method="GET",route="/v1/health"')
        for s in samples
    )
    assert "# TYPE leanpool_http_request_seconds histogram" in lines
    assert any(s.startswith("leanpool_pool_worker_rss_bytes") for s in samples)
    host = socket.gethostname()
    served = [s for s in samples if s.startswith("leanpool_pool_node_served_total{")]
    assert served and all(f'node="{host}",host="{host}"' in s for s in served), served
    assert "leanpool_pool_retried_total 0" in samples


def test_access_log_has_one_json_line_per_request(service: Served) -> None:
    assert service.access_log is not None
    httpx.get(service.url + "/v1/health", headers={"X-Mark": "1"}, timeout=30)
    post(service, "/api/check", {"snippets": [{"id": "a", "code": "#eval 5"}]})
    entries = [json.loads(line) for line in service.access_log.read_text().splitlines()]
    last = entries[-1]
    assert last["route"] == "/api/check" and last["status"] == 200
    assert last["key"] == "anonymous" and last["items"] == 1 and last["method"] == "POST"
    assert last["client"] == "127.0.0.1" and last["ms"] >= 0 and last["bytes"] > 0
    assert entries[-2]["route"] == "/v1/health" and entries[-2]["key"] is None


# --------------------------------------------------------------------------- cancellation
@pytest.mark.parametrize("path", ["/v1/batch", "/api/check"])
def test_a_client_that_goes_away_cancels_its_pending_work(service: Served, path: str) -> None:
    before = wait_idle(service)
    slow = [f"#eval {k} --!sim sleep_ms=2000" for k in range(10)]
    if path == "/v1/batch":
        body: dict[str, Any] = {"requests": [f"{text} -- {path}" for text in slow]}
        with httpx.stream("POST", service.url + path, json=body, timeout=60) as answer:
            assert answer.status_code == 200  # then the client leaves without reading
    else:
        snippets = [{"id": str(k), "code": f"{text} -- {path}"} for k, text in enumerate(slow)]
        with pytest.raises(httpx.ReadTimeout):
            post(service, path, {"snippets": snippets}, timeout=0.5)
    after = wait_idle(service)
    cancelled = after["pool"]["cancelled"] - before["pool"]["cancelled"]
    # 2 workers each had at most 2 of them started: the rest never ran.
    assert cancelled >= 6, (before, after)
    assert after["service"]["cancelled"] - before["service"]["cancelled"] >= 6
    assert after["pool"]["done"] - before["pool"]["done"] <= 4


# --------------------------------------------------------------------------- load
def test_200_requests_in_flight_are_each_answered_exactly_once(service: Served) -> None:
    count, clients = 200, 8

    async def main() -> list[tuple[int, httpx.Response]]:
        limits = httpx.Limits(max_connections=count // clients)
        sessions = [
            httpx.AsyncClient(base_url=service.url, timeout=120, limits=limits)
            for _ in range(clients)
        ]

        async def one(k: int) -> tuple[int, httpx.Response]:
            body = {"snippets": [{"id": f"k{k}", "code": f"#eval {k} * 3 --!sim sleep_ms=10"}]}
            return k, await sessions[k % clients].post("/api/check", json=body)

        try:
            return await asyncio.gather(*(one(k) for k in range(count)))
        finally:
            for session in sessions:
                await session.aclose()

    log_before = len(service.access_log.read_text().splitlines()) if service.access_log else 0
    answers = asyncio.run(main())
    assert len(answers) == count
    for k, answer in answers:
        assert answer.status_code == 200, answer.text
        (result,) = answer.json()["results"]
        assert result["id"] == f"k{k}"
        assert result["response"]["messages"][0]["data"] == str(3 * k)  # its own answer
    assert service.access_log is not None
    logged = service.access_log.read_text().splitlines()[log_before:]
    assert sum(json.loads(line)["route"] == "/api/check" for line in logged) == count


# --------------------------------------------------------------------------- parts
def test_completions_yield_each_outcome_once_and_cancel_the_rest() -> None:
    async def main() -> None:
        futures: list[Future[Any]] = [Future() for _ in range(4)]
        completions = Completions()
        for index, future in enumerate(futures):
            completions.add(index, future)
        completions.add_failed(4, ValueError("refused"))
        loop = asyncio.get_running_loop()
        loop.call_later(0.01, futures[2].set_result, "two")
        loop.call_later(0.02, futures[0].set_exception, KeyError("zero"))
        seen = []
        async for index, outcome, seconds in completions:
            seen.append((index, outcome))
            assert seconds >= 0
            if len(seen) == 3:
                break
        assert [i for i, _ in seen] == [4, 2, 0]
        assert isinstance(seen[0][1], ValueError) and seen[1][1] == "two"
        assert isinstance(seen[2][1], KeyError)
        assert completions.cancel_rest() == 2  # what the caller will never see
        assert futures[1].cancelled() and futures[3].cancelled()

    asyncio.run(main())


def test_completions_from_other_threads_wake_the_loop() -> None:
    import threading

    async def main() -> list[tuple[Any, float]]:
        futures: list[Future[Any]] = [Future() for _ in range(50)]
        completions = Completions()
        for index, future in enumerate(futures):
            completions.add(index, future)

        def finish() -> None:
            for index, future in enumerate(futures):
                future.set_result(index)

        threading.Thread(target=finish).start()
        return await completions.gather(len(futures))

    results = asyncio.run(main())
    assert [outcome for outcome, _seconds in results] == list(range(50))


def test_metrics_text_and_timeouts_of_the_settings() -> None:
    metrics = Metrics()
    metrics.observe_http("POST", "/api/check", 200, 0.02)
    metrics.observe_http("POST", "/api/check", 429, 0.001)
    rejected = CommandResponse.model_validate(
        {"env": 1, "messages": [{"severity": "error", "data": "unsolved goals", "pos": POS}]}
    )
    refused = LeanError(message="Unknown environment.")
    results = [CommandResponse(env=0), rejected, refused, LeanTimeoutError("t"), ValueError("?")]
    metrics.observe_lean(results)
    pool = replace(
        StatsBook().snapshot(),
        submitted=3,
        failed={"LeanTimeoutError": 1},
        workers=[{"slot": 0, "rss_mb": 10.0}],
    )
    text = metrics.render(pool, {"k": 2}, 1, 4, 9.5)
    assert 'leanpool_http_requests_total{method="POST",route="/api/check",status="429"} 1' in text
    assert 'leanpool_http_request_seconds_bucket{le="+Inf"} 2' in text
    assert 'leanpool_pool_results_total{kind="LeanTimeoutError"} 1' in text
    assert "leanpool_pool_submitted_total 3" in text
    # the pool's families are those of the prometheus_client collector, peak RSS included
    later = metrics.render(replace(pool, workers=[{"slot": 0, "rss_mb": 4.0}]), {}, 1, 4, 9.5)
    assert 'leanpool_pool_worker_rss_bytes{worker="0"} 4194304.0' in later
    assert 'leanpool_pool_worker_peak_rss_bytes{worker="0"} 10485760.0' in later
    for label in ("ok", "lean_error", "repl_error", "timeout", "error"):
        assert f'leanpool_lean_requests_total{{outcome="{label}"}} 1' in text
    assert 'leanpool_in_flight{key="k"} 2' in text and "leanpool_refused_total 4" in text
    settings = ServeSettings(timeout=60.0)
    assert settings.request_timeout(None) == 60.0 and settings.request_timeout(0) == 60.0
    assert settings.request_timeout(5) == 5 and settings.request_timeout(600) == 60.0
    assert ServeSettings(timeout=None).request_timeout(600) == 600
    with pytest.raises(ValueError):
        ServeSettings(api_keys=(" padded",))
