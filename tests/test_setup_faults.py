"""Every setup step failing: a clear `LeanSetupError`, nothing half-done left behind, and the next
attempt (with the fault gone) succeeds."""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_tools import FAIL_ENV, FakeTools, use_fakes

from leanpool._config import LeanREPLConfig
from leanpool._errors import LeanSetupError


@pytest.fixture
def fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeTools:
    fakes = use_fakes(tmp_path, monkeypatch)
    fakes.add_repl_remote()
    return fakes


def leftovers(cache: Path) -> list[str]:
    """Scratch directories and unfinished builds in the cache."""
    found = [p.name for p in cache.rglob(".*.tmp-*")]
    builds = [p for p in cache.glob("repl/*/builds/*") if p.is_dir()]
    found += [p.name for p in builds if not (p / ".leanpool-build.json").is_file()]
    return found


# (fault, words the error's step must contain, whether it is a network problem)
FAULTS = [
    ("git clone=network", "Clone the REPL repository", True),
    ("git clone", "Clone the REPL repository", False),
    ("git checkout", "Check out the REPL", False),
    ("elan install=network", "Install Lean v4.19.0", True),
    ("elan list", "List installed Lean toolchains", False),
    ("lake build", "Build the REPL for Lean v4.19.0", False),
    ("lake env", "Capture the Lean environment", False),
]


@pytest.mark.parametrize(("fault", "step", "network"), FAULTS, ids=[f[0] for f in FAULTS])
def test_a_failing_step_is_reported_and_the_retry_works(
    fakes: FakeTools,
    monkeypatch: pytest.MonkeyPatch,
    fault: str,
    step: str,
    network: bool,
) -> None:
    monkeypatch.setenv(FAIL_ENV, fault)
    with pytest.raises(LeanSetupError) as caught:
        LeanREPLConfig(lean_version="v4.19.0")
    error = caught.value
    tool, action = fault.split("=")[0].split()
    assert step in error.step
    assert error.command is not None and Path(error.command[0]).name == tool
    assert error.returncode not in (None, 0)
    assert f"simulated failure of {tool} {action}" in error.output_tail or network
    assert ("Network problem" in str(error)) is network
    assert leftovers(fakes.cache) == []

    monkeypatch.delenv(FAIL_ENV)
    config = LeanREPLConfig(lean_version="v4.19.0")
    assert config.is_setup() and Path(config.launch.argv[0]).is_file()
    assert fakes.count("lake build") == 1 + (fault == "lake build")


def test_a_network_failure_says_so_plainly(
    fakes: FakeTools, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(FAIL_ENV, "git clone=network")
    with pytest.raises(LeanSetupError) as caught:
        LeanREPLConfig(lean_version="v4.19.0")
    message = str(caught.value)
    assert message.startswith("Setup step failed: Clone the REPL repository")
    assert "Network problem" in message
    assert "Could not resolve host: github.com" in message
    assert "Exit status: 128" in message


def test_a_failed_fetch_of_new_tags_is_a_network_error(
    fakes: FakeTools, monkeypatch: pytest.MonkeyPatch
) -> None:
    LeanREPLConfig(lean_version="v4.19.0")
    monkeypatch.setenv(FAIL_ENV, "git fetch=network")
    with pytest.raises(LeanSetupError, match="Network problem") as caught:
        LeanREPLConfig(lean_version="v4.22.0")
    assert "Fetch REPL tags" in caught.value.step
    monkeypatch.delenv(FAIL_ENV)
    assert LeanREPLConfig(lean_version="v4.19.0").is_setup()  # the cache is intact


def test_a_build_that_produces_no_binary_is_not_trusted(fakes: FakeTools) -> None:
    # a REPL ref whose lakefile is not the REPL's: lake build "succeeds" without a binary
    fakes.add_repl_remote(versions=("v4.19.0",))
    remote = fakes.remote_dir("https://github.com/leanprover-community/repl")
    data = (remote / "remote.json").read_text().replace('name = \\"REPL\\"', 'name = \\"Other\\"')
    (remote / "remote.json").write_text(data)
    with pytest.raises(LeanSetupError, match="produced no"):
        LeanREPLConfig(lean_version="v4.19.0")
    assert leftovers(fakes.cache) == []
