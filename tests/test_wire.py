"""Bytes on the pipes: `encode_request` (one safe line per request) and `ResponseReader`."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from transcripts import repl_input_blocks

from leanpool._errors import ProtocolError, RequestError
from leanpool.protocol import (
    BaseREPLQuery,
    Command,
    FileCommand,
    PickleEnvironment,
    ProofStep,
    ResponseReader,
    UnpickleProofState,
    encode_request,
    parse_request,
    repl_reads_as,
)
from leanpool.protocol._wire import _check_one_line

# ----------------------------------------------------------------------------- encode_request

# Characters that break naive framing or escaping: quotes, backslashes, line breaks of every kind
# (only \n may split a REPL line), control characters, astral-plane text, comment prefixes.
TRICKY = ['"', "\\", "\n", "\r", "\t", "\u2028", "\u2029", "\x85", "\x00", "\x1f", "\x7f"]
TRICKY += ["😀", "𝓤", "é", "#", "--", " ", "{", "}", "\\n"]
tricky_text = st.lists(
    st.one_of(
        st.sampled_from(TRICKY),
        st.text(min_size=1, max_size=20),
        st.text(alphabet='ab\\"\n', min_size=1000, max_size=5000),  # very long tokens
    ),
    min_size=1,
    max_size=8,
).map("".join)


def requests_with(text: str, number: int) -> list[BaseREPLQuery]:
    return [
        Command(cmd=text, env=number, all_tactics=True),
        FileCommand(path=text),
        ProofStep(proof_state=number, tactic=text),
        PickleEnvironment(env=number, pickle_to=text),
        UnpickleProofState(unpickle_proof_state_from=text, env=number),
        Command(cmd="x", note=text),  # unknown keys travel too
    ]


@settings(max_examples=150, deadline=None)
@given(text=tricky_text, number=st.integers(min_value=0, max_value=2**62))
def test_encoding_is_one_line_that_decodes_back(text: str, number: int) -> None:
    for request in requests_with(text, number):
        payload = encode_request(request)
        assert payload.endswith(b"\n\n")
        line = payload[:-2]
        assert b"\n" not in line and line.startswith(b"{")
        # The REPL's reader sees exactly this one block, unchanged.
        assert repl_input_blocks(payload.decode("utf-8")) == [line.decode("utf-8")]
        assert json.loads(line) == request.to_repl_dict()
        assert parse_request(line) == request
        assert type(parse_request(line)) is type(request)
        # Raw (not \u-escaped) non-ASCII: astral characters stay out of surrogate pairs.
        assert b"\\ud8" not in line.lower()


@settings(max_examples=50, deadline=None)
@given(text=tricky_text)
def test_encoding_a_dict_equals_encoding_its_model(text: str) -> None:
    wire = {"cmd": text, "env": 0}
    assert encode_request(wire) == encode_request(Command(cmd=text, env=0))


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        ({"cmd": "x", "env": -1}, r"env=-1: a negative id is a session id.*resolved"),
        ({"tactic": "x", "proofState": -3}, r"proofState=-3: a negative id is a session id"),
        (Command(cmd="x", env=-2), r"env=-2.*session id"),
        ({"cmd": "x", "env": "1"}, r"env: .*valid integer"),
        ({"cmd": "x", "allTactics": "yes"}, r"allTactics: .*valid boolean"),
        ({}, r"cannot read this request"),
        ({"unknown": True}, r"cannot read this request.*has keys: unknown"),
        ({"cmd": "x", "note": "a\ud800b"}, r"lone surrogate \(U\+D800\) in note"),
        ({"cmd": "x", "weight": float("nan")}, r"cannot be written as JSON"),
        (Command(cmd="x", env=0, pickleTo="a.olean"), r"as a PickleEnvironment.*pickleTo"),
        ("{}", r"takes a request model or a dict, got str"),
    ],
)
def test_encoding_refuses_what_the_repl_would_misread(request_: Any, expected: str) -> None:
    with pytest.raises(RequestError, match=expected) as caught:
        encode_request(request_)
    assert isinstance(caught.value, ValueError)


def test_encoding_rechecks_models_changed_without_validation() -> None:
    """`model_copy(update=...)` skips validation; the wire check still catches the result."""
    command = Command(cmd="x", env=0)
    with pytest.raises(RequestError, match=r"env=-7.*session id"):
        encode_request(command.model_copy(update={"env": -7}))
    with pytest.raises(RequestError, match="allTactics must be a boolean, got 'yes'"):
        encode_request(command.model_copy(update={"all_tactics": "yes"}))
    with pytest.raises(RequestError, match="cmd must be a non-empty string"):
        encode_request(command.model_copy(update={"cmd": ""}))
    assert encode_request(command.model_copy(update={"env": 5})) == b'{"cmd": "x", "env": 5}\n\n'


def test_the_wire_kind_check_mirrors_the_repl() -> None:
    assert repl_reads_as({"cmd": "x", "env": 0, "pickleTo": "a"}) is PickleEnvironment
    assert repl_reads_as({"cmd": "x", "env": -1, "pickleTo": "a"}) is None  # Nat fails everywhere
    assert repl_reads_as({"tactic": 1, "proofState": 0, "cmd": "x"}) is Command
    assert repl_reads_as({"cmd": "x", "rootGoals": 1}) is None
    assert repl_reads_as({"cmd": "x", "env": True}) is None


def test_frame_guard_refuses_multi_line_and_comment_payloads() -> None:
    for payload in (b'{"a": 1}\n{"b": 2}', b"# comment", b"-- comment", b""):
        with pytest.raises(RequestError, match="single JSON-object line"):
            _check_one_line(payload)
    _check_one_line(b'{"cmd": "x"}')


# ----------------------------------------------------------------------------- ResponseReader


def feed_in_chunks(reader: ResponseReader, data: bytes, size: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for start in range(0, len(data), size):
        out += reader.feed(data[start : start + size])
    return out


def test_line_separators_inside_strings_do_not_split() -> None:
    text = "a\u2028b\u2029c\x85d\x0ce"
    data = json.dumps({"env": 0, "messages": [text]}, ensure_ascii=False, indent=1).encode()
    assert feed_in_chunks(ResponseReader(), data + b"\n\n", 3) == [{"env": 0, "messages": [text]}]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
terminators = st.sampled_from(["\n", " \n", "\t\r\n", "   \n", "\r\n"])


@settings(max_examples=200, deadline=None)
@given(
    responses=st.lists(st.dictionaries(st.text(), json_values, max_size=5), max_size=4),
    indent=st.sampled_from([None, 1, 2]),
    ends=st.lists(terminators, min_size=4, max_size=4),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12),
)
def test_reader_splits_any_chunking_like_the_blank_line_rule(
    responses: list[dict[str, Any]], indent: int | None, ends: list[str], cuts: list[int]
) -> None:
    text = "".join(
        json.dumps(response, indent=indent, ensure_ascii=False) + "\n" + end
        for response, end in zip(responses, ends, strict=False)
    )
    data = text.encode("utf-8")
    positions = sorted({0, len(data), *(cut % (len(data) + 1) for cut in cuts)})
    reader = ResponseReader()
    got: list[dict[str, Any]] = []
    for begin, stop in itertools.pairwise(positions):
        got += reader.feed(data[begin:stop])
    assert got == responses
    assert reader.buffered == b""


def test_megabyte_line_in_1kib_chunks() -> None:
    big = "x" * (3 * 1024 * 1024) + "é"
    data = b'{"env": 1,\n "messages":\n ["' + big.encode() + b'"]}\n\n{"env": 2}\n\n'
    reader = ResponseReader()
    got = feed_in_chunks(reader, data, 1024)
    assert got == [{"env": 1, "messages": [big]}, {"env": 2}]
    assert reader.buffered == b""


def test_multiple_responses_in_one_chunk_and_whitespace_terminators() -> None:
    data = b'{"env": 0}\n\n{"env":\n 1}\n \t\r\n{"message": "Unknown environment."}\n\x0c\n'
    reader = ResponseReader()
    assert reader.feed(data) == [{"env": 0}, {"env": 1}, {"message": "Unknown environment."}]
    assert reader.buffered == b""


def test_a_response_waits_for_its_blank_line_and_exposes_the_partial_bytes() -> None:
    reader = ResponseReader()
    assert reader.feed(b'{"env": 0}\n') == []
    assert reader.buffered == b'{"env": 0}\n'
    assert reader.feed(b"\n") == [{"env": 0}]
    assert reader.buffered == b""
    assert reader.feed(b'{"env": 1, "mess') == []
    assert reader.buffered == b'{"env": 1, "mess'


def test_blank_lines_between_responses_are_skipped() -> None:
    reader = ResponseReader()
    assert reader.feed(b"\n \n") == []
    assert reader.buffered == b""
    assert reader.feed(b'  {"env": 3}\n\n') == [{"env": 3}]


@pytest.mark.parametrize(
    ("data", "expected", "shown"),
    [
        (
            b"uncaught exception: boom\n",
            r"does not start with '\{'.*uncaught exception",
            b"uncaught",
        ),
        (b'{"env": 0}\n\nPANIC at foo', r"does not start with '\{'.*PANIC", b"PANIC at foo"),
        (b'{"env": 0,\n "messages": [\n\n', r"not valid JSON", b'{"env": 0,'),
        (b'{"env": 0} trailing\n\n', r"not valid JSON.*Extra data", b'{"env": 0} trailing'),
        (b'{"env": "\xff"}\n\n', r"not valid UTF-8", b'{"env": "\xff"}'),
        (b'{"env": "\xed\xa0\x80"}\n\n', r"not valid UTF-8", b'{"env": '),
    ],
)
def test_reader_refuses_what_is_not_a_json_response(
    data: bytes, expected: str, shown: bytes
) -> None:
    reader = ResponseReader()
    with pytest.raises(ProtocolError, match=expected) as caught:
        reader.feed(data)  # returns the good responses before the bad bytes, if any,
        reader.feed(b"")  # and raises on the next feed
    assert caught.value.data.startswith(shown)
    with pytest.raises(ProtocolError, match=expected.split(".*")[0]):
        feed_in_chunks(ResponseReader(), data, 1)
    with pytest.raises(ProtocolError):  # the stream stays out of step
        reader.feed(b'{"env": 9}\n\n')


def test_garbage_is_reported_before_its_line_ends() -> None:
    reader = ResponseReader()
    with pytest.raises(ProtocolError, match="does not start with"):
        reader.feed(b"Stack overflow detected")  # no newline yet


def test_non_object_json_is_refused() -> None:
    # A block that starts like an object but is not one cannot be JSON; one that does not start
    # with "{" is refused at once, so an array never reaches the decoder.
    with pytest.raises(ProtocolError, match="does not start with"):
        ResponseReader().feed(b"[1, 2]\n\n")
    with pytest.raises(ProtocolError, match="not valid JSON"):
        ResponseReader().feed(b"{1}\n\n")


def test_error_data_is_truncated() -> None:
    with pytest.raises(ProtocolError) as caught:
        ResponseReader().feed(b"Z" * 100_000 + b"\n")
    assert 0 < len(caught.value.data) <= 400
    assert len(str(caught.value)) < 1000


def test_responses_before_garbage_in_the_same_chunk_are_delivered() -> None:
    reader = ResponseReader()
    chunk = b'{"env": 0}\n\n{"env": 1}\n\nthis is not JSON\n'
    assert reader.feed(chunk) == [{"env": 0}, {"env": 1}]
    assert isinstance(reader.failure, ProtocolError)
    with pytest.raises(ProtocolError, match="does not start with"):
        reader.feed(b"")


def test_reader_decodes_responses_nested_deeper_than_python_recursion() -> None:
    depth = 3000  # `json.loads` alone stops near 1000 levels
    data = ('{"env": 0, "infotree": ' + "[" * depth + "]" * depth + "}\n\n").encode()
    [response] = ResponseReader().feed(data)
    nested = response["infotree"]
    for _ in range(depth - 1):
        [nested] = nested
    assert nested == []


def test_reader_decodes_any_depth_and_stays_in_step() -> None:
    depth = 100_000  # far past what `json.loads` decodes on any Python
    deep = ('{"env": ' + "[" * depth + "]" * depth + "}\n\n").encode()
    reader = ResponseReader()
    assert reader.feed(deep[:70_000]) == []  # in pieces, as a pipe delivers it
    response, after = reader.feed(deep[70_000:] + b'{"env": 1}\n\n')
    nested = response["env"]
    for _ in range(depth - 1):
        [nested] = nested
    assert nested == []
    assert after == {"env": 1}
    assert reader.feed(b'{"env": 2}\n\n') == [{"env": 2}]
    assert reader.failure is None
