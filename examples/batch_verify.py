"""Batch verification: check a JSONL dataset of proofs with `LeanPool.batch`.

Each line of ``data/theorems.jsonl`` is ``{"id", "header"?, "code", "expected"}``: Lean 4 /
Mathlib-style theorems written for leanpool, about half with right proofs and half with wrong ones
(false arithmetic, ``sorry``, unknown tactics, lemmas that do not exist). The pool imports each
header once per worker and runs the bodies on top of it (header affinity).

    python examples/batch_verify.py                       # real Lean if installed, else simulator
    python examples/batch_verify.py --project ~/mathlib-project   # real Lean with Mathlib
    leanpool verify examples/data/theorems.jsonl          # the same job from the command line

Verdicts: ``passed`` (no error, no sorry), ``lean_error`` (Lean rejected it) or ``fault`` (no
answer: timeout, crash, memory limit). Only ``passed`` means verified.
"""

from __future__ import annotations

import json
import os
from collections import Counter

from _support import DATA_DIR, example_config, parse_args

from leanpool import LeanPool


def load_dataset(path: str) -> list[dict[str, str]]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def main() -> None:
    args = parse_args(__doc__ or "")
    # On the simulator, importing Mathlib costs time and memory as it would (scaled down).
    cost = "200ms,50mb" if args.fast else "2000ms,300mb"
    config = example_config(args, imports={"Mathlib": cost})
    items = load_dataset(os.path.join(DATA_DIR, "theorems.jsonl"))
    if args.fast:
        items = items[:16]

    with LeanPool(config, max_workers=args.workers, timeout=60) as pool:
        with pool.batch(progress=True) as batch:
            for item in items:
                header = item.get("header")
                code = f"{header}\n\n{item['code']}" if header else item["code"]
                batch.submit(code, id=item["id"])
        summary = batch.summary()
        stats = pool.stats()

    print(summary)
    print(f"header imports: {stats.header_imports} (one per header per worker, not per proof)")
    expected = {item["id"]: item.get("expected") for item in items}
    agree = Counter(result.verdict == expected[result.id] for result in batch.results)
    print(f"agreement with the dataset's expected verdicts: {agree[True]}/{len(items)}")
    for result in batch.results:
        if result.verdict != "passed":
            errors = [
                m.data.splitlines()[0]
                for m in getattr(result.result, "messages", [])
                if m.severity == "error"
            ]
            reason = errors[0] if errors else ", ".join(result.reasons)
            print(f"  {result.verdict:<10} {result.id}: {reason}")


if __name__ == "__main__":
    main()
