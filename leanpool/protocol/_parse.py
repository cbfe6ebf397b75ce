"""Turn wire JSON into the right request or response model, as the REPL classifies it.

Classification is by keys first (a few dict lookups), then exactly one model validates; this runs
for every request and response, so no shape is validated speculatively.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import ValidationError

from leanpool._errors import ProtocolError, RequestError
from leanpool._leanjson import loads_deep
from leanpool.protocol._requests import (
    BaseREPLQuery,
    Command,
    FileCommand,
    PickleEnvironment,
    PickleProofState,
    ProofStep,
    UnpickleEnvironment,
    UnpickleProofState,
)
from leanpool.protocol._responses import CommandResponse, LeanError, ProofStepResponse

__all__ = ["REQUEST_SHAPES", "parse_request", "parse_response", "response_class_for"]

# The REPL tries these shapes in this order; the first that decodes wins (REPL/Main.lean `parse`).
# Each: (model, wire keys that must be present and non-null, optional wire keys it decodes).
_COMMAND_OPTIONAL = ("env", "allTactics", "rootGoals", "infotree")
REQUEST_SHAPES: tuple[tuple[type[BaseREPLQuery], tuple[str, ...], tuple[str, ...]], ...] = (
    (ProofStep, ("proofState", "tactic"), ()),
    (PickleEnvironment, ("env", "pickleTo"), ()),
    (UnpickleEnvironment, ("unpickleEnvFrom",), ()),
    (PickleProofState, ("proofState", "pickleTo"), ()),
    (UnpickleProofState, ("unpickleProofStateFrom",), ("env",)),
    (Command, ("cmd",), _COMMAND_OPTIONAL),
    (FileCommand, ("path",), _COMMAND_OPTIONAL),
)

_SHAPES_HELP = (
    "a request needs cmd (Command), path (FileCommand), proofState+tactic (ProofStep), "
    "env+pickleTo (PickleEnvironment), unpickleEnvFrom (UnpickleEnvironment), "
    "proofState+pickleTo (PickleProofState) or unpickleProofStateFrom (UnpickleProofState)"
)

_PROOF_STATE_REQUESTS = (ProofStep, PickleProofState, UnpickleProofState)
_COMMAND_REQUESTS = (Command, FileCommand, PickleEnvironment, UnpickleEnvironment)

Response = CommandResponse | ProofStepResponse | LeanError

_DATA_PREVIEW = 300  # bytes of offending data kept in errors
_LONE_SURROGATE = "contains a lone surrogate, which UTF-8 (and so the REPL) cannot carry"


def parse_request(
    data: str | bytes | bytearray | Mapping[str, Any] | BaseREPLQuery,
) -> BaseREPLQuery:
    """The request model the REPL would read `data` (wire JSON text or a decoded object) as.

    Keys of other request kinds are kept as unknown keys and ignored, as the REPL does (e.g.
    ``{"cmd": .., "env": 0, "pickleTo": ..}`` is a `PickleEnvironment`). Wire names only: Python
    field names such as ``proof_state`` are unknown keys here. Negative ids are accepted (they
    are session ids); `encode_request` refuses them. Raises `RequestError` naming the problem.
    """
    if isinstance(data, BaseREPLQuery):
        return data
    obj = (
        _decode_json(data, RequestError, "Request")
        if isinstance(data, (str, bytes, bytearray))
        else data
    )
    if not isinstance(obj, Mapping):
        raise RequestError(
            f"A request must be a JSON object, got {type(obj).__name__}: {_preview(obj)}",
            data=_preview_bytes(obj),
        )
    first_failure: tuple[type[BaseREPLQuery], ValidationError] | None = None
    for model, required, _ in REQUEST_SHAPES:
        if all(obj.get(key) is not None for key in required):
            try:
                # strict: the REPL reads "1" as no number at all (and dies); models are lax
                return model.model_validate(
                    _as_dict(obj), strict=True, by_alias=True, by_name=False
                )
            except ValidationError as exc:
                first_failure = first_failure or (model, exc)
    if first_failure is not None:
        failed_model, failure = first_failure
        raise RequestError(
            f"Invalid {failed_model.__name__} request: {_describe(failure)}. "
            f"Request: {_preview(obj)}",
            data=_preview_bytes(obj),
        )
    keys = ", ".join(sorted(map(str, obj))) or "none"
    raise RequestError(
        f"The REPL cannot read this request: {_SHAPES_HELP} (keys with non-null values); "
        f"it has keys: {keys}. Request: {_preview(obj)}",
        data=_preview_bytes(obj),
    )


def response_class_for(
    request: BaseREPLQuery,
) -> type[CommandResponse] | type[ProofStepResponse]:
    """The response model that answers `request` (besides a `LeanError`)."""
    if isinstance(request, _PROOF_STATE_REQUESTS):
        return ProofStepResponse
    if isinstance(request, _COMMAND_REQUESTS):
        return CommandResponse
    raise RequestError(f"Not a REPL request kind: {type(request).__name__}.")


def parse_response(
    data: str | bytes | bytearray | Mapping[str, Any],
    request: BaseREPLQuery | Mapping[str, Any] | None = None,
) -> Response:
    """The response model for `data` (wire JSON text or a decoded object), told apart by its keys.

    Only ``message`` → `LeanError`; ``proofState`` and ``goals`` → `ProofStepResponse`; ``env`` →
    `CommandResponse` (the response structures of the REPL's REPL/JSON.lean). With `request`,
    the answer must also be of the kind that request gets. Raises `ProtocolError` (with `.data`)
    for anything else.
    """
    obj = (
        _decode_json(data, ProtocolError, "Response")
        if isinstance(data, (str, bytes, bytearray))
        else data
    )
    if not isinstance(obj, Mapping):
        raise ProtocolError(
            f"A REPL response must be a JSON object, got {type(obj).__name__}: {_preview(obj)}",
            data=_preview_bytes(obj),
        )
    model: type[CommandResponse] | type[ProofStepResponse] | type[LeanError]
    if "message" in obj and len(obj) == 1:
        model = LeanError
    elif "proofState" in obj and "goals" in obj:
        model = ProofStepResponse
    elif "env" in obj:
        model = CommandResponse
    else:
        keys = ", ".join(sorted(map(str, obj))) or "none"
        raise ProtocolError(
            "Not a REPL response: expected only 'message' (error), 'env' (command) or "
            f"'proofState' and 'goals' (proof step); got keys: {keys}. Data: {_preview(obj)}",
            data=_preview_bytes(obj),
        )
    if request is not None and model is not LeanError:
        if not isinstance(request, BaseREPLQuery):
            request = parse_request(request)
        expected = response_class_for(request)
        if model is not expected:
            raise ProtocolError(
                f"A {type(request).__name__} request is answered by a {expected.__name__}, but "
                f"the REPL sent a {model.__name__}: {_preview(obj)}",
                data=_preview_bytes(obj),
            )
    try:
        return model.model_validate(_as_dict(obj), strict=True, by_alias=True, by_name=False)
    except ValidationError as exc:
        raise ProtocolError(
            f"Malformed {model.__name__} from the REPL: {_describe(exc)}. Data: {_preview(obj)}",
            data=_preview_bytes(obj),
        ) from None


def _as_dict(obj: Mapping[str, Any]) -> dict[str, Any]:
    return obj if isinstance(obj, dict) else dict(obj)


def _decode_json(
    data: str | bytes | bytearray, error: type[RequestError] | type[ProtocolError], what: str
) -> Any:
    try:
        return loads_deep(data.decode("utf-8") if not isinstance(data, str) else data)
    except UnicodeDecodeError as exc:
        raise error(
            f"{what} is not valid UTF-8 ({exc.reason} at byte {exc.start}): {_preview(data)}",
            data=_preview_bytes(data),
        ) from None
    except json.JSONDecodeError as exc:  # any depth decodes (loads_deep is iterative)
        raise error(
            f"{what} is not valid JSON ({exc}): {_preview(data)}", data=_preview_bytes(data)
        ) from None


def _describe(exc: ValidationError) -> str:
    """Pydantic's errors as ``key: problem (got value)``, keyed by wire names."""
    parts = []
    for err in exc.errors(include_url=False):
        location = _location(err["loc"])
        got = "" if err["type"] == "missing" else f" (got {_preview(err['input'], 60)})"
        problem = _LONE_SURROGATE if err["type"] == "string_unicode" else err["msg"]
        parts.append(f"{location}: {problem}{got}")
    shown = parts[:5]
    if len(parts) > len(shown):
        shown.append(f"... and {len(parts) - len(shown)} more")
    return "; ".join(shown)


def _preview(value: Any, limit: int = _DATA_PREVIEW) -> str:
    """A short, single-line rendering of offending data for error messages."""
    if isinstance(value, (bytes, bytearray)):
        text = repr(bytes(value[: limit + 1]))
    elif isinstance(value, str):
        text = repr(value[: limit + 1])
    else:
        text = _json_prefix(value, limit + 1)
    # Escaped so the message itself stays encodable (a lone surrogate would break logging).
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[:limit] + "…"


def _location(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as ``key.0.key``; its middle elided when very deep."""
    parts = [str(part) for part in loc]
    if len(parts) > 12:
        parts = [*parts[:4], f"…({len(parts) - 8} more)…", *parts[-4:]]
    return ".".join(parts) or "(object)"


class _Text(str):
    """JSON text already written (as opposed to a string value)."""


def _json_prefix(value: Any, limit: int) -> str:
    """At least the first `limit` characters of ``json.dumps(value, ensure_ascii=False,
    default=repr)`` (whole if shorter), written without recursion and without the rest: the
    offending data can be megabytes, or nested deeper than the C encoder goes."""
    out: list[str] = []
    size = 0
    pending: list[Iterator[Any]] = [iter((value,))]
    while pending and size < limit:
        item = next(pending[-1], _DONE)
        if item is _DONE:
            pending.pop()
            continue
        if type(item) is _Text:
            text: str = item
        elif isinstance(item, Mapping):
            pending.append(_object_parts(item))
            continue
        elif isinstance(item, (list, tuple)):
            pending.append(_array_parts(item))
            continue
        else:
            text = json.dumps(item, ensure_ascii=False, default=repr)
        out.append(text)
        size += len(text)
    return "".join(out)


_DONE = object()


def _object_parts(value: Mapping[Any, Any]) -> Iterator[Any]:
    yield _Text("{")
    for index, (key, item) in enumerate(value.items()):
        shown = key if isinstance(key, str) else json.dumps(key, default=repr).strip('"')
        yield _Text((", " if index else "") + json.dumps(shown, ensure_ascii=False) + ": ")
        yield item
    yield _Text("}")


def _array_parts(value: list[Any] | tuple[Any, ...]) -> Iterator[Any]:
    yield _Text("[")
    for index, item in enumerate(value):
        if index:
            yield _Text(", ")
        yield item
    yield _Text("]")


def _preview_bytes(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value[:_DATA_PREVIEW])
    if isinstance(value, str):
        return value[:_DATA_PREVIEW].encode("utf-8", "backslashreplace")
    return _preview(value).encode("utf-8")[:_DATA_PREVIEW]
