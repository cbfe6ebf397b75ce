"""`leanpool serve` when things go wrong (leanpool/_serve/_server.py and the pool beneath): a
worker killed with SIGKILL in the middle of a request gives that request an error answer, never
a hang; SIGTERM drains the requests in flight, then stops the workers and their REPLs and exits
with status 0, also when a request outlives the drain time. Each test has its own service (one
worker), since each ends it."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

pytest.importorskip("starlette", reason="the serve extra is not installed (leanpool[serve])")
pytest.importorskip("uvicorn", reason="the serve extra is not installed (leanpool[serve])")
httpx = pytest.importorskip("httpx", reason="the serve extra is not installed (leanpool[serve])")

from serve_process import Served, serve  # noqa: E402


def _in_background(service: Served, body: dict[str, Any]) -> tuple[threading.Thread, list[Any]]:
    """POST /api/check on a thread; the list gets the response (or the exception)."""
    outcome: list[Any] = []

    def send() -> None:
        try:
            outcome.append(httpx.post(service.url + "/api/check", json=body, timeout=120))
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread, outcome


def _busy_worker(service: Served) -> psutil.Process | None:
    """The worker whose REPL is up, once the request can be running on it."""
    for worker in service.workers():
        with contextlib.suppress(psutil.Error):
            if any("simrepl" in " ".join(c.cmdline()) for c in worker.children()):
                return worker
    return None


@pytest.mark.allow_leftover_processes  # the service replaces the killed workers, then ends
def test_a_worker_killed_mid_request_gives_that_request_an_error(tmp_path: Path) -> None:
    with serve(tmp_path, "--timeout", "60", workers=1) as service:
        body = {"snippets": [{"id": "long", "code": "#eval 1 --!sim sleep_ms=30000"}]}
        thread, outcome = _in_background(service, body)
        killed: set[int] = set()
        deadline = time.monotonic() + 90
        # The pool runs a request again once when its worker dies; killing the worker that
        # runs it each time makes it fail for good. The request sleeps 30 s: it cannot finish
        # between two kills.
        while not outcome and time.monotonic() < deadline:
            worker = _busy_worker(service)
            if worker is not None and worker.pid not in killed:
                time.sleep(0.5)  # let the request reach it
                with contextlib.suppress(psutil.Error):
                    worker.send_signal(signal.SIGKILL)
                    killed.add(worker.pid)
            time.sleep(0.05)
        thread.join(max(0.0, deadline - time.monotonic()))
        assert outcome, "no answer: the request hung"
        answer = outcome[0]
        assert isinstance(answer, httpx.Response), answer
        assert answer.status_code == 200, answer.text
        (result,) = answer.json()["results"]
        assert result["id"] == "long" and "response" not in result
        assert result["error"].startswith("Lean REPL crashed"), result
        assert len(killed) >= 2
        # The service goes on: the next request is answered by a new worker.
        again = httpx.post(
            service.url + "/api/check",
            json={"snippets": [{"id": "after", "code": "#eval 6 * 7"}]},
            timeout=60,
        )
        assert again.json()["results"][0]["response"]["messages"][0]["data"] == "42"
        assert service.stop() == 0


def test_sigterm_drains_requests_in_flight_then_stops_everything(tmp_path: Path) -> None:
    with serve(tmp_path, "--timeout", "60", workers=1) as service:
        body = {"snippets": [{"id": "draining", "code": "#eval 5 --!sim sleep_ms=1500"}]}
        thread, outcome = _in_background(service, body)
        deadline = time.monotonic() + 30
        while not _in_flight(service) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert service.stop(signal.SIGTERM) == 0  # waits for it, and checks nothing is left
        thread.join(30)
        answer = outcome[0]
        assert isinstance(answer, httpx.Response) and answer.status_code == 200, answer
        assert answer.json()["results"][0]["response"]["messages"][0]["data"] == "5"
        with pytest.raises(httpx.ConnectError):
            httpx.get(service.url + "/health", timeout=5)
        assert "Traceback" not in service.output()


def test_sigterm_cancels_what_outlives_the_drain_and_leaves_nothing(tmp_path: Path) -> None:
    options = ("--timeout", "120", "--drain-timeout", "1")
    with serve(tmp_path, *options, workers=1) as service:
        body = {"snippets": [{"id": "stuck", "code": "#eval 1 --!sim hang_hard"}]}
        thread, outcome = _in_background(service, body)
        deadline = time.monotonic() + 30
        while not _in_flight(service) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert service.stop(signal.SIGTERM, timeout=60) == 0  # REPL and worker gone too
        thread.join(30)
        (answer,) = outcome
        assert isinstance(answer, httpx.Response) and answer.status_code == 503, answer
        assert "stopped before this request finished" in answer.json()["detail"]


def _in_flight(service: Served) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        stats = httpx.get(service.url + "/v1/stats", timeout=5).json()
        return bool(stats["pool"]["running"])
    return False
