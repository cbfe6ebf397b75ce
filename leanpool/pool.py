"""LeanInteract's `lean_interact.pool` module path (thin re-export), plus leanpool's own pool."""

from leanpool._pool import LeanPool
from leanpool._server_pool import LeanServerPool

__all__ = ["LeanPool", "LeanServerPool"]
