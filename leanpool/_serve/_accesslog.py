"""Structured access logs (one JSON object per line) and HTTP metrics, as ASGI middleware.

A line holds the time, method, route template (``/v1/sessions/{session}/run``: session ids are
capabilities and are left out), status, duration, bytes sent, the client's address, the label of
the API key (``key:1a2b3c4d``, never the key: headers are never logged) and the number of Lean
requests the HTTP request carried.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Keys handlers set in the ASGI scope for this middleware.
SCOPE_KEY = "leanpool.key"
SCOPE_ROUTE = "leanpool.route"
SCOPE_ITEMS = "leanpool.items"

access_logger = logging.getLogger("leanpool.access")


def configure_access_log(where: str | None) -> None:
    """Send access lines to stderr (``"-"``), a file (appended), or nowhere (None)."""
    access_logger.propagate = False
    for old in list(access_logger.handlers):
        access_logger.removeHandler(old)
        old.close()
    if where is None:
        access_logger.addHandler(logging.NullHandler())
        return
    handler: logging.Handler
    if where == "-":
        handler = logging.StreamHandler(sys.stderr)
    else:
        handler = logging.FileHandler(where, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))
    access_logger.addHandler(handler)
    access_logger.setLevel(logging.INFO)


class AccessLog:
    """Wraps the app: times each HTTP request, then logs it and counts it."""

    def __init__(
        self, app: ASGIApp, observe: Callable[[str, str, int, float], None] | None = None
    ) -> None:
        self.app = app
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # if the app fails before it answers
        sent = 0

        async def counting_send(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            seconds = time.perf_counter() - started
            route = scope.get(SCOPE_ROUTE) or "other"
            if self.observe is not None:
                self.observe(scope["method"], route, status, seconds)
            if access_logger.isEnabledFor(logging.INFO):
                access_logger.info(_line(scope, route, status, seconds, sent))


def _line(scope: Scope, route: str, status: int, seconds: float, sent: int) -> str:
    client = scope.get("client")
    entry: dict[str, Any] = {
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z",
        "method": scope["method"],
        "route": route,
        "status": status,
        "ms": round(seconds * 1000, 2),
        "bytes": sent,
        "client": client[0] if client else None,
        "key": scope.get(SCOPE_KEY),
    }
    items = scope.get(SCOPE_ITEMS)
    if items is not None:
        entry["items"] = items
    if route == "other":
        entry["path"] = scope.get("path", "")[:200]
    return json.dumps(entry, separators=(",", ":"))
