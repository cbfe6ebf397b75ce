"""Testing without Lean: a REPL simulator and the config hook that plugs it in.

- `sim_command(**options)`: the command line that starts a simulator (`seed`, `fail_rate`,
  `imports={"Mathlib": (3000, 2000)}` in ms and MB, `import_default`, `startup_ms`,
  `pickle_ms` and `unpickle_ms` (CPU per pickle request), `closing_tactics`, `replay=[dirs]`,
  `lean_version` where Lean's outputs differ by release).
- `sim_config(**options)`: a `LeanREPLConfig` whose servers run that command through exactly the
  launch code real Lean uses; other keywords are `LeanREPLConfig` fields (`verbose`,
  `memory_hard_limit_mb`, ...).

This package stays light: the simulator itself imports it on every start-up.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from leanpool.testing._options import SimOptions

if TYPE_CHECKING:
    from leanpool._config import LeanREPLConfig

__all__ = ["SimOptions", "sim_command", "sim_config"]

_SIM_OPTIONS = frozenset(f.name for f in dataclasses.fields(SimOptions))


def sim_command(**options: Any) -> list[str]:
    """`[python, -m, leanpool.testing.simrepl, *flags]` for the given simulator options."""
    return SimOptions(**options).command_line()


def sim_config(**options: Any) -> LeanREPLConfig:
    """A config whose REPL is the simulator; non-simulator keywords go to `LeanREPLConfig`."""
    from leanpool._config import LeanREPLConfig

    simulator = {k: v for k, v in options.items() if k in _SIM_OPTIONS}
    config = {k: v for k, v in options.items() if k not in _SIM_OPTIONS}
    if "lean_version" in simulator:  # the config names its Lean release too
        config["lean_version"] = simulator["lean_version"]
    return LeanREPLConfig(repl_cmd=sim_command(**simulator), **config)
