"""LeanInteract's `lean_interact.sessioncache` module path: every public name it has, for drop-in
use (the request and response models it imports included)."""

from leanpool._session_cache import (
    BaseSessionCache,
    PickleSessionCache,
    PickleSessionState,
    ReplaySessionCache,
    ReplaySessionState,
    SessionState,
)
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

ReplayableRequest = Command | FileCommand | ProofStep | UnpickleEnvironment | UnpickleProofState
"""The requests whose answers a replay cache can rebuild (LeanInteract's alias)."""

__all__ = [
    "BaseREPLQuery",
    "BaseREPLResponse",
    "BaseSessionCache",
    "Command",
    "CommandResponse",
    "FileCommand",
    "LeanError",
    "PickleEnvironment",
    "PickleProofState",
    "PickleSessionCache",
    "PickleSessionState",
    "ProofStep",
    "ProofStepResponse",
    "ReplaySessionCache",
    "ReplaySessionState",
    "ReplayableRequest",
    "SessionState",
    "UnpickleEnvironment",
    "UnpickleProofState",
]
