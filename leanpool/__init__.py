"""leanpool: many Lean 4 REPL processes in parallel, robustly.

Layer 1 mirrors LeanInteract (`LeanREPLConfig`, `LeanServer`, `AutoLeanServer`, the request and
response models); layer 2 is `LeanPool`, a process pool of REPL workers.

Names are imported lazily (PEP 562): the REPL simulator, which is started thousands of times,
imports `leanpool.testing.simrepl` and must not pay for pydantic, loky or rich on start-up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from leanpool._exports import EXPORTS as _EXPORTS

# The one place the version is written: pyproject.toml reads it at build time
# ([tool.setuptools.dynamic]), and the built metadata and `leanpool --version` follow it.
__version__ = "0.1.0"

# One list of exports: `_EXPORTS` (leanpool/_exports.py), which the lazy `__getattr__` below
# imports from and `__all__` is built from. Type checkers cannot read it, so they get the imports
# under TYPE_CHECKING, each `X as X`: that form is an explicit re-export under mypy --strict and
# pyright, so no static `__all__` is kept for them. tests/test_package.py fails when these imports
# and `_EXPORTS` differ. _exports.py also says why classes defined in private modules report
# `__module__ == "leanpool"`.
if TYPE_CHECKING:
    from leanpool._auto_server import AutoLeanServer as AutoLeanServer
    from leanpool._backends import ray_backend as ray_backend
    from leanpool._batch import Batch as Batch
    from leanpool._batch import BatchSummary as BatchSummary
    from leanpool._config import LeanREPLConfig as LeanREPLConfig
    from leanpool._config import ReplLaunch as ReplLaunch
    from leanpool._errors import LeanCrashError as LeanCrashError
    from leanpool._errors import LeanMemoryError as LeanMemoryError
    from leanpool._errors import LeanPoolError as LeanPoolError
    from leanpool._errors import LeanSetupError as LeanSetupError
    from leanpool._errors import LeanTimeoutError as LeanTimeoutError
    from leanpool._errors import PoolShutdownError as PoolShutdownError
    from leanpool._errors import ProtocolError as ProtocolError
    from leanpool._errors import RequestError as RequestError
    from leanpool._errors import ServerNotRunningError as ServerNotRunningError
    from leanpool._errors import StateLostError as StateLostError
    from leanpool._errors import TruncatedResponseError as TruncatedResponseError
    from leanpool._errors import WorkerCrashedError as WorkerCrashedError
    from leanpool._pool import LeanPool as LeanPool
    from leanpool._pool_session import PoolSession as PoolSession
    from leanpool._preflight import PreflightError as PreflightError
    from leanpool._preflight import PreflightWarning as PreflightWarning
    from leanpool._project import BaseProject as BaseProject
    from leanpool._project import GitProject as GitProject
    from leanpool._project import LeanRequire as LeanRequire
    from leanpool._project import LocalProject as LocalProject
    from leanpool._project import TemporaryProject as TemporaryProject
    from leanpool._project import TempRequireProject as TempRequireProject
    from leanpool._server import LeanServer as LeanServer
    from leanpool._server_pool import LeanServerPool as LeanServerPool
    from leanpool._session_cache import BaseSessionCache as BaseSessionCache
    from leanpool._session_cache import PickleSessionCache as PickleSessionCache
    from leanpool._session_cache import ReplaySessionCache as ReplaySessionCache
    from leanpool._stats import PoolStats as PoolStats
    from leanpool._telemetry import JsonFormatter as JsonFormatter
    from leanpool._telemetry import MetricsServer as MetricsServer
    from leanpool._telemetry import PoolMetrics as PoolMetrics
    from leanpool._telemetry import enable_json_logs as enable_json_logs
    from leanpool._telemetry import metrics_registry as metrics_registry
    from leanpool._telemetry import serve_metrics as serve_metrics
    from leanpool.protocol import Command as Command
    from leanpool.protocol import CommandResponse as CommandResponse
    from leanpool.protocol import FileCommand as FileCommand
    from leanpool.protocol import InfoTree as InfoTree
    from leanpool.protocol import LeanError as LeanError
    from leanpool.protocol import Message as Message
    from leanpool.protocol import PickleEnvironment as PickleEnvironment
    from leanpool.protocol import PickleProofState as PickleProofState
    from leanpool.protocol import Pos as Pos
    from leanpool.protocol import ProofStep as ProofStep
    from leanpool.protocol import ProofStepResponse as ProofStepResponse
    from leanpool.protocol import ResponseReader as ResponseReader
    from leanpool.protocol import Sorry as Sorry
    from leanpool.protocol import Tactic as Tactic
    from leanpool.protocol import UnpickleEnvironment as UnpickleEnvironment
    from leanpool.protocol import UnpickleProofState as UnpickleProofState
    from leanpool.protocol import encode_request as encode_request
    from leanpool.protocol import parse_request as parse_request
    from leanpool.protocol import parse_response as parse_response

# For `from leanpool import *` and help(): assigned through globals() because it exists only at run
# time. Tools that read the source (mypy, pyright, griffe) cannot evaluate it, and would take the
# part they can read for the whole list; they go by the imports above.
globals()["__all__"] = ["__version__", *_EXPORTS]


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
    return sorted(set(globals()) | set(_EXPORTS) | _SUBMODULES)
