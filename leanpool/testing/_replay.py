"""Replay mode: answer requests from recorded sessions (`NAME.in` / `NAME.expected.out` pairs).

A request is matched by its content *and* by the history of the env or proof state it names: every
id stands for a digest of the chain of (normalized) requests that produced it, so ids are
renumbered from this process's own counters and the recorded response is re-rendered with Lean's
printer. Fed any `NAME.in` in order, the output is `NAME.expected.out` byte for byte. When several
recordings match, the one whose whole sequence of requests so far equals what this process has
received wins. A request nothing matches gets an error response saying so, never silence.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leanpool._leanjson import loads_deep
from leanpool.testing._requests import Fatal, Request, decode_request
from leanpool.testing._wire import RequestReader, is_comment

__all__ = ["Recording", "ReplayRepl", "load_recordings"]

_DIRECTIVE_COMMENT = re.compile(r"[ \t]*--!sim[^\n]*")
_ID_HOLDERS = ("sorries", "tactics")  # lists whose entries carry a "proofState"
_INFOTREE_MODES = ("full", "tactics", "original", "substantive")


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def request_key(request: Request, envs: Sequence[str], states: Sequence[str]) -> str:
    """The request's identity: its known fields, with ids replaced by their histories."""
    fields: dict[str, Any] = dict(request.fields)
    # Spellings the REPL treats alike (Main.lean matches `some true` and the four modes only).
    for key in ("allTactics", "rootGoals"):
        if fields.get(key) is False:
            del fields[key]
    if fields.get("infotree") not in (None, *_INFOTREE_MODES):
        del fields["infotree"]
    for key in ("cmd", "tactic"):
        if isinstance(fields.get(key), str):
            fields[key] = _DIRECTIVE_COMMENT.sub("", fields[key])
    for key, history in (("env", envs), ("proofState", states)):
        if key in fields:
            fields[key] = history[fields[key]] if fields[key] < len(history) else "unknown"
    return _digest(request.kind, json.dumps(fields, sort_keys=True, ensure_ascii=False))


def _response_ids(response: dict[str, Any]) -> tuple[list[int], list[int]]:
    """(env ids, proof-state ids) appearing in a response."""
    envs = [response["env"]] if isinstance(response.get("env"), int) else []
    states = [response["proofState"]] if isinstance(response.get("proofState"), int) else []
    for holder in _ID_HOLDERS:
        for entry in response.get(holder) or []:
            if isinstance(entry, dict) and isinstance(entry.get("proofState"), int):
                states.append(entry["proofState"])
    return envs, states


@dataclass(frozen=True)
class _Step:
    key: str
    response: dict[str, Any]
    # digest of every id in the response, and which of them this step allocates (in order)
    env_digests: dict[int, str]
    state_digests: dict[int, str]
    new_envs: tuple[int, ...]
    new_states: tuple[int, ...]


@dataclass(frozen=True)
class Recording:
    name: str
    steps: tuple[_Step, ...]
    # When the recorded REPL died before answering request number len(steps): that request's
    # key and what it still wrote on stdout (part of a response, or nothing).
    died: tuple[str, bytes] | None = None


def _split_responses(text: str) -> list[tuple[int, str]]:
    """(offset, text) of each response: runs of lines up to a blank line.

    Lean's JSON writer escapes line breaks inside strings and puts a token after each line break
    of its own, so the only blank line in a response is its terminator.
    """
    blocks: list[tuple[int, str]] = []
    current: list[str] = []
    start = offset = 0
    for line in text.split("\n"):
        if line.strip(" \t\r") == "":
            if current:
                blocks.append((start, "\n".join(current)))
                current = []
        else:
            if not current:
                start = offset
            current.append(line)
        offset += len(line) + 1
    if current:
        blocks.append((start, "\n".join(current)))
    return blocks


def _decoded_responses(session_output: str) -> tuple[list[dict[str, Any]], bytes | None]:
    """The recorded responses, and the stdout of a REPL that died writing the next one (or
    None): what follows the last complete response when it is not a JSON object."""
    responses: list[dict[str, Any]] = []
    for offset, block in _split_responses(session_output):
        try:
            response = loads_deep(block)
        except ValueError:
            response = None
        if not isinstance(response, dict):
            return responses, session_output[offset:].encode("utf-8")
        responses.append(response)
    return responses, None


def _requests_of(session_input: bytes) -> list[Request]:
    """The answered requests of a session, read exactly as a live process reads them."""
    reader = RequestReader(io.BytesIO(session_input))
    requests: list[Request] = []
    while (text := reader.read()) != "":
        if is_comment(text):
            continue
        try:
            requests.append(decode_request(text))
        except Fatal:
            break  # the recorded REPL died here
    return requests


def _recording(name: str, session_input: bytes, session_output: str) -> Recording:
    envs: list[str] = []
    states: list[str] = []
    steps: list[_Step] = []
    responses, partial = _decoded_responses(session_output)
    requests = _requests_of(session_input)
    for request, response in zip(requests, responses, strict=False):
        key = request_key(request, envs, states)
        env_ids, state_ids = _response_ids(response)
        new_envs = tuple(sorted({i for i in env_ids if i >= len(envs)}))
        new_states = tuple(sorted({i for i in state_ids if i >= len(states)}))
        envs.extend(_digest(key, "env", str(n)) for n in range(len(new_envs)))
        states.extend(_digest(key, "proofState", str(n)) for n in range(len(new_states)))
        env_base, state_base = len(envs) - len(new_envs), len(states) - len(new_states)
        env_digests = {
            i: envs[env_base + new_envs.index(i)] if i in new_envs else envs[i]
            for i in env_ids
            if i in new_envs or i < env_base
        }
        state_digests = {
            i: states[state_base + new_states.index(i)] if i in new_states else states[i]
            for i in state_ids
            if i in new_states or i < state_base
        }
        steps.append(_Step(key, response, env_digests, state_digests, new_envs, new_states))
    died = None
    if len(requests) > len(steps):  # the REPL died on the next request (not for bad JSON)
        died = (request_key(requests[len(steps)], envs, states), partial or b"")
    return Recording(name, tuple(steps), died)


def load_recordings(directories: Iterable[str | os.PathLike[str]]) -> list[Recording]:
    """Every `NAME.in` with a `NAME.expected.out` beside it, in name order per directory."""
    recordings: list[Recording] = []
    for directory in directories:
        folder = Path(directory)
        if not folder.is_dir():
            raise FileNotFoundError(f"--replay: no such directory: {folder}")
        for session_input in sorted(folder.glob("*.in")):
            output = session_input.with_name(session_input.name[: -len(".in")] + ".expected.out")
            if output.is_file():
                recordings.append(
                    _recording(
                        f"{folder.name}/{session_input.stem}",
                        session_input.read_bytes(),
                        output.read_text(encoding="utf-8"),
                    )
                )
    return recordings


class ReplayRepl:
    """Answers from recordings, with the REPL's own id tables and unknown-id errors."""

    def __init__(self, recordings: Sequence[Recording]) -> None:
        self._recordings = list(recordings)
        self._index: dict[str, list[tuple[int, int]]] = {}
        for r, recording in enumerate(self._recordings):
            for s, step in enumerate(recording.steps):
                self._index.setdefault(step.key, []).append((r, s))
        self._envs: list[str] = []  # runtime id -> history digest
        self._states: list[str] = []
        self._env_ids: dict[str, int] = {}  # history digest -> runtime id
        self._state_ids: dict[str, int] = {}
        self._received = 0
        self._in_step = set(
            range(len(self._recordings))
        )  # recordings matching every request so far

    def answer(self, request: Request) -> dict[str, Any]:
        key = request_key(request, self._envs, self._states)
        position = self._received
        self._received += 1
        candidates = self._index.get(key, [])
        chosen = next(((r, s) for r, s in candidates if r in self._in_step and s == position), None)
        in_step_before = self._in_step
        self._in_step = {
            r
            for r in self._in_step
            if position < len(self._recordings[r].steps)
            and self._recordings[r].steps[position].key == key
        }
        refusal = self._unknown_id(request)
        if refusal is not None:
            return refusal
        if chosen is None:
            self._die_if_recorded_dying(key, position, in_step_before, bool(candidates))
        if chosen is None and candidates:
            chosen = candidates[0]
        if chosen is None:
            shown = json.dumps(dict(request.fields), ensure_ascii=False)
            return {
                "message": f"simrepl replay: no recording for {request.kind} request {shown} "
                "(requests match by content and by the history of the env or proof state they "
                "name)"
            }
        recording, step = chosen
        return self._renumber(self._recordings[recording].steps[step])

    def _die_if_recorded_dying(
        self, key: str, position: int, in_step: set[int], answered_elsewhere: bool
    ) -> None:
        """Replay a recorded crash (e.g. a failed unpickle): same stdout, then exit status 1.

        Preferred: the recording followed so far died exactly here. Otherwise any recording that
        died on this request, unless another recording answered it.
        """
        dying = [
            r
            for r, recording in enumerate(self._recordings)
            if recording.died is not None and recording.died[0] == key
        ]
        in_sequence = [
            r for r in dying if r in in_step and len(self._recordings[r].steps) == position
        ]
        if in_sequence or (dying and not answered_elsewhere):
            recording = self._recordings[(in_sequence or dying)[0]]
            assert recording.died is not None
            raise Fatal(
                f"simrepl replay: the recorded REPL ({recording.name}) exited at this request",
                output=recording.died[1],
            )

    def _unknown_id(self, request: Request) -> dict[str, Any] | None:
        """The REPL's own refusals, independent of any recording."""
        env, state = request.env, request.proof_state
        if env is not None and env >= len(self._envs):
            return {"message": "Unknown environment."}
        if state is not None and state >= len(self._states):
            if request.kind == "proof_step":
                return {"message": "Unknown proof state."}
            if request.kind == "pickle_proof_state":
                return {"message": "Unknown proof State."}
        return None

    def _renumber(self, step: _Step) -> dict[str, Any]:
        env_map = {
            i: self._allocate(step.env_digests[i], self._envs, self._env_ids) for i in step.new_envs
        }
        state_map = {
            i: self._allocate(step.state_digests[i], self._states, self._state_ids)
            for i in step.new_states
        }
        for recorded, digest in step.env_digests.items():
            env_map.setdefault(recorded, self._env_ids.get(digest, recorded))
        for recorded, digest in step.state_digests.items():
            state_map.setdefault(recorded, self._state_ids.get(digest, recorded))
        # A private copy of what changes (ids); the rest, possibly a deep info tree, is shared.
        response = dict(step.response)
        for holder in _ID_HOLDERS:
            if isinstance(response.get(holder), list):
                response[holder] = [
                    dict(entry) if isinstance(entry, dict) else entry for entry in response[holder]
                ]
        if isinstance(response.get("env"), int):
            response["env"] = env_map.get(response["env"], response["env"])
        if isinstance(response.get("proofState"), int):
            response["proofState"] = state_map.get(response["proofState"], response["proofState"])
        for holder in _ID_HOLDERS:
            for entry in response.get(holder) or []:
                if isinstance(entry, dict) and isinstance(entry.get("proofState"), int):
                    entry["proofState"] = state_map.get(entry["proofState"], entry["proofState"])
        return response

    @staticmethod
    def _allocate(digest: str, history: list[str], ids: dict[str, int]) -> int:
        history.append(digest)
        ids[digest] = len(history) - 1
        return len(history) - 1
