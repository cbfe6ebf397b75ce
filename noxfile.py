"""The interpreter matrix: the whole test suite on every supported Python (`make matrix`).

`make matrix` runs `nox`; `nox -s tests-3.12 -- tests/test_leanjson.py -x` runs one interpreter on
a part of the suite. Each session builds its own virtual environment (under build/nox/) from one of
the interpreters in PYTHONS, installs leanpool (editable) with the `dev` extra and every optional
extra that has wheels for that interpreter, and runs pytest.

Interpreters are found on PATH as `python3.X`. pyenv's shims only answer for the versions pyenv
has selected, so the newest installed patch release of each supported minor version under
`$PYENV_ROOT/versions/` is put in front of PATH first: no exact patch version is written here.
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import nox

# The supported interpreters. pyproject.toml's classifiers and .github/workflows/ci.yml list the
# same versions (tests/test_package.py checks); the lowest is requires-python's bound and the
# target of ruff and mypy.
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
# Extras the suite uses when present; tests that need one skip with a reason naming it otherwise.
OPTIONAL_EXTRAS = ["ray", "docs", "serve", "metrics"]
ROOT = Path(__file__).resolve().parent

nox.options.sessions = ["tests"]
nox.options.envdir = str(ROOT / "build" / "nox")
nox.options.reuse_venv = "yes"  # a second run reinstalls into the same venvs: minutes saved
# A missing interpreter is reported by name, never fetched: nox would otherwise try to download a
# standalone build, which would test something other than the machine's Python (and cannot work
# on machines without internet access).
nox.options.download_python = "never"
# Missing interpreters. On a developer's machine nox reports `Skipping tests-3.X: Python
# interpreter 3.X not found` and lists the session as "skipped" in its summary: visible, and the
# other interpreters still run. Under CI (the CI variable is set, as `.ci/run` and GitHub Actions
# have it) a missing interpreter fails the run instead: every CI machine of this project has all
# four (pyenv here, actions/setup-python there), so a missing one means the machine changed and the
# matrix would shrink without anyone deciding it.
nox.options.error_on_missing_interpreters = "CI" in os.environ


def _pyenv_bin_dirs() -> list[str]:
    """The bin directory of the newest pyenv-installed patch release of each version in PYTHONS."""
    versions = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found: list[str] = []
    for minor in PYTHONS:
        releases: list[tuple[int, Path]] = []
        for candidate in versions.glob(f"{minor}.*"):
            match = re.fullmatch(re.escape(minor) + r"\.(\d+)", candidate.name)
            if match and (candidate / "bin" / f"python{minor}").is_file():
                releases.append((int(match.group(1)), candidate / "bin"))
        if releases:
            found.append(str(max(releases)[1]))
    return found


os.environ["PATH"] = os.pathsep.join([*_pyenv_bin_dirs(), os.environ.get("PATH", "")])


def _extra_requirements(extra: str) -> list[str]:
    toml = importlib.import_module("tomllib" if sys.version_info >= (3, 11) else "tomli")
    with (ROOT / "pyproject.toml").open("rb") as file:
        pyproject: dict[str, Any] = toml.load(file)
    requirements: list[str] = pyproject["project"]["optional-dependencies"][extra]
    return requirements


def _without_wheels(session: nox.Session, requirements: list[str]) -> list[str]:
    """The requirements that have no wheel for the session's interpreter (pip, dry run)."""
    pip = [str(Path(session.bin) / "python"), "-m", "pip", "install", "--dry-run", "--quiet"]
    missing: list[str] = []
    for requirement in requirements:
        done = subprocess.run(
            [*pip, "--no-deps", "--only-binary=:all:", requirement],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode == 0:
            continue
        if "No matching distribution found" not in done.stderr:
            # An index that cannot be reached is not "no wheel": say so and stop.
            session.error(f"could not ask pip about {requirement!r}:\n{done.stderr}")
        missing.append(requirement)
    return missing


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The whole pytest suite on one interpreter (arguments after `--` go to pytest)."""
    session.run("python", "-VV")
    extras = ["dev"]
    notes: list[str] = []
    for extra in OPTIONAL_EXTRAS:
        missing = _without_wheels(session, _extra_requirements(extra))
        if missing:
            notes.append(
                f"extra [{extra}] NOT installed on Python {session.python}: no wheel for "
                f"{', '.join(missing)}; the tests that need it skip and say why"
            )
        else:
            extras.append(extra)
    for note in notes:
        session.warn(note)
    session.install("-e", f".[{','.join(extras)}]")
    session.log(f"Python {session.python}: installed leanpool[{','.join(extras)}]")
    try:
        session.run("pytest", "-q", *session.posargs)
    finally:
        for note in notes:  # again after pytest's long output, where the summary is read
            session.warn(note)
