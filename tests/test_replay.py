"""Replay and record modes: recorded sessions come back byte for byte, renumbered when needed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sim_process import SimProcess, responses, run_sim, sim_factory, wire
from transcripts import TRANSCRIPTS_DIR, Transcript, require_transcripts, transcript_params

from leanpool._leanjson import render_lean_json
from leanpool.testing._replay import ReplayRepl, load_recordings
from leanpool.testing._requests import decode_request

REPLAY_FLAGS = (
    "--replay",
    str(TRANSCRIPTS_DIR / "core"),
    "--replay",
    str(TRANSCRIPTS_DIR / "mathlib"),
)


@pytest.fixture
def sim() -> Iterator[Callable[..., SimProcess]]:
    with sim_factory() as start:
        yield start


@pytest.mark.parametrize("transcript", transcript_params())
def test_every_transcript_replays_byte_for_byte(transcript: Transcript) -> None:
    result = run_sim(transcript.input_path.read_bytes(), *REPLAY_FLAGS)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == transcript.output_bytes
    assert result.stderr == b""


def _answer_all(repl: ReplayRepl, texts: list[str]) -> list[dict[str, object]]:
    return [repl.answer(decode_request(text)) for text in texts]


def test_ids_are_renumbered_from_the_process_own_counters() -> None:
    require_transcripts()
    repl = ReplayRepl(load_recordings([TRANSCRIPTS_DIR / "core"]))
    # Two sessions interleaved in one process: the second one's ids continue the counters.
    first = _answer_all(repl, ['{"cmd": "def f : Nat := by sorry"}'])
    assert first[0]["env"] == 0 and first[0]["sorries"][0]["proofState"] == 0  # type: ignore[index]
    second = _answer_all(
        repl,
        [
            '{"cmd": "theorem foo (x : Int) : x = x := by sorry"}',
            '{"proofState" : 1, "tactic": "by_cases h : x < 0"}',
            '{"proofState" : 2, "tactic": "case pos => rfl"}',
        ],
    )
    assert second[0]["env"] == 1
    assert second[0]["sorries"][0]["proofState"] == 1  # type: ignore[index]
    assert second[1]["proofState"] == 2 and len(second[1]["goals"]) == 2  # type: ignore[arg-type]
    assert second[2]["proofState"] == 3
    assert second[2]["goals"] == ["case neg\nx : Int\nh : ¬x < 0\n⊢ x = x"]


def test_requests_match_by_the_history_of_the_state_they_name() -> None:
    require_transcripts()
    repl = ReplayRepl(load_recordings([TRANSCRIPTS_DIR / "core"]))
    # `exact t` on state 3 of proof_step is recorded; on a state with another history it is not.
    answers = _answer_all(
        repl,
        [
            '{"cmd" : "def f : Nat := by sorry"}',
            '{"tactic": "have t : Nat := 42", "proofState": 0}',
            '{"tactic": "exact t", "proofState": 0}',
            '{"tactic": "exact t", "proofState": 1}',
        ],
    )
    refused = answers[2]["message"]
    assert isinstance(refused, str) and refused.startswith("simrepl replay: no recording for")
    assert answers[3] == {"proofStatus": "Completed", "proofState": 2, "goals": []}


def test_key_order_and_whitespace_do_not_matter_but_unknown_ids_do() -> None:
    require_transcripts()
    repl = ReplayRepl(load_recordings([TRANSCRIPTS_DIR / "core"]))
    answers = _answer_all(
        repl,
        [
            '{ "cmd":"def f := 2" , "junk": [1, 2] }',
            '{"env": 0, "cmd": "#check f"}',
            '{"env": 7, "cmd": "#check f"}',
            '{"tactic": "rfl", "proofState": 0}',
            '{"pickleTo": "x.olean", "proofState": 0}',
        ],
    )
    assert answers[0] == {"env": 0}
    assert answers[1]["env"] == 1 and answers[1]["messages"][0]["data"] == "f : Nat"  # type: ignore[index]
    assert answers[2] == {"message": "Unknown environment."}
    assert answers[3] == {"message": "Unknown proof state."}
    assert answers[4] == {"message": "Unknown proof State."}


def _write_session(
    folder: Path, name: str, pairs: list[tuple[dict[str, object], dict[str, object]]]
) -> None:
    (folder / f"{name}.in").write_text(wire(*(request for request, _ in pairs)), encoding="utf-8")
    output = "".join(render_lean_json(response) + "\n\n" for _, response in pairs)
    (folder / f"{name}.expected.out").write_text(output, encoding="utf-8")


def test_the_recording_whose_whole_sequence_matches_wins(tmp_path: Path) -> None:
    # The same file request was answered differently in two sessions (the file changed).
    def info(data: str, env: int) -> dict[str, object]:
        position = {"line": 1, "column": 0}
        message = {"severity": "info", "pos": position, "endPos": position, "data": data}
        return {"messages": [message], "env": env}

    _write_session(
        tmp_path, "a", [({"cmd": "#eval 1"}, info("1", 0)), ({"path": "f.lean"}, info("A", 1))]
    )
    _write_session(
        tmp_path, "b", [({"cmd": "#eval 2"}, info("2", 0)), ({"path": "f.lean"}, info("B", 1))]
    )
    for order in (lambda r: r, lambda r: list(reversed(r))):
        recordings = order(load_recordings([tmp_path]))
        as_b = _answer_all(ReplayRepl(recordings), ['{"cmd": "#eval 2"}', '{"path": "f.lean"}'])
        assert as_b == [info("2", 0), info("B", 1)]
        as_a = _answer_all(ReplayRepl(recordings), ['{"cmd": "#eval 1"}', '{"path": "f.lean"}'])
        assert as_a == [info("1", 0), info("A", 0 + 1)]
    # Off every recorded sequence, some recording still answers a request it knows.
    stray = _answer_all(ReplayRepl(load_recordings([tmp_path])), ['{"path": "f.lean"}'])
    assert stray[0] in (info("A", 0), info("B", 0))


def test_an_unrecorded_request_gets_a_clear_answer_not_silence() -> None:
    require_transcripts()
    result = run_sim(wire({"cmd": "theorem never_recorded : True := trivial"}), *REPLAY_FLAGS)
    [answer] = responses(result.stdout)
    assert set(answer) == {"message"}
    assert "simrepl replay: no recording for command request" in answer["message"]
    assert "never_recorded" in answer["message"]


def test_directive_comments_do_not_change_which_recording_matches(
    sim: Callable[..., SimProcess],
) -> None:
    require_transcripts()
    process = sim(*REPLAY_FLAGS)
    answer = process.request({"cmd": "def f : Nat := by sorry --!sim error"})
    assert answer["env"] == 0 and answer["sorries"][0]["goal"] == "⊢ Nat"
    assert answer["messages"][-1]["severity"] == "error"


def test_a_missing_replay_directory_is_an_error(tmp_path: Path) -> None:
    result = run_sim(wire({"cmd": "#eval 1"}), "--replay", str(tmp_path / "absent"))
    assert result.returncode != 0
    assert b"no such directory" in result.stderr


def test_record_mode_records_a_session_that_replays_identically(tmp_path: Path) -> None:
    transcripts = require_transcripts()
    transcript = next(t for t in transcripts if t.name == "core/proof_step")
    recorded = tmp_path / "recorded"
    inner = ["--", *_simrepl_command(), *REPLAY_FLAGS]
    result = run_sim(
        transcript.input_path.read_bytes(), "--record", str(recorded), "--name", "again", *inner
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == transcript.output_bytes  # the proxy is transparent
    assert (recorded / "again.expected.out").read_bytes() == transcript.output_bytes
    assert [
        decode_request(b) for b in Transcript("x", recorded / "again.in", recorded).request_blocks()
    ] == [decode_request(b) for b in transcript.request_blocks()]
    replayed = run_sim((recorded / "again.in").read_bytes(), "--replay", str(recorded))
    assert replayed.stdout == transcript.output_bytes


def test_record_mode_stops_with_the_repl_when_it_dies(tmp_path: Path) -> None:
    inner = ["--", *_simrepl_command()]
    session = wire({"cmd": "#eval 1"}, "not json", {"cmd": "#eval 2"})
    result = run_sim(session, "--record", str(tmp_path), "--name", "dies", *inner)
    assert result.returncode == 1
    assert len(responses((tmp_path / "dies.expected.out").read_bytes())) == 1
    assert b"uncaught exception" in result.stderr


def _simrepl_command() -> list[str]:
    from leanpool.testing import sim_command

    return sim_command()


def test_recording_survives_the_server_killing_the_proxy(tmp_path: Path) -> None:
    from leanpool import Command, LeanREPLConfig, LeanServer
    from leanpool.testing import sim_command

    record = [*sim_command(), "--record", str(tmp_path), "--name", "live", "--"]
    config = LeanREPLConfig(repl_cmd=[*record, *sim_command()])
    server = LeanServer(config)
    try:
        server.run(Command(cmd="def x := 1"))
        server.run(Command(cmd="#check x", env=0))
    finally:
        server.kill()  # SIGKILL of the whole group: no EOF, no clean exit
    recorded_in = (tmp_path / "live.in").read_text(encoding="utf-8")
    recorded_out = (tmp_path / "live.expected.out").read_bytes()
    assert recorded_in.count('"cmd"') == 2
    replayed = run_sim(recorded_in, "--replay", str(tmp_path))
    assert replayed.stdout == recorded_out


def test_renamed_sessions_replay_byte_for_byte(tmp_path: Path) -> None:
    transcripts = require_transcripts()
    for transcript in transcripts:  # new names, one directory: names must not matter
        new_name = "renamed_" + transcript.name.replace("/", "_")[::-1]
        (tmp_path / f"{new_name}.in").write_bytes(transcript.input_path.read_bytes())
        (tmp_path / f"{new_name}.expected.out").write_bytes(transcript.output_bytes)
    repl_flags = ("--replay", str(tmp_path))
    for transcript in transcripts[::7]:
        result = run_sim(transcript.input_path.read_bytes(), *repl_flags)
        assert result.returncode == 0, result.stderr.decode()
        assert result.stdout == transcript.output_bytes, transcript.name


def test_flags_the_repl_treats_as_absent_match_the_recording_without_them(
    tmp_path: Path,
) -> None:
    position = {"line": 1, "column": 0}
    message = {"severity": "info", "pos": position, "endPos": position, "data": "1"}
    _write_session(tmp_path, "s", [({"cmd": "#eval 1"}, {"messages": [message], "env": 0})])
    repl = ReplayRepl(load_recordings([tmp_path]))
    variants = [
        '{"cmd": "#eval 1", "allTactics": false}',
        '{"cmd": "#eval 1", "rootGoals": false, "infotree": "none"}',
        '{"cmd": "#eval 1", "allTactics": null}',
    ]
    for answer in _answer_all(repl, variants):
        assert answer["messages"] == [message]
    [refused] = _answer_all(repl, ['{"cmd": "#eval 1", "allTactics": true}'])
    assert "no recording" in str(refused["message"])


def test_a_recorded_crash_is_replayed_as_a_crash(tmp_path: Path) -> None:
    # The recorded REPL answered one request, then died on an unpickle (missing file), once
    # before writing anything and once half-way through a response.
    session = wire({"cmd": "def x := 1"}, {"unpickleEnvFrom": "gone.olean"}, {"cmd": "#eval 2"})
    (tmp_path / "dies.in").write_text(session, encoding="utf-8")
    (tmp_path / "dies.expected.out").write_text('{"env": 0}\n\n', encoding="utf-8")
    half = wire({"unpickleProofStateFrom": "half.olean"})
    (tmp_path / "half.in").write_text(half, encoding="utf-8")
    (tmp_path / "half.expected.out").write_text('{"proofState": 0,\n "go', encoding="utf-8")
    for name in ("dies", "half"):
        result = run_sim((tmp_path / f"{name}.in").read_bytes(), "--replay", str(tmp_path))
        assert result.returncode == 1
        assert result.stdout == (tmp_path / f"{name}.expected.out").read_bytes()
        assert b"uncaught exception: simrepl replay: the recorded REPL" in result.stderr
    # Off the recorded sequence, the crash is still what this request gets.
    result = run_sim(wire({"unpickleEnvFrom": "gone.olean"}), "--replay", str(tmp_path))
    assert result.returncode == 1 and result.stdout == b""


def test_a_deep_info_tree_replays_byte_for_byte(tmp_path: Path) -> None:
    tree: dict[str, object] = {"kind": "TermInfo", "node": None, "children": []}
    for _ in range(1500):  # deeper than json.loads and Python recursion allow by default
        tree = {"kind": "TermInfo", "node": None, "children": [tree, {"goalState": "⊢ Nat"}]}
    _write_session(tmp_path, "deep", [({"cmd": "#eval 1", "infotree": "full"}, {"env": 0})])
    output = render_lean_json({"infotree": [tree], "env": 0}) + "\n\n"
    (tmp_path / "deep.expected.out").write_text(output, encoding="utf-8")
    result = run_sim((tmp_path / "deep.in").read_bytes(), "--replay", str(tmp_path))
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == output.encode("utf-8")
