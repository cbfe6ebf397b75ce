"""LeanInteract's `lean_interact.pool` module path: every public name it has, for drop-in use,
plus leanpool's own `LeanPool`."""

from leanpool._auto_server import AutoLeanServer
from leanpool._config import LeanREPLConfig
from leanpool._pool import LeanPool
from leanpool._server_pool import LeanServerPool
from leanpool._session_cache import ReplaySessionCache
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
from leanpool.server import DEFAULT_TIMEOUT

__all__ = [
    "DEFAULT_TIMEOUT",
    "AutoLeanServer",
    "BaseREPLQuery",
    "BaseREPLResponse",
    "Command",
    "CommandResponse",
    "FileCommand",
    "LeanError",
    "LeanPool",
    "LeanREPLConfig",
    "LeanServerPool",
    "PickleEnvironment",
    "PickleProofState",
    "ProofStep",
    "ProofStepResponse",
    "ReplaySessionCache",
    "UnpickleEnvironment",
    "UnpickleProofState",
]
