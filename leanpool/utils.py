"""LeanInteract's `lean_interact.utils` names that make sense here (setup side).

Differences from LeanInteract, on purpose: importing this module creates nothing on disk;
`DEFAULT_CACHE_DIR` honours ``$LEANPOOL_CACHE_DIR`` and is otherwise the per-user cache
directory; `install_lean` never downloads anything (it says how to install elan); `clear_cache`
only deletes a directory leanpool tagged as its cache; `parse_lean_version` returns a
`LeanVersion` (ordered like Lean's releases) instead of a `packaging` version.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

from leanpool._config import DEFAULT_REPL_GIT_URL
from leanpool._project import read_lean_version
from leanpool._setup import (
    ELAN_INSTALL_HINT,
    SetupReporter,
    SetupTools,
    default_cache_dir,
    find_elan,
)
from leanpool._versions import LeanVersion, parse_lean_version

__all__ = [
    "DEFAULT_CACHE_DIR",
    "DEFAULT_REPL_GIT_URL",
    "ROOT_DIR",
    "LeanVersion",
    "check_lake",
    "clear_cache",
    "get_project_lean_version",
    "install_lean",
    "logger",
    "parse_lean_version",
]

logger = logging.getLogger("leanpool")
ROOT_DIR = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CACHE_DIR = str(default_cache_dir())


def get_project_lean_version(project_dir: str | os.PathLike[str]) -> str | None:
    """The Lean version in the project's ``lean-toolchain`` (``v4.19.0``), None without one."""
    return read_lean_version(project_dir)


def check_lake(lake_path: str | os.PathLike[str] = "lake", verbose: bool = False) -> str:
    """Run ``lake --version``; return its output. Raises `LeanSetupError` (a `RuntimeError`, as
    LeanInteract raised) when Lake is missing or broken."""
    tools = SetupTools(
        default_cache_dir(), SetupReporter(verbose), lake_path=lake_path, elan_path=None
    )
    return tools.run("Check Lake (lake --version)", [tools.lake(), "--version"]).strip()


def clear_cache(cache_dir: str | os.PathLike[str] | None = None) -> None:
    """Delete leanpool's cache directory (REPL builds, git and temporary projects, captured
    environments). Refuses a non-empty directory that is not tagged as leanpool's cache."""
    root = Path(cache_dir).expanduser().resolve() if cache_dir else default_cache_dir()
    if not root.exists():
        return
    if any(root.iterdir()) and not (root / "CACHEDIR.TAG").is_file():
        raise ValueError(f"Refusing to delete {root}: it is not a leanpool cache directory.")
    shutil.rmtree(root)


def install_lean() -> None:
    """Check that elan is installed; if not, print how to install it and exit non-zero.

    Unlike LeanInteract this never downloads or runs an installer: installing software is the
    user's decision. Toolchains are installed through elan on demand by the setup.
    """
    elan = find_elan()
    if elan is None:
        print(ELAN_INSTALL_HINT, file=sys.stderr)
        raise SystemExit(1)
    print(f"elan is installed: {elan}. Lean toolchains are installed through it when needed.")
