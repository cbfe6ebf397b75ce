"""Tactic-mode sessions over HTTP: a `PoolSession` per session id, owned by one API key, closed
when idle for its time to live.

The env and proof-state ids a session's responses name are the pool's session ids: they stay
valid across the HTTP requests of that session (the pool rebuilds the states on another worker
if it must), and mean nothing in another session. Session ids are random tokens; a session is
only visible to the key that opened it (any other key gets 404, as for an unknown id).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from leanpool._serve._http import HttpError

if TYPE_CHECKING:
    from leanpool._pool import LeanPool
    from leanpool._pool_session import PoolSession


@dataclass
class HttpSession:
    """One open session."""

    id: str
    key: str
    session: PoolSession
    ttl: float
    last_used: float = field(default_factory=time.monotonic)
    busy: int = 0  # HTTP requests running in it now (never expired while busy)

    def expires_in(self, now: float) -> float:
        return max(0.0, self.last_used + self.ttl - now)


class SessionRegistry:
    """Open sessions (touched only on the event loop's thread)."""

    def __init__(self, pool: LeanPool, ttl: float, per_key: int) -> None:
        self._pool = pool
        self.ttl = ttl
        self.per_key = per_key
        self._open: dict[str, HttpSession] = {}
        self.opened = 0
        self.expired = 0

    def __len__(self) -> int:
        return len(self._open)

    def open(self, key: str, ttl: float | None = None) -> HttpSession:
        """A new session for `key`; `ttl` at most the service's (its default)."""
        owned = sum(1 for item in self._open.values() if item.key == key)
        if owned >= self.per_key:
            raise HttpError(
                429,
                f"This API key has {owned} open sessions, the most this service allows: close "
                "one (DELETE /v1/sessions/{id}) or let one expire.",
                {"Retry-After": str(max(1, round(self.ttl)))},
            )
        lifetime = self.ttl if ttl is None else min(ttl, self.ttl)
        item = HttpSession(secrets.token_urlsafe(18), key, self._pool.session(), lifetime)
        self._open[item.id] = item
        self.opened += 1
        return item

    def get(self, key: str, session_id: str) -> HttpSession:
        """The open session `session_id` of `key` (404 otherwise, also for another key's)."""
        item = self._open.get(session_id)
        if item is None or item.key != key:
            raise HttpError(404, "Unknown or expired session.")
        if not item.busy and item.expires_in(time.monotonic()) <= 0:
            self._drop(item)
            self.expired += 1
            raise HttpError(404, "Unknown or expired session.")
        return item

    def close(self, key: str, session_id: str) -> None:
        self._drop(self.get(key, session_id))

    def expire(self, now: float | None = None) -> int:
        """Close the sessions idle past their time to live; how many."""
        now = time.monotonic() if now is None else now
        stale = [
            item for item in self._open.values() if not item.busy and item.expires_in(now) <= 0
        ]
        for item in stale:
            self._drop(item)
        self.expired += len(stale)
        return len(stale)

    def close_all(self) -> None:
        for item in list(self._open.values()):
            self._drop(item)

    async def expire_forever(self) -> None:
        """Expire idle sessions until cancelled (checked several times per time to live)."""
        period = min(10.0, max(0.2, self.ttl / 10))
        while True:
            await asyncio.sleep(period)
            self.expire()

    def _drop(self, item: HttpSession) -> None:
        if self._open.pop(item.id, None) is not None:
            with contextlib.suppress(Exception):  # the pool may be shutting down
                item.session.close()
