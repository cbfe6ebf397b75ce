"""`LeanREPLConfig`: LeanInteract's config, set up once in the parent, then plain data.

Construction does the whole setup (LeanInteract semantics: a config is ready when it exists):

1. the Lean version: explicit `lean_version`, else the project's ``lean-toolchain``, else the
   newest version the REPL supports; explicit and project versions must agree;
2. the REPL: ``local_repl_path`` as is, or a cached build of `repl_git` at the tag named exactly
   like the Lean version (`repl_rev` overrides; its ``lean-toolchain`` must still match), built
   once with ``lake build`` after elan installed the toolchain (see `leanpool._repl_build`);
3. the environment ``lake env`` gives in the working directory (project dir, else the REPL dir),
   captured once (see `leanpool._lake_env`).

The result is `launch`, a `ReplLaunch`: servers start the REPL binary directly with it, no
``lake`` process per server. With ``repl_cmd`` none of this runs: the command is launched as is
(this is how the simulator and tests plug in another executable through the same path).

The config pickles as plain data and unpickling never redoes setup, so one config made in the
parent can be sent to every worker.
"""

from __future__ import annotations

import contextlib
import copy
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from leanpool._exports import publish
from leanpool._versions import normalize_lean_version, sort_versions

if TYPE_CHECKING:
    from leanpool._preflight import Problem
    from leanpool._project import BaseProject
    from leanpool._setup import SetupTools

__all__ = ["DEFAULT_REPL_GIT_URL", "LeanREPLConfig", "ReplLaunch"]

DEFAULT_REPL_GIT_URL = "https://github.com/leanprover-community/repl"


@dataclass(frozen=True)
class ReplLaunch:
    """How to start one REPL process: computed once by setup in the parent, sent to workers."""

    argv: tuple[str, ...]  # executable + args; the real REPL binary, started directly
    cwd: str  # working directory (project dir, else REPL dir)
    env: dict[str, str]  # set on top of the parent's environment at spawn (LEAN_PATH, ...)
    lean_version: str | None


class LeanREPLConfig:
    """Which Lean, which REPL and which project; set up on construction.

    Parameters and defaults follow LeanInteract 0.11's ``LeanREPLConfig`` except:
    `repl_git` is the upstream REPL and `repl_rev=None` means "the tag named like the Lean
    version"; `cache_dir=None` means ``$LEANPOOL_CACHE_DIR``, else the user cache directory.

    `memory_hard_limit_mb` is applied by the servers. `enable_incremental_optimization` and
    `enable_parallel_elaboration` are stored for the servers to decide what to send; the upstream
    REPL ignores the ``incrementality`` and ``setOptions`` keys they stand for.

    Keyword-only extensions:
        repl_cmd: start this command instead of setting anything up (simulator, tests, a REPL
            you manage yourself); it runs in the project directory if a project is given, else
            in the current directory at construction.
        repl_env: variables set on top of the captured Lean environment.
        elan_path: elan's executable (default: PATH, ``$ELAN_HOME/bin``, ``~/.elan/bin``).
        setup_timeout: seconds allowed for each external step and for each wait on another
            process's setup lock (default: no limit; Mathlib downloads are slow).

    Raises `ValueError` for wrong arguments (unparsable or unsupported Lean version, version
    mismatch, missing local path) and `LeanSetupError` when an external step fails.
    """

    launch: ReplLaunch

    def __init__(
        self,
        lean_version: str | None = None,
        project: BaseProject | None = None,
        repl_rev: str | None = None,
        repl_git: str = DEFAULT_REPL_GIT_URL,
        force_pull_repl: bool = False,
        cache_dir: str | os.PathLike[str] | None = None,
        local_repl_path: str | os.PathLike[str] | None = None,
        build_repl: bool = True,
        lake_path: str | os.PathLike[str] = "lake",
        memory_hard_limit_mb: int | None = None,
        enable_incremental_optimization: bool = True,
        enable_parallel_elaboration: bool = True,
        verbose: bool = False,
        *,
        repl_cmd: Sequence[str] | None = None,
        repl_env: Mapping[str, str] | None = None,
        elan_path: str | os.PathLike[str] | None = None,
        setup_timeout: float | None = None,
    ) -> None:
        from leanpool._repl_build import repo_name
        from leanpool._setup import default_cache_dir

        self.lean_version = normalize_lean_version(lean_version) if lean_version else None
        self.project = project
        self.repl_rev = repl_rev
        self.repl_git = repl_git
        self.force_pull_repl = force_pull_repl
        self.cache_dir = (
            Path(cache_dir).expanduser().resolve() if cache_dir else default_cache_dir()
        )
        self.local_repl_path = (
            Path(local_repl_path).expanduser().resolve() if local_repl_path else None
        )
        self.build_repl = build_repl
        self.lake_path = Path(lake_path)
        self.memory_hard_limit_mb = memory_hard_limit_mb
        self.enable_incremental_optimization = enable_incremental_optimization
        self.enable_parallel_elaboration = enable_parallel_elaboration
        self.verbose = verbose
        self.repl_cmd = tuple(str(part) for part in repl_cmd) if repl_cmd is not None else None
        self.repl_env = dict(repl_env or {})
        self.elan_path = elan_path
        self.setup_timeout = setup_timeout
        self.repo_name = repo_name(repl_git)
        self.cache_clean_repl_dir: str | None = None
        self._cache_repl_dir: str | None = None
        self._working_dir = ""
        started = time.monotonic()
        if self.repl_cmd is not None:
            self._plug_in_command(self.repl_cmd)
        else:
            self._set_up()
        self.setup_seconds = time.monotonic() - started  # how long construction's setup took

    def with_launch(self, launch: ReplLaunch) -> LeanREPLConfig:
        """A copy whose REPL starts as `launch` says, in `launch.cwd` (the self-test's
        variants: more arguments, another command, another directory)."""
        derived = copy.copy(self)
        derived.launch = launch
        derived._working_dir = launch.cwd
        return derived

    def on_this_machine(self) -> LeanREPLConfig:
        """This config, valid on the machine that calls it.

        A config travels as plain data: a worker on another machine (a Ray node) gets the one
        made on the driver. Where its REPL binary and working directory exist, it is returned
        as is (the same paths, a shared filesystem, or a node set up alike). Otherwise the setup
        is done again here, with the same arguments: the same steps under the same cache and
        locks, so several workers on one node set it up once. Raises `LeanSetupError` naming
        the step that failed, or `ValueError` for what cannot be redone (a ``repl_cmd`` or a
        `LocalProject` missing here).
        """
        launch = self.launch
        missing = [path for path in (launch.argv[0], launch.cwd) if not os.path.exists(path)]
        if not missing:
            return self
        where = ", ".join(missing)
        if self.repl_cmd is not None:
            raise ValueError(
                f"repl_cmd: {where} does not exist on this machine; a repl_cmd is run as "
                "given, so it must exist at the same path on every machine."
            )
        if self.project is not None and not os.path.isdir(self.project.get_directory()):
            redo = getattr(self.project, "_setup", None)
            if redo is None:
                raise ValueError(
                    f"The project directory {self.project.get_directory()} does not exist on "
                    "this machine. A LocalProject must be at the same path on every machine "
                    "(a shared filesystem); a GitProject or a temporary project is set up on "
                    "each machine by itself."
                )
            redo()
        derived = copy.copy(self)
        derived.repl_env = dict(self.repl_env)
        derived._set_up()
        return derived

    # ---------------------------------------------------------------- LeanInteract's surface
    @property
    def working_dir(self) -> str:
        """Where the REPL runs: the project directory, else the REPL directory."""
        return self._working_dir

    @property
    def cache_repl_dir(self) -> str | None:
        """The REPL checkout in use (None with ``repl_cmd``)."""
        return self._cache_repl_dir

    def is_setup(self) -> bool:
        return getattr(self, "launch", None) is not None

    def preflight(self) -> list[Problem]:
        """What would make verification with this config wrong, or make Lake reach the
        network: the REPL's Lean against the project's, the project's and its packages'
        builds, its manifest (see `leanpool._preflight`). Reads files only; [] with a
        ``repl_cmd``. `LeanPool` raises for the errors and warns for the rest."""
        from leanpool._preflight import preflight

        return preflight(self)

    def get_available_lean_versions(self) -> list[str]:
        """Lean versions the configured REPL can be built for, oldest first.

        From the REPL repository's tags and branches (cloned if needed); a local REPL or a
        ``repl_cmd`` offers only the configured version.
        """
        if self.repl_cmd is not None or self.local_repl_path is not None:
            return [self.lean_version] if self.lean_version else []
        from leanpool._repl_build import ReplRepository

        tools = self._setup_tools(elan_required=True)
        repo = ReplRepository(self.repl_git, tools.cache_dir, tools)
        repo.ensure_cloned()
        return sort_versions(repo.versions())

    def __repr__(self) -> str:
        launch = getattr(self, "launch", None)
        argv = " ".join(launch.argv) if launch is not None else "<not set up>"
        return (
            f"LeanREPLConfig(lean_version={self.lean_version!r}, "
            f"working_dir={self.working_dir!r}, repl={argv!r})"
        )

    # ---------------------------------------------------------------- setup
    def _plug_in_command(self, argv: tuple[str, ...]) -> None:
        if not argv:
            raise ValueError("repl_cmd must name a command to run, got an empty sequence.")
        executable = shutil.which(argv[0])
        if executable is None:
            raise ValueError(f"repl_cmd: {argv[0]!r} was not found or is not executable.")
        if self.project is not None:
            self._working_dir = self.project.get_directory()
            if self.lean_version is None:
                with contextlib.suppress(ValueError):  # a project without lean-toolchain
                    self.lean_version = self.project.get_lean_version()
        else:
            self._working_dir = os.getcwd()
        argv = (os.path.abspath(executable), *argv[1:])
        self.launch = ReplLaunch(argv, self._working_dir, dict(self.repl_env), self.lean_version)

    def _setup_tools(self, elan_required: bool) -> SetupTools:
        from leanpool._setup import SetupReporter, SetupTools, prepare_cache_dir

        return SetupTools(
            prepare_cache_dir(self.cache_dir),
            SetupReporter(self.verbose),
            lake_path=self.lake_path,
            elan_path=self.elan_path,
            timeout=self.setup_timeout,
            elan_required=elan_required,
        )

    def _set_up(self) -> None:
        from leanpool._lake_env import capture_lake_env
        from leanpool._repl_build import ReplRepository, prepare_git_repl, prepare_local_repl

        wanted, source = self._wanted_version()
        # A local REPL needs no download; with no elan its lake runs as given, as in
        # LeanInteract, which with a local REPL and build_repl=False only runs ``lake env <repl>``
        # (its server.py), so a stand-in REPL with a fake lake works.
        tools = self._setup_tools(elan_required=self.local_repl_path is None)
        if self.build_repl and self.local_repl_path is None:
            tools.elan()  # preflight: say "install elan" before any download
        if self.local_repl_path is not None:
            repl = prepare_local_repl(
                tools,
                self.local_repl_path,
                lean_version=wanted,
                version_source=source,
                build=self.build_repl,
            )
        else:
            repo = ReplRepository(self.repl_git, tools.cache_dir, tools)
            self.cache_clean_repl_dir = str(repo.clone_dir)
            repl = prepare_git_repl(
                tools,
                repo,
                lean_version=wanted,
                repl_rev=self.repl_rev,
                version_source=source,
                force_pull=self.force_pull_repl,
                build=self.build_repl,
            )
        self.lean_version = repl.lean_version
        self._cache_repl_dir = str(repl.directory)
        workdir = Path(self.project.get_directory()) if self.project else repl.directory
        self._working_dir = str(workdir)
        env = capture_lake_env(tools, workdir)
        env.update(self.repl_env)
        self.launch = ReplLaunch((str(repl.binary),), str(workdir), env, self.lean_version)
        self._note_ready(tools)

    def _wanted_version(self) -> tuple[str | None, str]:
        """(Lean version asked for, who asked); a mismatch fails here, before anything runs."""
        project_version = None
        if self.project is not None:
            project_version = self.project.get_lean_version()
        if self.lean_version and project_version and self.lean_version != project_version:
            raise ValueError(
                f"Lean version mismatch: lean_version={self.lean_version!r} but the project at "
                f"{self.project.get_directory() if self.project else ''} uses "
                f"{project_version!r} (its lean-toolchain). Leave lean_version unset with a "
                "project, or make them equal."
            )
        if self.lean_version:
            return self.lean_version, f"lean_version={self.lean_version!r}"
        if project_version and self.project is not None:
            return project_version, f"the project at {self.project.get_directory()}"
        return None, "the newest supported version"

    def _note_ready(self, tools: SetupTools) -> None:
        tools.reporter.note(
            f"Lean {self.lean_version} REPL ready: {self.launch.argv[0]} (in {self.working_dir})"
        )


def _absolute(path: str | os.PathLike[str]) -> Path:
    """Absolute now: the REPL runs elsewhere, and workers may start in another directory."""
    return Path(path).expanduser().resolve()


publish(__name__)
