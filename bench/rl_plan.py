"""The RL-like workload of scenario 7, as a fixed plan both systems execute.

An *episode* is one proof attempt: a root command (``import <header>`` + a theorem proved by
``sorry``, whose proof state is the search's root) and a tree of tactic steps. Each step applies
a tactic to an earlier proof state of its episode (the root or an earlier ``skip`` step, chosen at
random: branching), so the plan fixes the tree's shape and every request's text in advance and
the two systems get exactly the same requests; only when a step's parent state is missing (its
request failed) are the step and its subtree skipped.

Per step: CPU cost log-uniform in [5, 200] ms (``--!sim cpu_ms``); 2 % crash their REPL, 1 %
hang (never answer; the per-request timeout ends them); about 10 % of all steps are exact
duplicates of another step (same parent, same text) submitted right after it, as a sampler that
proposes the same tactic twice would. Every episode's theorem names its own variable
``x<episode>``, so a response showing another episode's goal is detected as a wrong state.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass

# Tactics after which the step is a leaf of the tree (closed, failed, or split into cases).
LEAF_TACTICS = ("constructor", "omega", "simp", "intro h", "rfl", "norm_num", "exact rfl")
OPEN_SHARE = 0.45  # share of ordinary steps that are `skip` (a new, still open, proof state)


@dataclass(frozen=True)
class Step:
    key: int  # 1.. within the episode (0 is the root)
    parent: int
    tactic: str
    expect: str  # "open", "leaf", "crash" or "hang"
    duplicate_of: int | None = None


@dataclass(frozen=True)
class Episode:
    index: int
    header: str
    theorem: str  # without the import header
    steps: tuple[Step, ...]

    def root_command(self) -> str:
        return f"import {self.header}\n{self.theorem}"


def _cost(rng: random.Random, low: int = 5, high: int = 200) -> int:
    return round(math.exp(rng.uniform(math.log(low), math.log(high))))


def make_plan(
    episodes: int,
    steps: int,
    headers: tuple[str, ...],
    seed: int,
    crash_rate: float = 0.02,
    hang_rate: float = 0.01,
    duplicate_rate: float = 0.10,
) -> list[Episode]:
    rng = random.Random(seed)
    plan: list[Episode] = []
    for e in range(episodes):
        a, b = rng.randint(1, 50), rng.randint(1, 50)
        theorem = (
            f"theorem rl{e} (x{e} : Nat) : x{e} + 0 = x{e} ∧ {a} + {b} = {a + b} := by\n"
            f"  sorry --!sim cpu_ms={_cost(rng)}"
        )
        open_keys = [0]
        planned: list[Step] = []
        key = 0
        for _ in range(steps):
            key += 1
            parent = rng.choice(open_keys)
            draw = rng.random()
            if draw < crash_rate:
                step = Step(key, parent, f"skip --!sim cpu_ms={_cost(rng)} crash", "crash")
            elif draw < crash_rate + hang_rate:
                step = Step(key, parent, "skip --!sim hang", "hang")
            elif rng.random() < OPEN_SHARE:
                step = Step(key, parent, f"skip --!sim cpu_ms={_cost(rng)}", "open")
                open_keys.append(key)
            else:
                tactic = rng.choice(LEAF_TACTICS)
                step = Step(key, parent, f"{tactic} --!sim cpu_ms={_cost(rng)}", "leaf")
            planned.append(step)
            # duplicates: duplicate_rate of all steps, so 1 per (1/rate - 1) originals
            if rng.random() < duplicate_rate / (1 - duplicate_rate):
                key += 1
                planned.append(Step(key, parent, step.tactic, step.expect, duplicate_of=step.key))
        plan.append(Episode(e, headers[e % len(headers)], theorem, tuple(planned)))
    return plan


def _cpu_ms(text: str) -> int:
    return sum(int(found) for found in re.findall(r"cpu_ms=(\d+)", text))


def plan_summary(plan: list[Episode]) -> dict[str, int]:
    steps = [s for episode in plan for s in episode.steps]
    roots_ms = sum(_cpu_ms(episode.theorem) for episode in plan)
    return {
        # simulated CPU of every request, and of those that are not duplicates (run once)
        "cpu_ms": roots_ms + sum(_cpu_ms(s.tactic) for s in steps),
        "cpu_ms_unique": roots_ms + sum(_cpu_ms(s.tactic) for s in steps if s.duplicate_of is None),
        "episodes": len(plan),
        "root_commands": len(plan),
        "proof_steps": len(steps),
        "requests": len(plan) + len(steps),
        "planned_crashes": sum(s.expect == "crash" for s in steps),
        "planned_hangs": sum(s.expect == "hang" for s in steps),
        "duplicates": sum(s.duplicate_of is not None for s in steps),
        "open_steps": sum(s.expect == "open" for s in steps),
    }
