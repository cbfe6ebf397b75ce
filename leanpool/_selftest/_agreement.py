"""Simulator agreement: a live session, recorded, then answered by the simulator.

The session (commands, a sorry, proof steps, errors; no Mathlib) runs on the live REPL through
the simulator's recorder (``simrepl --record DIR -- REPL``), which relays every byte and writes
``selftest.in`` / ``selftest.expected.out``. Then:

* replay: the simulator answering from that recording must give exactly the live responses
  (a difference fails: replay-based tests would then not be testing what Lean does);
* synthetic: the simulator's toy elaborator answers the same requests; how many agree is
  reported, never failed (the toy is not Lean), and the differences show where it drifts.

The recorded pair is put in the report, so a maintainer can add it to the replay corpus.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from leanpool._selftest._compare import compare_sessions
from leanpool._selftest._report import CheckResult
from leanpool._selftest._target import SelftestOptions, Target, derive_config

__all__ = ["SESSION", "check_agreement", "run_session"]

# Env ids 0..; `def k` makes env 3; the sorry of `t` opens proof state 0.
SESSION: tuple[dict[str, Any], ...] = (
    {"cmd": "#eval 6 * 7"},
    {"cmd": "theorem two_add_two : 2 + 2 = 4 := by decide"},
    {"cmd": "theorem wrong : 2 + 2 = 5 := by decide"},
    {"cmd": "def k : Nat := 7"},
    {"cmd": "example : k = 7 := by decide", "env": 3},
    {"cmd": "theorem t (n : Nat) : n + 0 = n := by sorry"},
    {"tactic": "rfl", "proofState": 0},
    {"tactic": "no_such_tactic", "proofState": 0},
    {"tactic": "exact foo", "proofState": 0},
    {"cmd": "#check Nat.add_comm"},
    {"cmd": "example : 1 = 1 := by sorry", "env": 99},
)
NAME = "selftest"


def run_session(config: Any, timeout: float) -> list[Any]:
    """The session's responses (as the REPL's JSON), on a fresh REPL of `config`."""
    from leanpool._server import LeanServer
    from leanpool.protocol import parse_request

    responses: list[Any] = []
    server = LeanServer(config, sandbox=None)
    try:
        for request in SESSION:
            responses.append(server.run(parse_request(request), timeout=timeout).to_repl_dict())
    finally:
        server.close()  # EOF: a recorder writes its files and exits
    return responses


def check_agreement(target: Target, options: SelftestOptions) -> CheckResult:
    from leanpool.testing import sim_command, sim_config

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="leanpool-selftest-record-") as scratch:
        folder = Path(scratch)
        launch = target.config.launch
        recorder = derive_config(
            target.config,
            argv=tuple(sim_command(record=str(folder), name=NAME, command=list(launch.argv))),
            exact_requests=True,
        )
        live = run_session(recorder, options.timeout)
        recorded_in = (folder / f"{NAME}.in").read_text(encoding="utf-8")
        recorded_out = (folder / f"{NAME}.expected.out").read_text(encoding="utf-8")
        replay = derive_config(sim_config(replay=[str(folder)]), exact_requests=True)
        replayed = run_session(replay, options.timeout)
    synthetic_config = derive_config(
        sim_config(lean_version=target.lean_version) if target.lean_version else sim_config(),
        exact_requests=True,
    )
    synthetic = run_session(synthetic_config, options.timeout)
    replay_cmp = compare_sessions(live, replayed)
    per_request = [
        compare_sessions([want], [got]) for want, got in zip(live, synthetic, strict=True)
    ]
    synthetic_agree = sum(c.agrees for c in per_request)
    synthetic_differences = [
        {"request": SESSION[i], "differences": c.differences}
        for i, c in enumerate(per_request)
        if not c.agrees
    ]
    details = {
        "session": list(SESSION),
        "replay_differences": replay_cmp.differences,
        "synthetic_agreeing": synthetic_agree,
        "synthetic_differences": synthetic_differences,
        "recording": {f"{NAME}.in": recorded_in, f"{NAME}.expected.out": recorded_out},
    }
    summary = (
        f"replay of the recorded session: {'identical' if replay_cmp.agrees else 'DIFFERS'}; "
        f"toy elaborator agrees on {synthetic_agree}/{len(SESSION)} responses"
    )
    if target.simulated:
        summary += " (the live REPL is the simulator itself)"
    status: Any = "ok" if replay_cmp.agrees else "fail"
    if not replay_cmp.agrees:
        summary += f"; first: {replay_cmp.differences[0][:200]}"
    return CheckResult(
        "simulator agreement",
        status,
        summary,
        details,
        time.monotonic() - started,
        target.simulated,
    )
