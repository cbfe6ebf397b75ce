"""What a running service is configured with (the `leanpool serve` options, minus the pool's)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

DEFAULT_PORT = 8000  # Kimina's: its clients' default URL is http://localhost:8000
DEFAULT_TIMEOUT = 120.0
DEFAULT_MAX_IN_FLIGHT_PER_KEY = 1024
DEFAULT_MAX_BODY_MB = 64.0
DEFAULT_SESSION_TTL = 600.0
DEFAULT_MAX_SESSIONS_PER_KEY = 256
DEFAULT_DRAIN_TIMEOUT = 30.0


@dataclass(frozen=True)
class ServeSettings:
    """How the service behaves; the pool (workers, memory, sandbox) is configured separately.

    Attributes:
        host, port: where to listen (port 0: any free port, printed when ready).
        api_keys: accepted keys; none: no authentication (only sensible on a loopback address).
        timeout: the longest any one Lean request may run, in seconds (None: no limit). A client
            may ask for less, never for more; a request that names no timeout gets this one
            (Kimina's endpoints: the request's own default).
        max_in_flight_per_key: Lean requests (snippets, commands, verifications) one key may have
            queued or running at once; past it a request gets 429 with ``Retry-After``. A single
            HTTP request holding more than this is refused with 413.
        max_body_bytes: the largest request body accepted (413 beyond).
        session_ttl: seconds a tactic-mode session may stay idle before it is closed.
        max_sessions_per_key: open sessions per key (429 beyond).
        drain_timeout: on SIGTERM, seconds to let requests in flight finish before they are
            cancelled; then the pool gets as long again to stop its workers before they are
            killed.
        policy: the default verdict policy options of ``/v1/verify`` (`VerdictPolicy` fields).
        access_log: where structured access logs go: ``"-"`` for stderr, a file path, or None.
        simulator: the pool runs the REPL simulator (said in ``/v1/health`` and the logs).
        sandboxed: the pool's REPLs run in the sandbox; without it, requests that name paths on
            the server (files, pickles) are refused.
    """

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    api_keys: tuple[str, ...] = ()
    timeout: float | None = DEFAULT_TIMEOUT
    max_in_flight_per_key: int = DEFAULT_MAX_IN_FLIGHT_PER_KEY
    max_body_bytes: int = int(DEFAULT_MAX_BODY_MB * 1024 * 1024)
    session_ttl: float = DEFAULT_SESSION_TTL
    max_sessions_per_key: int = DEFAULT_MAX_SESSIONS_PER_KEY
    drain_timeout: float = DEFAULT_DRAIN_TIMEOUT
    policy: dict[str, Any] = field(default_factory=dict)
    access_log: str | None = "-"
    simulator: bool = False
    sandboxed: bool = True

    def __post_init__(self) -> None:
        if any(not key or key != key.strip() for key in self.api_keys):
            raise ValueError("API keys must be non-empty and have no surrounding whitespace")
        for name in ("max_in_flight_per_key", "max_body_bytes", "max_sessions_per_key"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in ("session_ttl", "drain_timeout"):
            value = getattr(self, name)
            if not value > 0 or math.isinf(value):
                raise ValueError(f"{name} must be a positive number of seconds")
        if self.timeout is not None and not self.timeout > 0:
            raise ValueError("timeout must be positive (or None: no limit)")

    def request_timeout(self, asked: float | None) -> float | None:
        """The timeout a Lean request runs with: what the client asked for (None or 0: nothing
        asked), never more than the service's own limit."""
        if asked is None or asked <= 0 or math.isinf(asked):
            return self.timeout
        return asked if self.timeout is None else min(asked, self.timeout)
