"""Responses of any depth through the public API: `LeanServer`, `AutoLeanServer`, `LeanPool`
(whose workers pickle each response to the parent) and `leanpool verify`.

Lean writes JSON of any depth: a chain ``x + x + ...`` nests its info tree once per operand, and
`json.loads` stops near 1,000 levels (3.10, 3.11), 1,500 (3.12) or 10,000 (3.13). The REPL here
is a small fake that prints compact JSON, because Lean's own layout indents each level one column
further: a 100,000-level answer would be gigabytes. Anything but the tree nested deeper than
pydantic-core keeps (~250 levels) is a `ProtocolError` for that request alone: the REPL, the
worker and the other requests go on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from leanpool import AutoLeanServer, Command, LeanPool, LeanREPLConfig, LeanServer
from leanpool._cli._inputs import ProofInput, parse_jsonl_line
from leanpool._errors import ProtocolError
from leanpool._leanjson import loads_deep, render_lean_json
from leanpool.protocol import CommandResponse, TermNode

LEVELS = 100_000  # JSON nesting of the deep answer (two per info-tree level)

# The fake REPL: requests are JSON objects ended by a blank line; every answer gets the next
# env id. "deep tree" in a command gets an info tree LEVELS deep, "deep unknown" a key the
# models do not know holding LEVELS nested arrays, anything else a plain answer.
_FAKE_REPL = r"""
import sys

levels = int(sys.argv[1])
node = (
    '{"stx": {"range": {"synthetic": false, "start": {"line": 1, "column": 0}, '
    '"finish": {"line": 1, "column": 5}}, "pp": "x + x", "kind": "term_+_", '
    '"argKinds": ["term", "+", "term"]}, "isBinder": false, "expr": "x + x", '
    '"expectedType": "Nat", "elaborator": "Lean.Elab.Extra.elabBinOp"}'
)
pairs = (levels - 4) // 2
tree = (
    ('{"node": ' + node + ', "kind": "TermInfo", "children": [') * pairs
    + '{"node": null, "kind": "TermInfo", "children": []}'
    + ', {"goalState": "x : Nat\\n\u22a2 Nat"}]}' * pairs
)
env = 0
lines = []
for line in sys.stdin:
    if line.strip():
        lines.append(line)
        continue
    if not lines:
        continue
    request, lines = "".join(lines), []
    if "deep tree" in request:
        answer = '{"infotree": [' + tree + '], "env": %d}' % env
    elif "deep unknown" in request:
        answer = '{"future": ' + "[" * levels + "]" * levels + ', "env": %d}' % env
    else:
        answer = '{"env": %d}' % env
    env += 1
    sys.stdout.write(answer + "\n\n")
    sys.stdout.flush()
"""


@pytest.fixture
def fake_config(tmp_path: Path) -> LeanREPLConfig:
    script = tmp_path / "fake_repl.py"
    script.write_text(_FAKE_REPL, encoding="utf-8")
    return LeanREPLConfig(repl_cmd=[sys.executable, str(script), str(LEVELS)])


def _check_deep_tree(response: Any) -> None:
    assert isinstance(response, CommandResponse) and response.infotree is not None
    trees = list(response.infotree[0].dfs_walk())
    assert len(trees) == (LEVELS - 4) // 2 + 1
    deepest_term = trees[-2]
    assert isinstance(deepest_term.node, TermNode)
    assert deepest_term.node.elaborator == "Lean.Elab.Extra.elabBinOp"
    assert deepest_term.children[1].goal_state == "x : Nat\n⊢ Nat"  # type: ignore[union-attr]
    assert trees[-1].node is None and trees[-1].children == []


def test_lean_server_reads_any_depth_and_a_too_deep_answer_fails_alone(
    fake_config: LeanREPLConfig,
) -> None:
    server = LeanServer(fake_config)
    try:
        _check_deep_tree(server.run(Command(cmd="example := deep tree")))
        pid = server.pid
        with pytest.raises(ProtocolError, match=r"future\..*maximum validation depth"):
            server.run(Command(cmd="example := deep unknown"))
        after = server.run(Command(cmd="#eval 1"))
        assert isinstance(after, CommandResponse) and after.env == 2  # the REPL kept count
        assert server.pid == pid
    finally:
        server.kill()


def test_auto_lean_server_does_not_restart_for_a_too_deep_answer(
    fake_config: LeanREPLConfig,
) -> None:
    server = AutoLeanServer(fake_config)
    try:
        first = server.run(Command(cmd="#eval 1"))
        assert isinstance(first, CommandResponse)
        pid = server.pid
        with pytest.raises(ProtocolError, match="maximum validation depth"):
            server.run(Command(cmd="example := deep unknown"))
        _check_deep_tree(server.run(Command(cmd="example := deep tree")))
        assert server.pid == pid
    finally:
        server.kill()


@pytest.mark.slow
def test_pool_workers_send_deep_answers_and_fail_only_the_too_deep_request(
    fake_config: LeanREPLConfig,
) -> None:
    with LeanPool(fake_config, max_workers=1, progress=False) as pool:
        requests = ["#eval 1", "example := deep unknown", "example := deep tree", "#eval 2"]
        first, too_deep, deep, last = pool.map(requests, return_exceptions=True)
        assert isinstance(first, CommandResponse) and isinstance(last, CommandResponse)
        assert isinstance(too_deep, ProtocolError)
        _check_deep_tree(deep)  # parsed in the worker, pickled to this process
        stats = pool.stats()
        assert sum(stats.restarts.values()) == 0 and sum(stats.recycles.values()) == 0
        assert stats.failed == {"ProtocolError": 1}


def test_verify_writes_and_reloads_results_for_a_deep_answer(tmp_path: Path) -> None:
    # A recorded session (replayed by the simulator, in Lean's own layout) whose answer
    # carries an info tree 3,000 levels deep: past `json.loads` on 3.10-3.12.
    code = "theorem deep : 1 + 1 = 2 := by decide"
    tree: dict[str, Any] = {"kind": "TermInfo", "node": None, "children": []}
    for _ in range(1500):
        tree = {"kind": "TermInfo", "node": None, "children": [tree, {"goalState": "⊢ Nat"}]}
    recordings = tmp_path / "recorded"
    recordings.mkdir()
    (recordings / "deep.in").write_text(json.dumps({"cmd": code}) + "\n\n", encoding="utf-8")
    answer = render_lean_json({"infotree": [tree], "env": 0})
    (recordings / "deep.expected.out").write_text(answer + "\n\n", encoding="utf-8")
    proofs = tmp_path / "proofs.jsonl"
    proofs.write_text(json.dumps({"id": "deep", "code": code}) + "\n", encoding="utf-8")
    results = tmp_path / "results.jsonl"
    replay = f"replay={recordings}"
    command = ["verify", "--sim", "--sim-option", replay, "-j", "1", "-o", str(results)]
    command.append("--no-axiom-check")  # the recording holds this one command, not the check
    done = subprocess.run(
        [sys.executable, "-m", "leanpool", *command, str(proofs)],
        cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    [line] = results.read_text(encoding="utf-8").splitlines()
    record = loads_deep(line)
    assert (record["id"], record["verdict"], record["errors"]) == ("deep", "passed", [])


def test_auto_lean_server_batch_gives_a_too_deep_answer_its_own_result(
    fake_config: LeanREPLConfig,
) -> None:
    server = AutoLeanServer(fake_config)
    try:
        too_deep, after = server.run_batch([Command(cmd="deep unknown"), Command(cmd="#eval 1")])
        assert isinstance(too_deep, ProtocolError)
        assert isinstance(after, CommandResponse) and after.env == 1
    finally:
        server.kill()


def test_verify_reads_dataset_lines_of_any_depth() -> None:
    deep = "[" * LEVELS + "]" * LEVELS  # an extra field of the dataset: read, then ignored
    line = '{"id": "t", "code": "theorem t : True := trivial", "meta": ' + deep + "}"
    proof = parse_jsonl_line(line, "data.jsonl:1")
    assert isinstance(proof, ProofInput) and proof.id == "t"
    assert proof.command == "theorem t : True := trivial"
