"""Scenario 9: what the verdict policy costs, on the same set of proofs with and without it.

`verdict_proofs` theorems, each proved by a tactic that takes `verdict_cpu_ms` of CPU in the REPL
(the simulator's `cpu_ms`), all submitted at once to a 2-worker pool with deduplication off (every
proof is distinct anyway):

- ``plain``: ``pool.map`` of the commands; Lean's answer only, judged by nothing (what a pool
  without a policy would do);
- ``policy``: ``pool.batch()`` with the default policy: the text scan, the command, and one more
  command per proof that asks Lean for the axioms of each theorem;
- ``policy_statement``: the same with each proof's reference statement (the reference declared
  in the same command, one more line in the second command).

Each variant is the best of `repeats` interleaved runs. Headline: ``plain`` time / ``policy``
time (the share of throughput the policy keeps; goal >= 0.8). Every proof must pass in the two
policy variants: a proof the policy refuses would measure something else.
"""

from __future__ import annotations

import time
from typing import Any

from bench.measure import Run, best_of
from bench.scenarios import Context
from bench.systems import leanpool_config

TACTICS = ("norm_num", "omega", "simp", "decide")


def _proof(index: int, cpu_ms: int) -> tuple[str, str]:
    """(code, reference statement) of proof `index`: closed arithmetic by a decision procedure,
    or commutativity over a variable by `omega`."""
    a, b = index % 97, index % 89 + 1
    tactic = TACTICS[index % len(TACTICS)]
    if tactic == "omega":
        statement = f"theorem p{index} (x : Nat) : x + {b} = {b} + x"
    else:
        statement = f"theorem p{index} : {a} + {b} = {a + b}"
    code = f"{statement} := by {tactic} --!sim cpu_ms={cpu_ms}"
    return code, f"{statement} := by sorry"


def _measure(name: str, submit: Any, count: int) -> Run:
    run = Run(name)
    started = time.perf_counter()
    for outcome in submit():
        run.add(outcome)
    run.seconds = time.perf_counter() - started
    run.submitted = count
    return run


def run(ctx: Context) -> dict[str, Any]:
    from leanpool import LeanPool

    sizes = ctx.sizes
    count, cpu_ms = sizes.verdict_proofs, sizes.verdict_cpu_ms
    proofs = [_proof(i, cpu_ms) for i in range(count)]
    codes = [code for code, _ in proofs]
    repeats: dict[str, list[Run]] = {"plain": [], "policy": [], "policy_statement": []}
    statuses: dict[str, dict[str, int]] = {}

    with LeanPool(leanpool_config(), ctx.workers, dedup=False, progress=False) as pool:
        pool.run("theorem warm : 1 + 1 = 2 := by decide")

        def plain() -> list[Any]:
            return list(pool.map(codes, return_exceptions=True))

        def policy(with_statement: bool) -> list[Any]:
            with pool.batch(progress=False) as batch:
                for code, statement in proofs:
                    batch.submit(code, formal_statement=statement if with_statement else None)
            name = "policy_statement" if with_statement else "policy"
            counted: dict[str, int] = {}
            for entry in batch.results:
                key = entry.verdict if not entry.reasons else f"{entry.verdict}:{entry.reasons}"
                counted[str(key)] = counted.get(str(key), 0) + 1
            statuses[name] = counted
            return [entry.result for entry in batch.results]

        for repeat in range(sizes.repeats):
            ctx.log(f"s9: {count} proofs, plain / policy / policy with statements ({repeat + 1})")
            repeats["plain"].append(_measure("plain", plain, count))
            repeats["policy"].append(_measure("policy", lambda: policy(False), count))
            repeats["policy_statement"].append(
                _measure("policy_statement", lambda: policy(True), count)
            )

    best = {name: best_of(runs) for name, runs in repeats.items()}
    plain_s = best["plain"].seconds
    return {
        "proofs": count,
        "cpu_ms": cpu_ms,
        "variants": [run.as_dict() for run in best.values()],
        "verdicts": statuses,
        "all_passed": all(set(s) == {"passed"} for s in statuses.values()),
        "policy_throughput_vs_plain": round(plain_s / best["policy"].seconds, 3),
        "policy_statement_throughput_vs_plain": round(
            plain_s / best["policy_statement"].seconds, 3
        ),
    }
