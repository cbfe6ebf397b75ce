"""A built REPL for a given Lean version: cloned, checked out at the right ref, built, cached.

Cache layout under the cache directory::

    repl/<owner_repo-hash>/clone.git          bare clone of the REPL repository (+ clone.lock)
    repl/<owner_repo-hash>/builds/<commit>/   a finished build (+ <commit>.lock beside it):
                                              .lake/build/bin/repl and .leanpool-build.json

A build directory is created in a scratch directory and renamed into place when ``lake build``
succeeded, so one that exists is complete; a second setup finds it and runs no build step (only
one ``git rev-parse``). Everything is keyed by commit, so a moved branch gets a new build.

Which ref serves a Lean version: see `leanpool._versions.refs_by_lean_version`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from leanpool._errors import LeanSetupError
from leanpool._setup import (
    SetupTools,
    read_json,
    short_hash,
    staged_directory,
    step_lock,
    write_json_atomic,
)
from leanpool._versions import (
    newest_version,
    refs_by_lean_version,
    toolchain_version,
)

__all__ = [
    "REPL_BINARY",
    "PreparedRepl",
    "ReplRepository",
    "prepare_git_repl",
    "prepare_local_repl",
    "repo_name",
]

REPL_BINARY = Path(".lake") / "build" / "bin" / "repl"
BUILD_MARKER = ".leanpool-build.json"


@dataclass(frozen=True)
class PreparedRepl:
    """A REPL checkout ready to run: where it is, its binary, and the Lean it was built for."""

    directory: Path
    binary: Path
    lean_version: str | None
    commit: str | None = None


def repo_name(url: str) -> str:
    """``https://github.com/leanprover-community/repl`` -> ``leanprover-community/repl``."""
    trimmed = url.rstrip("/\\")
    trimmed = trimmed[:-4] if trimmed.endswith(".git") else trimmed
    parts = [p for p in re.split(r"[/:\\]", trimmed) if p]
    return "/".join(parts[-2:]) if parts else "repl"


def version_mismatch(what: str, found: str, wanted: str, wanted_from: str) -> ValueError:
    return ValueError(
        f"Lean version mismatch: {what} is for Lean {found}, but {wanted_from} needs Lean "
        f"{wanted}. The REPL and the project must use exactly the same Lean version "
        "(a REPL cannot load .olean files built by another Lean)."
    )


class ReplRepository:
    """The cached bare clone of one REPL git repository."""

    def __init__(self, url: str, cache_dir: Path, tools: SetupTools) -> None:
        self.url = url
        self.tools = tools
        readable = re.sub(r"[^\w.-]+", "_", repo_name(url))
        self.root = cache_dir / "repl" / f"{readable}-{short_hash(url)[:8]}"
        self.clone_dir = self.root / "clone.git"
        self._fetched = False

    # ---------------------------------------------------------------- clone and fetch
    def ensure_cloned(self, *, pull: bool = False) -> None:
        """Clone if absent; with `pull`, bring tags and branches up to date."""
        if self.clone_dir.is_dir() and not pull:
            return
        with step_lock(
            self.root / "clone.lock", f"clone {self.url}", self.tools.reporter, self.tools.timeout
        ):
            if not self.clone_dir.is_dir():
                with staged_directory(self.clone_dir) as scratch:
                    self.tools.git(
                        f"Clone the REPL repository {self.url}",
                        "clone",
                        "--bare",
                        "--quiet",
                        self.url,
                        scratch,
                    )
                self._fetched = True
            elif pull and not self._fetched:
                self._fetch_locked()

    def fetch(self) -> None:
        """Fetch new tags and branches (once per setup)."""
        if self._fetched:
            return
        with step_lock(
            self.root / "clone.lock", f"fetch {self.url}", self.tools.reporter, self.tools.timeout
        ):
            self._fetch_locked()

    def _fetch_locked(self) -> None:
        self.tools.git(
            f"Fetch REPL tags and branches from {self.url}",
            "-C",
            self.clone_dir,
            "fetch",
            "--quiet",
            "--prune",
            "--tags",
            "origin",
            "+refs/heads/*:refs/heads/*",
        )
        self._fetched = True

    # ---------------------------------------------------------------- reading refs
    def resolve(self, rev: str) -> str | None:
        """The commit `rev` (tag, branch or commit) names, or None if the clone has no such rev."""
        return self.tools.git_commit(self.clone_dir, rev)

    def refs(self) -> list[str]:
        out = self.tools.git(
            "List REPL tags and branches",
            "-C",
            self.clone_dir,
            "for-each-ref",
            "--format=%(refname)",
            "refs/tags",
            "refs/heads",
            report=False,
        )
        return [line.strip() for line in out.splitlines() if line.strip()]

    def versions(self) -> dict[str, str]:
        """Lean version -> ref, oldest first."""
        return refs_by_lean_version(self.refs())

    def toolchain_at(self, commit: str) -> str:
        out = self.tools.git(
            f"Read the REPL's lean-toolchain at {commit[:12]}",
            "-C",
            self.clone_dir,
            "show",
            f"{commit}:lean-toolchain",
            report=False,
        )
        return out.strip()

    # ---------------------------------------------------------------- picking a commit
    def commit_for(self, lean_version: str | None, repl_rev: str | None) -> tuple[str, str]:
        """(commit, what it is called) for the requested version or revision."""
        if repl_rev is not None:
            candidates = [repl_rev]
            if lean_version is not None:  # LeanInteract's fork: v1.3.18_lean-toolchain-v4.22.0
                candidates.append(f"{repl_rev}_lean-toolchain-{lean_version}")
            for attempt in range(2):
                for candidate in candidates:
                    if commit := self.resolve(candidate):
                        return commit, candidate
                if attempt == 0:
                    self.fetch()
            raise ValueError(
                f"REPL revision {repl_rev!r} was not found in {self.url} (no such tag, branch "
                "or commit). Leave repl_rev=None to use the tag named like the Lean version."
            )
        assert lean_version is not None
        commit = self.resolve(f"refs/tags/{lean_version}")  # the common case: one git call
        if commit is not None:
            return commit, lean_version
        for attempt in range(2):
            ref = self.versions().get(lean_version)
            if ref is not None and (commit := self.resolve(ref)):
                return commit, ref.removeprefix("refs/tags/").removeprefix("refs/heads/")
            if attempt == 0:
                self.fetch()
        supported = list(self.versions())
        raise ValueError(
            f"Lean {lean_version} is not supported by the REPL at {self.url}: it has no tag or "
            f"branch for that version. Supported Lean versions: {', '.join(supported) or 'none'}."
        )

    def newest_version(self) -> str:
        found = newest_version(self.versions())
        if found is None:
            self.fetch()
            found = newest_version(self.versions())
        if found is None:
            raise ValueError(f"The REPL repository {self.url} has no Lean version tags.")
        return found


def prepare_git_repl(
    tools: SetupTools,
    repo: ReplRepository,
    *,
    lean_version: str | None,
    repl_rev: str | None,
    version_source: str,
    force_pull: bool,
    build: bool,
) -> PreparedRepl:
    """Clone, pick the commit, check its Lean version, build once, return the cached build."""
    repo.ensure_cloned(pull=force_pull)
    if lean_version is None and repl_rev is None:
        lean_version = repo.newest_version()
        tools.reporter.note(f"Lean version: {lean_version} (the newest the REPL supports)")
    commit, ref = repo.commit_for(lean_version, repl_rev)
    build_dir = repo.root / "builds" / commit
    marker = _finished_build(build_dir)
    toolchain = str(marker["toolchain"]) if marker else repo.toolchain_at(commit)
    found = toolchain_version(toolchain)
    if lean_version is not None and found != lean_version:
        raise version_mismatch(f"REPL ref {ref} ({repo.url})", found, lean_version, version_source)
    lean_version = found
    if marker is None:
        if not build:
            raise LeanSetupError.from_step(
                f"use a cached REPL build for Lean {lean_version}",
                hint=f"No finished build of {repo.url} at {ref} is cached in {build_dir}, and "
                "build_repl=False forbids building it. Pass build_repl=True (once is enough).",
            )
        _build_once(tools, repo, commit, ref, toolchain, build_dir)
    else:
        tools.reporter.note(f"REPL for Lean {lean_version}: cached build {build_dir}")
    return PreparedRepl(build_dir, build_dir / REPL_BINARY, lean_version, commit)


def _finished_build(build_dir: Path) -> dict[str, object] | None:
    marker = read_json(build_dir / BUILD_MARKER)
    if not isinstance(marker, dict) or "toolchain" not in marker:
        return None
    binary = build_dir / REPL_BINARY
    return marker if binary.is_file() and os.access(binary, os.X_OK) else None


def _build_once(
    tools: SetupTools, repo: ReplRepository, commit: str, ref: str, toolchain: str, build_dir: Path
) -> None:
    version = toolchain_version(toolchain)
    with step_lock(
        build_dir.with_name(f"{commit}.lock"),
        f"build the REPL for Lean {version}",
        tools.reporter,
        tools.timeout,
    ):
        if _finished_build(build_dir) is not None:  # another process built it while we waited
            return
        with staged_directory(build_dir) as scratch:
            tools.git(
                f"Copy the REPL clone for {ref} (git clone)",
                "clone",
                "--quiet",
                "--no-checkout",
                repo.clone_dir,
                scratch,
            )
            tools.git(
                f"Check out the REPL at {ref} (git checkout)",
                "-C",
                scratch,
                "checkout",
                "--quiet",
                "--detach",
                commit,
            )
            tools.run_lake(f"Build the REPL for Lean {version} (lake build)", "build", cwd=scratch)
            if not (scratch / REPL_BINARY).is_file():
                raise LeanSetupError.from_step(
                    f"Build the REPL for Lean {version} (lake build)",
                    hint=f"lake build succeeded but produced no {REPL_BINARY}.",
                )
            write_json_atomic(
                scratch / BUILD_MARKER,
                {"url": repo.url, "ref": ref, "commit": commit, "toolchain": toolchain},
            )


def prepare_local_repl(
    tools: SetupTools,
    path: Path,
    *,
    lean_version: str | None,
    version_source: str,
    build: bool,
) -> PreparedRepl:
    """A REPL checkout the user already has: check its Lean version, optionally ``lake build``."""
    if not path.is_dir():
        raise ValueError(f"Local REPL path '{path}' does not exist")
    toolchain_file = path / "lean-toolchain"
    found = (
        toolchain_version(toolchain_file.read_text(encoding="utf-8"))
        if toolchain_file.is_file()
        else None
    )
    if lean_version is not None and found is not None and found != lean_version:
        raise version_mismatch(f"the REPL at {path}", found, lean_version, version_source)
    if build:
        with step_lock(
            tools.cache_dir / "locks" / f"local-repl-{short_hash(str(path))}.lock",
            f"build the REPL at {path}",
            tools.reporter,
            tools.timeout,
        ):
            tools.run_lake(f"Build the REPL at {path} (lake build)", "build", cwd=path)
    binary = path / REPL_BINARY
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        raise LeanSetupError.from_step(
            f"find the REPL binary in {path}",
            hint=f"{binary} does not exist or is not executable; build the REPL "
            "(build_repl=True runs lake build).",
        )
    return PreparedRepl(path, binary, found or lean_version)
