"""`leanpool.utils`: LeanInteract's setup utilities, without their downloads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fake_tools import use_fakes

from leanpool import utils
from leanpool._errors import LeanSetupError
from leanpool._setup import prepare_cache_dir


def test_constants() -> None:
    assert utils.DEFAULT_REPL_GIT_URL == "https://github.com/leanprover-community/repl"
    assert Path(utils.DEFAULT_CACHE_DIR).is_absolute()


def test_default_cache_dir_follows_the_environment_variable(tmp_path: Path) -> None:
    code = "from leanpool import utils; print(utils.DEFAULT_CACHE_DIR)"
    env = {"LEANPOOL_CACHE_DIR": str(tmp_path / "c"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.strip() == str(tmp_path / "c")
    assert not (tmp_path / "c").exists()  # importing creates nothing


def test_get_project_lean_version(tmp_path: Path) -> None:
    assert utils.get_project_lean_version(tmp_path) is None
    (tmp_path / "lean-toolchain").write_text("leanprover/lean4:v4.19.0\n")
    assert utils.get_project_lean_version(tmp_path) == "v4.19.0"


def test_parse_lean_version_orders_versions() -> None:
    older, newer = utils.parse_lean_version("v4.9.0"), utils.parse_lean_version("v4.10.0-rc1")
    assert older is not None and newer is not None and older < newer


def test_clear_cache_deletes_only_a_tagged_cache(tmp_path: Path) -> None:
    cache = prepare_cache_dir(tmp_path / "cache")
    (cache / "repl").mkdir()
    utils.clear_cache(cache)
    assert not cache.exists()
    utils.clear_cache(cache)  # already gone: nothing to do
    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    with pytest.raises(ValueError, match="not a leanpool cache"):
        utils.clear_cache(precious)
    assert (precious / "thesis.tex").exists()


def test_install_lean_never_downloads_and_fails_without_elan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fakes = use_fakes(tmp_path, monkeypatch, tools=("lake", "git"))
    with pytest.raises(SystemExit) as caught:
        utils.install_lean()
    assert caught.value.code == 1
    assert "elan-init.sh" in capsys.readouterr().err
    assert fakes.calls() == []
    fakes.install("elan")
    utils.install_lean()
    assert str(fakes.bin / "elan") in capsys.readouterr().out
    assert fakes.calls() == []


def test_check_lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fakes = use_fakes(tmp_path, monkeypatch)
    assert "Lake version" in utils.check_lake()
    with pytest.raises(LeanSetupError, match="not found"):
        utils.check_lake(tmp_path / "no-lake")
    assert [c["args"] for c in fakes.calls()] == [["--version"]]
