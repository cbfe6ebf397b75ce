"""leanpool: many Lean 4 REPL processes in parallel, robustly.

Layer 1 mirrors LeanInteract (`LeanREPLConfig`, `LeanServer`, `AutoLeanServer`, the request and
response models); layer 2 is `LeanPool`, a process pool of REPL workers.

Names are imported lazily (PEP 562): the REPL simulator, which is started thousands of times,
imports `leanpool.testing.simrepl` and must not pay for pydantic, loky or rich on start-up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# The one place the version is written: pyproject.toml reads it at build time
# ([tool.setuptools.dynamic]), and the built metadata and `leanpool --version` follow it.
__version__ = "0.1.0"

# public name -> module that defines it
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
    "TruncatedResponseError": "leanpool._errors",
    "PoolShutdownError": "leanpool._errors",
    "LeanSetupError": "leanpool._errors",
    # config and projects
    "LeanREPLConfig": "leanpool._config",
    "ReplLaunch": "leanpool._config",
    "BaseProject": "leanpool._project",
    "LocalProject": "leanpool._project",
    "GitProject": "leanpool._project",
    "TemporaryProject": "leanpool._project",
    "TempRequireProject": "leanpool._project",
    "LeanRequire": "leanpool._project",
    # protocol
    "Command": "leanpool.protocol",
    "FileCommand": "leanpool.protocol",
    "ProofStep": "leanpool.protocol",
    "PickleEnvironment": "leanpool.protocol",
    "UnpickleEnvironment": "leanpool.protocol",
    "PickleProofState": "leanpool.protocol",
    "UnpickleProofState": "leanpool.protocol",
    "CommandResponse": "leanpool.protocol",
    "ProofStepResponse": "leanpool.protocol",
    "LeanError": "leanpool.protocol",
    "Message": "leanpool.protocol",
    "Pos": "leanpool.protocol",
    "Sorry": "leanpool.protocol",
    "Tactic": "leanpool.protocol",
    "InfoTree": "leanpool.protocol",
    "parse_request": "leanpool.protocol",
    "parse_response": "leanpool.protocol",
    "encode_request": "leanpool.protocol",
    "ResponseReader": "leanpool.protocol",
    # servers
    "LeanServer": "leanpool._server",
    "AutoLeanServer": "leanpool._auto_server",
    "BaseSessionCache": "leanpool._session_cache",
    "ReplaySessionCache": "leanpool._session_cache",
    "PickleSessionCache": "leanpool._session_cache",
    # pool
    "LeanPool": "leanpool._pool",
    "ray_backend": "leanpool._backends",
    "LeanServerPool": "leanpool._server_pool",
    "PoolSession": "leanpool._pool_session",
    "PoolStats": "leanpool._stats",
    "Batch": "leanpool._batch",
    "BatchSummary": "leanpool._batch",
}

__all__ = [
    "AutoLeanServer",
    "BaseProject",
    "BaseSessionCache",
    "Batch",
    "BatchSummary",
    "Command",
    "CommandResponse",
    "FileCommand",
    "GitProject",
    "InfoTree",
    "LeanCrashError",
    "LeanError",
    "LeanMemoryError",
    "LeanPool",
    "LeanPoolError",
    "LeanREPLConfig",
    "LeanRequire",
    "LeanServer",
    "LeanServerPool",
    "LeanSetupError",
    "LeanTimeoutError",
    "LocalProject",
    "Message",
    "PickleEnvironment",
    "PickleProofState",
    "PickleSessionCache",
    "PoolSession",
    "PoolShutdownError",
    "PoolStats",
    "Pos",
    "ProofStep",
    "ProofStepResponse",
    "ProtocolError",
    "ReplLaunch",
    "ReplaySessionCache",
    "RequestError",
    "ResponseReader",
    "ServerNotRunningError",
    "Sorry",
    "StateLostError",
    "Tactic",
    "TempRequireProject",
    "TemporaryProject",
    "TruncatedResponseError",
    "UnpickleEnvironment",
    "UnpickleProofState",
    "WorkerCrashedError",
    "__version__",
    "encode_request",
    "parse_request",
    "parse_response",
    "ray_backend",
]

if TYPE_CHECKING:
    from leanpool._auto_server import AutoLeanServer
    from leanpool._backends import ray_backend
    from leanpool._batch import Batch, BatchSummary
    from leanpool._config import LeanREPLConfig, ReplLaunch
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
        TruncatedResponseError,
        WorkerCrashedError,
    )
    from leanpool._pool import LeanPool
    from leanpool._pool_session import PoolSession
    from leanpool._project import (
        BaseProject,
        GitProject,
        LeanRequire,
        LocalProject,
        TemporaryProject,
        TempRequireProject,
    )
    from leanpool._server import LeanServer
    from leanpool._server_pool import LeanServerPool
    from leanpool._session_cache import (
        BaseSessionCache,
        PickleSessionCache,
        ReplaySessionCache,
    )
    from leanpool._stats import PoolStats
    from leanpool.protocol import (
        Command,
        CommandResponse,
        FileCommand,
        InfoTree,
        LeanError,
        Message,
        PickleEnvironment,
        PickleProofState,
        Pos,
        ProofStep,
        ProofStepResponse,
        ResponseReader,
        Sorry,
        Tactic,
        UnpickleEnvironment,
        UnpickleProofState,
        encode_request,
        parse_request,
        parse_response,
    )


# Public submodules. After `import lean_interact` its submodules are attributes of the package
# (its __init__ imports them all); here each is imported on first access instead, so that
# `leanpool.interface.CommandResponse` works after a bare `import leanpool` and the import
# itself stays cheap.
_SUBMODULES = frozenset(
    {
        "config",
        "interface",
        "pool",
        "project",
        "protocol",
        "server",
        "sessioncache",
        "testing",
        "utils",
    }
)


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"leanpool.{name}")  # the import sets the attribute
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'leanpool' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value  # cache: later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | _SUBMODULES)
