"""LeanInteract's `lean_interact.config` module path: every public name it has, for drop-in use.

Besides `LeanREPLConfig`, LeanInteract's module shows what it imports (`BaseProject`, the
defaults, the helpers from `utils`); code imports them from here, so they are here too, the same
objects as in `leanpool.project` and `leanpool.utils`.
"""

from leanpool._config import LeanREPLConfig, ReplLaunch
from leanpool._project import BaseProject
from leanpool.utils import (
    DEFAULT_CACHE_DIR,
    DEFAULT_REPL_GIT_URL,
    DEFAULT_REPL_VERSION,
    check_lake,
    get_project_lean_version,
    logger,
    parse_lean_version,
)

__all__ = [
    "DEFAULT_CACHE_DIR",
    "DEFAULT_REPL_GIT_URL",
    "DEFAULT_REPL_VERSION",
    "BaseProject",
    "LeanREPLConfig",
    "ReplLaunch",
    "check_lake",
    "get_project_lean_version",
    "logger",
    "parse_lean_version",
]
