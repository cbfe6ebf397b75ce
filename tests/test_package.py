"""The package surface (exports, LeanInteract's module paths and names, cheap import) and the
release: one list of supported Pythons, one version, a wheel that installs and runs on its own."""

from __future__ import annotations

import ast
import email
import importlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import leanpool

LEANINTERACT_ALL = [  # lean_interact.__all__ (src/lean_interact/__init__.py, 0.11)
    "LeanREPLConfig",
    "LeanServer",
    "AutoLeanServer",
    "LeanServerPool",
    "PickleSessionCache",
    "ReplaySessionCache",
    "LeanRequire",
    "GitProject",
    "LocalProject",
    "TemporaryProject",
    "TempRequireProject",
    "Command",
    "FileCommand",
    "ProofStep",
    "PickleEnvironment",
    "PickleProofState",
    "UnpickleEnvironment",
    "UnpickleProofState",
]
_REQUESTS = [
    "BaseREPLQuery",
    "Command",
    "FileCommand",
    "PickleEnvironment",
    "PickleProofState",
    "ProofStep",
    "UnpickleEnvironment",
    "UnpickleProofState",
]
_RESPONSES = ["BaseREPLResponse", "CommandResponse", "LeanError", "ProofStepResponse"]
# Every public name of each module of lean-interact 0.11.6 (its own definitions and what it
# imports from its other modules, which code imports from there too; not stdlib or third-party
# imports), read from the installed package: test_module_namespaces_match_leaninteract re-reads
# them when it is installed.
LEANINTERACT_MODULES: dict[str, list[str]] = {
    "interface": [
        *_REQUESTS, *_RESPONSES, "BaseNode", "BinderView", "CommandNode", "CommandOptions",
        "DataValue", "DeclBinders", "DeclModifiers", "DeclSignature", "DeclType", "DeclValue",
        "DeclarationInfo", "DocString", "InfoTree", "InfoTreeOptions", "Message", "Name", "Node",
        "OpenDecl", "Options", "Pos", "REPLBaseModel", "Range", "ScopeInfo", "Sorry", "Syntax",
        "Tactic", "TacticNode", "TermNode", "message_intersects_code",
    ],
    "server": [
        *_REQUESTS, *_RESPONSES, "AutoLeanServer", "BaseSessionCache", "DEFAULT_TIMEOUT",
        "LeanREPLConfig", "LeanServer", "ReplaySessionCache", "get_total_memory_usage", "logger",
    ],
    "config": [
        "BaseProject", "DEFAULT_CACHE_DIR", "DEFAULT_REPL_GIT_URL", "DEFAULT_REPL_VERSION",
        "LeanREPLConfig", "check_lake", "get_project_lean_version", "logger", "parse_lean_version",
    ],
    "project": [
        "BaseProject", "BaseTempProject", "DEFAULT_CACHE_DIR", "GitProject", "LeanRequire",
        "LocalProject", "TempRequireProject", "TemporaryProject", "check_lake",
        "get_project_lean_version", "logger",
    ],
    "sessioncache": [
        *_REQUESTS, *_RESPONSES, "BaseSessionCache", "PickleSessionCache", "PickleSessionState",
        "ReplaySessionCache", "ReplaySessionState", "ReplayableRequest", "SessionState",
    ],
    "pool": [
        *_REQUESTS, *_RESPONSES, "AutoLeanServer", "DEFAULT_TIMEOUT", "LeanREPLConfig",
        "LeanServerPool", "ReplaySessionCache",
    ],
    "utils": [
        "DEFAULT_CACHE_DIR", "DEFAULT_REPL_GIT_URL", "DEFAULT_REPL_VERSION", "ROOT_DIR",
        "check_lake", "check_windows_long_paths", "clean_last_theorem_string",
        "clean_theorem_string", "clear_cache", "compress_newlines", "extract_last_theorem",
        "get_project_lean_version", "get_total_memory_usage", "handler", "indent_code",
        "install_lean", "lean_comments_ranges", "logger", "parse_lean_version",
        "remove_lean_comments", "split_conclusion", "split_implementation",
    ],
}  # fmt: skip
# What `import lean_interact` leaves as attributes of the package: its __all__ and its modules.
LEANINTERACT_PACKAGE = [*LEANINTERACT_ALL, *LEANINTERACT_MODULES]


def test_all_matches_the_lazy_exports() -> None:
    assert set(leanpool.__all__) - {"__version__"} == set(leanpool._EXPORTS)
    for name in leanpool.__all__:
        assert getattr(leanpool, name) is not None


def test_leaninteract_names_are_importable_from_leanpool() -> None:
    missing = [name for name in LEANINTERACT_ALL if not hasattr(leanpool, name)]
    assert not missing


def test_leaninteract_module_paths() -> None:
    for module, names in LEANINTERACT_MODULES.items():
        imported = importlib.import_module(f"leanpool.{module}")
        assert [n for n in names if not hasattr(imported, n)] == [], module


def test_submodules_are_attributes_after_a_bare_import() -> None:
    """As after `import lean_interact`, and without making `import leanpool` expensive."""
    names = sorted(LEANINTERACT_PACKAGE)
    code = (
        "import sys, leanpool\n"
        "heavy = sorted(m for m in ('pydantic', 'loky', 'rich') if m in sys.modules)\n"
        f"names = [n for n in {names!r} if not hasattr(leanpool, n)]\n"
        "print(heavy, names, leanpool.interface.CommandResponse.__name__,\n"
        "      leanpool.config.BaseProject is leanpool.project.BaseProject,\n"
        "      'sessioncache' in dir(leanpool))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[]", "[]", "CommandResponse", "True", "True"], out.stderr
    with pytest.raises(AttributeError, match="no attribute 'nosuchmodule'"):
        leanpool.nosuchmodule  # noqa: B018


def _public_names(module: Any) -> dict[str, Any]:
    """A LeanInteract module's public names: its own definitions, the other lean_interact
    modules and their definitions it imports, and its constants (not stdlib or third-party
    classes, functions and modules it imports, which are no part of its API)."""
    import inspect
    import types

    names: dict[str, Any] = {}
    for name, value in vars(module).items():
        if name.startswith("_") or name == "TYPE_CHECKING":
            continue
        if isinstance(value, types.ModuleType):
            if value.__name__.startswith("lean_interact"):
                names[name] = value
        elif inspect.isclass(value) or inspect.isroutine(value):
            if getattr(value, "__module__", "").startswith("lean_interact"):
                names[name] = value
        elif type(value).__module__ not in ("typing", "__future__", "typing_extensions"):
            names[name] = value  # constants, loggers, type aliases
    return names


def test_module_namespaces_match_leaninteract() -> None:
    """Import both libraries' modules and compare: every public name of each LeanInteract module
    exists at the same path in leanpool, is the same kind of thing (class, function, module,
    alias), and re-exports the object of the module LeanInteract took it from."""
    import inspect
    import types

    try:
        importlib.import_module("lean_interact")
    except ImportError:
        pytest.skip("lean_interact is not installed (pip install 'leanpool[bench]' installs it)")
    modules = {"": LEANINTERACT_PACKAGE, **LEANINTERACT_MODULES}
    for suffix, recorded in modules.items():
        theirs = _public_names(
            importlib.import_module("lean_interact" + "." * bool(suffix) + suffix)
        )
        assert sorted(theirs) == sorted(recorded), suffix  # the table above is LeanInteract's
        ours = importlib.import_module("leanpool" + "." * bool(suffix) + suffix)
        for name, value in theirs.items():
            mine = getattr(ours, name)
            where = f"leanpool{'.' * bool(suffix)}{suffix}.{name}"
            if isinstance(value, types.ModuleType):
                assert mine.__name__ == value.__name__.replace("lean_interact", "leanpool"), where
            elif inspect.isclass(value) or inspect.isroutine(value):
                assert (inspect.isclass(mine), mine.__name__) == (inspect.isclass(value), name)
                home = importlib.import_module(
                    value.__module__.replace("lean_interact", "leanpool")
                )
                assert getattr(home, name) is mine, where  # one object, as in LeanInteract
            elif isinstance(value, (types.UnionType, types.GenericAlias)):  # a type alias
                forms = (types.UnionType, types.GenericAlias, type)
                assert isinstance(mine, forms) or type(mine).__module__ == "typing", where


def test_importing_leanpool_is_cheap() -> None:
    code = (
        "import sys, leanpool\n"
        "print(sorted(m for m in ('pydantic', 'loky', 'rich') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_unknown_attribute_is_an_attribute_error() -> None:
    try:
        leanpool.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


# --- supported Pythons: one list, everywhere -------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]


def _pyproject() -> dict[str, Any]:
    toml = importlib.import_module("tomllib" if sys.version_info >= (3, 11) else "tomli")
    with (ROOT / "pyproject.toml").open("rb") as file:
        data: dict[str, Any] = toml.load(file)
    return data


def _noxfile_pythons() -> list[str]:
    tree = ast.parse((ROOT / "noxfile.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "PYTHONS" for target in node.targets
        ):
            pythons: list[str] = ast.literal_eval(node.value)
            return pythons
    raise AssertionError("noxfile.py defines no PYTHONS")


def _workflow_pythons(name: str) -> list[str]:
    text = (ROOT / ".github" / "workflows" / name).read_text(encoding="utf-8")
    match = re.search(r"^\s*python-version:\s*\[([^\]]*)\]", text, re.MULTILINE)
    assert match, f"{name} has no python-version matrix"
    return re.findall(r"\"(3\.\d+)\"", match.group(1))


def test_supported_pythons_agree_everywhere() -> None:
    pyproject = _pyproject()
    classified = [
        c.rsplit(" :: ", 1)[1]
        for c in pyproject["project"]["classifiers"]
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    ]
    assert classified == ["3.10", "3.11", "3.12", "3.13"]
    assert _noxfile_pythons() == classified
    assert _workflow_pythons("ci.yml") == classified
    lowest = classified[0]
    assert pyproject["project"]["requires-python"] == f">={lowest}"
    assert pyproject["tool"]["ruff"]["target-version"] == "py" + lowest.replace(".", "")
    assert pyproject["tool"]["mypy"]["python_version"] == lowest


def test_version_is_written_once() -> None:
    pyproject = _pyproject()
    assert "version" not in pyproject["project"]
    assert pyproject["project"]["dynamic"] == ["version"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "leanpool.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", leanpool.__version__)
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "## [Unreleased]" in changelog
    assert f"## [{leanpool.__version__}]" in changelog


def test_every_extra_has_its_install_line() -> None:
    page = (ROOT / "docs" / "platforms.md").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "`pip install leanpool`" in page and "`pip install leanpool`" in readme
    for extra in _pyproject()["project"]["optional-dependencies"]:
        assert f"`pip install 'leanpool[{extra}]'`" in page, extra
        assert f"`[{extra}]`" in readme, extra


# --- the release: build, check, install into a clean venv, run ------------------------------

# Not the package's business: with PYTHONDONTWRITEBYTECODE set (as on these machines), setuptools'
# install steps print "warning: ... byte-compiling is disabled". Every other warning fails the test.
_BUILD_ENV_DROP = ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH", "PYTHONHOME", "PYTHONWARNINGS")
_NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", ".nox", "build", "dist", "site", "*.egg-info", "__pycache__", "*.pyc",
    ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis", ".coverage*",
)  # fmt: skip


@dataclass(frozen=True)
class Release:
    sdist: Path
    wheel: Path
    build_log: str


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _BUILD_ENV_DROP}
    env.pop("VIRTUAL_ENV", None)
    env.update(extra)
    return env


def _require_release_tools() -> None:
    missing = [
        name
        for name in ("build", "twine", "check_wheel_contents")
        if not importlib.util.find_spec(name)
    ]
    if missing:
        pytest.skip(
            f"release tools not installed ({', '.join(missing)}): pip install 'leanpool[dev]'"
        )


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Release:
    """The sdist and the wheel, built as a release would be: from a copy of the working tree
    (no stale egg-info or build/ of the checkout can leak in), the wheel from the sdist."""
    _require_release_tools()
    base = tmp_path_factory.mktemp("release")
    source, dist = base / "source", base / "dist"
    shutil.copytree(ROOT, source, ignore=_NOT_SOURCE)
    done = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(dist), str(source)],
        cwd=base,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    log = done.stdout + done.stderr
    assert done.returncode == 0, log
    (sdist,) = dist.glob("*.tar.gz")
    (wheel,) = dist.glob("*.whl")
    return Release(sdist, wheel, log)


@pytest.mark.slow
def test_release_builds_without_warnings(release: Release) -> None:
    assert release.sdist.name == f"leanpool-{leanpool.__version__}.tar.gz"
    assert release.wheel.name == f"leanpool-{leanpool.__version__}-py3-none-any.whl"
    warnings = [line for line in release.build_log.splitlines() if "warn" in line.lower()]
    assert warnings == [], "\n".join(warnings)


@pytest.mark.slow
def test_release_passes_twine_and_check_wheel_contents(release: Release) -> None:
    twine = subprocess.run(
        [
            sys.executable,
            "-m",
            "twine",
            "check",
            "--strict",
            str(release.sdist),
            str(release.wheel),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert twine.returncode == 0, twine.stdout + twine.stderr
    assert twine.stdout.count("PASSED") == 2, twine.stdout
    contents = subprocess.run(
        [sys.executable, "-m", "check_wheel_contents", str(release.wheel)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert contents.returncode == 0, contents.stdout + contents.stderr
    assert f"{release.wheel}: OK" in contents.stdout


@pytest.mark.slow
def test_release_metadata(release: Release) -> None:
    with zipfile.ZipFile(release.wheel) as wheel:
        names = wheel.namelist()
        info = f"leanpool-{leanpool.__version__}.dist-info"
        metadata = email.message_from_bytes(wheel.read(f"{info}/METADATA"))
        license_text = wheel.read(f"{info}/licenses/LICENSE").decode()
    assert metadata["Version"] == leanpool.__version__
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata.get_all("License-File") == ["LICENSE"]
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text
    assert not [c for c in metadata.get_all("Classifier", []) if c.startswith("License ::")]
    urls = {u.split(", ", 1)[0] for u in metadata.get_all("Project-URL", [])}
    assert {"Documentation", "Source", "Issues"} <= urls
    assert "leanpool/py.typed" in names
    assert not [n for n in names if n.startswith(("tests/", "bench/", "examples/"))]
    with tarfile.open(release.sdist) as sdist:
        members = {m.name.split("/", 1)[1] for m in sdist.getmembers() if "/" in m.name}
    assert {
        "LICENSE",
        "README.md",
        "CHANGELOG.md",
        "pyproject.toml",
        "leanpool/py.typed",
    } <= members
    assert not [m for m in members if m.startswith("tests/")]  # MANIFEST.in says why


@pytest.mark.slow
def test_wheel_installs_into_a_clean_venv_and_runs(release: Release, tmp_path: Path) -> None:
    """From a fresh venv, a tmp working directory and no source tree on sys.path: `leanpool
    --version`, `doctor` and `verify --sim` on the example data. pip reuses its cache."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    bin_dir = venv / "bin"
    env = _clean_env(PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", COLUMNS="200")
    work = tmp_path / "work"
    work.mkdir()

    def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(args), cwd=work, env=env, capture_output=True, text=True, timeout=timeout
        )

    install = run(str(bin_dir / "python"), "-m", "pip", "install", "--quiet", str(release.wheel))
    assert install.returncode == 0, install.stdout + install.stderr

    where = run(
        str(bin_dir / "python"),
        "-c",
        "import importlib.metadata as m, leanpool, sys; "
        "print(leanpool.__file__); print(m.version('leanpool')); print(sys.path)",
    )
    assert where.returncode == 0, where.stderr
    module_file, installed_version, path = where.stdout.splitlines()
    assert Path(module_file).is_relative_to(venv), module_file
    assert installed_version == leanpool.__version__
    assert str(ROOT) not in path

    version = run(str(bin_dir / "leanpool"), "--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"leanpool {leanpool.__version__}"

    doctor = run(str(bin_dir / "leanpool"), "doctor")
    assert doctor.returncode in (0, 1), doctor.stdout + doctor.stderr  # 1: no Lean here
    assert "leanpool doctor" in doctor.stdout
    assert f"leanpool {leanpool.__version__}, Python" in doctor.stdout

    data = work / "theorems.jsonl"
    shutil.copyfile(ROOT / "examples" / "data" / "theorems.jsonl", data)
    items = len(data.read_text(encoding="utf-8").splitlines())
    verify = run(str(bin_dir / "leanpool"), "verify", "--sim", data.name, "-o", "results.jsonl")
    # The dataset holds wrong proofs on purpose: 1 (some failed) is the expected status.
    assert verify.returncode == 1, verify.stdout + verify.stderr
    shown = re.search(r"^\s*passed\s*│\s*(\d+)\s*│", verify.stdout, re.MULTILINE)
    assert shown, verify.stdout
    results = [json.loads(line) for line in (work / "results.jsonl").read_text().splitlines()]
    assert len(results) == items
    passed = sum(r["verdict"] == "passed" for r in results)
    assert int(shown.group(1)) == passed
    assert 0 < passed < items
