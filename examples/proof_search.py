"""RL-style proof search: best-first search over tactics, many theorems at once, on a pool.

The loop an RL prover runs, with a stand-in for the model:

* a *policy* proposes tactics for a proof state, each with a score (here: seeded random choices
  from a fixed tactic list; a real prover samples them from a language model);
* each theorem has a priority queue of open proof states, best cumulative score first; expanding a
  state runs every proposed tactic as a `ProofStep` on that state, concurrently, in the theorem's
  `PoolSession` (its proof-state ids stay valid even if the worker is replaced);
* a tactic step whose ``proof_status`` is ``"Completed"`` is a proof: the theorem's sibling steps
  still in flight are cancelled at once, and the proof is re-checked as a whole command (tactic
  mode alone is not a verdict, see the REPL's issue #44);
* all theorems are searched concurrently with `asyncio.gather`, so the pool's workers stay busy.

    python examples/proof_search.py            # real Lean if installed, else the simulator
    python examples/proof_search.py --fast
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import random
import time
from dataclasses import dataclass, field

from _support import example_config, parse_args

from leanpool import (
    Command,
    CommandResponse,
    LeanError,
    LeanPool,
    LeanPoolError,
    PoolSession,
    ProofStep,
    ProofStepResponse,
)

# name -> statement; the proof to find replaces `sorry`.
THEOREMS = {
    "and_swap": "theorem and_swap (p q : Prop) : p ∧ q → q ∧ p := by sorry",
    "or_swap": "theorem or_swap (p q : Prop) : p ∨ q → q ∨ p := by sorry",
    "add_zero": "theorem add_zero' (n : Nat) : n + 0 = n := by sorry",
    "le_chain": "theorem le_chain (a b c : Nat) (h₁ : a ≤ b) (h₂ : b ≤ c) : a ≤ c := by sorry",
    "nat_succ_ne": "theorem nat_succ_ne (n : Nat) : n + 1 ≠ n := by sorry",
    "imp_and": "theorem imp_and (p q r : Prop) (hpq : p → q) (hpr : p → r) : p → q ∧ r := by sorry",
    "six_times_seven": "theorem six_times_seven : 6 * 7 = 42 := by sorry",
    "false_sum": "theorem false_sum : 2 + 2 = 5 := by sorry",  # no proof exists
    "mod_three": "theorem mod_three : 10 % 3 = 1 := by sorry",
}

# The stand-in policy's vocabulary: (tactic, prior weight, what the goals must mention for the
# tactic to be proposed). Wrong and unknown tactics are included: a real model proposes those too,
# and the search must survive their errors.
TACTICS: list[tuple[str, float, tuple[str, ...]]] = [
    ("intro h", 3.0, ("→",)),
    ("constructor", 2.0, ("∧",)),
    ("cases h", 1.0, ("h :", "∧")),
    ("exact h", 1.0, ("h :",)),
    ("exact ⟨h.2, h.1⟩", 1.0, ("h :", "∧")),
    ("exact h.symm", 1.0, ("h :", "∨")),
    ("exact ⟨hpq h, hpr h⟩", 1.0, ("hpq :", "h :")),
    ("exact Nat.le_trans h₁ h₂", 1.0, ("h₁ :",)),
    ("rfl", 1.0, ("=",)),
    ("decide", 1.0, ("=",)),
    ("omega", 1.0, ("Nat",)),
    ("tauto!", 0.5, ()),  # not a Lean 4 tactic
    ("exact foo_bar h", 0.5, ("h :",)),  # no such lemma
]


class StandInPolicy:
    """Proposes up to `width` distinct tactics that fit the goals, scored by log-probability.

    Seeded, so every run proposes the same tactics; a real prover samples them from a model.
    """

    def __init__(self, seed: int, width: int) -> None:
        self.random = random.Random(seed)
        self.width = width

    def propose(self, goals: list[str]) -> list[tuple[str, float]]:
        text = "\n".join(goals)
        fitting = [(t, w) for t, w, needs in TACTICS if all(n in text for n in needs)]
        total = sum(weight for _, weight in fitting)
        chosen: dict[str, float] = {}
        while len(chosen) < min(self.width, len(fitting)):
            tactic, weight = self.random.choices(fitting, [w for _, w in fitting])[0]
            chosen[tactic] = math.log(weight / total)
        return list(chosen.items())


@dataclass(order=True)
class Node:
    cost: float  # minus the cumulative log-probability: lower is better
    order: int
    proof_state: int = field(compare=False)
    tactics: tuple[str, ...] = field(compare=False)
    goals: list[str] = field(compare=False)


@dataclass
class SearchResult:
    name: str
    proof: tuple[str, ...] | None = None
    expansions: int = 0
    steps: int = 0
    cancelled: int = 0
    seconds: float = 0.0
    rechecked: bool | None = None
    exhausted: bool = False  # every branch failed before the budget ran out


async def search(
    pool: LeanPool, name: str, statement: str, policy: StandInPolicy, budget: int
) -> SearchResult:
    result = SearchResult(name)
    started = time.monotonic()
    with pool.session() as session:
        opened = await session.async_run(Command(cmd=statement))
        if not isinstance(opened, CommandResponse) or not opened.sorries:
            return result
        root = opened.sorries[0]
        if root.proof_state is None:
            return result
        order = itertools.count()
        frontier = [Node(0.0, next(order), root.proof_state, (), [root.goal])]
        seen: set[tuple[str, ...]] = set()  # goal lists already queued: no duplicate branches
        while frontier and result.expansions < budget and result.proof is None:
            node = heapq.heappop(frontier)
            result.expansions += 1
            for child in await expand(session, node, policy, result, seen):
                child.order = next(order)
                heapq.heappush(frontier, child)
        result.exhausted = not frontier and result.proof is None
    if result.proof is not None:
        result.rechecked = await recheck(pool, statement, result.proof)
    result.seconds = time.monotonic() - started
    return result


async def expand(
    session: PoolSession,
    node: Node,
    policy: StandInPolicy,
    result: SearchResult,
    seen: set[tuple[str, ...]],
) -> list[Node]:
    """Run the proposed tactics on `node` at once; stop the siblings when one finishes the proof."""
    steps = {
        asyncio.ensure_future(
            session.async_run(ProofStep(proof_state=node.proof_state, tactic=tactic))
        ): (tactic, score)
        for tactic, score in policy.propose(node.goals)
    }
    children: list[Node] = []
    pending = set(steps)
    while pending:
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for step in done:
            result.steps += 1
            tactic, score = steps[step]
            try:
                response = step.result()
            except LeanPoolError:  # a timeout or crash on this branch: prune it
                continue
            if isinstance(response, LeanError) or not isinstance(response, ProofStepResponse):
                continue  # the tactic failed (unknown tactic, error in Lean)
            if response.has_errors() or response.proof_status.startswith("Error"):
                continue
            tactics = (*node.tactics, tactic)
            if response.proof_status == "Completed":
                result.proof = tactics
                for sibling in pending:  # found: the rest of this expansion is wasted work
                    sibling.cancel()
                result.cancelled += len(pending)
                await asyncio.gather(*pending, return_exceptions=True)
                return []
            goals = tuple(response.goals)
            if goals not in seen:
                seen.add(goals)
                cost = node.cost - score
                children.append(Node(cost, 0, response.proof_state, tactics, response.goals))
    return children


async def recheck(pool: LeanPool, statement: str, proof: tuple[str, ...]) -> bool:
    """Check the found proof as a whole theorem, in command mode, under the verdict policy:
    it must prove `statement` itself, with the standard axioms only."""
    body = "\n".join(f"  {tactic}" for tactic in proof)
    code = statement.replace("by sorry", "by\n" + body)
    verification = await pool.async_verify(code, formal_statement=statement)
    return verification.passed


async def run(pool: LeanPool, theorems: dict[str, str], budget: int, width: int) -> None:
    started = time.monotonic()
    results = await asyncio.gather(
        *(
            search(pool, name, statement, StandInPolicy(seed, width), budget)
            for seed, (name, statement) in enumerate(theorems.items())
        )
    )
    for item in results:
        if item.proof is None:
            outcome = "no proof: every branch failed" if item.exhausted else "budget spent"
        else:
            checked = "re-checked" if item.rechecked else "FAILED the re-check"
            outcome = f"proved ({checked}): " + "; ".join(item.proof)
        print(
            f"{item.name:<16} {item.expansions:>3} expansions, {item.steps:>3} steps, "
            f"{item.cancelled:>2} cancelled, {item.seconds:5.2f} s  {outcome}"
        )
    proved = sum(item.proof is not None for item in results)
    print(
        f"\n{proved}/{len(results)} proved; {sum(r.expansions for r in results)} expansions, "
        f"{sum(r.steps for r in results)} tactic steps, "
        f"{sum(r.cancelled for r in results)} cancelled, in {time.monotonic() - started:.2f} s"
    )


def main() -> None:
    args = parse_args(__doc__ or "")
    # The simulator closes any goal with its closing tactics (checking only arithmetic); the
    # policy proposes tactics that fit the goals, as a model would.
    config = example_config(args)
    theorems = dict(list(THEOREMS.items())[:5]) if args.fast else THEOREMS
    budget, width = (8, 4) if args.fast else (24, 5)
    with LeanPool(config, max_workers=args.workers) as pool:
        asyncio.run(run(pool, theorems, budget, width))


if __name__ == "__main__":
    main()
