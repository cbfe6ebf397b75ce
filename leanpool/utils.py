"""LeanInteract's `lean_interact.utils`: its constants, setup helpers and Lean text helpers.

Differences from LeanInteract, on purpose: importing this module creates nothing on disk;
`DEFAULT_CACHE_DIR` honours ``$LEANPOOL_CACHE_DIR`` and is otherwise the per-user cache
directory; `DEFAULT_REPL_GIT_URL` is the upstream REPL, whose tags are named like Lean versions,
so `DEFAULT_REPL_VERSION` is None (``repl_rev``'s default); `install_lean` never downloads
anything (it says how to install elan); `clear_cache` only deletes a directory leanpool tagged
as its cache. Ordered versions: `LeanVersion` (``leanpool._versions.parse_lean_version``).
The text helpers (`remove_lean_comments`, `clean_theorem_string`, ...) live in
`leanpool._lean_text`, which lists the few LeanInteract bugs they do not reproduce.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from leanpool._config import DEFAULT_REPL_GIT_URL
from leanpool._lean_text import (
    clean_last_theorem_string,
    clean_theorem_string,
    compress_newlines,
    extract_last_theorem,
    indent_code,
    lean_comments_ranges,
    remove_lean_comments,
    split_conclusion,
    split_implementation,
)
from leanpool._memory import tree_rss_bytes
from leanpool._project import read_lean_version
from leanpool._setup import (
    ELAN_INSTALL_HINT,
    SetupReporter,
    SetupTools,
    default_cache_dir,
    find_elan,
)
from leanpool._versions import LeanVersion, normalize_lean_version

if TYPE_CHECKING:
    import psutil

__all__ = [
    "DEFAULT_CACHE_DIR",
    "DEFAULT_REPL_GIT_URL",
    "DEFAULT_REPL_VERSION",
    "ROOT_DIR",
    "LeanVersion",
    "check_lake",
    "check_windows_long_paths",
    "clean_last_theorem_string",
    "clean_theorem_string",
    "clear_cache",
    "compress_newlines",
    "extract_last_theorem",
    "get_project_lean_version",
    "get_total_memory_usage",
    "handler",
    "indent_code",
    "install_lean",
    "lean_comments_ranges",
    "logger",
    "parse_lean_version",
    "remove_lean_comments",
    "split_conclusion",
    "split_implementation",
]

logger = logging.getLogger("leanpool")
# LeanInteract attaches a rich handler to its logger at import and exports it, so that code can
# remove or reconfigure it (``logger.removeHandler(handler)``). leanpool attaches none (logging is
# the application's business): this handler is for code that does either, or attaches it itself.
handler: logging.Handler = logging.StreamHandler()
ROOT_DIR = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CACHE_DIR = str(default_cache_dir())
DEFAULT_REPL_VERSION: str | None = None  # repl_rev's default: the tag named like the Lean version


def parse_lean_version(lean_version: str) -> str:
    """``leanprover/lean4:v4.19.0`` or ``v4.19.0`` -> ``v4.19.0``, as LeanInteract does;
    `ValueError` unless it starts with ``v4``."""
    return normalize_lean_version(lean_version)


def get_project_lean_version(project_dir: str | os.PathLike[str]) -> str | None:
    """The Lean version in the project's ``lean-toolchain`` (``v4.19.0``); None without one or
    when it names no ``v4`` release (a nightly), as in LeanInteract."""
    found = read_lean_version(project_dir)
    try:
        return normalize_lean_version(found) if found else None
    except ValueError:
        return None


def get_total_memory_usage(proc: psutil.Process) -> int:
    """Resident memory of a process and all its descendants, in bytes (0 once it is gone)."""
    return tree_rss_bytes(proc.pid)


def check_windows_long_paths() -> None:
    """On Windows, say how to allow long paths (deep ``.lake`` trees exceed 260 characters);
    elsewhere nothing. Unlike LeanInteract, importing leanpool never runs it."""
    if sys.platform != "win32":
        return
    logger.info(
        "If Lake fails on long paths, enable them (as administrator): New-ItemProperty -Path "
        '"HKLM:\\SYSTEM\\CurrentControlSet\\Control\\FileSystem" -Name LongPathsEnabled '
        "-Value 1 -PropertyType DWord -Force; and: git config --global core.longpaths true"
    )


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
