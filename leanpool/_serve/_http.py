"""HTTP plumbing shared by every endpoint: errors, bounded JSON bodies, validation errors in
FastAPI's shape (what Kimina's clients see from Kimina), and disconnect detection."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Mapping
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse

T = TypeVar("T")
CLIENT_CLOSED = 499  # nginx's code for "client closed request"; nobody reads it but the log


class HttpError(Exception):
    """An HTTP error answer: ``{"detail": detail}`` with `status` (and `headers`)."""

    def __init__(self, status: int, detail: Any, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail if isinstance(detail, str) else json.dumps(detail))
        self.status = status
        self.detail = detail
        self.headers = dict(headers or {})

    def response(self) -> JSONResponse:
        return JSONResponse({"detail": self.detail}, self.status, headers=self.headers)


class ClientDisconnectedError(HttpError):
    def __init__(self) -> None:
        super().__init__(CLIENT_CLOSED, "Client disconnected")


async def read_json(request: Request, limit: int, *, allow_empty: bool = False) -> Any:
    """The request's JSON body: 413 past `limit` bytes, 400 when empty (or ``{}`` with
    `allow_empty`) or not JSON.

    An oversized body is still read (and dropped) up to `limit` more bytes before the answer,
    so that a client that writes its whole body before reading gets the 413 instead of a reset
    connection; past that the connection is closed on it.
    """
    declared = request.headers.get("content-length")
    too_big = HttpError(413, f"Request body larger than {limit} bytes (the service's limit).")
    if declared is not None and declared.isdigit() and int(declared) > 2 * limit:
        raise too_big
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > 2 * limit:
            raise too_big
        if size <= limit:
            chunks.append(chunk)
    if size > limit:
        raise too_big
    body = b"".join(chunks)
    if not body.strip():
        if allow_empty:
            return {}
        raise HttpError(400, "Empty request body: send a JSON object.")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HttpError(400, f"Malformed JSON: {exc}") from None


def validation_error(exc: Any) -> HttpError:
    """422 with a pydantic `ValidationError`'s errors as FastAPI writes them (``loc`` starting
    with ``"body"``), without echoing the input back."""
    detail = [
        {"type": error["type"], "loc": ["body", *error["loc"]], "msg": error["msg"]}
        for error in exc.errors(include_url=False)
    ]
    return HttpError(422, detail)


def validated(model: Any, body: Any) -> Any:
    """`body` as pydantic `model`; a 422 (`validation_error`) when it does not fit."""
    from pydantic import ValidationError

    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise validation_error(exc) from None


def unprocessable(message: str, *loc: str | int) -> HttpError:
    """422 for one problem, in the same shape."""
    return HttpError(422, [{"type": "value_error", "loc": ["body", *loc], "msg": message}])


async def until_disconnected(request: Request) -> None:
    # Called once the body has been read: the server's next message for this request is
    # `http.disconnect`, sent when the client closes its connection (or the response is done).
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """`work`'s result, or `ClientDisconnectedError` as soon as the client goes away (then
    `work` is cancelled first, so that its pending Lean requests are cancelled with it)."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(until_disconnected(request))
    try:
        await asyncio.wait((task, watcher), return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        watcher.cancel()
        raise
    if task.done():
        watcher.cancel()
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    raise ClientDisconnectedError()
