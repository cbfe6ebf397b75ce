"""API keys and per-key limits: who may send work, and how much at once.

Keys are compared in constant time: the presented token and every configured key are hashed
with SHA-256 (equal lengths, whatever the token's), and the digests compared with
`hmac.compare_digest` against *every* configured key, so neither the content nor which key
matched shows in the timing. Logs and metrics name a key by a label derived from its hash
(``key:1a2b3c4d``), never by the key.

Each key has a budget of Lean requests in flight (snippets, commands, verifications queued or
running). A request that would exceed it is refused at once with 429 and a ``Retry-After``
estimate, instead of joining an unbounded queue; one HTTP request larger than the whole budget
gets 413. Everything here runs on the event loop's thread, so no lock is needed.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Sequence

from leanpool._serve._http import HttpError

ANONYMOUS = "anonymous"  # the label of every request when no key is configured
_BEARER = "bearer "


def key_label(key: str) -> str:
    """How logs and metrics name a key: a prefix of its SHA-256 (not reversible)."""
    return "key:" + hashlib.sha256(key.encode()).hexdigest()[:8]


class KeyRing:
    """The configured keys (none: authentication is off)."""

    def __init__(self, keys: Sequence[str]) -> None:
        self._keys = [(hashlib.sha256(key.encode()).digest(), key_label(key)) for key in keys]

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    @property
    def labels(self) -> list[str]:
        return [label for _digest, label in self._keys]

    def identify(self, authorization: str | None) -> str:
        """The label of the key in an ``Authorization`` header (``Bearer KEY`` or a bare
        ``KEY``); 401 when it is missing or wrong. With no keys configured every request is
        `ANONYMOUS`, whatever it sends (Kimina's legacy client sends ``Bearer None``)."""
        if not self._keys:
            return ANONYMOUS
        token = (authorization or "").strip()
        if token[: len(_BEARER)].lower() == _BEARER:
            token = token[len(_BEARER) :].strip()
        if not token:
            raise HttpError(401, "Missing API key", {"WWW-Authenticate": "Bearer"})
        presented = hashlib.sha256(token.encode()).digest()
        found: str | None = None
        for digest, label in self._keys:  # every key, always: no early exit
            if hmac.compare_digest(presented, digest) and found is None:
                found = label
        if found is None:
            raise HttpError(401, "Invalid API key", {"WWW-Authenticate": "Bearer"})
        return found


class Limiter:
    """Per-key budgets of Lean requests in flight (see the module docstring)."""

    def __init__(self, per_key: int, workers: int) -> None:
        self.per_key = per_key
        self.workers = max(1, workers)
        self.in_flight: dict[str, int] = {}
        self.refused = 0
        self._mean_seconds = 0.05  # moving average of a Lean request's time, for Retry-After

    def acquire(self, key: str, count: int) -> None:
        """Take `count` from the key's budget, or refuse (413: never fits; 429: not now)."""
        if count > self.per_key:
            raise HttpError(
                413,
                f"{count} Lean requests in one HTTP request; this service runs at most "
                f"{self.per_key} per API key at a time: split the request.",
            )
        current = self.in_flight.get(key, 0)
        if current + count > self.per_key:
            self.refused += 1
            raise HttpError(
                429,
                f"Too many Lean requests in flight for this API key ({current} of "
                f"{self.per_key}; this request adds {count}): retry later.",
                {"Retry-After": str(self.retry_after(current))},
            )
        self.in_flight[key] = current + count

    def release(self, key: str, count: int) -> None:
        left = self.in_flight.get(key, 0) - count
        if left > 0:
            self.in_flight[key] = left
        else:
            self.in_flight.pop(key, None)

    def observe(self, seconds: float) -> None:
        """A Lean request took `seconds` from submission to result."""
        self._mean_seconds += 0.05 * (seconds - self._mean_seconds)

    def retry_after(self, queued: int) -> int:
        """Seconds until about `queued` requests have drained through the workers (1 to 60)."""
        estimate = queued * self._mean_seconds / self.workers
        return max(1, min(60, math.ceil(estimate)))
