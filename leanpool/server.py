"""LeanInteract's `lean_interact.server` module path (thin re-export for drop-in use)."""

from leanpool._auto_server import AutoLeanServer
from leanpool._server import LeanServer

DEFAULT_TIMEOUT: float | None = None  # as in LeanInteract: wait as long as Lean takes

__all__ = ["DEFAULT_TIMEOUT", "AutoLeanServer", "LeanServer"]
