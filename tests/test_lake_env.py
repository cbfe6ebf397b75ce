"""Capturing the environment `lake env` gives the REPL, once, and reusing it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from fake_tools import NO_SYSROOT_ENV, FakeTools, use_fakes

from leanpool._lake_env import LakeEnvironment, capture_lake_env
from leanpool._setup import SetupReporter, SetupTools, prepare_cache_dir


@pytest.fixture
def fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeTools:
    return use_fakes(tmp_path, monkeypatch)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    directory = tmp_path / "proj"
    directory.mkdir()
    (directory / "lean-toolchain").write_text("leanprover/lean4:v4.19.0\n")
    (directory / "lakefile.lean").write_text("import Lake\nopen Lake DSL\npackage proj\n")
    return directory


def make_tools(fakes: FakeTools) -> SetupTools:
    return SetupTools(prepare_cache_dir(fakes.cache), SetupReporter(False))


def toolchain_dir(fakes: FakeTools) -> Path:
    return fakes.elan_home / "toolchains" / "leanprover--lean4---v4.19.0"


def test_difference_keeps_what_lake_set_and_what_it_prepended() -> None:
    before = {"PATH": "/usr/bin:/bin", "HOME": "/h", "KEEP": "1"}
    after = {
        "PATH": "/tc/bin:/usr/bin:/bin",
        "HOME": "/h",
        "KEEP": "1",
        "LEAN_PATH": "/p/lib",
        "LEAN_SYSROOT": "/tc",
        "_": "/usr/bin/python",
    }
    captured = LakeEnvironment.difference(before, after)
    assert captured.values == {"LEAN_PATH": "/p/lib", "LEAN_SYSROOT": "/tc"}
    assert captured.prepended == {"PATH": ["/tc/bin"]}
    # applied on top of a later PATH, the later PATH is kept behind lake's entries
    assert (
        captured.on_top_of({"PATH": "/venv/bin:/usr/bin"})["PATH"] == "/tc/bin:/venv/bin:/usr/bin"
    )


def test_a_replaced_path_list_is_kept_whole() -> None:
    captured = LakeEnvironment.difference({"PATH": "/a"}, {"PATH": "/b"})
    assert captured.values == {"PATH": "/b"} and captured.prepended == {}


def test_capture_installs_the_toolchain_then_asks_lake_once(
    fakes: FakeTools, project: Path
) -> None:
    env = capture_lake_env(make_tools(fakes), project)
    assert env["LEAN_SYSROOT"] == str(toolchain_dir(fakes))
    assert env["LEAN_PATH"].split(os.pathsep)[0] == str(
        project / ".lake" / "build" / "lib" / "lean"
    )
    assert env["PATH"].split(os.pathsep)[0] == str(toolchain_dir(fakes) / "bin")
    assert fakes.actions() == ["elan list", "elan install", "lake env"]


def test_second_capture_uses_the_cache(fakes: FakeTools, project: Path) -> None:
    first = capture_lake_env(make_tools(fakes), project)
    fakes.clear_log()
    assert capture_lake_env(make_tools(fakes), project) == first
    assert fakes.actions() == []


def test_a_changed_manifest_means_a_new_capture(fakes: FakeTools, project: Path) -> None:
    capture_lake_env(make_tools(fakes), project)
    (project / "lake-manifest.json").write_text('{"packages": []}')
    fakes.clear_log()
    capture_lake_env(make_tools(fakes), project)
    assert fakes.actions() == ["elan list", "lake env"]


def test_a_cached_environment_whose_sysroot_vanished_is_recaptured(
    fakes: FakeTools, project: Path
) -> None:
    capture_lake_env(make_tools(fakes), project)
    shutil.rmtree(toolchain_dir(fakes))  # elan toolchain uninstall
    fakes.clear_log()
    env = capture_lake_env(make_tools(fakes), project)
    assert fakes.actions() == ["elan list", "elan install", "lake env"]
    assert Path(env["LEAN_SYSROOT"]).is_dir()


def test_sysroot_comes_from_lean_when_lake_does_not_set_it(
    fakes: FakeTools, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(NO_SYSROOT_ENV, "1")
    env = capture_lake_env(make_tools(fakes), project)
    assert env["LEAN_SYSROOT"] == str(toolchain_dir(fakes))
    lake_calls = [c["args"] for c in fakes.calls("lake")]
    assert lake_calls[-1] == ["env", "lean", "--print-prefix"]
