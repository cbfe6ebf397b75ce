"""The package surface (exports, LeanInteract's module paths and names, cheap import) and the
release: one list of supported Pythons, one version, a wheel that installs and runs on its own."""

from __future__ import annotations

import ast
import email
import importlib
import importlib.util
import inspect
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import tarfile
import types
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import leanpool
from leanpool._exports import EXPORTS

LEANINTERACT_ALL = [  # lean_interact.__all__ (src/lean_interact/__init__.py, 0.11)
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
_REQUESTS = [
    "BaseREPLQuery",
    "Command",
    "FileCommand",
    "PickleEnvironment",
    "PickleProofState",
    "ProofStep",
    "UnpickleEnvironment",
    "UnpickleProofState",
]
_RESPONSES = ["BaseREPLResponse", "CommandResponse", "LeanError", "ProofStepResponse"]
# Every public name of each module of lean-interact 0.11.6 (its own definitions and what it
# imports from its other modules, which code imports from there too; not stdlib or third-party
# imports), read from the installed package: test_module_namespaces_match_leaninteract re-reads
# them when it is installed.
LEANINTERACT_MODULES: dict[str, list[str]] = {
    "interface": [
        *_REQUESTS, *_RESPONSES, "BaseNode", "BinderView", "CommandNode", "CommandOptions",
        "DataValue", "DeclBinders", "DeclModifiers", "DeclSignature", "DeclType", "DeclValue",
        "DeclarationInfo", "DocString", "InfoTree", "InfoTreeOptions", "Message", "Name", "Node",
        "OpenDecl", "Options", "Pos", "REPLBaseModel", "Range", "ScopeInfo", "Sorry", "Syntax",
        "Tactic", "TacticNode", "TermNode", "message_intersects_code",
    ],
    "server": [
        *_REQUESTS, *_RESPONSES, "AutoLeanServer", "BaseSessionCache", "DEFAULT_TIMEOUT",
        "LeanREPLConfig", "LeanServer", "ReplaySessionCache", "get_total_memory_usage", "logger",
    ],
    "config": [
        "BaseProject", "DEFAULT_CACHE_DIR", "DEFAULT_REPL_GIT_URL", "DEFAULT_REPL_VERSION",
        "LeanREPLConfig", "check_lake", "get_project_lean_version", "logger", "parse_lean_version",
    ],
    "project": [
        "BaseProject", "BaseTempProject", "DEFAULT_CACHE_DIR", "GitProject", "LeanRequire",
        "LocalProject", "TempRequireProject", "TemporaryProject", "check_lake",
        "get_project_lean_version", "logger",
    ],
    "sessioncache": [
        *_REQUESTS, *_RESPONSES, "BaseSessionCache", "PickleSessionCache", "PickleSessionState",
        "ReplaySessionCache", "ReplaySessionState", "ReplayableRequest", "SessionState",
    ],
    "pool": [
        *_REQUESTS, *_RESPONSES, "AutoLeanServer", "DEFAULT_TIMEOUT", "LeanREPLConfig",
        "LeanServerPool", "ReplaySessionCache",
    ],
    "utils": [
        "DEFAULT_CACHE_DIR", "DEFAULT_REPL_GIT_URL", "DEFAULT_REPL_VERSION", "ROOT_DIR",
        "check_lake", "check_windows_long_paths", "clean_last_theorem_string",
        "clean_theorem_string", "clear_cache", "compress_newlines", "extract_last_theorem",
        "get_project_lean_version", "get_total_memory_usage", "handler", "indent_code",
        "install_lean", "lean_comments_ranges", "logger", "parse_lean_version",
        "remove_lean_comments", "split_conclusion", "split_implementation",
    ],
}  # fmt: skip
# What `import lean_interact` leaves as attributes of the package: its __all__ and its modules.
LEANINTERACT_PACKAGE = [*LEANINTERACT_ALL, *LEANINTERACT_MODULES]


def _type_checking_imports() -> list[tuple[str, str, str | None]]:
    """(module, name, alias) of each import under `if TYPE_CHECKING:` in leanpool/__init__.py."""
    tree = ast.parse((ROOT / "leanpool" / "__init__.py").read_text(encoding="utf-8"))
    [block] = [
        node
        for node in tree.body
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
    ]
    imports: list[tuple[str, str, str | None]] = []
    for node in block.body:
        assert isinstance(node, ast.ImportFrom) and node.module, ast.unparse(node)
        imports.extend((node.module, alias.name, alias.asname) for alias in node.names)
    return imports


def test_one_export_list() -> None:
    """`_EXPORTS` is the list; `__all__` is built from it at run time, and the imports type
    checkers read say the same, each as an explicit re-export (`X as X`): mypy --strict and
    pyright see `leanpool.LeanPool` with no static `__all__`."""
    assert vars(leanpool)["_EXPORTS"] is EXPORTS
    all_names = vars(leanpool)["__all__"]
    assert all_names == ["__version__", *EXPORTS]
    assert len(set(all_names)) == len(all_names)
    imports = _type_checking_imports()
    assert [(name, alias) for _, name, alias in imports if alias != name] == []
    assert len({name for _, name, _ in imports}) == len(imports)  # no name imported twice
    assert {name: module for module, name, _ in imports} == EXPORTS
    # No `__all__` that tools reading the source (mypy, pyright, griffe) could see: a literal one
    # would be a second copy, one built from the list would be read as a partial list.
    tree = ast.parse((ROOT / "leanpool" / "__init__.py").read_text(encoding="utf-8"))
    targets = [
        target
        for node in ast.walk(tree)
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign))
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
    ]
    assert [t for t in targets if isinstance(t, ast.Name) and t.id == "__all__"] == []
    for name, module in EXPORTS.items():
        assert getattr(importlib.import_module(module), name) is getattr(leanpool, name), name
    protocol = importlib.import_module("leanpool.protocol")
    assert {n for n, m in EXPORTS.items() if m == "leanpool.protocol"} <= set(protocol.__all__)


def test_leaninteract_names_are_importable_from_leanpool() -> None:
    missing = [name for name in LEANINTERACT_ALL if not hasattr(leanpool, name)]
    assert not missing


def test_leaninteract_module_paths() -> None:
    for module, names in LEANINTERACT_MODULES.items():
        imported = importlib.import_module(f"leanpool.{module}")
        assert [n for n in names if not hasattr(imported, n)] == [], module


def test_submodules_are_attributes_after_a_bare_import() -> None:
    """As after `import lean_interact`, and without making `import leanpool` expensive."""
    names = sorted(LEANINTERACT_PACKAGE)
    code = (
        "import sys, leanpool\n"
        "heavy = sorted(m for m in ('pydantic', 'loky', 'rich') if m in sys.modules)\n"
        f"names = [n for n in {names!r} if not hasattr(leanpool, n)]\n"
        "print(heavy, names, leanpool.interface.CommandResponse.__name__,\n"
        "      leanpool.config.BaseProject is leanpool.project.BaseProject,\n"
        "      'sessioncache' in dir(leanpool))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[]", "[]", "CommandResponse", "True", "True"], out.stderr
    with pytest.raises(AttributeError, match="no attribute 'nosuchmodule'"):
        leanpool.nosuchmodule  # noqa: B018


def _public_names(module: Any) -> dict[str, Any]:
    """A LeanInteract module's public names: its own definitions, the other lean_interact
    modules and their definitions it imports, and its constants (not stdlib or third-party
    classes, functions and modules it imports, which are no part of its API)."""
    import inspect
    import types

    names: dict[str, Any] = {}
    for name, value in vars(module).items():
        if name.startswith("_") or name == "TYPE_CHECKING":
            continue
        if isinstance(value, types.ModuleType):
            if value.__name__.startswith("lean_interact"):
                names[name] = value
        elif inspect.isclass(value) or inspect.isroutine(value):
            if getattr(value, "__module__", "").startswith("lean_interact"):
                names[name] = value
        elif type(value).__module__ not in ("typing", "__future__", "typing_extensions"):
            names[name] = value  # constants, loggers, type aliases
    return names


def test_module_namespaces_match_leaninteract() -> None:
    """Import both libraries' modules and compare: every public name of each LeanInteract module
    exists at the same path in leanpool, is the same kind of thing (class, function, module,
    alias), and re-exports the object of the module LeanInteract took it from."""
    import inspect
    import types

    try:
        importlib.import_module("lean_interact")
    except ImportError:
        pytest.skip("lean_interact is not installed (pip install 'leanpool[bench]' installs it)")
    modules = {"": LEANINTERACT_PACKAGE, **LEANINTERACT_MODULES}
    for suffix, recorded in modules.items():
        theirs = _public_names(
            importlib.import_module("lean_interact" + "." * bool(suffix) + suffix)
        )
        assert sorted(theirs) == sorted(recorded), suffix  # the table above is LeanInteract's
        ours = importlib.import_module("leanpool" + "." * bool(suffix) + suffix)
        for name, value in theirs.items():
            mine = getattr(ours, name)
            where = f"leanpool{'.' * bool(suffix)}{suffix}.{name}"
            if isinstance(value, types.ModuleType):
                assert mine.__name__ == value.__name__.replace("lean_interact", "leanpool"), where
            elif inspect.isclass(value) or inspect.isroutine(value):
                assert (inspect.isclass(mine), mine.__name__) == (inspect.isclass(value), name)
                home = importlib.import_module(
                    value.__module__.replace("lean_interact", "leanpool")
                )
                assert getattr(home, name) is mine, where  # one object, as in LeanInteract
            elif isinstance(value, (types.UnionType, types.GenericAlias)):  # a type alias
                forms = (types.UnionType, types.GenericAlias, type)
                assert isinstance(mine, forms) or type(mine).__module__ == "typing", where


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


# --- the public `__module__` of what leanpool exports (leanpool/_exports.py says why) --------


def _home(module: str) -> str:
    """The `__module__` an export reports: its public module, `leanpool` for private ones."""
    return "leanpool" if module.split(".")[1].startswith("_") else module


def test_exports_report_their_public_module_however_first_reached() -> None:
    """Set where each class is defined: a process that imports only the private modules, and
    never reaches a name through `leanpool`, sees the same `__module__` (and reprs, tracebacks,
    help() that follow it); so do `leanpool.protocol`'s own names."""
    code = (
        "import importlib, json, pydoc, sys, traceback, types\n"
        "from leanpool._exports import EXPORTS\n"
        "seen = {}\n"
        "for name, module in EXPORTS.items():\n"
        "    seen[name] = getattr(importlib.import_module(module), name).__module__\n"
        "protocol = sys.modules['leanpool.protocol']\n"
        "for name in protocol.__all__:\n"
        "    value = getattr(protocol, name)\n"
        "    alias = isinstance(value, types.GenericAlias)  # a type on Python 3.10\n"
        "    if isinstance(value, (type, types.FunctionType)) and not alias:\n"
        "        seen['protocol.' + name] = value.__module__\n"
        "import leanpool\n"
        "cached = sorted(set(EXPORTS) & set(vars(leanpool)))\n"
        "from leanpool._errors import LeanTimeoutError\n"
        "from leanpool._pool import LeanPool\n"
        "try:\n"
        "    raise LeanTimeoutError('too slow')\n"
        "except LeanTimeoutError as exc:\n"
        "    shown = traceback.format_exception_only(type(exc), exc)[-1].strip()\n"
        "print(json.dumps({'modules': seen, 'cached': cached, 'traceback': shown,\n"
        "    'repr': repr(LeanPool), 'help': pydoc.render_doc(LeanPool).splitlines()[0]}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    report = json.loads(out.stdout)
    assert report["cached"] == []  # no name went through leanpool.__getattr__
    expected = {name: _home(module) for name, module in EXPORTS.items()}
    protocol = importlib.import_module("leanpool.protocol")
    expected |= {
        f"protocol.{name}": "leanpool.protocol"
        for name in protocol.__all__
        if not isinstance(getattr(protocol, name), types.GenericAlias)  # `Name = list[str]`
        and (
            inspect.isclass(getattr(protocol, name)) or inspect.isfunction(getattr(protocol, name))
        )
    }
    assert report["modules"] == expected
    assert report["traceback"] == "leanpool.LeanTimeoutError: too slow"
    assert report["repr"] == "<class 'leanpool.LeanPool'>"
    assert report["help"].endswith("class LeanPool in module leanpool")


def _pickled_samples(tmp_path: Path) -> list[Any]:
    """Every exported class and function, an instance of each exported exception (with
    details), and requests, responses, configs, projects and statistics."""
    from leanpool.testing import sim_config

    errors = [
        value("what happened", returncode=-6, extra=[1, 2])
        for value in (getattr(leanpool, name) for name in EXPORTS)
        if isinstance(value, type) and issubclass(value, leanpool.LeanPoolError)
    ]
    at = {"line": 1, "column": 0}
    stx = {"pp": "variable (x : Nat)", "range": {"synthetic": False, "start": at, "finish": at}}
    stx |= {"kind": "k", "argKinds": []}
    wire = {
        "env": 1,
        "messages": [{"severity": "error", "pos": at, "endPos": None, "data": "x"}],
        "sorries": [{"goal": "⊢ Nat", "proofState": 3}],
        "infotree": [
            {
                "kind": "CommandInfo",
                "node": {"elaborator": "e", "stx": stx},
                "children": [],
            }
        ],
    }
    config = sim_config()
    stats = leanpool.PoolStats(
        submitted=1, queued=0, running=0, done=1, ok=1, failed={}, cancelled=0,
        deduplicated=0, restarts={}, recycles={}, header_imports=0, session_moves=0,
        states_rebuilt=0, latency_p50=0.1, latency_p90=0.1, latency_p99=0.1,
    )  # fmt: skip
    return [
        *(getattr(leanpool, name) for name in EXPORTS),
        *errors,
        leanpool.Command(cmd="#eval 1", env=0, all_tactics=True),
        leanpool.ProofStep(tactic="rfl", proof_state=2),
        leanpool.parse_response(wire),
        leanpool.parse_response({"message": "Unknown environment."}),
        config,
        config.launch,
        leanpool.LocalProject(directory=str(tmp_path), auto_build=False),
        leanpool.BaseProject(directory=str(tmp_path), lake_path="/opt/lake"),
        leanpool.LeanRequire("mathlib", "https://e.invalid/mathlib4", "v4.19.0"),
        stats,
        leanpool.BatchSummary(total=2, passed=1, lean_error=1, fault=0),
    ]


def test_exports_pickle_by_their_public_path(tmp_path: Path) -> None:
    """Pickles name the public path (`leanpool.LeanTimeoutError`), and a process that imported
    nothing but `leanpool` (its `__getattr__` is lazy) loads them and pickles them back."""
    for name, module in EXPORTS.items():
        reference = pickle.dumps(getattr(leanpool, name), protocol=0)
        assert reference.startswith(f"c{_home(module)}\n{name}\n".encode()), reference
    samples = _pickled_samples(tmp_path)
    code = (
        "import pickle, sys, leanpool\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('leanpool'))\n"
        "objects = pickle.loads(sys.stdin.buffer.read())\n"
        "sys.stdout.buffer.write(pickle.dumps((loaded, objects)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], input=pickle.dumps(samples), capture_output=True, check=True
    )
    loaded, back = pickle.loads(out.stdout)
    assert loaded == ["leanpool", "leanpool._exports"]
    assert len(back) == len(samples)
    for sent, returned in zip(samples, back, strict=True):
        assert type(returned) is type(sent)
        if isinstance(sent, (type, types.FunctionType)):
            assert returned is sent
        elif isinstance(sent, BaseException):
            assert (str(returned), returned.returncode, returned.extra) == (str(sent), -6, [1, 2])
        elif isinstance(sent, leanpool.LeanREPLConfig):
            assert vars(returned) == vars(sent)
        else:
            assert returned == sent


def test_exceptions_from_loky_workers_arrive_as_the_public_classes() -> None:
    """A worker process raises each exported exception (and returns a model); the parent, which
    had imported only `leanpool` and loky, gets the same classes back with their details."""
    names = [name for name, module in EXPORTS.items() if module == "leanpool._errors"]
    code = (
        "import json, sys\n"
        "import loky\n"
        "import leanpool\n"
        "def work(name):\n"
        "    if name == 'model':\n"
        "        return leanpool.parse_response({'env': 0, 'sorries': [{'goal': 'g'}]})\n"
        "    raise getattr(leanpool, name)('from a worker', returncode=-9)\n"
        f"names = {names!r}\n"
        "before = 'leanpool._errors' in sys.modules or 'leanpool.protocol' in sys.modules\n"
        "report = {}\n"
        "with loky.ProcessPoolExecutor(max_workers=1) as pool:\n"
        "    model = pool.submit(work, 'model').result()\n"
        "    report['model'] = [type(model).__module__, type(model).__name__, model.env]\n"
        "    for name in names:\n"
        "        try:\n"
        "            pool.submit(work, name).result()\n"
        "        except Exception as exc:\n"
        "            cls = type(exc)\n"
        "            same = cls is getattr(leanpool, name)\n"
        "            report[name] = [cls.__module__, same, str(exc), exc.returncode]\n"
        "print(json.dumps({'before': before, 'report': report}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["before"] is False
    assert result["report"] == {
        "model": ["leanpool.protocol", "CommandResponse", 0],
        **{name: ["leanpool", True, "from a worker", -9] for name in names},
    }


_SCHEMAS = """
import json, sys
import leanpool._exports
if sys.argv[1] == "unmoved":
    leanpool._exports.publish = lambda name: None
import leanpool.protocol as protocol
from pydantic import BaseModel
models = {}
for name in protocol.__all__:
    value = getattr(protocol, name)
    if isinstance(value, type) and issubclass(value, BaseModel):
        models[name] = value
if sys.argv[1] == "rebuilt":
    for model in models.values():
        assert model.__pydantic_complete__ and model.model_rebuild(force=True)
    response = protocol.parse_response({"env": 0, "tactics": [], "sorries": [{"goal": "g"}]})
    assert response.sorries[0].goal == "g"
    assert protocol.Command.model_validate({"cmd": "x", "allTactics": True}).all_tactics
print(json.dumps({
    name: [model.model_json_schema(mode=mode) for mode in ("validation", "serialization")]
    for name, model in models.items()
}))
"""


def test_published_models_keep_their_schemas_rebuilds_and_validation() -> None:
    """Moving a model's `__module__` after pydantic built it changes no JSON schema (compared
    with a process where nothing moved, and one where every model was rebuilt after the move),
    and validation and a user's subclass with a forward reference still work."""
    from pydantic import BaseModel

    schemas = {}
    for mode in ("unmoved", "moved", "rebuilt"):
        out = subprocess.run(
            [sys.executable, "-c", _SCHEMAS, mode], capture_output=True, text=True, check=False
        )
        assert out.returncode == 0, out.stderr
        schemas[mode] = json.loads(out.stdout)
    assert schemas["moved"] == schemas["unmoved"] == schemas["rebuilt"]
    assert len(schemas["moved"]) > 30  # every model of leanpool.protocol

    assert leanpool.Command.__module__ == "leanpool.protocol"
    command = leanpool.Command.model_validate({"cmd": "#eval 1", "env": 0, "allTactics": True})
    assert command.to_repl_dict() == {"cmd": "#eval 1", "env": 0, "allTactics": True}
    response = leanpool.parse_response('{"env": 2, "sorries": [{"goal": "g", "proofState": 1}]}')
    assert isinstance(response, leanpool.CommandResponse) and response.sorries[0].proof_state == 1
    assert leanpool.CommandResponse.model_validate_json(response.model_dump_json()) == response

    class NotedCommand(leanpool.Command):  # a user's subclass, naming a model defined after it
        note: Note | None = None

    class Note(BaseModel):
        text: str

    NotedCommand.model_rebuild()
    noted = NotedCommand.model_validate({"cmd": "x", "note": {"text": "why"}})
    assert noted.note == Note(text="why") and noted.cmd == "x"
    assert "Note" in NotedCommand.model_json_schema()["$defs"]


# --- supported Pythons: one list, everywhere -------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]


def _pyproject() -> dict[str, Any]:
    toml = importlib.import_module("tomllib" if sys.version_info >= (3, 11) else "tomli")
    with (ROOT / "pyproject.toml").open("rb") as file:
        data: dict[str, Any] = toml.load(file)
    return data


def _noxfile_pythons() -> list[str]:
    tree = ast.parse((ROOT / "noxfile.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "PYTHONS" for target in node.targets
        ):
            pythons: list[str] = ast.literal_eval(node.value)
            return pythons
    raise AssertionError("noxfile.py defines no PYTHONS")


def _workflow_pythons(name: str) -> list[str]:
    text = (ROOT / ".github" / "workflows" / name).read_text(encoding="utf-8")
    match = re.search(r"^\s*python-version:\s*\[([^\]]*)\]", text, re.MULTILINE)
    assert match, f"{name} has no python-version matrix"
    return re.findall(r"\"(3\.\d+)\"", match.group(1))


def test_supported_pythons_agree_everywhere() -> None:
    pyproject = _pyproject()
    classified = [
        c.rsplit(" :: ", 1)[1]
        for c in pyproject["project"]["classifiers"]
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    ]
    assert classified == ["3.10", "3.11", "3.12", "3.13"]
    assert _noxfile_pythons() == classified
    assert _workflow_pythons("ci.yml") == classified
    lowest = classified[0]
    assert pyproject["project"]["requires-python"] == f">={lowest}"
    assert pyproject["tool"]["ruff"]["target-version"] == "py" + lowest.replace(".", "")
    assert pyproject["tool"]["mypy"]["python_version"] == lowest


def test_version_is_written_once() -> None:
    pyproject = _pyproject()
    assert "version" not in pyproject["project"]
    assert pyproject["project"]["dynamic"] == ["version"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "leanpool.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", leanpool.__version__)
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "## [Unreleased]" in changelog
    assert f"## [{leanpool.__version__}]" in changelog


def test_every_extra_has_its_install_line() -> None:
    page = (ROOT / "docs" / "platforms.md").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "`pip install leanpool`" in page and "`pip install leanpool`" in readme
    for extra in _pyproject()["project"]["optional-dependencies"]:
        assert f"`pip install 'leanpool[{extra}]'`" in page, extra
        assert f"`[{extra}]`" in readme, extra


# --- the release: build, check, install into a clean venv, run ------------------------------

# Not the package's business: with PYTHONDONTWRITEBYTECODE set (as on these machines), setuptools'
# install steps print "warning: ... byte-compiling is disabled". Every other warning fails the test.
_BUILD_ENV_DROP = ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH", "PYTHONHOME", "PYTHONWARNINGS")
_NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", ".nox", "build", "dist", "site", "*.egg-info", "__pycache__", "*.pyc",
    ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis", ".coverage*",
)  # fmt: skip


@dataclass(frozen=True)
class Release:
    sdist: Path
    wheel: Path
    build_log: str


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _BUILD_ENV_DROP}
    env.pop("VIRTUAL_ENV", None)
    env.update(extra)
    return env


def _require_release_tools() -> None:
    missing = [
        name
        for name in ("build", "twine", "check_wheel_contents")
        if not importlib.util.find_spec(name)
    ]
    if missing:
        pytest.skip(
            f"release tools not installed ({', '.join(missing)}): pip install 'leanpool[dev]'"
        )


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Release:
    """The sdist and the wheel, built as a release would be: from a copy of the working tree
    (no stale egg-info or build/ of the checkout can leak in), the wheel from the sdist."""
    _require_release_tools()
    base = tmp_path_factory.mktemp("release")
    source, dist = base / "source", base / "dist"
    shutil.copytree(ROOT, source, ignore=_NOT_SOURCE)
    done = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(dist), str(source)],
        cwd=base,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    log = done.stdout + done.stderr
    assert done.returncode == 0, log
    (sdist,) = dist.glob("*.tar.gz")
    (wheel,) = dist.glob("*.whl")
    return Release(sdist, wheel, log)


@pytest.mark.slow
def test_release_builds_without_warnings(release: Release) -> None:
    assert release.sdist.name == f"leanpool-{leanpool.__version__}.tar.gz"
    assert release.wheel.name == f"leanpool-{leanpool.__version__}-py3-none-any.whl"
    warnings = [line for line in release.build_log.splitlines() if "warn" in line.lower()]
    assert warnings == [], "\n".join(warnings)


@pytest.mark.slow
def test_release_passes_twine_and_check_wheel_contents(release: Release) -> None:
    twine = subprocess.run(
        [
            sys.executable,
            "-m",
            "twine",
            "check",
            "--strict",
            str(release.sdist),
            str(release.wheel),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert twine.returncode == 0, twine.stdout + twine.stderr
    assert twine.stdout.count("PASSED") == 2, twine.stdout
    contents = subprocess.run(
        [sys.executable, "-m", "check_wheel_contents", str(release.wheel)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert contents.returncode == 0, contents.stdout + contents.stderr
    assert f"{release.wheel}: OK" in contents.stdout


@pytest.mark.slow
def test_release_metadata(release: Release) -> None:
    with zipfile.ZipFile(release.wheel) as wheel:
        names = wheel.namelist()
        info = f"leanpool-{leanpool.__version__}.dist-info"
        metadata = email.message_from_bytes(wheel.read(f"{info}/METADATA"))
        license_text = wheel.read(f"{info}/licenses/LICENSE").decode()
    assert metadata["Version"] == leanpool.__version__
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata.get_all("License-File") == ["LICENSE"]
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text
    assert not [c for c in metadata.get_all("Classifier", []) if c.startswith("License ::")]
    urls = {u.split(", ", 1)[0] for u in metadata.get_all("Project-URL", [])}
    assert {"Documentation", "Source", "Issues"} <= urls
    assert "leanpool/py.typed" in names
    assert not [n for n in names if n.startswith(("tests/", "bench/", "examples/"))]
    with tarfile.open(release.sdist) as sdist:
        members = {m.name.split("/", 1)[1] for m in sdist.getmembers() if "/" in m.name}
    assert {
        "LICENSE",
        "README.md",
        "CHANGELOG.md",
        "pyproject.toml",
        "leanpool/py.typed",
    } <= members
    assert not [m for m in members if m.startswith("tests/")]  # MANIFEST.in says why


@pytest.mark.slow
def test_wheel_installs_into_a_clean_venv_and_runs(release: Release, tmp_path: Path) -> None:
    """From a fresh venv, a tmp working directory and no source tree on sys.path: `leanpool
    --version`, `doctor` and `verify --sim` on the example data. pip reuses its cache."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    bin_dir = venv / "bin"
    env = _clean_env(PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", COLUMNS="200")
    work = tmp_path / "work"
    work.mkdir()

    def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(args), cwd=work, env=env, capture_output=True, text=True, timeout=timeout
        )

    install = run(str(bin_dir / "python"), "-m", "pip", "install", "--quiet", str(release.wheel))
    assert install.returncode == 0, install.stdout + install.stderr

    where = run(
        str(bin_dir / "python"),
        "-c",
        "import importlib.metadata as m, leanpool, sys; "
        "print(leanpool.__file__); print(m.version('leanpool')); print(sys.path)",
    )
    assert where.returncode == 0, where.stderr
    module_file, installed_version, path = where.stdout.splitlines()
    assert Path(module_file).is_relative_to(venv), module_file
    assert installed_version == leanpool.__version__
    assert str(ROOT) not in path

    version = run(str(bin_dir / "leanpool"), "--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"leanpool {leanpool.__version__}"

    doctor = run(str(bin_dir / "leanpool"), "doctor")
    assert doctor.returncode in (0, 1), doctor.stdout + doctor.stderr  # 1: no Lean here
    assert "leanpool doctor" in doctor.stdout
    assert f"leanpool {leanpool.__version__}, Python" in doctor.stdout

    data = work / "theorems.jsonl"
    shutil.copyfile(ROOT / "examples" / "data" / "theorems.jsonl", data)
    items = len(data.read_text(encoding="utf-8").splitlines())
    verify = run(str(bin_dir / "leanpool"), "verify", "--sim", data.name, "-o", "results.jsonl")
    # The dataset holds wrong proofs on purpose: 1 (some failed) is the expected status.
    assert verify.returncode == 1, verify.stdout + verify.stderr
    shown = re.search(r"^\s*passed\s*│\s*(\d+)\s*│", verify.stdout, re.MULTILINE)
    assert shown, verify.stdout
    results = [json.loads(line) for line in (work / "results.jsonl").read_text().splitlines()]
    assert len(results) == items
    passed = sum(r["verdict"] == "passed" for r in results)
    assert int(shown.group(1)) == passed
    assert 0 < passed < items
