"""What importing a header costs: real time on every import, real memory once per process.

The REPL re-imports the header of every env-less command (``processInput`` in the REPL's
REPL/Frontend.lean processes the header afresh when no ``env`` is given), so TIME is paid each
time; `.olean` files are memory-mapped and shared, so MEMORY is paid once per process and module,
in pages shared with every other process that imports the same module (`ImportCosts`).
A cost given for `Mathlib` also applies to `Mathlib.Data.Real.Basic`; the most specific entry
wins, each entry is paid once per header (eleven `Mathlib.*` lines cost one `Mathlib` import), and
modules no entry matches cost `--import-default` each.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from leanpool.testing._effects import hold_memory, map_module, sleep_ms

__all__ = ["ImportCost", "ImportCosts", "parse_import_cost", "parse_import_spec"]

_COST = re.compile(r"\s*(\d+)\s*(?:ms)?\s*,\s*(\d+)\s*(?:mb)?\s*", re.IGNORECASE)


@dataclass(frozen=True)
class ImportCost:
    milliseconds: int = 0
    megabytes: int = 0

    def flag_text(self) -> str:
        return f"{self.milliseconds}ms,{self.megabytes}mb"


def parse_import_cost(text: str) -> ImportCost:
    """`3000ms,2000mb` (units optional) -> ImportCost(3000, 2000)."""
    match = _COST.fullmatch(text)
    if match is None:
        raise ValueError(f"import cost must look like 3000ms,2000mb, got {text!r}")
    return ImportCost(int(match.group(1)), int(match.group(2)))


def parse_import_spec(text: str) -> tuple[str, ImportCost]:
    """`Mathlib=3000ms,2000mb` -> ("Mathlib", ImportCost(3000, 2000))."""
    module, equals, cost = text.partition("=")
    if not equals or not module.strip():
        raise ValueError(f"--import wants MODULE=TIMEms,MEMmb, got {text!r}")
    return module.strip(), parse_import_cost(cost)


class ImportCosts:
    """Pays for headers; remembers which memory this process already holds.

    An entry's memory is the data of one module file in `module_dir`, mapped as Lean maps an
    ``.olean`` and shared by every simulator on the machine (`effects.map_module`); with
    `private_copy` (or no `module_dir`), private memory of this process.
    """

    def __init__(
        self,
        costs: Mapping[str, ImportCost],
        default: ImportCost,
        module_dir: str | None = None,
        private_copy: bool = False,
    ) -> None:
        self._costs = dict(costs)
        self._default = default
        self._memory_paid: set[str] = set()
        self._module_dir = module_dir
        self._private_copy = private_copy

    def _entry(self, module: str) -> tuple[str, ImportCost]:
        parts = module.split(".")
        for length in range(len(parts), 0, -1):
            prefix = ".".join(parts[:length])
            if prefix in self._costs:
                return prefix, self._costs[prefix]
        return module, self._default

    def pay(self, modules: Iterable[str]) -> None:
        entries = dict(self._entry(module) for module in modules)
        sleep_ms(sum(cost.milliseconds for cost in entries.values()))
        for key, cost in entries.items():
            if key not in self._memory_paid and cost.megabytes > 0:
                self._memory_paid.add(key)
                if self._module_dir is None:
                    hold_memory(cost.megabytes)
                else:
                    map_module(self._module_dir, key, cost.megabytes, self._private_copy)
