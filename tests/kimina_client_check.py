"""Kimina's clients against a server, unchanged; run by tests/test_serve_kimina.py and
tests/test_serve_auth.py with the Python of the Kimina client's environment (``kimina-client``
0.2.1 on Python 3.12, `bench.kimina`):

    python kimina_client_check.py URL [API_KEY] [--keys-only]

Prints one JSON report of what each client call returned, on a last line starting with
``REPORT`` (the client logs to stdout too); the tests judge it. What it exercises:

- ``KiminaClient`` (sync): ``health()``, ``test()`` (``#check Nat`` must answer exactly Lean's
  info message), ``check()`` with batching (several batches, concurrently, results in completion
  order), ``check()`` of a bare string, ``api_check()``;
- ``AsyncKiminaClient``: the same, ``check()`` keeping input order, a snippet that times out;
- the legacy ``Lean4Client``: not in ``kimina-client`` 0.2.1 (the package's ``from kimina_client
  import Lean4Client`` fails; it lived in the server's repository, on aiohttp). Its requests are
  sent exactly as it sends them (``GET /`` insisting on ``{"status": "ok"}``, then ``POST /verify``
  with its headers, ``Bearer None`` without a key), and the answers read with 0.2.1's legacy
  models (``VerifyResponse``, ``proof_utils.parse_client_response``).
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

ARGS = [arg for arg in sys.argv[1:] if not arg.startswith("--")]
URL = ARGS[0]
KEY = ARGS[1] if len(ARGS) > 1 else None
KEYS_ONLY = "--keys-only" in sys.argv


def _results(response: Any) -> list[dict[str, Any]]:
    return [
        {
            "id": result.id,
            "status": result.analyze().status.value,
            "time": result.time,
            "error": result.error,
            "response": result.response,
        }
        for result in response.results
    ]


def snippets(prefix: str) -> list[Any]:
    from kimina_client import Snippet

    items = [Snippet(id=f"{prefix}{i}", code=f"#eval {i} * 7") for i in range(20)]
    items += [
        Snippet(id=f"{prefix}wrong", code="import Mathlib\ntheorem w : 2 + 2 = 5 := by decide"),
        Snippet(id=f"{prefix}sorry", code="theorem s : 1 + 1 = 2 := by sorry"),
        Snippet(id=f"{prefix}valid", code="theorem v : 1 + 1 = 2 := by norm_num"),
    ]
    return items


def sync_client(report: dict[str, Any]) -> None:
    from kimina_client import KiminaClient, Snippet

    client = KiminaClient(api_url=URL, api_key=KEY, n_retries=1)
    report["sync_health"] = client.health()
    client.test()
    report["sync_test"] = "passed"
    checked = client.check(
        snippets("s"), timeout=20, batch_size=4, max_workers=3, show_progress=False
    )
    report["sync_check"] = _results(checked)
    report["sync_bare_string"] = _results(client.check("#eval 2 + 2", show_progress=False))
    single = client.api_check([Snippet(id="one", code="#eval 6 * 7")], timeout=10)
    report["sync_api_check"] = _results(single)


async def async_client(report: dict[str, Any]) -> None:
    from kimina_client import AsyncKiminaClient, Snippet

    client = AsyncKiminaClient(api_url=URL, api_key=KEY, n_retries=1)
    try:
        report["async_health"] = await client.health()
        await client.test()
        report["async_test"] = "passed"
        items = [*snippets("a"), Snippet(id="aslow", code="#eval 1 --!sim hang")]
        checked = await client.check(
            items, timeout=2, batch_size=5, max_workers=4, show_progress=False
        )
        report["async_check"] = _results(checked)
    finally:
        await client.close()


def legacy_client(report: dict[str, Any]) -> None:
    import httpx
    from kimina_client import VerifyResponse
    from kimina_client.proof_utils import parse_client_response

    try:
        from kimina_client import Lean4Client  # noqa: F401
    except ImportError as exc:
        report["lean4client_import"] = f"ImportError: {exc}"
    else:
        report["lean4client_import"] = "ok"
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "Authorization": f"Bearer {KEY}",  # the legacy client's, literally "Bearer None"
    }
    report["legacy_root"] = httpx.get(f"{URL}/", headers=headers).json()
    body = {
        "codes": [
            {"custom_id": 7, "proof": "theorem t7 : 2 + 2 = 4 := by norm_num"},
            {"custom_id": "b", "code": "theorem tb : 2 + 2 = 5 := by decide"},
        ],
        "timeout": 60,
        "infotree_type": None,
        "disable_cache": False,
    }
    for path in ("/verify", "/one_pass_verify_batch"):
        answer = httpx.post(f"{URL}{path}", headers=headers, json=body, timeout=120)
        data = answer.json()
        VerifyResponse.model_validate(data)
        report[path] = {
            "status": answer.status_code,
            "content_type": answer.headers.get("content-type"),
            "results": data["results"],
            "parsed": [dict(parse_client_response(result)) for result in data["results"]],
        }


def keys(report: dict[str, Any]) -> None:
    """With `KEY`, and with a wrong key (``--keys-only``)."""
    from kimina_client import AsyncKiminaClient, KiminaClient

    good = KiminaClient(api_url=URL, api_key=KEY, n_retries=1)
    report["keyed_check"] = _results(good.check(snippets("k")[:3], show_progress=False))
    wrong = KiminaClient(api_url=URL, api_key=f"{KEY}-wrong", n_retries=1)
    report["wrong_key_check"] = _results(wrong.check(snippets("w")[:2], show_progress=False))

    async def keyed_async() -> None:
        client = AsyncKiminaClient(api_url=URL, api_key=KEY, n_retries=1)
        try:
            checked = await client.check(snippets("ka")[:3], show_progress=False)
            report["keyed_async_check"] = _results(checked)
        finally:
            await client.close()

    asyncio.run(keyed_async())


def main() -> None:
    report: dict[str, Any] = {}
    if KEYS_ONLY:
        keys(report)
    else:
        sync_client(report)
        asyncio.run(async_client(report))
        legacy_client(report)
    print("REPORT " + json.dumps(report))


if __name__ == "__main__":
    main()
