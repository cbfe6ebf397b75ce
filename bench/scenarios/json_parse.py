"""Scenario 8: parsing REPL responses (`leanpool._leanjson.loads_deep`) against `json.loads`.

Every response a REPL writes is parsed by `loads_deep`: `json.loads` first (the fast path), and
only when that raises `RecursionError` (JSON nested past ~1,000 levels on Python 3.10-3.11, ~1,500
on 3.12, ~10,000 on 3.13) the iterative decoder. Measured in this process, no REPL involved:

- a typical 1 MB ``infotree: "full"`` response in Lean's own layout (`render_lean_json`): theorems
  proved by tactic blocks, each tactic with its goals and the terms it elaborated, some holes;
  seeded, so every run parses the same text. Headline: ``json.loads`` time / ``loads_deep`` time
  on it (the fast path; goal >= 0.95), best of `json_repeats` interleaved runs each. The iterative
  decoder on the same text is reported as well: the cost per megabyte of the deep path.
- a response whose info tree nests `json_deep_levels` JSON levels (a chain ``x + x + ...``, in
  compact JSON: Lean's layout indents each level one column further, gigabytes at 100,000):
  parse time and megabytes per second, and `parse_response` (decode and models) time.
"""

from __future__ import annotations

import gc
import json
import random
import time
from collections.abc import Callable
from typing import Any

from bench.measure import Run
from bench.scenarios import Context

MB = 1024 * 1024
_GOALS = (
    "a b c : Nat\nh : a ≤ b\nh' : b ≤ c\n⊢ a ≤ c",
    "n : Nat\nih : 2 * (n * (n + 1) / 2) = n * (n + 1)\n⊢ 2 * ((n + 1) * (n + 1 + 1) / 2) = "
    "(n + 1) * (n + 1 + 1)",
    "α : Type u_1\ninst✝ : DecidableEq α\nl : List α\nx : α\n⊢ (List.erase l x).length ≤ l.length",
    "x y : ℝ\nhx : 0 < x\nhy : 0 < y\n⊢ Real.log (x * y) = Real.log x + Real.log y",
)
_TACTICS = (
    ("Lean.Parser.Tactic.simp", "simp [Nat.mul_comm, Nat.add_assoc] at h ⊢"),
    ("Lean.Parser.Tactic.rwSeq", "rw [Nat.succ_eq_add_one, Nat.mul_add]"),
    ("Lean.Parser.Tactic.exact", "exact Nat.le_trans h h'"),
    ("Lean.Parser.Tactic.intro", "intro x hx"),
    ("Lean.Parser.Tactic.apply", "apply List.length_erase_le"),
    ("Lean.Parser.Tactic.omega", "omega"),
)
_TERMS = (
    ("Nat.le_trans h h'", "a ≤ c", "Lean.Elab.Term.elabApp"),
    ("Nat.mul_comm", "∀ (n m : Nat), n * m = m * n", "Lean.Elab.Term.elabIdent"),
    ("h", "a ≤ b", "Lean.Elab.Term.elabIdent"),
    ("Real.log_mul (ne_of_gt hx) (ne_of_gt hy)", None, "Lean.Elab.Term.elabApp"),
)


def _stx(rng: random.Random, line: int, pp: str, kind: str, args: list[str]) -> dict[str, Any]:
    column = rng.randrange(2, 40)
    return {
        "range": {
            "synthetic": rng.random() < 0.1,
            "start": {"line": line, "column": column},
            "finish": {"line": line, "column": column + len(pp)},
        },
        "pp": pp,
        "kind": kind,
        "argKinds": args,
    }


def _term(rng: random.Random, line: int, depth: int) -> dict[str, Any]:
    expr, expected, elaborator = rng.choice(_TERMS)
    node: dict[str, Any] = {
        "stx": _stx(rng, line, expr, "Lean.Parser.Term.app", ["ident", "null"]),
        "isBinder": rng.random() < 0.1,
        "expr": expr,
        "elaborator": elaborator,
    }
    if expected is not None:
        node["expectedType"] = expected
    children: list[dict[str, Any]] = []
    if depth < 5:
        children = [_term(rng, line, depth + 1) for _ in range(rng.choice((0, 1, 1, 2)))]
    if rng.random() < 0.05:
        children.append({"goalState": rng.choice(_GOALS)})
    if rng.random() < 0.2:  # a macro expanded on the way
        return {
            "node": None,
            "kind": "MacroExpansionInfo",
            "children": [{"node": node, "kind": "TermInfo", "children": children}],
        }
    return {"node": node, "kind": "TermInfo", "children": children}


def _tactic(rng: random.Random, line: int, depth: int) -> dict[str, Any]:
    name, text = rng.choice(_TACTICS)
    before = [rng.choice(_GOALS) for _ in range(rng.choice((1, 1, 2)))]
    node = {
        "stx": _stx(rng, line, text, name, [name.rsplit(".", 1)[-1], "null", "null"]),
        "name": name,
        "goalsBefore": before,
        "goalsAfter": before[1:] if rng.random() < 0.6 else [rng.choice(_GOALS)],
    }
    children = [_term(rng, line, 0) for _ in range(rng.choice((1, 2, 3)))]
    if depth < 3 and rng.random() < 0.3:  # a focused block: tactics nested in a tactic
        children += [_tactic(rng, line + 1 + k, depth + 1) for k in range(rng.randrange(1, 4))]
    return {"node": node, "kind": "TacticInfo", "children": children}


def typical_response(target_bytes: int, seed: int = 8) -> str:
    """A command response with ``infotree: "full"``, about `target_bytes` in Lean's layout."""
    from leanpool._leanjson import render_lean_json

    rng = random.Random(seed)
    trees: list[dict[str, Any]] = []
    size = line = 0
    while size < target_bytes:
        line += 1
        tactics = [_tactic(rng, line + 1 + k, 0) for k in range(rng.randrange(3, 12))]
        by_block = {
            "node": {
                "stx": _stx(rng, line, "by", "Lean.Parser.Term.byTactic", ["by", "tacticSeq"]),
                "name": "Lean.Parser.Term.byTactic",
                "goalsBefore": [rng.choice(_GOALS)],
                "goalsAfter": [],
            },
            "kind": "TacticInfo",
            "children": tactics,
        }
        theorem = {
            "node": {
                "stx": _stx(
                    rng,
                    line,
                    f"theorem t{line} : …",
                    "Lean.Parser.Command.declaration",
                    ["Lean.Parser.Command.declModifiers", "Lean.Parser.Command.theorem"],
                ),
                "elaborator": "Lean.Elab.Command.elabDeclaration",
            },
            "kind": "CommandInfo",
            "children": [_term(rng, line, 3), by_block],
        }
        trees.append(theorem)
        size += len(render_lean_json(theorem).encode("utf-8"))
        line += 1 + len(tactics)
    return render_lean_json({"infotree": trees, "env": 0})


def deep_response(levels: int) -> str:
    """Compact JSON `levels` deep: an info tree for ``x + x + ...`` (a node per two levels)."""
    node = json.dumps(
        {
            "stx": {
                "range": {
                    "synthetic": False,
                    "start": {"line": 1, "column": 0},
                    "finish": {"line": 1, "column": 5},
                },
                "pp": "x + x",
                "kind": "«term_+_»",
                "argKinds": ["term", "+", "term"],
            },
            "isBinder": False,
            "expr": "x + x",
            "expectedType": "Nat",
            "elaborator": "Lean.Elab.Extra.elabBinOp",
        },
        ensure_ascii=False,
    )
    pairs = (levels - 4) // 2
    head = '{"node": ' + node + ', "kind": "TermInfo", "children": ['
    leaf = '{"node": null, "kind": "TermInfo", "children": []}'
    tail = ', {"goalState": "x : Nat\\n⊢ Nat"}]}'
    return '{"infotree": [' + head * pairs + leaf + tail * pairs + '], "env": 0}'


def _parse_seconds(parse: Callable[[str], Any], text: str) -> float:
    """One parse, timed; from a fresh collection, so that each parser meets the same garbage
    collections on the way (otherwise they land on whichever parse happens to be running)."""
    gc.collect()
    started = time.perf_counter()
    parse(text)
    return time.perf_counter() - started


def _variant(name: str, seconds: list[float], **notes: Any) -> Run:
    run = Run(name)
    run.submitted = len(seconds)
    for _ in seconds:
        run.add({"ok": True})
    run.seconds = min(seconds)  # the least disturbed parse (the machine is shared)
    run.notes.update({"parses": len(seconds), "best_ms": round(min(seconds) * 1000, 3), **notes})
    return run


def run(ctx: Context) -> dict[str, Any]:
    from leanpool._leanjson import loads_deep, loads_iteratively
    from leanpool.protocol import parse_response

    repeats = ctx.sizes.json_repeats
    text = typical_response(MB)
    megabytes = len(text.encode("utf-8")) / MB
    ctx.log(f"s8: {megabytes:.2f} MB info-tree response, best of {repeats} interleaved parses")
    assert loads_deep(text) == json.loads(text) == loads_iteratively(text)
    timings: dict[str, list[float]] = {"json_loads": [], "loads_deep": [], "iterative": []}
    for repeat in range(repeats):
        order = [
            ("json_loads", json.loads),
            ("loads_deep", loads_deep),
            ("iterative", loads_iteratively),
        ]
        if repeat % 2:
            order.reverse()
        for key, parse in order:
            timings[key].append(_parse_seconds(parse, text))
    best = {key: min(values) for key, values in timings.items()}

    levels = ctx.sizes.json_deep_levels
    deep = deep_response(levels)
    deep_mb = len(deep.encode("utf-8")) / MB
    ctx.log(f"s8: {levels} levels deep ({deep_mb:.1f} MB): loads_deep, then parse_response")
    deep_seconds = [_parse_seconds(loads_deep, deep) for _ in range(2)]
    model_seconds = _parse_seconds(parse_response, deep)

    variants = [
        _variant("json_loads_1mb", timings["json_loads"], megabytes=round(megabytes, 3)),
        _variant("loads_deep_1mb", timings["loads_deep"], megabytes=round(megabytes, 3)),
        _variant("loads_iteratively_1mb", timings["iterative"], megabytes=round(megabytes, 3)),
        _variant(f"loads_deep_{levels}_levels", deep_seconds, megabytes=round(deep_mb, 3)),
    ]
    return {
        "description": (
            f"Parsing a {megabytes:.2f} MB info-tree response (Lean's layout, shallow) with "
            f"json.loads, leanpool's loads_deep (its fast path) and the iterative decoder alone, "
            f"best of {repeats} interleaved parses each; then a response {levels} levels deep"
        ),
        "variants": [v.as_dict() for v in variants],
        "megabytes": round(megabytes, 3),
        "shallow_vs_json_loads": round(best["json_loads"] / best["loads_deep"], 3),
        "iterative_vs_json_loads": round(best["json_loads"] / best["iterative"], 3),
        "iterative_mb_per_s": round(megabytes / best["iterative"], 1),
        "deep_levels": levels,
        "deep_megabytes": round(deep_mb, 3),
        "deep_parse_seconds": round(min(deep_seconds), 3),
        "deep_mb_per_s": round(deep_mb / min(deep_seconds), 1),
        "deep_parse_response_seconds": round(model_seconds, 3),
    }
