"""LeanInteract's `lean_interact.config` module path (thin re-export for drop-in use)."""

from leanpool._config import LeanREPLConfig, ReplLaunch

__all__ = ["LeanREPLConfig", "ReplLaunch"]
