"""The systems under test, all on the same REPL simulator with the same options.

* leanpool: `leanpool.testing.sim_config(**options)`.
* LeanInteract 0.11.6 (optional: the ``bench`` extra), offline (with these arguments its
  config.py builds nothing and its server.py only runs ``lake env <repl>``): a directory ``D``
  whose ``.lake/build/bin/repl`` execs the simulator with the same options, a ``lean-toolchain``
  file, and a fake ``lake`` that runs ``lake env PROG`` as ``PROG``.
  `LeanREPLConfig(local_repl_path=D, build_repl=False, lake_path=<fake lake>)` then starts the
  simulator exactly where it would start Lean's REPL, with no git, no network and no build.
"""

from __future__ import annotations

import importlib.util
import logging
import shlex
from pathlib import Path
from typing import Any

from leanpool.testing import sim_command, sim_config

# The four import headers of scenarios 3 and 7: each costs the same in the simulator.
HEADERS = (
    "Mathlib.Algebra.Group.Basic",
    "Mathlib.Analysis.SpecialFunctions.Log",
    "Mathlib.NumberTheory.Primes",
    "Mathlib.Topology.MetricSpace",
)

_FAKE_LAKE = """#!/bin/sh
# Stand-in for lake (benchmarks only): `lake env PROG ARGS...` runs PROG ARGS...
case "$1" in
  env) shift; exec "$@" ;;
  --version) echo "fake lake"; exit 0 ;;
  build) exit 0 ;;
  *) exit 1 ;;
esac
"""


def import_options(milliseconds: int, megabytes: int) -> dict[str, Any]:
    """Simulator options where each of the four headers costs the given time and memory."""
    return {"imports": {header: (milliseconds, megabytes) for header in HEADERS}}


def leanpool_config(**sim_options: Any) -> Any:
    """A leanpool `LeanREPLConfig` whose REPL is the simulator."""
    return sim_config(**sim_options)


def leaninteract_available() -> bool:
    return importlib.util.find_spec("lean_interact") is not None


def leaninteract_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lean-interact")
    except PackageNotFoundError:
        return None


def leaninteract_repl_dir(workdir: Path, name: str, **sim_options: Any) -> tuple[Path, Path]:
    """Build the offline REPL directory and fake lake; returns (repl dir, lake path)."""
    repl_dir = (workdir / f"li-{name}").resolve()
    binary = repl_dir / ".lake" / "build" / "bin" / "repl"
    binary.parent.mkdir(parents=True, exist_ok=True)
    command = " ".join(shlex.quote(part) for part in sim_command(**sim_options))
    binary.write_text(f"#!/bin/sh\nexec {command}\n", encoding="utf-8")
    binary.chmod(0o755)
    (repl_dir / "lean-toolchain").write_text("leanprover/lean4:v4.22.0\n", encoding="utf-8")
    lake = (workdir / "fakebin" / "lake").resolve()
    lake.parent.mkdir(parents=True, exist_ok=True)
    lake.write_text(_FAKE_LAKE, encoding="utf-8")
    lake.chmod(0o755)
    return repl_dir, lake


def leaninteract_config(workdir: Path, name: str, **sim_options: Any) -> Any:
    """A LeanInteract `LeanREPLConfig` whose REPL is the simulator (no Lean, git or network)."""
    from lean_interact import LeanREPLConfig

    logging.getLogger("lean_interact").setLevel(logging.ERROR)  # its INFO lines would flood
    repl_dir, lake = leaninteract_repl_dir(workdir, name, **sim_options)
    return LeanREPLConfig(
        local_repl_path=str(repl_dir),
        build_repl=False,
        lake_path=str(lake),
        enable_incremental_optimization=False,
        enable_parallel_elaboration=False,
    )


def warm_leanpool(pool: Any, workers: int) -> None:
    """Wait until every worker of a `LeanPool` has its REPL up (concurrent distinct requests,
    slow enough that each worker gets some)."""
    futures = [pool.submit(f"#eval {-(k + 1)} --!sim sleep_ms=50") for k in range(2 * workers)]
    for future in futures:
        future.result()
