"""Preflight: what would make verification silently wrong, or make Lake reach the network.

Run when a pool starts (`enforce_preflight`) and by ``leanpool doctor --project DIR``
(`check_project`). Reads files only: no process is started (no ``git``, no ``lake``, no
``lean``: elan's proxy would download a missing toolchain), so it costs a few stats and small
reads, also for a Mathlib project.

The checks and the facts they rest on:

* **REPL version** (error). A REPL binary embeds one Lean; it must load ``.olean`` files made by
  exactly that Lean, else imports fail at their headers or read wrong data (the REPL's README,
  "the REPL and the project must use the same Lean version"; leanprover-community/repl tags
  each release with the Lean version its ``lean-toolchain`` names). The REPL's version is the
  ``lean-toolchain`` of the checkout the config built (`LeanREPLConfig.cache_repl_dir`), the
  project's is its own ``lean-toolchain``. The sysroot ``lake env`` captured (``LEAN_SYSROOT``,
  where the REPL loads ``Init``/``Lean`` from) is checked too, when elan named its directory.
* **Build present** (error; warn for one unbuilt dependency among built ones). Lean looks up an
  imported module's ``.olean`` on ``LEAN_PATH``, which ``lake env`` sets to each package's
  ``.lake/build/lib/lean`` (Lake's `Workspace.augmentedLeanPath`); a module missing there makes
  the import fail, and Lean then elaborates in an *empty* environment (lean4
  `Lean.Elab.processHeader`): every proof fails, for a reason unrelated to it.
* **Lake would fetch** (warn: at run time leanpool starts the REPL binary directly with the
  captured environment, see `leanpool._lake_env`, so these bite at the next ``lake`` call: the
  config's ``lake env``, a `LocalProject`'s ``lake build``, a Ray node setting up again). From
  Lake's loader (lean4 src/lake/Lake/Load/Workspace.lean `loadWorkspace`, Resolve.lean
  `Workspace.materializeDeps` and `validateManifest`, Materialize.lean
  `PackageEntry.materialize`, Lake/Util/Git.lean `findRemoteRevision`):

  - no ``lake-manifest.json``: Lake runs a full update (clones every dependency, and picks the
    newest revisions the ``require``\\ s allow);
  - a ``require`` of the root missing from the manifest: Lake stops ("dependency not in
    manifest; use `lake update`"), and that update fetches;
  - a ``require`` whose git url or revision differs from its manifest entry: Lake warns
    "manifest out of date" (``lake update`` would move it);
  - a git package whose directory is missing: Lake clones it (an error here, since its modules
    are missing too);
  - a git package checked out at another commit than the manifest's: Lake checks out the
    manifest's, running ``git fetch`` first.

* **Toolchain** (warn): a project without ``lean-toolchain`` runs whatever elan's default is; a
  toolchain elan has not installed is downloaded by the first ``lake``/``lean`` call.

With ``repl_cmd`` (the simulator, a REPL managed elsewhere) nothing is checked: the command is
launched as given, and leanpool knows neither its Lean nor what it reads.

``LEANPOOL_PREFLIGHT=warn`` turns the errors into warnings at pool start, ``=off`` skips it.
"""

from __future__ import annotations

import json
import os
import re
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from leanpool._errors import LeanSetupError
from leanpool._exports import publish
from leanpool._versions import parse_lean_version, toolchain_name, toolchain_version

if TYPE_CHECKING:
    from leanpool._config import LeanREPLConfig

__all__ = [
    "PREFLIGHT_ENV",
    "PreflightError",
    "PreflightWarning",
    "Problem",
    "check_project",
    "check_repl",
    "enforce_preflight",
    "preflight",
    "repl_checkout_version",
]

PREFLIGHT_ENV = "LEANPOOL_PREFLIGHT"
Severity = Literal["error", "warn"]

_PACKAGES_DIR = ".lake/packages"  # Lake's default since Lean v4.3.0 (lake-packages before)
_BUILD_LIB = Path(".lake") / "build" / "lib"
_OLEAN_SEARCH_LIMIT = 20_000  # directory entries looked at per build before giving up (unknown)
_BUILD_MARKER = ".leanpool-build.json"  # leanpool._repl_build.BUILD_MARKER (not imported: cheap)


@dataclass(frozen=True)
class Problem:
    """One finding: `what` is wrong, `why` it matters, `action` what to do about it."""

    severity: Severity
    check: str  # "repl-version", "project-build", "package-build", "manifest", "toolchain"
    what: str
    why: str
    action: str

    def __str__(self) -> str:
        return f"{self.what}: {self.why} What to do: {self.action}"


class PreflightWarning(UserWarning):
    """A preflight finding that is only suspicious (see `leanpool._preflight`)."""


class PreflightError(LeanSetupError):
    """The pool would verify wrongly: `problems` lists the preflight errors that were found."""

    problems: tuple[Problem, ...] = ()

    @classmethod
    def from_problems(cls, problems: list[Problem]) -> PreflightError:
        lines = [f"Preflight found {len(problems)} problem(s) that make verification wrong:"]
        lines += [f"- {problem}" for problem in problems]
        lines.append(
            f"(Set {PREFLIGHT_ENV}=warn to start anyway with warnings, {PREFLIGHT_ENV}=off to "
            "skip these checks.)"
        )
        step = "preflight: " + "; ".join(problem.what for problem in problems)
        return cls("\n".join(lines), step=step, problems=tuple(problems))


# ============================================================================== entry points
def preflight(config: LeanREPLConfig) -> list[Problem]:
    """What is wrong with `config`'s REPL and project, errors first; [] for a ``repl_cmd``."""
    if config.repl_cmd is not None or not config.is_setup():
        return []
    repl_version = check_repl_version(config)
    problems: list[Problem] = []
    if config.project is not None:
        directory = Path(config.project.get_directory())
        problems += check_project(directory, repl_version=repl_version)
    if not any(p.check == "repl-version" for p in problems):  # one version problem is enough
        problems += check_repl(config, repl_version)
    return _ordered(problems)


def enforce_preflight(config: LeanREPLConfig, *, stacklevel: int = 2) -> list[Problem]:
    """`preflight(config)`; warnings go to `warnings.warn` (`PreflightWarning`), errors raise
    one `PreflightError` naming them all. Returns the problems (for logs). Honours
    ``LEANPOOL_PREFLIGHT`` (``warn``: errors are warned too; ``off``: nothing is checked)."""
    mode = os.environ.get(PREFLIGHT_ENV, "error").strip().lower()
    if mode in ("off", "0", "no", "false"):
        return []
    problems = preflight(config)
    errors = [p for p in problems if p.severity == "error"]
    for problem in problems:
        if problem.severity == "warn" or mode == "warn":
            warnings.warn(str(problem), PreflightWarning, stacklevel=stacklevel + 1)
    if errors and mode != "warn":
        raise PreflightError.from_problems(errors)
    return problems


# ============================================================================== the REPL
def check_repl_version(config: LeanREPLConfig) -> str | None:
    """The Lean the config's REPL binary was built for: its checkout's Lean
    (`repl_checkout_version`), else what setup recorded."""
    directory = config.cache_repl_dir
    found = repl_checkout_version(Path(directory)) if directory is not None else None
    return found or config.launch.lean_version


def repl_checkout_version(directory: Path) -> str | None:
    """The Lean a REPL checkout is built for: its ``lean-toolchain`` (elan builds it with that
    toolchain), else the toolchain leanpool's build marker recorded; None if neither."""
    found = _toolchain_file_version(directory)
    if found is None:
        marker = _read_json(directory / _BUILD_MARKER)
        if isinstance(marker, dict) and isinstance(marker.get("toolchain"), str):
            found = toolchain_version(marker["toolchain"]) or None
    return found


def check_repl(config: LeanREPLConfig, repl_version: str | None) -> list[Problem]:
    """The sysroot the REPL loads Lean's own library from must be the REPL's Lean."""
    sysroot = config.launch.env.get("LEAN_SYSROOT") or os.environ.get("LEAN_SYSROOT")
    sysroot_version = _elan_toolchain_version(sysroot) if sysroot else None
    if repl_version is None or sysroot_version is None or sysroot_version == repl_version:
        return []
    return [
        Problem(
            "error",
            "repl-version",
            f"the REPL is built for Lean {repl_version} but its LEAN_SYSROOT {sysroot} is Lean "
            f"{sysroot_version}",
            "the REPL loads Init and Lean from the sysroot; .olean files of another Lean "
            "cannot be read by it.",
            "set the project's lean-toolchain and the REPL to one Lean version, then construct "
            "the config again (it captures `lake env` anew).",
        )
    ]


# ============================================================================== a project
def check_project(directory: Path, *, repl_version: str | None = None) -> list[Problem]:
    """What is wrong with the Lake project in `directory` (a REPL for Lean `repl_version`, if
    known, will run in it), errors first."""
    problems: list[Problem] = []
    if not directory.is_dir():
        return [
            Problem(
                "error",
                "project-build",
                f"the project directory {directory} does not exist",
                "the REPL runs in it and imports its modules.",
                "give an existing Lake project directory.",
            )
        ]
    project_version = _toolchain_file_version(directory)
    problems += _version_problems(directory, project_version, repl_version)
    lakefile = read_lakefile(directory)
    manifest = read_manifest(directory)
    packages = manifest.packages if manifest is not None else []
    problems += _own_build_problems(directory, lakefile)
    problems += _package_build_problems(directory, packages)
    problems += _manifest_problems(directory, lakefile, manifest)
    return _ordered(problems)


def _version_problems(
    directory: Path, project_version: str | None, repl_version: str | None
) -> list[Problem]:
    if project_version is None:
        return [
            Problem(
                "warn",
                "toolchain",
                f"{directory} has no lean-toolchain",
                "its Lean version is whatever elan's default toolchain is, so a REPL built "
                "for another Lean may be used with its .olean files.",
                "add a lean-toolchain file naming the project's Lean "
                "(e.g. leanprover/lean4:v4.19.0).",
            )
        ]
    if repl_version is not None and repl_version != project_version:
        return [
            Problem(
                "error",
                "repl-version",
                f"the REPL is built for Lean {repl_version} but the project {directory} uses "
                f"Lean {project_version} (its lean-toolchain)",
                "a REPL reads only the .olean files of its own Lean: imports of the project "
                "fail or read wrong data, and every proof is judged in a broken environment.",
                f"use a REPL for Lean {project_version}: LeanREPLConfig(project=...) without "
                "lean_version/repl_rev/local_repl_path picks it (`leanpool setup --project "
                f"{directory}`).",
            )
        ]
    toolchain = _elan_toolchain(directory)
    toolchains = _elan_toolchains_dir()
    installed = (
        toolchain is None or toolchains is None or (toolchains / _elan_dir_name(toolchain)).is_dir()
    )
    if not installed:
        return [
            Problem(
                "warn",
                "toolchain",
                f"the project's toolchain {toolchain} is not installed in {toolchains}",
                "the first lake or lean call in the project downloads it (elan's proxy), "
                "and a LEAN_SYSROOT captured earlier may point to a toolchain that is gone.",
                f"install it ahead: `elan toolchain install {toolchain}` (or `leanpool "
                f"setup --project {directory}`).",
            )
        ]
    return []


def _own_build_problems(directory: Path, lakefile: Lakefile) -> list[Problem]:
    if not lakefile.libraries or has_olean(directory / _BUILD_LIB) is not False:
        return []
    names = ", ".join(lakefile.libraries)
    return [
        Problem(
            "error",
            "project-build",
            f"the project {directory} is not built: {directory / _BUILD_LIB} holds no .olean "
            f"file for its librar{'ies' if len(lakefile.libraries) > 1 else 'y'} {names}",
            "an import of its modules fails, and Lean elaborates the proof in an empty "
            "environment.",
            f"build it: `lake build` in {directory} (or `leanpool setup --project "
            f"{directory}`; LocalProject builds on construction unless auto_build=False).",
        )
    ]


def _package_build_problems(directory: Path, packages: list[ManifestPackage]) -> list[Problem]:
    problems: list[Problem] = []
    unbuilt: list[ManifestPackage] = []
    built = 0
    for package in packages:
        where = package.directory(directory)
        if not where.is_dir():
            fetch = "; lake clones it on its next run (network)" if package.kind == "git" else ""
            problems.append(
                Problem(
                    "error",
                    "package-build",
                    f"the package {package.name} is missing: {where} does not exist",
                    f"every import from it fails{fetch}.",
                    f"fetch and build it: `lake build` in {directory} (Mathlib: `lake exe "
                    "cache get` first).",
                )
            )
            continue
        state = has_olean(where / _BUILD_LIB)
        if state is False:
            unbuilt.append(package)
        elif state is True:
            built += 1
    if unbuilt and not built:
        names = ", ".join(p.name for p in unbuilt)
        problems.append(
            Problem(
                "error",
                "package-build",
                f"the project's dependencies are not built: no .olean under the "
                f".lake/build/lib of {names}",
                "every import from them fails, and Lean elaborates in an empty environment.",
                f"build them: `lake build` in {directory} (Mathlib: `lake exe cache get` "
                "first, else Mathlib is compiled from source, hours).",
            )
        )
    else:
        for package in unbuilt:
            problems.append(
                Problem(
                    "warn",
                    "package-build",
                    f"the package {package.name} is not built: "
                    f"{package.directory(directory) / _BUILD_LIB} holds no .olean file",
                    "an import of its modules fails (fine if nothing imports it).",
                    f"`lake build` in {directory} builds what the project's targets import; "
                    f"`lake build {package.name}/...` builds others.",
                )
            )
    return problems


def _manifest_problems(
    directory: Path, lakefile: Lakefile, manifest: Manifest | None
) -> list[Problem]:
    requires = lakefile.requires
    if manifest is None:
        if not requires:
            return []
        names = ", ".join(r.name for r in requires)
        return [
            Problem(
                "warn",
                "manifest",
                f"{directory} has no lake-manifest.json but its lakefile requires {names}",
                "with no manifest, the next lake call (lake env, lake build) runs a full "
                "`lake update`: it clones every dependency and may move them to newer "
                "revisions than the ones built.",
                f"run `lake update` once in {directory} (then `lake build`), and keep "
                "lake-manifest.json with the project.",
            )
        ]
    problems: list[Problem] = []
    entries = {p.name: p for p in manifest.packages}
    for require in requires:
        entry = entries.get(require.name)
        if entry is None:
            problems.append(
                Problem(
                    "warn",
                    "manifest",
                    f"the lakefile requires {require.name} but lake-manifest.json has no "
                    "entry for it",
                    'the next lake call stops with "dependency not in manifest", and '
                    f"`lake update {require.name}` fetches it.",
                    f"run `lake update {require.name}` in {directory}, then `lake build`.",
                )
            )
            continue
        changed = []
        if require.git and entry.url and _same_url(require.git, entry.url) is False:
            changed.append(f"git url {require.git} (manifest: {entry.url})")
        if require.rev and entry.input_rev and require.rev != entry.input_rev:
            changed.append(f"revision {require.rev} (manifest: {entry.input_rev})")
        if changed:
            problems.append(
                Problem(
                    "warn",
                    "manifest",
                    f"lake-manifest.json is out of date for {require.name}: the lakefile asks "
                    + " and ".join(changed),
                    'Lake warns "manifest out of date" and keeps the manifest\'s version; '
                    "the next `lake update` fetches the lakefile's.",
                    f"run `lake update {require.name}` in {directory} and rebuild, or make the "
                    "lakefile match the manifest.",
                )
            )
    for package in manifest.packages:
        if package.kind != "git" or not package.rev:
            continue
        where = directory / manifest.packages_dir / package.name  # the clone (before subDir)
        head = git_head(where)
        if head is not None and head != package.rev:
            problems.append(
                Problem(
                    "warn",
                    "manifest",
                    f"the package {package.name} is checked out at {head[:12]}, not at the "
                    f"manifest's {package.rev[:12]}",
                    "the next lake call checks out the manifest's revision, running `git "
                    "fetch` first (network), and its build then no longer matches.",
                    f"run `lake build` in {directory} now (it checks it out and rebuilds), "
                    "or `lake update` to record the checked-out revision.",
                )
            )
    return problems


# ============================================================================== reading files
@dataclass(frozen=True)
class Require:
    name: str
    git: str | None = None
    rev: str | None = None
    path: str | None = None


@dataclass(frozen=True)
class Lakefile:
    """What the checks need from ``lakefile.lean``/``lakefile.toml``: unconditional
    ``require``\\ s (conditional ones, indented under ``meta if``, are not read) and the
    ``lean_lib`` names."""

    requires: list[Require]
    libraries: list[str]


@dataclass(frozen=True)
class ManifestPackage:
    name: str
    kind: str  # "git" or "path"
    packages_dir: str
    url: str | None = None
    rev: str | None = None
    input_rev: str | None = None
    sub_dir: str | None = None
    dir: str | None = None  # path packages: relative to the project
    inherited: bool = False

    def directory(self, project: Path) -> Path:
        if self.kind == "path":
            return project / (self.dir or ".")
        base = project / self.packages_dir / self.name
        return base / self.sub_dir if self.sub_dir else base


@dataclass(frozen=True)
class Manifest:
    packages_dir: str
    packages: list[ManifestPackage]


def read_manifest(directory: Path) -> Manifest | None:
    """``lake-manifest.json`` (formats 5 to 7, Lake's Manifest.lean), None if absent or
    unreadable."""
    data = _read_json(directory / "lake-manifest.json")
    if not isinstance(data, dict):
        return None
    packages_dir = str(data.get("packagesDir") or _PACKAGES_DIR)
    packages = []
    for raw in data.get("packages") or []:
        entry = _manifest_entry(raw, packages_dir)
        if entry is not None:
            packages.append(entry)
    return Manifest(packages_dir, packages)


def _manifest_entry(raw: Any, packages_dir: str) -> ManifestPackage | None:
    if not isinstance(raw, dict):
        return None
    if "type" not in raw and len(raw) == 1:  # format 5-6: {"git": {...}} / {"path": {...}}
        ((kind, fields),) = raw.items()
        if not isinstance(fields, dict):
            return None
        raw = {"type": kind, **{key.rstrip("?"): value for key, value in fields.items()}}
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        return None
    kind = str(raw.get("type") or ("path" if "dir" in raw else "git"))

    def text(key: str) -> str | None:
        value = raw.get(key)
        return value if isinstance(value, str) and value else None

    return ManifestPackage(
        name=name,
        kind=kind,
        packages_dir=packages_dir,
        url=text("url"),
        rev=text("rev"),
        input_rev=text("inputRev"),
        sub_dir=text("subDir"),
        dir=text("dir"),
        inherited=bool(raw.get("inherited")),
    )


def read_lakefile(directory: Path) -> Lakefile:
    """The project's lakefile (``lakefile.lean`` first, as Lake looks for it), read as text."""
    lean = _read_text(directory / "lakefile.lean")
    if lean is not None:
        return _lean_lakefile(lean)
    toml = _read_text(directory / "lakefile.toml")
    if toml is not None:
        return _toml_lakefile(toml)
    return Lakefile([], [])


_LEAN_COMMENT = re.compile(r"/-.*?-/|--[^\n]*", re.DOTALL)
_STRING = r'"((?:[^"\\]|\\.)*)"'
_LEAN_NAME = r"(?:«([^»]+)»|([A-Za-z_][\w'.!?-]*))"
_LEAN_REQUIRE = re.compile(
    rf"^require\s+(?:{_STRING}\s*/\s*)?(?:{_LEAN_NAME}|{_STRING})(?P<rest>.*)\Z", re.DOTALL
)
_LEAN_LIB = re.compile(rf"^(?:@\[[^\]]*\]\s*)?lean_lib\s+{_LEAN_NAME}")


def _lean_lakefile(text: str) -> Lakefile:
    """Top-level commands (a command starts at column 0; indented lines continue it)."""
    commands: list[str] = []
    for line in _LEAN_COMMENT.sub("", text).splitlines():
        if line[:1].strip():
            commands.append(line.strip())
        elif commands and line.strip():
            commands[-1] += " " + line.strip()
    requires, libraries = [], []
    for command in commands:
        if (match := _LEAN_REQUIRE.match(command)) is not None:
            _scope, quoted_name, plain_name, string_name, rest = match.groups()
            name = quoted_name or plain_name or string_name or ""
            git = re.search(rf"\bfrom\s+git\s+{_STRING}", rest)
            path = re.search(rf"\bfrom\s+{_STRING}", rest)
            rev = re.search(rf"@\s*(?:git\s+)?{_STRING}", rest)
            requires.append(
                Require(
                    name,
                    git=git.group(1) if git else None,
                    rev=rev.group(1) if rev else None,
                    path=path.group(1) if path and not git else None,
                )
            )
        elif (match := _LEAN_LIB.match(command)) is not None:
            libraries.append(match.group(1) or match.group(2))
    return Lakefile(requires, libraries)


def _toml_lakefile(text: str) -> Lakefile:
    """The ``[[require]]`` and ``[[lean_lib]]`` tables of a ``lakefile.toml`` (Lake's
    documented fields: ``name``, ``git`` as a URL or ``{url, subDir}``, ``rev``, ``path``),
    read with tomllib (tomli before Python 3.11). A lakefile TOML cannot read gives nothing
    to check here: Lake will say what is wrong with it."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return Lakefile([], [])

    def tables(key: str) -> list[dict[str, Any]]:
        found = data.get(key)
        return [t for t in found if isinstance(t, dict)] if isinstance(found, list) else []

    def text_or_none(value: object) -> str | None:
        return value if isinstance(value, str) else None

    requires = []
    for table in tables("require"):
        name = text_or_none(table.get("name"))
        if name is None:
            continue
        git = table.get("git")
        url = text_or_none(git.get("url")) if isinstance(git, dict) else text_or_none(git)
        requires.append(
            Require(
                name,
                git=url,
                rev=text_or_none(table.get("rev")),
                path=text_or_none(table.get("path")),
            )
        )
    libraries = [n for t in tables("lean_lib") if (n := text_or_none(t.get("name"))) is not None]
    return Lakefile(requires, libraries)


def has_olean(directory: Path) -> bool | None:
    """Whether any ``.olean`` file is under `directory` (breadth first, stopping at the first);
    None when `_OLEAN_SEARCH_LIMIT` entries were looked at without an answer."""
    queue = [str(directory)]
    seen = 0
    while queue:
        current = queue.pop(0)
        try:
            entries = list(os.scandir(current))
        except OSError:
            continue
        for entry in entries:
            if entry.name.endswith(".olean"):
                return True
        for entry in entries:
            try:
                if entry.is_dir():
                    queue.append(entry.path)
            except OSError:
                continue
        seen += len(entries)
        if seen > _OLEAN_SEARCH_LIMIT:
            return None
    return False


def git_head(repository: Path) -> str | None:
    """The commit a git checkout's HEAD names, read from its files (no process); None when it
    is not a plain checkout or HEAD cannot be read."""
    git_dir = repository / ".git"
    if git_dir.is_file():  # a worktree or submodule: "gitdir: <path>"
        pointer = (_read_text(git_dir) or "").strip()
        if not pointer.startswith("gitdir:"):
            return None
        git_dir = (repository / pointer.removeprefix("gitdir:").strip()).resolve()
    head = (_read_text(git_dir / "HEAD") or "").strip()
    if re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", head):
        return head
    if not head.startswith("ref:"):
        return None
    ref = head.removeprefix("ref:").strip()
    loose = (_read_text(git_dir / ref) or "").strip()
    if loose:
        return loose
    for line in (_read_text(git_dir / "packed-refs") or "").splitlines():
        commit, _, name = line.partition(" ")
        if name.strip() == ref:
            return commit
    return None


# ============================================================================== helpers
def _ordered(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: p.severity != "error")


def _toolchain_file_version(directory: Path) -> str | None:
    content = _read_text(directory / "lean-toolchain")
    return (toolchain_version(content) or None) if content is not None else None


def _elan_toolchain(directory: Path) -> str | None:
    """The elan toolchain a ``lean-toolchain`` names, when it names one release (a channel
    such as ``stable`` resolves to a version elan picks: nothing to compare)."""
    spec = (_read_text(directory / "lean-toolchain") or "").strip()
    if not spec or parse_lean_version(spec) is None:
        return None
    return toolchain_name(spec)


def _elan_toolchains_dir() -> Path | None:
    home = Path(os.environ.get("ELAN_HOME") or Path.home() / ".elan")
    directory = home / "toolchains"
    return directory if directory.is_dir() else None


def _elan_dir_name(toolchain: str) -> str:
    """elan's directory for a toolchain: ``leanprover/lean4:v4.19.0`` ->
    ``leanprover--lean4---v4.19.0`` (elan src/elan-dist/src/dist/dist.rs, `ToolchainDesc`)."""
    return toolchain.replace("/", "--").replace(":", "---")


def _elan_toolchain_version(sysroot: str) -> str | None:
    """The Lean version of an elan toolchain directory, from its name; None for another one."""
    name = Path(sysroot).name
    match = re.fullmatch(r"leanprover--lean4(?:-nightly)?---(.+)", name)
    return match.group(1) if match else None


def _same_url(a: str, b: str) -> bool | None:
    def canonical(url: str) -> str:
        url = url.strip().rstrip("/")
        return url[:-4] if url.endswith(".git") else url

    return canonical(a) == canonical(b)


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _read_json(path: Path) -> Any:
    text = _read_text(path)
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


publish(__name__)
