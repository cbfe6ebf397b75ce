"""LeanInteract's `lean_interact.project` module path (thin re-export for drop-in use)."""

from leanpool._project import (
    BaseProject,
    BaseTempProject,
    GitProject,
    LeanRequire,
    LocalProject,
    TemporaryProject,
    TempRequireProject,
)

__all__ = [
    "BaseProject",
    "BaseTempProject",
    "GitProject",
    "LeanRequire",
    "LocalProject",
    "TempRequireProject",
    "TemporaryProject",
]
