"""leanpool: many Lean 4 REPL processes in parallel, robustly.

Layer 1 mirrors LeanInteract (`LeanREPLConfig`, `LeanServer`, `AutoLeanServer`, the request and
response models); layer 2 is `LeanPool`, a process pool of REPL workers.
"""

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

__version__ = "0.1.0"

__all__ = [
    "LeanCrashError",
    "LeanMemoryError",
    "LeanPoolError",
    "LeanSetupError",
    "LeanTimeoutError",
    "PoolShutdownError",
    "ProtocolError",
    "RequestError",
    "ServerNotRunningError",
    "StateLostError",
    "WorkerCrashedError",
    "__version__",
]
