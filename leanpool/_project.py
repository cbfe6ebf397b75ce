"""Lean projects a REPL runs in: LeanInteract's project classes, set up safely.

As in LeanInteract (its src/lean_interact/project.py) the classes are frozen keyword-only
dataclasses that do their work when constructed, in the parent, before any config exists; they
pickle as plain data and unpickling does no work.

What we do more carefully:

* every ``lake``/``git`` step goes through `leanpool._setup` (clear `LeanSetupError`s, the
  toolchain installed through elan under a lock before Lake runs);
* each project directory has one lock (in the cache directory, not beside the user's project);
* directories leanpool creates (git and temporary projects) are built in a scratch directory and
  renamed into place when complete; an existing one is reused with no build step;
* work done in place (updating a git project, building a local one) first drops a sentinel file
  and removes it last, so an interrupted update is redone, never trusted;
* Mathlib's cache (``lake exe cache get``) is fetched only for projects that depend on Mathlib,
  and its failure is an error (a Mathlib build from source takes hours).

Extensions (keyword-only, all defaulted): ``verbose`` on every project (LeanInteract has it only
on temporary ones), ``elan_path`` and ``setup_timeout``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from leanpool._exports import publish
from leanpool._repl_build import repo_name
from leanpool._setup import (
    SetupReporter,
    SetupTools,
    default_cache_dir,
    prepare_cache_dir,
    read_json,
    short_hash,
    staged_directory,
    step_lock,
    write_json_atomic,
)
from leanpool._versions import normalize_lean_version, toolchain_name, toolchain_version

__all__ = [
    "MATHLIB_GIT_URL",
    "BaseProject",
    "BaseTempProject",
    "GitProject",
    "LeanRequire",
    "LocalProject",
    "TempRequireProject",
    "TemporaryProject",
    "depends_on_mathlib",
    "read_lean_version",
]

MATHLIB_GIT_URL = "https://github.com/leanprover-community/mathlib4.git"
_MARKER = Path(".lake") / "leanpool-project.json"
_SENTINEL = Path(".lake") / "leanpool-updating"
_CACHE_GET_HINT = (
    "Mathlib's prebuilt cache could not be fetched; without it `lake build` would compile "
    "Mathlib from source (hours). Retry when the network is back."
)


def read_lean_version(directory: str | os.PathLike[str]) -> str | None:
    """The Lean version a project's ``lean-toolchain`` names (``v4.19.0``), None if absent."""
    try:
        content = (Path(directory) / "lean-toolchain").read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return toolchain_version(content) or None


def depends_on_mathlib(directory: Path) -> bool:
    """Whether the project is Mathlib or requires it (manifest first, else the lakefile)."""
    manifest = read_json(directory / "lake-manifest.json")
    if isinstance(manifest, dict):
        names = {str(p.get("name", "")).lower() for p in manifest.get("packages", []) if p}
        if "mathlib" in names or str(manifest.get("name", "")).lower() == "mathlib":
            return True
    for lakefile in ("lakefile.lean", "lakefile.toml"):
        try:
            text = (directory / lakefile).read_text(encoding="utf-8")
        except OSError:
            continue
        if re.search(r'require\s+[«"]?mathlib\b|name\s*=\s*"mathlib"', text, re.IGNORECASE):
            return True
    return False


def build_project(tools: SetupTools, directory: Path, *, update: bool) -> None:
    """``lake update`` (if asked), Mathlib's cache when needed, then ``lake build``."""
    if update:
        tools.run_lake("Resolve the project's dependencies (lake update)", "update", cwd=directory)
    if depends_on_mathlib(directory):
        tools.run_lake(
            "Download Mathlib's build cache (lake exe cache get)",
            "exe",
            "cache",
            "get",
            cwd=directory,
            hint=_CACHE_GET_HINT,
        )
    tools.run_lake(f"Build the project {directory.name} (lake build)", "build", cwd=directory)


@dataclass(frozen=True, kw_only=True)
class BaseProject:
    """A Lake project directory the REPL runs in; its ``lean-toolchain`` fixes the Lean version."""

    directory: str | os.PathLike[str] | None = None
    lake_path: str | os.PathLike[str] = "lake"
    auto_build: bool = True
    verbose: bool = False
    elan_path: str | os.PathLike[str] | None = None
    setup_timeout: float | None = None

    def get_directory(self) -> str:
        if self.directory is None:
            raise ValueError("This project has no directory.")
        return str(Path(self.directory).expanduser().resolve())

    def get_lean_version(self) -> str:
        version = read_lean_version(self.get_directory())
        if version is None:
            raise ValueError("Unable to determine Lean version")
        return version

    def build(self, verbose: bool = True, update: bool = False, _lock: bool = True) -> None:
        """Build the project under its lock: optional ``lake update``, Mathlib's cache if it
        depends on Mathlib, ``lake build``. Safe to call from several processes at once."""
        tools = self._tools(verbose)
        directory = Path(self.get_directory())
        if not _lock:
            build_project(tools, directory, update=update)
            return
        with self._lock(tools, f"build the project {directory}"):
            build_project(tools, directory, update=update)

    # ---------------------------------------------------------------- helpers
    def _tools(self, verbose: bool) -> SetupTools:
        return SetupTools(
            prepare_cache_dir(default_cache_dir()),
            SetupReporter(verbose),
            lake_path=self.lake_path,
            elan_path=self.elan_path,
            timeout=self.setup_timeout,
        )

    def _lock(self, tools: SetupTools, what: str) -> AbstractContextManager[None]:
        lock = tools.cache_dir / "locks" / f"project-{short_hash(self.get_directory())}.lock"
        return step_lock(lock, what, tools.reporter, tools.timeout)

    def _set(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)  # frozen dataclass: fields settled in __post_init__


def _ready(directory: Path) -> dict[str, object] | None:
    """The project's completion marker, unless an update of it was interrupted."""
    if (directory / _SENTINEL).exists():
        return None
    marker = read_json(directory / _MARKER)
    return marker if isinstance(marker, dict) else None


def _temp_ready(directory: Path) -> bool:
    """Finished by us, or (LeanInteract's rule, so its directories are reused, not wiped) it has
    a ``lake-manifest.json``: ours only ever appear complete, through `staged_directory`."""
    return _ready(directory) is not None or (directory / "lake-manifest.json").is_file()


def _mark_ready(directory: Path, **facts: object) -> None:
    write_json_atomic(directory / _MARKER, facts)


@dataclass(frozen=True, kw_only=True)
class LocalProject(BaseProject):
    """A project directory the user has; ``lake build`` on construction unless
    ``auto_build=False`` (Lake's own up-to-date check makes a rebuild of an unchanged project
    quick; it is still run because the user's files may have changed)."""

    directory: str | os.PathLike[str]

    def __post_init__(self) -> None:
        if self.directory is None:  # LocalProject() inherits BaseProject's default
            raise ValueError("`LocalProject` requires `directory` to be specified")
        path = Path(self.directory).expanduser().resolve()
        if not path.is_dir():
            raise ValueError(f"Project directory '{path}' does not exist")
        self._set("directory", str(path))
        if self.auto_build:
            self.build(verbose=self.verbose)


@dataclass(frozen=True, kw_only=True)
class GitProject(BaseProject):
    """A project cloned from git at `rev` (default: the default branch), cached and built once.

    Default directory: ``<cache>/git_projects/<owner>/<repo>/<rev or "latest">``. An existing
    finished clone is reused as is; ``force_pull=True`` fetches and updates it first.
    """

    url: str
    rev: str | None = None
    force_pull: bool = False

    def __post_init__(self) -> None:
        if self.directory is None:
            slug = re.sub(r"[^\w./-]+", "_", repo_name(self.url))
            path = default_cache_dir() / "git_projects" / slug / (self.rev or "latest")
        else:
            path = Path(self.directory).expanduser()
        self._set("directory", str(path.resolve()))
        self._setup()

    def _setup(self) -> None:
        tools = self._tools(self.verbose)
        path = Path(self.get_directory())
        marker = _ready(path)
        if marker is not None and self._satisfied_by(marker):
            tools.reporter.note(f"Project {self.url}: cached at {path}")
            return
        with self._lock(tools, f"set up the project {self.url}"):
            if not path.exists() or not any(path.iterdir()):
                with staged_directory(path) as scratch:
                    self._clone(tools, scratch)
                    self._finish(tools, scratch)
                return
            if not (path / ".git").exists():
                raise ValueError(f"Project directory '{path}' exists and is not a git clone.")
            marker = _ready(path)
            if marker is not None and self._satisfied_by(marker):
                return
            sentinel = path / _SENTINEL
            sentinel.parent.mkdir(parents=True, exist_ok=True)
            sentinel.touch()
            self._update(tools, path)
            self._finish(tools, path)
            sentinel.unlink()

    def _satisfied_by(self, marker: dict[str, object]) -> bool:
        return (
            not self.force_pull
            and marker.get("url") == self.url
            and marker.get("rev") == self.rev
            and (bool(marker.get("built")) or not self.auto_build)
        )

    def _clone(self, tools: SetupTools, target: Path) -> None:
        tools.git(
            f"Clone the project {self.url}",
            "clone",
            "--quiet",
            "--recurse-submodules",
            self.url,
            target,
        )
        if self.rev is not None:
            self._checkout(tools, target, fetched=True)

    def _update(self, tools: SetupTools, path: Path) -> None:
        if self.rev is not None:
            self._checkout(tools, path, fetched=False)
        elif self.force_pull:
            tools.git(f"Update the project {self.url} (git pull)", "-C", path, "pull", "--quiet")

    def _checkout(self, tools: SetupTools, path: Path, *, fetched: bool) -> None:
        assert self.rev is not None
        if not fetched and self.force_pull:
            self._fetch(tools, path)
            fetched = True
        commit = self._resolve(tools, path)
        if commit is None and not fetched:
            self._fetch(tools, path)
            commit = self._resolve(tools, path)
        if commit is None:
            raise ValueError(f"Revision {self.rev!r} was not found in {self.url}.")
        tools.git(
            f"Check out the project at {self.rev}",
            "-C",
            path,
            "checkout",
            "--quiet",
            "--detach",
            commit,
        )
        if (path / ".gitmodules").exists():
            tools.git(
                "Update the project's submodules",
                "-C",
                path,
                "submodule",
                "update",
                "--init",
                "--recursive",
                "--quiet",
            )

    def _resolve(self, tools: SetupTools, path: Path) -> str | None:
        assert self.rev is not None
        return tools.git_commit(path, self.rev) or tools.git_commit(path, f"origin/{self.rev}")

    def _fetch(self, tools: SetupTools, path: Path) -> None:
        tools.git(
            f"Fetch the project {self.url}", "-C", path, "fetch", "--quiet", "--tags", "origin"
        )

    def _finish(self, tools: SetupTools, path: Path) -> None:
        if self.auto_build:
            build_project(tools, path, update=False)
        _mark_ready(path, url=self.url, rev=self.rev, built=self.auto_build)


@dataclass(frozen=True, kw_only=True)
class BaseTempProject(BaseProject):
    """A project leanpool writes itself, cached by its content under
    ``<cache>/tmp_projects/<lean_version>/<hash>``: created once (``lake update``, Mathlib's
    cache if required, ``lake build``), reused afterwards with no step at all."""

    lean_version: str
    verbose: bool = True

    def __post_init__(self) -> None:
        version = normalize_lean_version(self.lean_version)
        self._set("lean_version", version)
        if self.directory is None:
            path = (
                default_cache_dir()
                / "tmp_projects"
                / version
                / short_hash(*self._lakefile(), str(self.auto_build))
            )
        else:
            path = Path(self.directory).expanduser()
        self._set("directory", str(path.resolve()))
        self._setup()

    def get_lean_version(self) -> str:
        return self.lean_version

    def _lakefile(self) -> tuple[str, str]:
        """(file name, contents) of the project's lakefile."""
        raise NotImplementedError

    def _setup(self) -> None:
        tools = self._tools(self.verbose)
        path = Path(self.get_directory())
        if _temp_ready(path):
            tools.reporter.note(f"Temporary project for Lean {self.lean_version}: cached")
            return
        with self._lock(tools, f"create the temporary project {path}"):
            if _temp_ready(path):
                return
            with staged_directory(path) as scratch:
                name, content = self._lakefile()
                (scratch / "lean-toolchain").write_text(
                    toolchain_name(self.lean_version) + "\n", encoding="utf-8"
                )
                (scratch / name).write_text(content, encoding="utf-8")
                if self.auto_build:
                    build_project(tools, scratch, update=True)
                else:
                    tools.run_lake(
                        "Resolve the project's dependencies (lake update)", "update", cwd=scratch
                    )
                _mark_ready(scratch, lean_version=self.lean_version, built=self.auto_build)


@dataclass(frozen=True, kw_only=True)
class TemporaryProject(BaseTempProject):
    """A temporary project whose lakefile is `content` (Lean or TOML)."""

    content: str
    lakefile_type: Literal["lean", "toml"] = "lean"

    def _lakefile(self) -> tuple[str, str]:
        if self.lakefile_type not in ("lean", "toml"):
            raise ValueError(f"lakefile_type must be 'lean' or 'toml', not {self.lakefile_type!r}")
        return f"lakefile.{self.lakefile_type}", self.content


@dataclass(frozen=True)
class LeanRequire:
    """One ``require`` line of a lakefile: package `name` from `git` at `rev`."""

    name: str
    git: str
    rev: str | None = None


@dataclass(frozen=True, kw_only=True)
class TempRequireProject(BaseTempProject):
    """A temporary project requiring packages; ``"mathlib"`` means Mathlib at the tag named
    like the Lean version (Mathlib tags its releases that way)."""

    require: Literal["mathlib"] | LeanRequire | Sequence[LeanRequire | Literal["mathlib"]]

    def requirements(self) -> list[LeanRequire]:
        items = [self.require] if isinstance(self.require, (str, LeanRequire)) else self.require
        resolved = []
        for item in items:
            if item == "mathlib":
                item = LeanRequire("mathlib", MATHLIB_GIT_URL, self.lean_version)
            if not isinstance(item, LeanRequire):
                raise ValueError(f"require: expected 'mathlib' or LeanRequire, got {item!r}")
            resolved.append(item)
        return sorted(set(resolved), key=lambda r: (r.name, r.git, r.rev or ""))

    def _lakefile(self) -> tuple[str, str]:
        lines = ["import Lake", "open Lake DSL", "", "package «leanpool_project» where", ""]
        for requirement in self.requirements():
            rev = f' @ "{requirement.rev}"' if requirement.rev else ""
            lines.append(f'require «{requirement.name}» from git "{requirement.git}"{rev}')
        return "lakefile.lean", "\n".join(lines) + "\n"


publish(__name__)
