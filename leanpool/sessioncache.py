"""LeanInteract's `lean_interact.sessioncache` module path (thin re-export for drop-in use)."""

from leanpool._session_cache import (
    BaseSessionCache,
    PickleSessionCache,
    ReplaySessionCache,
    SessionState,
)

__all__ = ["BaseSessionCache", "PickleSessionCache", "ReplaySessionCache", "SessionState"]
