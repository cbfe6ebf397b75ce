"""The Kimina Lean Server's HTTP API, on a `LeanPool`: request and response shapes exactly as
Kimina's server 2.0 writes them, so that its clients (`kimina-client`'s `KiminaClient` and
`AsyncKiminaClient`, the legacy `Lean4Client`) work unchanged.

- ``POST /api/check`` (and ``/api/check/``): ``{"snippets": [{"id", "code"}], "timeout": 30,
  "debug": false, "reuse": true, "infotree": null}`` → ``{"results": [{"id", "time",
  "response" | "error", "diagnostics"?}]}``, one per snippet, in request order, with exactly one
  of ``response`` (the REPL's JSON, passed through) and ``error``.
- ``POST /verify`` and ``/one_pass_verify_batch`` (legacy): ``{"codes": [{"custom_id",
  "proof" | "code"}], "timeout": 300, "infotree_type": null, "disable_cache": false}`` →
  ``{"results": [{"custom_id": "<as a string>", "response": {..., "time"} | "error"}]}``.
- ``GET /``, ``/health``, ``/health/``: ``{"status": "ok"}``, no key needed.

Where leanpool differs, on purpose:

- Every snippet gets its own result, whatever happens to the others: a crash, a timeout or a
  memory limit is that snippet's ``error`` (Kimina answers 500 for the whole batch, which its
  client then sends again, three times). Error texts keep Kimina's ``timed out`` wording, which
  the client's ``analyze()`` uses to tell timeouts from other server errors.
- A snippet with no text is an ``error`` (Kimina runs it and calls it valid).
- ``time`` is the seconds from the snippet's submission to its answer, waiting for a worker
  included; ``debug`` adds an empty ``diagnostics`` (per-worker memory and restarts are in
  ``/v1/stats`` and ``/metrics``).
- ``reuse`` and ``disable_cache`` change nothing: every snippet already runs in a fresh
  environment on top of its imported header, so no snippet sees another's declarations, and the
  header is imported once per worker (Kimina's ``reuse=false`` starts a REPL per snippet).
- Imports are not widened: ``import Mathlib.Tactic`` imports exactly that (Kimina replaces any
  ``import Mathlib.X`` with ``import Mathlib``).
- A legacy code with neither ``proof`` nor ``code`` is a 422 naming it (Kimina: a bare 500).
- A ``timeout`` of 0, or one above the service's ``--timeout``, runs with the service's limit.

Unknown fields are ignored, as Kimina ignores them.
"""

from __future__ import annotations

from enum import Enum
from functools import partial
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, model_validator
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from leanpool._errors import (
    LeanCrashError,
    LeanMemoryError,
    LeanTimeoutError,
    PoolShutdownError,
    RequestError,
)
from leanpool._serve._http import unprocessable, validated
from leanpool.protocol import parse_request

if TYPE_CHECKING:
    from leanpool._serve._app import Service


class Infotree(str, Enum):
    full = "full"
    tactics = "tactics"
    original = "original"
    substantive = "substantive"


class Snippet(BaseModel):
    id: str
    code: str


class CheckRequest(BaseModel):
    snippets: list[Snippet]
    timeout: int = Field(30, ge=0)
    debug: bool = False
    reuse: bool = True
    infotree: Infotree | None = None

    @model_validator(mode="after")
    def _snippets(self) -> CheckRequest:
        if not self.snippets:
            raise ValueError("`snippets` must be non empty")
        if len({snippet.id for snippet in self.snippets}) != len(self.snippets):
            raise ValueError("`snippets` must have unique ids")
        return self


class Code(BaseModel):
    custom_id: str | int
    proof: str | None = None
    code: str | None = None


class VerifyRequestBody(BaseModel):
    codes: list[Code]
    timeout: int = 300
    infotree_type: Infotree | None = None
    disable_cache: bool = False


def health_body() -> dict[str, str]:
    return {"status": "ok"}


async def health(request: Request) -> Response:
    return JSONResponse(health_body())


def _submit(service: Service, code: str, infotree: Infotree | None, timeout: float | None) -> Any:
    wire: dict[str, Any] = {"cmd": code}
    if infotree is not None:
        wire["infotree"] = infotree.value
    return service.pool.submit(parse_request(wire), timeout=timeout)


def timed_out(timeout: float | None) -> str:
    return f"Lean REPL command timed out in {float(timeout or 0)} seconds"


def describe_error(error: BaseException, timeout: float | None) -> str:
    """A failed snippet's ``error`` text (``timed out`` only for timeouts)."""
    if isinstance(error, LeanTimeoutError):
        return timed_out(error.timeout if error.timeout is not None else timeout)
    if isinstance(error, LeanMemoryError):
        return f"Lean REPL memory limit exceeded: {error}"
    if isinstance(error, LeanCrashError):
        return f"Lean REPL crashed: {error}"
    if isinstance(error, RequestError):
        if "at least 1 character" in str(error) or "Empty command" in str(error):
            return "Empty snippet: there is nothing for Lean to check."
        return f"Snippet refused: {error}"
    if isinstance(error, PoolShutdownError):
        return "The server is shutting down; send the snippet again."
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def check_result(
    snippet_id: str, result: Any, seconds: float, timeout: float | None, debug: bool
) -> dict[str, Any]:
    """One ``/api/check`` entry, with Kimina's keys (`None` fields left out)."""
    entry: dict[str, Any] = {"id": snippet_id}
    if isinstance(result, BaseException):
        failed_after = timeout if isinstance(result, LeanTimeoutError) and timeout else seconds
        entry["time"] = round(float(failed_after), 6)
        entry["error"] = describe_error(result, timeout)
    else:
        entry["time"] = round(seconds, 6)
        entry["response"] = result.to_repl_dict()
    if debug:
        entry["diagnostics"] = {}
    return entry


def verify_result(custom_id: str, result: Any, seconds: float, timeout: float | None) -> Any:
    """One legacy ``/verify`` result: the REPL's JSON with ``time`` merged in, or ``error``."""
    if isinstance(result, BaseException):
        return {"custom_id": custom_id, "error": describe_error(result, timeout)}
    response = result.to_repl_dict()
    response["time"] = round(seconds, 6)
    return {"custom_id": custom_id, "response": response}


async def api_check(request: Request) -> Response:
    service: Service = request.app.state.service
    key = service.authenticate(request)
    checked: CheckRequest = validated(CheckRequest, await service.body(request))
    timeout = service.settings.request_timeout(checked.timeout)
    submits = [
        partial(_submit, service, snippet.code, checked.infotree, timeout)
        for snippet in checked.snippets
    ]
    results = await service.run(request, key, submits)
    return JSONResponse(
        {
            "results": [
                check_result(snippet.id, result, seconds, timeout, checked.debug)
                for snippet, (result, seconds) in zip(checked.snippets, results, strict=True)
            ]
        }
    )


async def verify(request: Request) -> Response:
    service: Service = request.app.state.service
    key = service.authenticate(request)
    checked: VerifyRequestBody = validated(VerifyRequestBody, await service.body(request))
    texts: list[str] = []
    for index, code in enumerate(checked.codes):
        text = code.proof if code.proof is not None else code.code
        if text is None:
            raise unprocessable(
                f"Code {code.custom_id!r} has neither `proof` nor `code`.", "codes", index
            )
        texts.append(text)
    timeout = service.settings.request_timeout(checked.timeout)
    submits = [partial(_submit, service, text, checked.infotree_type, timeout) for text in texts]
    results = await service.run(request, key, submits)
    return JSONResponse(
        {
            "results": [
                verify_result(str(code.custom_id), result, seconds, timeout)
                for code, (result, seconds) in zip(checked.codes, results, strict=True)
            ]
        }
    )
