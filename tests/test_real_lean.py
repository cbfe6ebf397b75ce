"""`leanpool selftest`'s checks as tests, on real Lean: `make test-lean` (`pytest -m lean`).

Each check of `leanpool._selftest.CHECKS` is one test, run on the Lean that setup finds or
builds: `LEANPOOL_TEST_LEAN_VERSION` (default: the newest the REPL supports) and, for a project
(with Mathlib, say), `LEANPOOL_TEST_PROJECT`; `LEANPOOL_TEST_QUICK=1` is `selftest --quick`.

They skip, saying why, under `make test` (run them with `make test-lean`) and where elan is
missing. A REPL that turns out to be the simulator (a fake toolchain) fails
`test_the_repl_is_real_lean` unless `LEANPOOL_TEST_ALLOW_SIMULATOR=1` says it is meant to be one
(tests/test_real_lean_workflow.py runs these tests on the fake toolchain that way).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

from leanpool._selftest import CHECKS, SelftestOptions, Target, run_check, set_up
from leanpool._selftest._report import FAILING
from leanpool._setup import find_elan

pytestmark = pytest.mark.lean

ALLOW_SIMULATOR = "LEANPOOL_TEST_ALLOW_SIMULATOR"


def _options() -> SelftestOptions:
    return SelftestOptions(
        project=os.environ.get("LEANPOOL_TEST_PROJECT") or None,
        lean_version=os.environ.get("LEANPOOL_TEST_LEAN_VERSION") or None,
        quick=os.environ.get("LEANPOOL_TEST_QUICK") == "1",
        timeout=600.0,
    )


@pytest.fixture(scope="module")
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    if "lean" not in str(request.config.getoption("markexpr") or ""):
        pytest.skip("a real-Lean test: run it with `make test-lean` (pytest -m lean)")
    if find_elan() is None:
        pytest.skip(
            "elan not found (PATH, $ELAN_HOME/bin, ~/.elan/bin): the real-Lean tests need Lean "
            "(https://lean-lang.org/install/)"
        )
    result, found = set_up(_options())
    assert found is not None, f"setup failed: {result.summary}\n{result.details}"
    yield found


def test_the_repl_is_real_lean(target: Target) -> None:
    if target.simulated and os.environ.get(ALLOW_SIMULATOR) == "1":
        pytest.skip(f"the REPL is the simulator, as {ALLOW_SIMULATOR}=1 allows (a fake toolchain)")
    assert not target.simulated, f"the REPL set up is the simulator: {target.describe()}"


@pytest.mark.parametrize("name", [name for name, _check in CHECKS])
def test_check(target: Target, name: str) -> None:
    result = run_check(name, dict(CHECKS)[name], target, _options())
    details = json.dumps(result.details, indent=1, default=str)[:6000]
    assert result.status not in FAILING, f"{name}: {result.summary}\n{details}"
    assert result.simulated == target.simulated  # every result says what it ran on
