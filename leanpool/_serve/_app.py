"""The ASGI application: the service's state, its routes, and how a request's Lean work runs.

Every endpoint that runs Lean goes through `Service.run` (one JSON answer) or `Service.stream`
(NDJSON, a line per result as it completes). Both take the key's budget first (429 past it),
submit each item to the pool (an item the pool refuses gets that refusal as its result, the
others still run), and watch the connection: a client that goes away has every request of its
not yet answered cancelled, and workers skip what they have not started.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from leanpool._serve import _kimina, _native
from leanpool._serve._accesslog import SCOPE_ITEMS, SCOPE_KEY, SCOPE_ROUTE, AccessLog
from leanpool._serve._auth import KeyRing, Limiter
from leanpool._serve._bridge import Completions
from leanpool._serve._http import HttpError, read_json, unless_disconnected, until_disconnected
from leanpool._serve._metrics import CONTENT_TYPE, Metrics
from leanpool._serve._sessions import HttpSession, SessionRegistry
from leanpool._serve._settings import ServeSettings

if TYPE_CHECKING:
    from leanpool._pool import LeanPool

logger = logging.getLogger("leanpool.serve")
Render = Callable[[int, Any, float], dict[str, Any]]


class Service:
    """What the handlers share: the pool, the settings, keys, budgets, sessions, counters."""

    def __init__(self, settings: ServeSettings, pool: LeanPool) -> None:
        self.settings = settings
        self.pool = pool
        self.keys = KeyRing(settings.api_keys)
        self.limiter = Limiter(settings.max_in_flight_per_key, pool.max_workers)
        self.sessions = SessionRegistry(pool, settings.session_ttl, settings.max_sessions_per_key)
        self.metrics = Metrics()
        self.started = time.monotonic()

    # ------------------------------------------------------------------------- request parts
    def authenticate(self, request: Request) -> str:
        """The label of the request's key (401 when keys are configured and it has no valid
        one); noted for the access log."""
        label = self.keys.identify(request.headers.get("authorization"))
        request.scope[SCOPE_KEY] = label
        return label

    async def body(self, request: Request, *, allow_empty: bool = False) -> Any:
        return await read_json(request, self.settings.max_body_bytes, allow_empty=allow_empty)

    # ------------------------------------------------------------------------- running work
    def _start(
        self,
        request: Request,
        key: str,
        submits: Sequence[Callable[[], Future[Any]]],
        session: HttpSession | None,
    ) -> Completions:
        count = len(submits)
        request.scope[SCOPE_ITEMS] = count
        self.limiter.acquire(key, count)
        if session is not None:
            session.busy += 1
            session.last_used = time.monotonic()
        completions = Completions()
        for index, submit in enumerate(submits):
            try:
                completions.add(index, submit())
            except Exception as exc:  # refused by the pool: that item's result
                completions.add_failed(index, exc)
        return completions

    def _finish(
        self, key: str, count: int, completions: Completions, session: HttpSession | None
    ) -> None:
        self.metrics.cancelled += completions.cancel_rest()
        self.limiter.release(key, count)
        if session is not None:
            session.busy -= 1
            session.last_used = time.monotonic()

    def _observe(self, result: Any, seconds: float) -> None:
        self.limiter.observe(seconds)
        self.metrics.observe_lean((result,))

    async def run(
        self,
        request: Request,
        key: str,
        submits: Sequence[Callable[[], Future[Any]]],
        *,
        session: HttpSession | None = None,
    ) -> list[tuple[Any, float]]:
        """Every item's (result, seconds), in item order, once all are done."""
        completions = self._start(request, key, submits, session)
        try:
            results = await unless_disconnected(request, completions.gather(len(submits)))
        finally:
            self._finish(key, len(submits), completions, session)
        for result, seconds in results:
            self._observe(result, seconds)
        return results

    def stream(
        self,
        request: Request,
        key: str,
        submits: Sequence[Callable[[], Future[Any]]],
        render: Render,
        *,
        session: HttpSession | None = None,
        summary: bool = False,
    ) -> Response:
        """An NDJSON response: one rendered line per item as it completes, then a last line
        ``{"done": true, "count": n}`` (with ``summary``: the count of each ``status``)."""
        count = len(submits)
        completions = self._start(request, key, submits, session)

        async def lines() -> AsyncIterator[bytes]:
            watcher = asyncio.ensure_future(until_disconnected(request))
            statuses: Counter[str] = Counter()
            try:
                while completions.remaining:
                    burst = asyncio.ensure_future(completions.next_burst())
                    await asyncio.wait((burst, watcher), return_when=asyncio.FIRST_COMPLETED)
                    if not burst.done():  # the client went away
                        burst.cancel()
                        return
                    chunk = []
                    for index, result, seconds in burst.result():
                        self._observe(result, seconds)
                        entry = render(index, result, seconds)
                        if summary:
                            statuses[str(entry.get("status"))] += 1
                        chunk.append(_dumps(entry))
                    yield "".join(chunk).encode()
                tail: dict[str, Any] = {"done": True, "count": count}
                if summary:
                    tail["summary"] = dict(statuses)
                yield _dumps(tail).encode()
            finally:
                watcher.cancel()
                self._finish(key, count, completions, session)

        return NdjsonResponse(lines())

    # ------------------------------------------------------------------------- lifecycle
    def stop_pool(self) -> None:
        """Stop the workers: let the pool finish what it runs within the drain time, then kill
        what is left (nothing is waiting for those answers any more)."""
        finished = threading.Event()

        def shutdown() -> None:
            with contextlib.suppress(Exception):
                self.pool.shutdown(wait=True, cancel_futures=True)
            finished.set()

        threading.Thread(target=shutdown, name="leanpool-serve-stop", daemon=True).start()
        if not finished.wait(self.settings.drain_timeout):
            logger.warning(
                "The pool did not stop within %.0f s: killing it.", self.settings.drain_timeout
            )
            self.pool.__exit__(KeyboardInterrupt, KeyboardInterrupt(), None)


class NdjsonResponse(Response):
    """A streamed ``application/x-ndjson`` body (the lines watch the connection themselves)."""

    media_type = "application/x-ndjson"

    def __init__(self, lines: AsyncIterator[bytes]) -> None:
        self.lines = lines
        self.status_code = 200
        self.background = None
        self.init_headers({"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        try:
            async for chunk in self.lines:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except OSError:  # the client went away (servers of ASGI spec 2.4 say so on send)
            return
        finally:
            aclose = getattr(self.lines, "aclose", None)
            if aclose is not None:
                await aclose()
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def _dumps(entry: Any) -> str:
    return json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n"


# ------------------------------------------------------------------------------- small endpoints
async def v1_health(request: Request) -> Response:
    from leanpool import __version__

    service: Service = request.app.state.service
    return JSONResponse(
        {
            "status": "ok",
            "version": __version__,
            "workers": service.pool.max_workers,
            "simulator": service.settings.simulator,
            "auth": service.keys.enabled,
            "uptime_s": round(time.monotonic() - service.started, 3),
        }
    )


async def v1_stats(request: Request) -> Response:
    service: Service = request.app.state.service
    service.authenticate(request)
    stats = await asyncio.to_thread(service.pool.stats)
    return JSONResponse(
        {
            "service": {
                "uptime_s": round(time.monotonic() - service.started, 3),
                "in_flight": dict(service.limiter.in_flight),
                "refused": service.limiter.refused,
                "sessions_open": len(service.sessions),
                "sessions_opened": service.sessions.opened,
                "sessions_expired": service.sessions.expired,
                "lean_requests": dict(service.metrics.lean),
                "cancelled": service.metrics.cancelled,
            },
            "pool": stats.as_dict(),
        }
    )


async def metrics(request: Request) -> Response:
    service: Service = request.app.state.service
    service.authenticate(request)
    stats = await asyncio.to_thread(service.pool.stats)
    text = service.metrics.render(
        stats,
        dict(service.limiter.in_flight),
        len(service.sessions),
        service.limiter.refused,
        time.monotonic() - service.started,
    )
    return PlainTextResponse(text, media_type=CONTENT_TYPE)


# ------------------------------------------------------------------------------- the app
Endpoint = Callable[[Request], Awaitable[Response]]


def _route(path: str, endpoint: Endpoint, methods: list[str], label: str | None = None) -> Route:
    """A route whose handler is labelled for logs and metrics, and whose errors are JSON."""
    name = label or path

    async def handle(request: Request) -> Response:
        request.scope[SCOPE_ROUTE] = name
        try:
            return await endpoint(request)
        except HttpError as exc:
            return exc.response()
        except asyncio.CancelledError:
            # The server cancels a handler only when it stops and the drain time is over: the
            # request's Lean work is cancelled by now; tell the client to send it again.
            return JSONResponse(
                {"detail": "The service stopped before this request finished; send it again."},
                status_code=503,
                headers={"Retry-After": "1"},
            )
        except Exception:
            logger.exception("Unexpected error answering %s %s", request.method, name)
            return JSONResponse({"detail": "Internal server error"}, status_code=500)

    return Route(path, handle, methods=methods)


ROUTES = [
    # Kimina's API (current and legacy)
    ("/", _kimina.health, ["GET"]),
    ("/health", _kimina.health, ["GET"]),
    ("/health/", _kimina.health, ["GET"]),
    ("/api/check", _kimina.api_check, ["POST"]),
    ("/api/check/", _kimina.api_check, ["POST"]),
    ("/verify", _kimina.verify, ["POST"]),
    ("/one_pass_verify_batch", _kimina.verify, ["POST"]),
    # leanpool's own
    ("/v1/health", v1_health, ["GET"]),
    ("/v1/stats", v1_stats, ["GET"]),
    ("/metrics", metrics, ["GET"]),
    ("/v1/batch", _native.batch, ["POST"]),
    ("/v1/verify", _native.verify, ["POST"]),
    ("/v1/sessions", _native.open_session, ["POST"]),
    ("/v1/sessions/{session}/run", _native.run_in_session, ["POST"]),
    ("/v1/sessions/{session}", _native.close_session, ["DELETE"]),
]


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


def create_app(
    settings: ServeSettings, pool: LeanPool, on_ready: Callable[[], None] | None = None
) -> ASGIApp:
    """The service as an ASGI application over `pool`, which it shuts down when the server
    stops (its lifespan's end)."""
    service = Service(settings, pool)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        janitor = asyncio.create_task(service.sessions.expire_forever())
        if on_ready is not None:
            on_ready()
        try:
            yield
        finally:
            janitor.cancel()
            service.sessions.close_all()
            await asyncio.to_thread(service.stop_pool)

    app = Starlette(
        routes=[_route(path, endpoint, methods) for path, endpoint, methods in ROUTES],
        exception_handlers={HTTPException: _http_exception},
        lifespan=lifespan,
    )
    app.state.service = service
    return AccessLog(app, service.metrics.observe_http)
