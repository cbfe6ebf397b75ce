"""Checkpoints: a proof state pickled and unpickled on this Lean, as a pool does after REPL
restarts, with what each costs beside the tactic step that made the state.

The simulator charges pickles only what it is told (``pickle_ms``, ``unpickle_ms``; the benchmark
assumes 10 ms each); these times are the real ones to set them from, and the state that comes
back must be the same state: the same goals, and a proof that closes it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from typing import Any

from leanpool._selftest._report import CheckResult
from leanpool._selftest._target import SelftestOptions, Target

__all__ = ["check_checkpoints"]

_THEOREM = "theorem selftest_checkpoint (n : Nat) : n + 0 = n := by sorry"


def check_checkpoints(target: Target, options: SelftestOptions) -> CheckResult:
    from leanpool._server import LeanServer
    from leanpool.protocol import (
        Command,
        CommandResponse,
        PickleProofState,
        ProofStep,
        ProofStepResponse,
        UnpickleProofState,
    )

    started = time.monotonic()
    details: dict[str, Any] = {"import": target.import_module}
    problems: list[str] = []

    def timed(name: str, request: Any) -> Any:
        begun = time.monotonic()
        response = server.run(request, timeout=options.timeout)
        details[f"{name}_ms"] = round((time.monotonic() - begun) * 1000, 2)
        return response

    own_directory = None
    with LeanServer(target.config) as server:  # sandboxed, as pool workers run it
        imported = server.run(
            Command(cmd=f"import {target.import_module}"), timeout=options.timeout
        )
        env = imported.env if isinstance(imported, CommandResponse) else None
        opened = server.run(Command(cmd=_THEOREM, env=env), timeout=options.timeout)
        if not isinstance(opened, CommandResponse) or not opened.sorries:
            problems.append(f"the theorem did not open a goal: {opened!r}"[:400])
        else:
            stepped = timed(
                "tactic_step", ProofStep(proof_state=opened.sorries[0].proof_state, tactic="skip")
            )
            directory = server.scratch_dir
            if directory is None:  # no sandbox: no scratch directory of its own
                directory = own_directory = tempfile.mkdtemp(prefix="leanpool-selftest-")
            path = os.path.join(directory, "selftest-checkpoint.olean")
            try:
                timed("pickle", PickleProofState(proof_state=stepped.proof_state, pickle_to=path))
                details["pickle_bytes"] = os.path.getsize(path)
                restored = timed(
                    "unpickle", UnpickleProofState(unpickle_proof_state_from=path, env=env)
                )
            finally:
                if own_directory is not None:
                    shutil.rmtree(own_directory, ignore_errors=True)
            if not isinstance(restored, ProofStepResponse) or restored.goals != stepped.goals:
                problems.append(
                    f"the unpickled state's goals differ: {getattr(restored, 'goals', restored)!r}"
                    f" against {stepped.goals!r}"[:400]
                )
            else:
                closing = ProofStep(proof_state=restored.proof_state, tactic="simp")
                closed = server.run(closing, timeout=options.timeout)
                if getattr(closed, "proof_status", None) != "Completed":
                    problems.append(f"simp on the unpickled state: {closed!r}"[:400])
    seconds = time.monotonic() - started
    if problems:
        details["problems"] = problems
        return CheckResult(
            "checkpoints", "fail", "; ".join(problems), details, seconds, target.simulated
        )
    summary = (
        f"pickle {details['pickle_ms']:.1f} ms ({details['pickle_bytes']:,} bytes), unpickle "
        f"{details['unpickle_ms']:.1f} ms; the tactic step {details['tactic_step_ms']:.1f} ms"
    )
    return CheckResult("checkpoints", "ok", summary, details, seconds, target.simulated)
