"""LeanInteract's `lean_interact.server` module path: every public name it has, for drop-in use
(the request and response models, the config and the session caches it imports included)."""

from leanpool._auto_server import AutoLeanServer
from leanpool._config import LeanREPLConfig
from leanpool._server import LeanServer
from leanpool._session_cache import BaseSessionCache, ReplaySessionCache
from leanpool.protocol import (
    BaseREPLQuery,
    BaseREPLResponse,
    Command,
    CommandResponse,
    FileCommand,
    LeanError,
    PickleEnvironment,
    PickleProofState,
    ProofStep,
    ProofStepResponse,
    UnpickleEnvironment,
    UnpickleProofState,
)
from leanpool.utils import get_total_memory_usage, logger

DEFAULT_TIMEOUT: float | None = None  # as in LeanInteract: wait as long as Lean takes

__all__ = [
    "DEFAULT_TIMEOUT",
    "AutoLeanServer",
    "BaseREPLQuery",
    "BaseREPLResponse",
    "BaseSessionCache",
    "Command",
    "CommandResponse",
    "FileCommand",
    "LeanError",
    "LeanREPLConfig",
    "LeanServer",
    "PickleEnvironment",
    "PickleProofState",
    "ProofStep",
    "ProofStepResponse",
    "ReplaySessionCache",
    "UnpickleEnvironment",
    "UnpickleProofState",
    "get_total_memory_usage",
    "logger",
]
