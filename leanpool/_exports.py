"""What `leanpool` exports: the one list, and the public `__module__` of what it names.

`EXPORTS` maps each public name of `leanpool` to the module it is imported from. At run time it
is the whole truth: `leanpool/__init__.py` imports each name lazily from here (PEP 562) and
builds `__all__` from it. Type checkers cannot run that, so `__init__.py` also imports every name
under `TYPE_CHECKING`, as `X as X` (an explicit re-export under mypy --strict and pyright, with
no static `__all__` needed); tests/test_package.py fails when those imports and this list differ.

`publish(__name__)`, the last line of every module this list names, gives the classes and
functions defined there the module their users import them from, as httpx and trio do: reprs,
tracebacks, `help()` and pickles say `leanpool.LeanTimeoutError`, not
`leanpool._errors.LeanTimeoutError`. The rule:

- a private module (`leanpool._pool`) publishes the names `EXPORTS` maps to it, as `leanpool`;
- a public package whose code lives in private submodules (`leanpool.protocol`) publishes its
  own `__all__` as itself, all of it, also the names `leanpool` re-exports:
  `leanpool.Command.__module__ == "leanpool.protocol"`, like `CommandNode`'s.

It is set where the class is defined, when its module is first imported, so it never depends on
how a name was first reached. Pickle finds every published name at its public path
(`leanpool.__getattr__` imports it on demand), also in the pool's worker processes. Pydantic is
unaffected: the models are complete (schemas built) before they move, and a forced rebuild or a
subclass finds what it needs.

The price, as for httpx and trio: what looks names up in `sys.modules[cls.__module__]` now looks
in the public module. `typing.get_type_hints(cls)` fails where a string annotation names
something only the private module imported (the protocol models' `JsonValue`, the projects'
`os` and `Literal`): pass the defining module's namespace as `globalns`, or read pydantic's
`model_fields` or `dataclasses.fields`. `inspect.getsource(cls)` looks in `__init__.py`.
"""

from __future__ import annotations

import sys
import types

# public name -> module that `leanpool.<name>` is imported from
EXPORTS: dict[str, str] = {
    # errors
    "LeanPoolError": "leanpool._errors",
    "RequestError": "leanpool._errors",
    "ProtocolError": "leanpool._errors",
    "LeanTimeoutError": "leanpool._errors",
    "LeanCrashError": "leanpool._errors",
    "WorkerCrashedError": "leanpool._errors",
    "LeanMemoryError": "leanpool._errors",
    "ServerNotRunningError": "leanpool._errors",
    "StateLostError": "leanpool._errors",
    "TruncatedResponseError": "leanpool._errors",
    "PoolShutdownError": "leanpool._errors",
    "LeanSetupError": "leanpool._errors",
    "PreflightError": "leanpool._preflight",
    "PreflightWarning": "leanpool._preflight",
    # config and projects
    "LeanREPLConfig": "leanpool._config",
    "ReplLaunch": "leanpool._config",
    "BaseProject": "leanpool._project",
    "LocalProject": "leanpool._project",
    "GitProject": "leanpool._project",
    "TemporaryProject": "leanpool._project",
    "TempRequireProject": "leanpool._project",
    "LeanRequire": "leanpool._project",
    # protocol
    "Command": "leanpool.protocol",
    "FileCommand": "leanpool.protocol",
    "ProofStep": "leanpool.protocol",
    "PickleEnvironment": "leanpool.protocol",
    "UnpickleEnvironment": "leanpool.protocol",
    "PickleProofState": "leanpool.protocol",
    "UnpickleProofState": "leanpool.protocol",
    "CommandResponse": "leanpool.protocol",
    "ProofStepResponse": "leanpool.protocol",
    "LeanError": "leanpool.protocol",
    "Message": "leanpool.protocol",
    "Pos": "leanpool.protocol",
    "Sorry": "leanpool.protocol",
    "Tactic": "leanpool.protocol",
    "InfoTree": "leanpool.protocol",
    "parse_request": "leanpool.protocol",
    "parse_response": "leanpool.protocol",
    "encode_request": "leanpool.protocol",
    "ResponseReader": "leanpool.protocol",
    # servers
    "LeanServer": "leanpool._server",
    "AutoLeanServer": "leanpool._auto_server",
    "BaseSessionCache": "leanpool._session_cache",
    "ReplaySessionCache": "leanpool._session_cache",
    "PickleSessionCache": "leanpool._session_cache",
    # pool
    "LeanPool": "leanpool._pool",
    "ray_backend": "leanpool._backends",
    "LeanServerPool": "leanpool._server_pool",
    "PoolSession": "leanpool._pool_session",
    "PoolStats": "leanpool._stats",
    "Batch": "leanpool._batch",
    "BatchSummary": "leanpool._batch",
    # telemetry
    "PoolMetrics": "leanpool._telemetry",
    "MetricsServer": "leanpool._telemetry",
    "metrics_registry": "leanpool._telemetry",
    "serve_metrics": "leanpool._telemetry",
    "JsonFormatter": "leanpool._telemetry",
    "enable_json_logs": "leanpool._telemetry",
}


def is_private(module_name: str) -> bool:
    """`leanpool._pool`, `leanpool._serve._app`: not a path users import from."""
    return any(part.startswith("_") for part in module_name.split(".")[1:])


def publish(module_name: str) -> None:
    """Give the public classes and functions defined in `module_name` (or, for a public
    package, in its submodules) their public `__module__`; see the module docstring."""
    module = sys.modules[module_name]
    if is_private(module_name):
        home = "leanpool"
        names = [name for name, where in EXPORTS.items() if where == module_name]
    else:
        home = module_name
        names = list(module.__all__)
    for name in names:
        value = getattr(module, name)
        if isinstance(value, types.GenericAlias) or not isinstance(
            value, (type, types.FunctionType)
        ):  # type aliases (`Node`; `Name = list[str]`, a type on Python 3.10) have no module
            continue
        defined_in = value.__module__
        if defined_in == module_name or defined_in.startswith(module_name + "."):
            value.__module__ = home
