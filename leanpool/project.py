"""LeanInteract's `lean_interact.project` module path: every public name it has, for drop-in use."""

from leanpool._project import (
    BaseProject,
    BaseTempProject,
    GitProject,
    LeanRequire,
    LocalProject,
    TemporaryProject,
    TempRequireProject,
)
from leanpool.utils import DEFAULT_CACHE_DIR, check_lake, get_project_lean_version, logger

__all__ = [
    "DEFAULT_CACHE_DIR",
    "BaseProject",
    "BaseTempProject",
    "GitProject",
    "LeanRequire",
    "LocalProject",
    "TempRequireProject",
    "TemporaryProject",
    "check_lake",
    "get_project_lean_version",
    "logger",
]
