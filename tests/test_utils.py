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


def test_get_project_lean_version_ignores_what_is_not_a_v4_release(tmp_path: Path) -> None:
    (tmp_path / "lean-toolchain").write_text("leanprover/lean4:nightly-2025-01-01\n")
    assert utils.get_project_lean_version(tmp_path) is None


def test_parse_lean_version_is_leaninteract_s() -> None:
    assert utils.parse_lean_version("leanprover/lean4:v4.19.0") == "v4.19.0"
    assert utils.parse_lean_version(lean_version="v4.22.0-rc2") == "v4.22.0-rc2"
    with pytest.raises(ValueError, match="Unable to parse Lean version format!"):
        utils.parse_lean_version("v3.4.0")


def test_leaninteract_constants_and_memory_helper() -> None:
    import psutil

    assert utils.DEFAULT_REPL_VERSION is None  # the default repl_rev
    assert utils.get_total_memory_usage(psutil.Process()) > 0
    utils.check_windows_long_paths()  # nothing to do off Windows


# --------------------------------------------------------------------------- text helpers
PROOF = (
    "import Mathlib\n\n-- helper\ntheorem bar : 1 = 1 := rfl\n\n"
    "/-- The main result. -/\n@[simp] theorem baz (x : ℕ) (h : x > 0) : x ≠ 0 := by\n"
    "  have h2 : x ≥ 1 := by omega\n  omega\n"
)


def test_text_helpers_give_leaninteract_s_strings() -> None:
    assert utils.indent_code("a\nb", 4) == "    a\n    b"
    assert utils.compress_newlines("\n  \na\n \n\n\nb  \n\n") == "a\n\nb\n"
    assert utils.remove_lean_comments("a /- b /- c -/ d -/ e -- f\ng") == "a  e \ng"
    assert utils.remove_lean_comments("a /- b") == "a "  # an unclosed comment runs to the end
    assert utils.remove_lean_comments("a -/ b -/ c") is None
    assert utils.lean_comments_ranges("/-- d --/ x", "-", False) == [(0, 9)]
    statement = "theorem t (f : ℕ → ℕ := id) : let y := 1; f y = y := by simp"
    assert statement[utils.split_implementation(statement) or 0 :] == ":= by simp"
    assert statement[utils.split_conclusion(statement) or 0 :].startswith(": let y")
    assert utils.split_conclusion("theorem t") is None
    assert utils.clean_theorem_string("/- c -/ lemma foo {α} [G α] : P := by simp") == (
        "theorem dummy {α} [G α] : P := by sorry"
    )
    assert utils.clean_theorem_string("example : True := trivial", "e", add_sorry=False) == (
        "theorem e : True"
    )
    assert utils.clean_theorem_string("def x := 1") is None
    assert PROOF[utils.extract_last_theorem(PROOF) :].startswith("theorem baz")
    with pytest.raises(ValueError, match="No theorem found"):
        utils.extract_last_theorem("def x := 1 -- theorem y : True\n")
    assert utils.clean_last_theorem_string(PROOF, "t2", add_sorry=True).endswith(
        "@[simp] theorem t2 (x : ℕ) (h : x > 0) : x ≠ 0 := by sorry"
    )


def test_text_helpers_fix_leaninteract_s_comment_and_keyword_bugs() -> None:
    # A last-line comment is removed whole (LeanInteract kept its last character) ...
    assert utils.remove_lean_comments("x := trivial -- done") == "x := trivial "
    # ... a comment closed on the line of a `--` inside it does not swallow the code after it ...
    assert utils.remove_lean_comments("/-- doc -/ theorem t\n") == " theorem t\n"
    # ... and the last theorem is the last in the text, whatever its keyword.
    code = "lemma l : True := trivial\ntheorem t : True := trivial"
    assert utils.extract_last_theorem(code) == code.index("theorem")
    assert utils.clean_theorem_string("namespace Dilemma\ntheorem t : P := p") == (
        "theorem dummy : P := by sorry"
    )


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


def test_leaninteract_s_handler_exists_but_is_not_attached() -> None:
    """LeanInteract exports the rich handler it attaches at import, for code that removes or
    reconfigures it; leanpool attaches none (docs/migrating.md, Logging), so that code runs and
    changes nothing."""
    import logging

    from leanpool.utils import handler, logger

    assert isinstance(handler, logging.Handler)
    assert handler not in logger.handlers
    logger.removeHandler(handler)  # what such code does: a no-op here
    handler.setLevel(logging.WARNING)
