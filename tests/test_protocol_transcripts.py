"""The protocol layer against every real REPL transcript: classification, exact round trips, and
the response reader on the recorded stdout bytes."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from transcripts import Transcript, transcript_params

from leanpool.protocol import (
    BaseREPLQuery,
    Command,
    CommandResponse,
    FileCommand,
    LeanError,
    PickleEnvironment,
    PickleProofState,
    ProofStep,
    ProofStepResponse,
    ResponseReader,
    UnpickleEnvironment,
    UnpickleProofState,
    encode_request,
    parse_request,
    parse_response,
)

# The REPL's classification (`parse` in REPL/Main.lean), written out independently of the library:
# first shape, in this order, whose required keys are all present and non-null.
REPL_ORDER: list[tuple[type[BaseREPLQuery], tuple[str, ...]]] = [
    (ProofStep, ("proofState", "tactic")),
    (PickleEnvironment, ("env", "pickleTo")),
    (UnpickleEnvironment, ("unpickleEnvFrom",)),
    (PickleProofState, ("proofState", "pickleTo")),
    (UnpickleProofState, ("unpickleProofStateFrom",)),
    (Command, ("cmd",)),
    (FileCommand, ("path",)),
]
ANSWERED_BY_PROOF_STEP = (ProofStep, PickleProofState, UnpickleProofState)


def repl_kind(obj: dict[str, Any]) -> type[BaseREPLQuery]:
    for kind, keys in REPL_ORDER:
        if all(obj.get(key) is not None for key in keys):
            return kind
    raise AssertionError(f"transcript request matches no REPL shape: {obj}")


@pytest.mark.parametrize("transcript", transcript_params())
def test_requests_classify_like_the_repl_and_round_trip(transcript: Transcript) -> None:
    blocks = transcript.request_blocks()
    assert blocks
    for block in blocks:
        wire = json.loads(block)
        request = parse_request(block)
        assert type(request) is repl_kind(wire)
        assert request.to_repl_dict() == wire
        assert parse_request(wire) == request
        assert parse_request(block.encode("utf-8")) == request
        # What we would send decodes to the same object the REPL read.
        payload = encode_request(request)
        assert payload.endswith(b"}\n\n")
        assert json.loads(payload) == wire


@pytest.mark.parametrize("transcript", transcript_params())
def test_responses_parse_to_the_right_class_and_round_trip(transcript: Transcript) -> None:
    requests = [parse_request(block) for block in transcript.request_blocks()]
    responses = transcript.response_blocks()
    assert len(responses) == len(requests)  # one answer per (non-comment) request
    for request, block in zip(requests, responses, strict=True):
        wire = json.loads(block)
        response = parse_response(block, request=request)
        if set(wire) == {"message"}:
            assert type(response) is LeanError
        elif isinstance(request, ANSWERED_BY_PROOF_STEP):
            assert type(response) is ProofStepResponse
        else:
            assert type(response) is CommandResponse
        assert response.to_repl_dict() == wire
        assert parse_response(wire) == response
        assert parse_response(block.encode("utf-8")) == response


@pytest.mark.parametrize("transcript", transcript_params())
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reader_on_recorded_stdout_in_random_chunks(transcript: Transcript, seed: int) -> None:
    data = transcript.output_bytes
    expected = [json.loads(block) for block in transcript.response_blocks()]
    rng = random.Random(f"{transcript.name}/{seed}")
    reader = ResponseReader()
    got: list[dict[str, Any]] = []
    at = 0
    while at < len(data):
        size = rng.choice([1, 2, 3, rng.randint(1, 64), rng.randint(1, 4096)])
        got += reader.feed(data[at : at + size])
        at += size
    assert got == expected
    assert reader.buffered == b""


@pytest.mark.parametrize("transcript", transcript_params())
def test_reader_one_byte_at_a_time_and_all_at_once(transcript: Transcript) -> None:
    data = transcript.output_bytes
    expected = [json.loads(block) for block in transcript.response_blocks()]
    bytewise = ResponseReader()
    got: list[dict[str, Any]] = []
    for index in range(len(data)):
        got += bytewise.feed(data[index : index + 1])
    assert got == expected
    assert ResponseReader().feed(data) == expected
