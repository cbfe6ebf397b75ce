"""Project classes against fake elan/lake/git: local, git and temporary projects, the Mathlib
flow, caching, and use from a config."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
from fake_tools import MATHLIB_URL, FakeTools, use_fakes

from leanpool._config import LeanREPLConfig
from leanpool._errors import LeanSetupError
from leanpool._project import (
    GitProject,
    LeanRequire,
    LocalProject,
    TemporaryProject,
    TempRequireProject,
    depends_on_mathlib,
)

PROJECT_URL = "https://github.com/acme/proj"


@pytest.fixture
def fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeTools:
    fakes = use_fakes(tmp_path, monkeypatch)
    fakes.add_repl_remote()
    return fakes


def local_dir(root: Path, version: str = "v4.19.0", *, mathlib: bool = False) -> Path:
    root.mkdir(parents=True)
    (root / "lean-toolchain").write_text(f"leanprover/lean4:{version}\n")
    (root / "lakefile.lean").write_text("import Lake\nopen Lake DSL\npackage proj\n")
    if mathlib:
        manifest = {"packages": [{"name": "mathlib", "url": MATHLIB_URL}]}
        (root / "lake-manifest.json").write_text(json.dumps(manifest))
    return root


# --------------------------------------------------------------------------- local projects
def test_local_project_builds_after_installing_its_toolchain(
    fakes: FakeTools, tmp_path: Path
) -> None:
    project = LocalProject(directory=local_dir(tmp_path / "p"))
    assert fakes.actions() == ["elan list", "elan install", "lake build"]
    assert project.get_lean_version() == "v4.19.0"
    assert project.get_directory() == str(tmp_path / "p")


def test_a_local_project_needs_its_directory(fakes: FakeTools) -> None:
    with pytest.raises(ValueError, match="requires `directory`"):  # LeanInteract's error
        LocalProject()
    assert fakes.actions() == []


def test_a_failed_build_is_the_called_process_error_leaninteract_let_through(
    fakes: FakeTools, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LeanInteract runs `lake build` with check=True: code around its projects catches
    subprocess.CalledProcessError and reads returncode, cmd and output."""
    import subprocess

    monkeypatch.setenv("FAKE_TOOLS_FAIL", "lake build")
    try:
        LocalProject(directory=local_dir(tmp_path / "p"))
    except subprocess.CalledProcessError as caught:
        assert isinstance(caught, LeanSetupError) and isinstance(caught, RuntimeError)
        assert caught.returncode not in (None, 0)
        assert caught.cmd is not None and "build" in caught.cmd
        assert caught.output == caught.stdout == caught.output_tail
    else:
        raise AssertionError("a failing lake build raised nothing")


def test_local_project_without_auto_build_runs_nothing(fakes: FakeTools, tmp_path: Path) -> None:
    LocalProject(directory=local_dir(tmp_path / "p"), auto_build=False)
    assert fakes.actions() == []


def test_local_project_directory_is_stored_absolute(
    fakes: FakeTools, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local_dir(tmp_path / "p")
    monkeypatch.chdir(tmp_path)
    project = LocalProject(directory="p", auto_build=False)
    assert project.directory == str(tmp_path / "p")


def test_local_project_must_exist(fakes: FakeTools, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        LocalProject(directory=tmp_path / "missing")


def test_a_project_without_toolchain_has_no_version(fakes: FakeTools, tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    project = LocalProject(directory=tmp_path / "p", auto_build=False)
    with pytest.raises(ValueError, match="Unable to determine Lean version"):
        project.get_lean_version()


def test_mathlib_projects_fetch_the_cache_before_building(fakes: FakeTools, tmp_path: Path) -> None:
    LocalProject(directory=local_dir(tmp_path / "p", mathlib=True))
    assert fakes.actions() == ["elan list", "elan install", "lake cache", "lake build"]
    cache_get = fakes.calls("lake")[0]
    assert cache_get["args"] == ["exe", "cache", "get"]


def test_mathlib_detection(tmp_path: Path) -> None:
    plain = local_dir(tmp_path / "plain")
    with_manifest = local_dir(tmp_path / "m", mathlib=True)
    with_lakefile = local_dir(tmp_path / "l")
    (with_lakefile / "lakefile.lean").write_text(f'require mathlib from git "{MATHLIB_URL}"\n')
    assert not depends_on_mathlib(plain)
    assert depends_on_mathlib(with_manifest) and depends_on_mathlib(with_lakefile)


# --------------------------------------------------------------------------- git projects
def test_git_project_is_cloned_built_and_cached(fakes: FakeTools) -> None:
    fakes.add_project_remote(PROJECT_URL, "v4.19.0")
    project = GitProject(url=PROJECT_URL)
    assert fakes.actions() == ["git clone", "elan list", "elan install", "lake build"]
    assert Path(project.get_directory()) == fakes.cache / "git_projects" / "acme/proj" / "latest"
    assert project.get_lean_version() == "v4.19.0"
    fakes.clear_log()
    GitProject(url=PROJECT_URL)
    assert fakes.actions() == []


def test_git_project_at_a_revision(fakes: FakeTools) -> None:
    refs = fakes.add_project_remote(PROJECT_URL, "v4.19.0", tags=["v1.0"])
    project = GitProject(url=PROJECT_URL, rev="v1.0", auto_build=False)
    checkout = fakes.calls("git")[-1]
    assert checkout["action"] == "checkout" and checkout["args"][-1] == refs["refs/tags/v1.0"]
    assert project.get_directory().endswith("/v1.0")


def test_git_project_force_pull_updates_and_rebuilds(fakes: FakeTools) -> None:
    fakes.add_project_remote(PROJECT_URL, "v4.19.0", tags=["v1.0"])
    GitProject(url=PROJECT_URL, rev="v1.0")
    fakes.clear_log()
    GitProject(url=PROJECT_URL, rev="v1.0", force_pull=True)
    assert fakes.actions() == [
        "git fetch",
        "git rev-parse",
        "git checkout",
        "elan list",
        "lake build",
    ]


def test_git_mathlib_project_fetches_the_cache(fakes: FakeTools) -> None:
    fakes.add_project_remote(PROJECT_URL, "v4.19.0", mathlib=True)
    GitProject(url=PROJECT_URL)
    assert fakes.actions()[-2:] == ["lake cache", "lake build"]


def test_git_project_unknown_revision(fakes: FakeTools) -> None:
    fakes.add_project_remote(PROJECT_URL, "v4.19.0")
    with pytest.raises(ValueError, match="was not found"):
        GitProject(url=PROJECT_URL, rev="v9.9")
    assert not (fakes.cache / "git_projects" / "acme/proj" / "v9.9").exists()


def test_an_interrupted_git_project_update_is_redone(fakes: FakeTools) -> None:
    fakes.add_project_remote(PROJECT_URL, "v4.19.0")
    project = GitProject(url=PROJECT_URL)
    (Path(project.get_directory()) / ".lake" / "leanpool-updating").touch()
    fakes.clear_log()
    GitProject(url=PROJECT_URL)
    assert fakes.count("lake build") == 1


# --------------------------------------------------------------------------- temporary projects
def test_temporary_project_is_written_resolved_and_built_once(fakes: FakeTools) -> None:
    content = "import Lake\nopen Lake DSL\npackage scratch\n"
    project = TemporaryProject(lean_version="v4.19.0", content=content, verbose=False)
    directory = Path(project.get_directory())
    assert (directory / "lakefile.lean").read_text() == content
    assert (directory / "lean-toolchain").read_text().strip() == "leanprover/lean4:v4.19.0"
    assert fakes.actions() == ["elan list", "elan install", "lake update", "lake build"]
    assert directory.parent == fakes.cache / "tmp_projects" / "v4.19.0"
    fakes.clear_log()
    again = TemporaryProject(lean_version="v4.19.0", content=content, verbose=False)
    assert again.get_directory() == str(directory) and fakes.actions() == []


def test_different_lakefiles_get_different_directories(fakes: FakeTools) -> None:
    first = TemporaryProject(lean_version="v4.19.0", content="package a\n", verbose=False)
    second = TemporaryProject(
        lean_version="v4.19.0", content='name = "b"\n', lakefile_type="toml", verbose=False
    )
    assert first.get_directory() != second.get_directory()
    assert (Path(second.get_directory()) / "lakefile.toml").is_file()


def test_temp_require_mathlib_flow(fakes: FakeTools) -> None:
    project = TempRequireProject(lean_version="v4.19.0", require="mathlib", verbose=False)
    directory = Path(project.get_directory())
    lakefile = (directory / "lakefile.lean").read_text()
    assert f'require «mathlib» from git "{MATHLIB_URL}" @ "v4.19.0"' in lakefile
    assert fakes.actions() == [
        "elan list",
        "elan install",
        "lake update",
        "lake cache",
        "lake build",
    ]
    config = LeanREPLConfig(project=project)
    assert config.working_dir == str(directory)
    assert str(directory / ".lake" / "packages" / "mathlib") in config.launch.env["LEAN_PATH"]


def test_requirements_are_sorted_deduplicated_and_written(fakes: FakeTools) -> None:
    aesop = LeanRequire("aesop", "https://github.com/leanprover-community/aesop", "v4.19.0")
    project = TempRequireProject(
        lean_version="v4.19.0", require=["mathlib", aesop, aesop], verbose=False
    )
    assert [r.name for r in project.requirements()] == ["aesop", "mathlib"]
    lakefile = (Path(project.get_directory()) / "lakefile.lean").read_text()
    requires = [line for line in lakefile.splitlines() if line.startswith("require")]
    assert requires == [
        'require «aesop» from git "https://github.com/leanprover-community/aesop" @ "v4.19.0"',
        f'require «mathlib» from git "{MATHLIB_URL}" @ "v4.19.0"',
    ]


def test_a_failed_temporary_project_leaves_nothing_and_a_retry_works(
    fakes: FakeTools, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_TOOLS_FAIL", "lake cache=network")
    with pytest.raises(LeanSetupError, match="Network problem") as caught:
        TempRequireProject(lean_version="v4.19.0", require="mathlib", verbose=False)
    assert "lake exe cache get" in caught.value.step
    assert list((fakes.cache / "tmp_projects" / "v4.19.0").iterdir()) == []
    monkeypatch.delenv("FAKE_TOOLS_FAIL")
    project = TempRequireProject(lean_version="v4.19.0", require="mathlib", verbose=False)
    assert (Path(project.get_directory()) / "lake-manifest.json").is_file()


# --------------------------------------------------------------------------- plain data
def test_projects_pickle_without_redoing_setup(fakes: FakeTools, tmp_path: Path) -> None:
    fakes.add_project_remote(PROJECT_URL, "v4.19.0")
    projects = [
        LocalProject(directory=local_dir(tmp_path / "p")),
        GitProject(url=PROJECT_URL),
        TemporaryProject(lean_version="v4.19.0", content="package a\n", verbose=False),
    ]
    fakes.clear_log()
    for project in projects:
        assert pickle.loads(pickle.dumps(project)) == project
    assert fakes.actions() == []


def test_git_project_clones_into_an_empty_directory_it_is_given(
    fakes: FakeTools, tmp_path: Path
) -> None:
    fakes.add_project_remote(PROJECT_URL, "v4.19.0")
    (tmp_path / "empty").mkdir()
    project = GitProject(url=PROJECT_URL, directory=tmp_path / "empty", auto_build=False)
    assert (Path(project.get_directory()) / "lakefile.lean").is_file()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not a git clone"):
        GitProject(url=PROJECT_URL, directory=tmp_path / "other")
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"


def test_a_temporary_project_leaninteract_made_is_reused(fakes: FakeTools, tmp_path: Path) -> None:
    existing = local_dir(tmp_path / "made-before", mathlib=True)
    TemporaryProject(
        lean_version="v4.19.0", content="package a\n", directory=existing, verbose=False
    )
    assert fakes.actions() == []
    assert (existing / "lakefile.lean").read_text() != "package a\n"  # left as it was
