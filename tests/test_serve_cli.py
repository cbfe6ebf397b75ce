"""The `leanpool serve` command's own failures (leanpool/_cli/_serve.py), before any service
runs: the serve extra missing, an address in use, bad settings."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Runs the CLI with starlette unimportable, as on an installation without the serve extra.
_WITHOUT_EXTRA = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("starlette", "uvicorn"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Block())
from leanpool._cli import main
sys.exit(main(sys.argv[1:]))
"""


def _leanpool(*args: str, code: str | None = None) -> subprocess.CompletedProcess[str]:
    """`leanpool ARGS` (or `code` standing in for it, given ARGS as its sys.argv)."""
    how = ["-c", code] if code else ["-m", "leanpool"]
    return subprocess.run(
        [sys.executable, *how, *args], capture_output=True, text=True, timeout=120, cwd=ROOT
    )


def test_without_the_serve_extra_it_says_what_to_install() -> None:
    done = _leanpool("serve", "--sim", code=_WITHOUT_EXTRA)
    assert done.returncode == 2, done.stderr
    assert "pip install 'leanpool[serve]'" in done.stderr
    assert "Traceback" not in done.stderr
    helped = _leanpool("serve", "--help", code=_WITHOUT_EXTRA)  # the help needs no extra
    assert helped.returncode == 0 and "--api-key" in helped.stdout


def test_an_address_in_use_is_a_one_line_error_before_any_pool_starts() -> None:
    pytest.importorskip("uvicorn", reason="the serve extra is not installed (leanpool[serve])")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = _leanpool("serve", "--sim", "--port", str(port))
    assert done.returncode == 1, done.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr and "listening on" not in done.stderr


def test_bad_settings_are_usage_errors() -> None:
    for option, value, message in (
        ("--max-in-flight-per-key", "0", "must be at least 1"),
        ("--drain-timeout", "0", "must be positive"),
        ("--timeout", "-1", "must be 0 or more"),
    ):
        done = _leanpool("serve", "--sim", option, value)
        assert done.returncode == 2, (option, done.stderr)
        assert message in done.stderr, option
