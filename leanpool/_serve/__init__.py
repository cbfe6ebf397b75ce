"""`leanpool serve`: a `LeanPool` as an HTTP service that Kimina's clients use unchanged.

Needs the ``serve`` extra (Starlette and uvicorn); nothing here is imported by ``import
leanpool``, and this package imports the web stack only when one of its names is used. One module
per responsibility:

- `_app`: the application, its routes, and how a request's Lean work runs on the pool (budgets,
  cancellation when the client goes away, NDJSON streaming);
- `_kimina`: Kimina's API (``/api/check``, ``/verify``, ``/one_pass_verify_batch``, health);
- `_native`: leanpool's own API (``/v1/batch``, ``/v1/sessions``, ``/v1/verify``);
- `_auth`: API keys (constant-time) and per-key budgets (429 with ``Retry-After``);
- `_sessions`: tactic-mode sessions with expiry;
- `_http`: bodies (size limits), errors, disconnect detection;
- `_bridge`: pool futures awaited from the event loop;
- `_metrics`, `_accesslog`: Prometheus metrics and structured access logs (never the key);
- `_server`: uvicorn, the listening socket, and the graceful stop on SIGTERM;
- `_settings`: the service's options.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "ServeSettings": "leanpool._serve._settings",
    "Service": "leanpool._serve._app",
    "create_app": "leanpool._serve._app",
    "address": "leanpool._serve._server",
    "bind": "leanpool._serve._server",
    "run": "leanpool._serve._server",
}
__all__ = ["ServeSettings", "Service", "address", "bind", "create_app", "run"]

if TYPE_CHECKING:
    from leanpool._serve._app import Service, create_app
    from leanpool._serve._server import address, bind, run
    from leanpool._serve._settings import ServeSettings


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'leanpool._serve' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
