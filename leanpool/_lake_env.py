"""The environment ``lake env`` gives a REPL, captured once so servers start the binary directly.

Why: ``lake env repl`` per server costs a Lake start-up (seconds in a Mathlib project), an extra
process layer between us and the REPL, and concurrent Lake runs in one project race on
``.lake`` files. The REPL only needs the variables Lake sets (``LEAN_PATH``, ``LEAN_SYSROOT``, ...:
its README says the ``lake env`` prefix is there "so that the REPL can find needed imports", and
REPL/Main.lean's ``main`` builds its search path from them), so we ask Lake once.

How: ``lake env <this python> -c <print os.environ as JSON>`` in the working directory. It relies
only on ``lake env CMD ARGS`` running CMD in Lake's environment (documented, and what the REPL
README uses), not on the output format of ``lake env`` without arguments, and it sees every
variable Lake sets, whatever the Lake version. Variables that differ from the environment Lake
was started with are kept; for path lists (``PATH``, ``LD_LIBRARY_PATH``) only the entries Lake
put in front are kept, so the parent's own PATH of the day is used at spawn. If Lake did not set
``LEAN_SYSROOT`` (older Lakes), ``lake env lean --print-prefix`` supplies it: without it the
REPL runs ``lean --print-prefix`` for every command.

The result is cached on disk, keyed by the directory and the files that determine it
(``lean-toolchain``, lakefiles, ``lake-manifest.json``), and trusted only while its sysroot
still exists.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leanpool._errors import LeanSetupError
from leanpool._setup import SetupTools, read_json, short_hash, step_lock, write_json_atomic

__all__ = ["LakeEnvironment", "capture_lake_env"]

_FORMAT = 1
_MARK = "<<leanpool-lake-env>>"
_PRINT_ENVIRONMENT = (
    f"import json, os; print({_MARK!r} + json.dumps(dict(os.environ)) + {_MARK!r}, flush=True)"
)
_KEY_FILES = ("lean-toolchain", "lakefile.lean", "lakefile.toml", "lake-manifest.json")
_PATH_LISTS = frozenset({"PATH", "LD_LIBRARY_PATH", "DYLD_LIBRARY_PATH"})
_IGNORED = frozenset({"_", "PWD", "OLDPWD", "SHLVL"})


@dataclass(frozen=True)
class LakeEnvironment:
    """What Lake adds to an environment: values it sets, and entries it puts before path lists."""

    values: dict[str, str] = field(default_factory=dict)
    prepended: dict[str, list[str]] = field(default_factory=dict)

    def on_top_of(self, base: Mapping[str, str]) -> dict[str, str]:
        """The variables to set on top of `base` to reproduce Lake's environment."""
        env = dict(self.values)
        for name, entries in self.prepended.items():
            inherited = base.get(name, "")
            env[name] = os.pathsep.join([*entries, inherited] if inherited else entries)
        return env

    def sysroot(self, base: Mapping[str, str]) -> str | None:
        return self.values.get("LEAN_SYSROOT") or base.get("LEAN_SYSROOT")

    @classmethod
    def difference(cls, before: Mapping[str, str], after: Mapping[str, str]) -> LakeEnvironment:
        values: dict[str, str] = {}
        prepended: dict[str, list[str]] = {}
        for name, value in after.items():
            if name in _IGNORED or before.get(name) == value:
                continue
            old = before.get(name, "")
            if name in _PATH_LISTS and old and value.endswith(os.pathsep + old):
                prepended[name] = [e for e in value[: -len(old) - 1].split(os.pathsep) if e]
            else:
                values[name] = value
        return cls(values, prepended)

    def to_json(self) -> dict[str, Any]:
        return {"format": _FORMAT, "values": self.values, "prepended": self.prepended}

    @classmethod
    def from_json(cls, data: Any) -> LakeEnvironment | None:
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            return None
        values, prepended = data.get("values"), data.get("prepended")
        if not isinstance(values, dict) or not isinstance(prepended, dict):
            return None
        return cls(
            {str(k): str(v) for k, v in values.items()},
            {str(k): [str(e) for e in v] for k, v in prepended.items() if isinstance(v, list)},
        )


def capture_lake_env(tools: SetupTools, workdir: Path) -> dict[str, str]:
    """The variables Lake sets for `workdir`, to be set on top of our environment at spawn."""
    cache_file = tools.cache_dir / "lake-env" / f"{_cache_key(tools, workdir)}.json"
    captured = _trusted(read_json(cache_file))
    if captured is None:
        with step_lock(
            cache_file.with_suffix(".lock"),
            f"capture the Lean environment of {workdir}",
            tools.reporter,
            tools.timeout,
        ):
            captured = _trusted(read_json(cache_file))
            if captured is None:
                captured = _capture(tools, workdir)
                write_json_atomic(cache_file, captured.to_json())
    else:
        tools.reporter.note(f"Lean environment of {workdir}: cached")
    return captured.on_top_of(os.environ)


def _capture(tools: SetupTools, workdir: Path) -> LakeEnvironment:
    step = "Capture the Lean environment (lake env)"
    before = tools.base_env()
    python = sys.executable or "python3"  # empty when embedded; any Python can print os.environ
    output = tools.run_lake(step, "env", python, "-c", _PRINT_ENVIRONMENT, cwd=workdir)
    parts = output.split(_MARK)
    try:
        after = json.loads(parts[1]) if len(parts) >= 3 else None
    except ValueError:
        after = None
    if not isinstance(after, dict):
        raise LeanSetupError.from_step(
            step,
            [str(tools.lake()), "env", python, "-c", "<print the environment>"],
            0,
            output,
            hint="lake env ran but the environment it passed on could not be read.",
        )
    captured = LakeEnvironment.difference(before, after)
    if captured.sysroot(before) is None:
        sysroot = _lean_sysroot(tools, workdir)
        if sysroot is not None:
            captured.values["LEAN_SYSROOT"] = sysroot
    return captured


def _lean_sysroot(tools: SetupTools, workdir: Path) -> str | None:
    """``lake env lean --print-prefix``, or None when no ``lean`` answers.

    The sysroot only spares the REPL a ``lean --print-prefix`` per command; a Lake without Lean
    (a stand-in REPL behind a fake ``lake``, as LeanInteract allows) must still work. Such a
    capture is not trusted later (`_trusted`), so it is taken again on the next setup.
    """
    step = "Find the Lean sysroot (lake env lean --print-prefix)"
    try:
        prefix = tools.run_lake(step, "env", "lean", "--print-prefix", cwd=workdir)
    except LeanSetupError as exc:
        tools.reporter.note(f"Lean sysroot unknown ({exc.step} failed); the REPL finds it.")
        return None
    lines = [line.strip() for line in prefix.splitlines() if line.strip()]
    if not lines:
        tools.reporter.note("No Lean sysroot: lean --print-prefix printed nothing.")
        return None
    return lines[-1]


def _trusted(data: Any) -> LakeEnvironment | None:
    captured = LakeEnvironment.from_json(data)
    if captured is None:
        return None
    sysroot = captured.sysroot(os.environ)
    return captured if sysroot and Path(sysroot).is_dir() else None


def _cache_key(tools: SetupTools, workdir: Path) -> str:
    parts = [str(_FORMAT), str(workdir.resolve()), str(tools.lake())]
    for name in _KEY_FILES:
        path = workdir / name
        try:
            parts.append(f"{name}:{path.read_text(encoding='utf-8')}")
        except OSError:
            parts.append(f"{name}:-")
    return short_hash(*parts)
