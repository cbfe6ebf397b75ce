"""The append-only results file: one whole line per record, a torn last line cut off on resume,
ids compared as JSON, and a complete run rewritten in input order."""

from __future__ import annotations

import json
from pathlib import Path

from leanpool._results_file import ResultsFile, id_key


def test_records_are_lines_written_at_once(tmp_path: Path) -> None:
    path = tmp_path / "out" / "r.jsonl"
    with ResultsFile(path) as results:
        results.append({"id": 1, "verdict": "passed"})
        assert path.read_text() == '{"id": 1, "verdict": "passed"}\n'  # no buffering
        results.append({"id": "1", "verdict": "rejected"})
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()] == [1, "1"]


def test_resume_keeps_complete_lines_and_cuts_a_torn_one(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text('{"id": "a", "verdict": "passed"}\nnot json\n{"id": "b", "verd')
    with ResultsFile(path, resume=True) as results:
        assert results.is_done("a") and not results.is_done("b")
        results.append({"id": "b", "verdict": "fault"})
    assert path.read_text().splitlines() == [
        '{"id": "a", "verdict": "passed"}',
        "not json",  # not ours to judge: kept as it was
        '{"id": "b", "verdict": "fault"}',
    ]


def test_without_resume_the_file_starts_afresh(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text('{"id": "old"}\n')
    with ResultsFile(path) as results:
        assert not results.done
    assert path.read_text() == ""


def test_ids_compare_as_json() -> None:
    assert id_key(7) != id_key("7")
    assert id_key({"b": 1, "a": 2}) == id_key({"a": 2, "b": 1})


def test_rewrite_in_input_order_and_append_after_it(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    with ResultsFile(path) as results:
        for item in ("c", "a", "x", "b"):
            results.append({"id": item})
        results.rewrite_in_order(["a", "b", "c"])
        results.append({"id": "d"})
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()] == [
        "a",
        "b",
        "c",
        "x",  # not in the order given: after the others
        "d",
    ]
