"""leanpool: many Lean 4 REPL processes in parallel, robustly.

Layer 1 mirrors LeanInteract (`LeanREPLConfig`, `LeanServer`, `AutoLeanServer`, the request and
response models); layer 2 is `LeanPool`, a process pool of REPL workers.

Names are imported lazily (PEP 562): the REPL simulator, which is started thousands of times,
imports `leanpool.testing.simrepl` and must not pay for pydantic, loky or rich on start-up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> private module that defines it
_EXPORTS: dict[str, str] = {
    # errors
    "LeanPoolError": "leanpool._errors",
    "RequestError": "leanpool._errors",
    "ProtocolError": "leanpool._errors",
    "LeanTimeoutError": "leanpool._errors",
    "LeanCrashError": "leanpool._errors",
    "WorkerCrashedError": "leanpool._errors",
    "LeanMemoryError": "leanpool._errors",
    "ServerNotRunningError": "leanpool._errors",
    "StateLostError": "leanpool._errors",
    "PoolShutdownError": "leanpool._errors",
    "LeanSetupError": "leanpool._errors",
}

__all__ = [*sorted(_EXPORTS), "__version__"]

if TYPE_CHECKING:
    from leanpool._errors import (
        LeanCrashError,
        LeanMemoryError,
        LeanPoolError,
        LeanSetupError,
        LeanTimeoutError,
        PoolShutdownError,
        ProtocolError,
        RequestError,
        ServerNotRunningError,
        StateLostError,
        WorkerCrashedError,
    )


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'leanpool' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value  # cache: later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
