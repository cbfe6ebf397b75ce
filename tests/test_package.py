"""The package surface: exports, LeanInteract's module paths and names, cheap import."""

from __future__ import annotations

import importlib
import subprocess
import sys

import leanpool

LEANINTERACT_ALL = [  # lean_interact.__all__ (leaninteract-api.md section 1)
    "LeanREPLConfig",
    "LeanServer",
    "AutoLeanServer",
    "LeanServerPool",
    "PickleSessionCache",
    "ReplaySessionCache",
    "LeanRequire",
    "GitProject",
    "LocalProject",
    "TemporaryProject",
    "TempRequireProject",
    "Command",
    "FileCommand",
    "ProofStep",
    "PickleEnvironment",
    "PickleProofState",
    "UnpickleEnvironment",
    "UnpickleProofState",
]
LEANINTERACT_MODULES = {
    "interface": ["CommandResponse", "ProofStepResponse", "LeanError", "Message", "Sorry", "Pos"],
    "server": ["LeanServer", "AutoLeanServer", "DEFAULT_TIMEOUT"],
    "config": ["LeanREPLConfig"],
    "project": [
        "LocalProject",
        "GitProject",
        "TemporaryProject",
        "TempRequireProject",
        "LeanRequire",
        "BaseProject",
    ],
    "sessioncache": ["ReplaySessionCache", "PickleSessionCache", "BaseSessionCache"],
    "pool": ["LeanServerPool"],
    "utils": ["DEFAULT_CACHE_DIR"],
}


def test_all_matches_the_lazy_exports() -> None:
    assert set(leanpool.__all__) - {"__version__"} == set(leanpool._EXPORTS)
    for name in leanpool.__all__:
        assert getattr(leanpool, name) is not None


def test_leaninteract_names_are_importable_from_leanpool() -> None:
    missing = [name for name in LEANINTERACT_ALL if not hasattr(leanpool, name)]
    assert not missing


def test_leaninteract_module_paths() -> None:
    for module, names in LEANINTERACT_MODULES.items():
        imported = importlib.import_module(f"leanpool.{module}")
        assert [n for n in names if not hasattr(imported, n)] == [], module


def test_importing_leanpool_is_cheap() -> None:
    code = (
        "import sys, leanpool\n"
        "print(sorted(m for m in ('pydantic', 'loky', 'rich') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_unknown_attribute_is_an_attribute_error() -> None:
    try:
        leanpool.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")
