"""Synthetic mode: answer every request kind with the toy elaborator, as the REPL would.

Keeps the REPL's two id tables (environments and proof states, counters from 0, never reused)
and its allocation order: for a command, sorries, then root goals, then tactics, then the env; for
a tactic step, its sorries, then the new state (``runCommand`` and ``createProofStepReponse`` in
the REPL's REPL/Main.lean; an id is the length of its table). Pickles are real files in the
simulator's own format, so a second process can unpickle what the first one wrote.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from leanpool.testing._effects import burn_cpu
from leanpool.testing._elaborator import Elaboration, elaborate_command
from leanpool.testing._imports import ImportCosts
from leanpool.testing._model import (
    Environment,
    ProofState,
    read_pickle,
    render_goals,
    write_pickle,
)
from leanpool.testing._requests import Fatal, Request
from leanpool.testing._syntax import Source, tokenize
from leanpool.testing._tactics import TacticEngine, TacticFailure

__all__ = ["SyntheticRepl", "io_error_text"]

UNKNOWN_ENVIRONMENT = {"message": "Unknown environment."}
UNKNOWN_PROOF_STATE = {"message": "Unknown proof state."}


def io_error_text(error: OSError, path: str) -> str:
    """Lean's `IO.Error` text for a failed file operation."""
    if error.errno == errno.ENOENT:
        reason = "no such file or directory"
    else:
        reason = (error.strerror or str(error)).lower()
    code = f" (error code: {error.errno})" if error.errno is not None else ""
    return f"{reason}{code}\n  file: {path}"


def _position(source: Source, offset: int) -> dict[str, int]:
    line, column = source.position(offset)
    return {"line": line, "column": column}


class SyntheticRepl:
    def __init__(
        self,
        closing_tactics: Collection[str],
        import_costs: ImportCosts,
        lean_version: str | None = None,
        pickle_ms: int = 0,
        unpickle_ms: int = 0,
    ) -> None:
        self._closing_tactics = tuple(closing_tactics)
        self._pickle_ms = pickle_ms
        self._unpickle_ms = unpickle_ms
        self._import_costs = import_costs
        self._lean_version = lean_version
        self._environments: list[Environment] = []
        self._states: list[ProofState] = []
        self._handlers: dict[str, Callable[[Request], dict[str, Any]]] = {
            "command": self._command,
            "file": self._file,
            "proof_step": self._proof_step,
            "pickle_environment": self._pickle_environment,
            "unpickle_environment": self._unpickle_environment,
            "pickle_proof_state": self._pickle_proof_state,
            "unpickle_proof_state": self._unpickle_proof_state,
        }

    def answer(self, request: Request) -> dict[str, Any]:
        return self._handlers[request.kind](request)

    # --- id tables -----------------------------------------------------------------------------
    def _new_environment(self, environment: Environment) -> int:
        self._environments.append(environment)
        return len(self._environments) - 1

    def _new_state(self, state: ProofState) -> int:
        self._states.append(state)
        return len(self._states) - 1

    def _environment(self, env_id: int | None) -> Environment | None:
        if env_id is None or env_id >= len(self._environments):
            return None
        return self._environments[env_id]

    def _state(self, state_id: int | None) -> ProofState | None:
        if state_id is None or state_id >= len(self._states):
            return None
        return self._states[state_id]

    # --- commands ------------------------------------------------------------------------------
    def _command(self, request: Request) -> dict[str, Any]:
        return self._elaborate(request, request.text("cmd") or "")

    def _file(self, request: Request) -> dict[str, Any]:
        path = request.text("path") or ""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as error:
            return {"message": io_error_text(error, path)}
        return self._elaborate(request, text)

    def _elaborate(self, request: Request, text: str) -> dict[str, Any]:
        base: Environment | None = None
        if request.env is not None:
            base = self._environment(request.env)
            if base is None:
                return UNKNOWN_ENVIRONMENT
        elaboration = elaborate_command(
            text,
            base,
            self._closing_tactics,
            all_tactics=request.flag("allTactics"),
            root_goals=request.flag("rootGoals"),
            lean_version=self._lean_version,
        )
        return self._command_response(Source(text), elaboration)

    def _command_response(self, source: Source, elaboration: Elaboration) -> dict[str, Any]:
        initial = elaboration.initial_environment
        sorries: list[dict[str, Any]] = []
        for hit in elaboration.sorries:
            entry: dict[str, Any] = {
                "proofState": self._new_state(ProofState((hit.goal,), initial)),
                "goal": hit.goal.render(),
            }
            if hit.start is not None and hit.end is not None:
                entry["pos"] = _position(source, hit.start)
                entry["endPos"] = _position(source, hit.end)
            sorries.append(entry)
        for goal, offset in elaboration.root_goals:
            sorries.append(
                {
                    "proofState": self._new_state(ProofState((goal,), initial)),
                    "goal": goal.render(),
                    "pos": _position(source, offset),
                    "endPos": _position(source, offset),
                }
            )
        tactics = [
            {
                "tactic": record.text,
                "goals": render_goals(record.goals_before) or "no goals",
                "proofState": self._new_state(ProofState(record.goals_before, initial)),
                "pos": _position(source, record.start),
                "endPos": _position(source, record.end),
                "usedConstants": [],
            }
            for record in elaboration.tactics
        ]
        response: dict[str, Any] = {"env": self._new_environment(elaboration.environment)}
        for key, values in (
            ("messages", elaboration.messages),
            ("sorries", sorries),
            ("tactics", tactics),
        ):
            if values:
                response[key] = values
        return response

    # --- tactic mode ---------------------------------------------------------------------------
    def _proof_step(self, request: Request) -> dict[str, Any]:
        state = self._state(request.proof_state)
        if state is None:
            return UNKNOWN_PROOF_STATE
        tactic = request.text("tactic") or ""
        engine = TacticEngine(
            Source(tactic), state.environment, self._closing_tactics, command_mode=False
        )
        try:
            goals = engine.run_step(tokenize(tactic), list(state.goals))
        except TacticFailure as failure:
            return {"message": f"Lean error:\n{failure.message}"}
        sorries = [
            {
                "proofState": self._new_state(
                    ProofState((hit.goal,), state.environment, detached=True)
                ),
                "goal": hit.goal.render(),
            }
            for hit in engine.sorries
        ]
        new_state = ProofState(
            tuple(goals),
            state.environment,
            uses_sorry=state.uses_sorry or engine.uses_sorry,
            detached=state.detached,
        )
        response = self._state_response(self._new_state(new_state), new_state)
        if engine.messages:
            response["messages"] = engine.messages
        if sorries:
            response["sorries"] = sorries
        return response

    @staticmethod
    def _state_response(state_id: int, state: ProofState) -> dict[str, Any]:
        return {
            "proofState": state_id,
            "goals": [goal.render() for goal in state.goals],
            "proofStatus": state.status(),
        }

    # --- pickles -------------------------------------------------------------------------------
    # What a pickle costs is charged as CPU (`--pickle-ms`, `--unpickle-ms`; none by default).
    # PICKLE_COST_GROUNDS: the REPL pickles a proof state by collecting the constants added since
    # the imports, the Meta/Term/Tactic states and the root goals, compacting them into one
    # region and writing it (REPL/Snapshots.lean, ProofSnapshot.pickle; Lean's saveModuleData);
    # unpickling reads that region back (readModuleData, a memory map), adds the constants to the
    # given env without checking them in the kernel (REPL/Lean/Replay.lean) and restores the
    # states. Neither elaborates nor runs a tactic, so both cost about as much as the state is
    # large: far less than the tactics that made it. No Lean was available to time them here;
    # the benchmark charges 10 ms each, more than such a write or read of a proof state's data
    # should take, so that checkpoints are not flattered.
    def _write(self, path: str, value: Environment | ProofState) -> None:
        burn_cpu(self._pickle_ms)
        try:
            write_pickle(path, value)
        except OSError as error:
            raise Fatal(io_error_text(error, path)) from None

    def _read(self, path: str) -> Environment | ProofState:
        burn_cpu(self._unpickle_ms)
        try:
            return read_pickle(path)
        except OSError as error:
            raise Fatal(io_error_text(error, path)) from None
        except (ValueError, KeyError, TypeError) as error:
            raise Fatal(f"failed to read pickle {path}: {error}") from None

    def _pickle_environment(self, request: Request) -> dict[str, Any]:
        environment = self._environment(request.env)
        if environment is None:
            return UNKNOWN_ENVIRONMENT
        self._write(request.text("pickleTo") or "", environment)
        return {"env": request.env}

    def _unpickle_environment(self, request: Request) -> dict[str, Any]:
        path = request.text("unpickleEnvFrom") or ""
        environment = self._read(path)
        if not isinstance(environment, Environment):
            raise Fatal(f"failed to read pickle {path}: not an environment")
        self._import_costs.pay(environment.imports)  # unpickling re-imports the modules
        return {"env": self._new_environment(environment)}

    def _pickle_proof_state(self, request: Request) -> dict[str, Any]:
        state = self._state(request.proof_state)
        if state is None:
            return {"message": "Unknown proof State."}
        self._write(request.text("pickleTo") or "", state)
        return self._state_response(self._new_state(state), state)

    def _unpickle_proof_state(self, request: Request) -> dict[str, Any]:
        base: Environment | None = None
        if request.env is not None:
            base = self._environment(request.env)
            if base is None:
                return UNKNOWN_ENVIRONMENT
        path = request.text("unpickleProofStateFrom") or ""
        state = self._read(path)
        if not isinstance(state, ProofState):
            raise Fatal(f"failed to read pickle {path}: not a proof state")
        if base is None:
            self._import_costs.pay(state.environment.imports)
        else:
            known = {d.name for d in base.declarations}
            for declaration in state.environment.declarations:
                if declaration.name not in known:
                    base = base.declare(declaration)
            state = ProofState(state.goals, base, state.uses_sorry, state.detached)
        return self._state_response(self._new_state(state), state)
