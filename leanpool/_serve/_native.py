"""leanpool's own endpoints: batches of any request streamed as they complete, tactic-mode
sessions, and verification under the verdict policy.

- ``POST /v1/batch``: ``{"requests": [...], "timeout"?: s, "session"?: id}``; a request is Lean
  text (a command) or an object in the REPL's JSON format (``{"cmd": ...}``, ``{"tactic": ...,
  "proofState": ...}``, ...) with an optional ``"id"`` of the caller's. The answer is NDJSON, one
  line per request *as it completes*: ``{"index", "id"?, "seconds", "response" | "error":
  {"kind", "message"}}``, then ``{"done": true, "count": n}``.
- ``POST /v1/sessions`` (``{"ttl"?: s}``) opens a session: ``{"session": id, "ttl": s}``.
  ``POST /v1/sessions/{id}/run`` (``{"requests": [...], "timeout"?}``) runs requests in it and
  answers ``{"session", "results": [...]}`` in request order; ``/v1/batch`` with ``"session"``
  streams them instead. The env and proof-state ids its responses name stay valid in its later
  requests. ``DELETE /v1/sessions/{id}`` closes it; an idle session closes after its ttl.
- ``POST /v1/verify``: ``{"submissions": [{"id"?, "code", "formal_statement"?, "header"?}],
  "timeout"?, "policy"?: {"allow_sorry", "allowed_axioms", "allow_native",
  "allow_metaprograms", "check_axioms"}, "stream"?: false}`` → ``{"results": [{"index", "id"?,
  "status", "passed", "reasons", "axioms", "seconds", "response"?, "error"?}], "summary"}``
  (NDJSON with ``"stream": true``).

Bodies are read strictly: an unknown field, a request the REPL could not read, or one that names
a file on the server while the sandbox is off is a 422 that says which and where.
"""

from __future__ import annotations

from collections import Counter
from functools import partial
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from leanpool._errors import RequestError
from leanpool._serve._http import unprocessable, validated
from leanpool.protocol import (
    BaseREPLQuery,
    FileCommand,
    PickleEnvironment,
    PickleProofState,
    UnpickleEnvironment,
    UnpickleProofState,
    parse_request,
)

if TYPE_CHECKING:
    from leanpool._serve._app import Service
    from leanpool._serve._sessions import HttpSession

_PATH_REQUESTS = (
    FileCommand,
    PickleEnvironment,
    PickleProofState,
    UnpickleEnvironment,
    UnpickleProofState,
)
ItemId = str | int | None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BatchBody(_Strict):
    requests: list[Any] = Field(min_length=1)
    timeout: float | None = Field(None, gt=0)
    session: str | None = None


class SessionOpenBody(_Strict):
    ttl: float | None = Field(None, gt=0)


class SessionRunBody(_Strict):
    requests: list[Any] = Field(min_length=1)
    timeout: float | None = Field(None, gt=0)


class SubmissionBody(_Strict):
    id: str | int | None = None
    code: str
    formal_statement: str | None = None
    header: str | None = None


class PolicyBody(_Strict):
    allow_sorry: bool | None = None
    allowed_axioms: list[str] | None = None
    allow_native: bool | None = None
    allow_metaprograms: bool | None = None
    check_axioms: bool | None = None


class VerifyBody(_Strict):
    submissions: list[SubmissionBody] = Field(min_length=1)
    timeout: float | None = Field(None, gt=0)
    policy: PolicyBody | None = None
    stream: bool = False


def parse_items(raw: list[Any], sandboxed: bool) -> tuple[list[ItemId], list[BaseREPLQuery]]:
    """The callers' ids and the request models; 422 naming the first bad item."""
    ids: list[ItemId] = []
    models: list[BaseREPLQuery] = []
    for index, item in enumerate(raw):
        item_id: ItemId = None
        if isinstance(item, str):
            wire: dict[str, Any] = {"cmd": item}
        elif isinstance(item, dict):
            wire = dict(item)
            item_id = wire.pop("id", None)
            if isinstance(item_id, bool) or not isinstance(item_id, (str, int, type(None))):
                raise unprocessable("`id` must be a string or an integer.", "requests", index, "id")
        else:
            raise unprocessable(
                "A request is Lean text or an object in the REPL's JSON format "
                '({"cmd": ...}, {"tactic": ..., "proofState": ...}, ...).',
                "requests",
                index,
            )
        try:
            model = parse_request(wire)
        except RequestError as exc:
            raise unprocessable(str(exc), "requests", index) from None
        if model.model_extra:
            raise unprocessable(
                f"Unknown field(s) for a {type(model).__name__}: {sorted(model.model_extra)}.",
                "requests",
                index,
            )
        if not sandboxed and isinstance(model, _PATH_REQUESTS):
            raise unprocessable(
                f"A {type(model).__name__} names a path on the server: this service accepts "
                "those only when its REPLs run in the sandbox.",
                "requests",
                index,
            )
        if getattr(model, "cmd", None) is not None and not str(getattr(model, "cmd", "")).strip():
            raise unprocessable("Empty command text: nothing for Lean to check.", "requests", index)
        ids.append(item_id)
        models.append(model)
    return ids, models


def error_json(exc: BaseException) -> dict[str, Any]:
    return {"kind": type(exc).__name__, "message": str(exc) or type(exc).__name__}


def item_result(ids: list[ItemId], index: int, result: Any, seconds: float) -> dict[str, Any]:
    entry: dict[str, Any] = {"index": index}
    if ids[index] is not None:
        entry["id"] = ids[index]
    entry["seconds"] = round(seconds, 6)
    if isinstance(result, BaseException):
        entry["error"] = error_json(result)
    else:
        entry["response"] = result.to_repl_dict()
    return entry


def verification_result(
    ids: list[ItemId], index: int, result: Any, seconds: float
) -> dict[str, Any]:
    entry: dict[str, Any] = {"index": index}
    if ids[index] is not None:
        entry["id"] = ids[index]
    if isinstance(result, BaseException):
        status = "input_error" if isinstance(result, RequestError) else "fault"
        reason = "input_error" if status == "input_error" else f"fault:{type(result).__name__}"
        entry.update(status=status, passed=False, reasons=[reason], axioms={})
        entry["seconds"] = round(seconds, 6)
        entry["error"] = error_json(result)
        return entry
    entry.update(
        status=result.status,
        passed=result.passed,
        reasons=list(result.reasons),
        axioms=result.axioms,
        seconds=round(seconds, 6),
    )
    if result.response is not None:
        entry["response"] = result.response.to_repl_dict()
    if result.error is not None:
        entry["error"] = error_json(result.error)
    return entry


# ------------------------------------------------------------------------------------ handlers
async def batch(request: Request) -> Response:
    service: Service = request.app.state.service
    key = service.authenticate(request)
    body: BatchBody = validated(BatchBody, await service.body(request))
    ids, models = parse_items(body.requests, service.settings.sandboxed)
    timeout = service.settings.request_timeout(body.timeout)
    session: HttpSession | None = None
    if body.session is not None:
        session = service.sessions.get(key, body.session)
        submit: Any = session.session.submit
    else:
        submit = service.pool.submit
    submits = [partial(submit, model, timeout=timeout) for model in models]
    return service.stream(request, key, submits, partial(item_result, ids), session=session)


async def open_session(request: Request) -> Response:
    service: Service = request.app.state.service
    key = service.authenticate(request)
    body: SessionOpenBody = validated(
        SessionOpenBody, await service.body(request, allow_empty=True)
    )
    opened = service.sessions.open(key, body.ttl)
    return JSONResponse({"session": opened.id, "ttl": opened.ttl}, status_code=201)


async def run_in_session(request: Request) -> Response:
    service: Service = request.app.state.service
    key = service.authenticate(request)
    session = service.sessions.get(key, request.path_params["session"])
    body: SessionRunBody = validated(SessionRunBody, await service.body(request))
    ids, models = parse_items(body.requests, service.settings.sandboxed)
    timeout = service.settings.request_timeout(body.timeout)
    submits = [partial(session.session.submit, model, timeout=timeout) for model in models]
    results = await service.run(request, key, submits, session=session)
    return JSONResponse(
        {
            "session": session.id,
            "results": [
                item_result(ids, index, result, seconds)
                for index, (result, seconds) in enumerate(results)
            ],
        }
    )


async def close_session(request: Request) -> Response:
    service: Service = request.app.state.service
    key = service.authenticate(request)
    session_id = request.path_params["session"]
    service.sessions.close(key, session_id)
    return JSONResponse({"session": session_id, "closed": True})


async def verify(request: Request) -> Response:
    service: Service = request.app.state.service
    key = service.authenticate(request)
    body: VerifyBody = validated(VerifyBody, await service.body(request))
    policy = dict(service.settings.policy)
    if body.policy is not None:
        policy.update(body.policy.model_dump(exclude_none=True))
    if "allowed_axioms" in policy:
        policy["allowed_axioms"] = tuple(policy["allowed_axioms"])
    timeout = service.settings.request_timeout(body.timeout)
    ids: list[ItemId] = [item.id for item in body.submissions]
    submits = [
        partial(
            service.pool.submit_verification,
            item.code,
            formal_statement=item.formal_statement,
            header=item.header,
            timeout=timeout,
            **policy,
        )
        for item in body.submissions
    ]
    render = partial(verification_result, ids)
    if body.stream:
        return service.stream(request, key, submits, render, summary=True)
    results = await service.run(request, key, submits)
    entries = [render(index, result, seconds) for index, (result, seconds) in enumerate(results)]
    return JSONResponse(
        {"results": entries, "summary": dict(Counter(r["status"] for r in entries))}
    )
