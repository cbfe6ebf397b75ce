"""`leanpool serve`: run a pool as an HTTP service (Kimina's API, and leanpool's own).

The web stack (the ``serve`` extra) is imported only when the command runs, so the other
commands, and ``import leanpool``, never pay for it. Exit status: 0 after a graceful stop
(SIGTERM or Ctrl-C), 1 when the address cannot be used, 2 on usage errors, a failed Lean setup,
or a missing ``serve`` extra.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Any

from leanpool._cli._configs import SETUP_HINT, SIMULATOR_LABEL, add_lean_arguments, build_config
from leanpool._cli._options import (
    add_policy_arguments,
    add_pool_arguments,
    policy_options,
    positive_float,
    positive_int,
)
from leanpool._cli._sandbox import add_sandbox_arguments, sandbox_options

KEY_VARIABLE = "LEANPOOL_API_KEY"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
_LOOPBACK = re.compile(r"^(127\.\d+\.\d+\.\d+|::1|localhost)$")


def add_parser(subparsers: Any) -> None:
    from leanpool._serve._settings import (
        DEFAULT_DRAIN_TIMEOUT,
        DEFAULT_MAX_BODY_MB,
        DEFAULT_MAX_IN_FLIGHT_PER_KEY,
        DEFAULT_MAX_SESSIONS_PER_KEY,
        DEFAULT_PORT,
        DEFAULT_SESSION_TTL,
    )

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "serve",
        help="run the pool as an HTTP service (the Kimina Lean Server's API, and leanpool's own)",
        description="Serve a pool of Lean REPLs over HTTP: the Kimina Lean Server's endpoints "
        "(/api/check, /verify, /one_pass_verify_batch, /health), so that Kimina's clients work "
        "unchanged, and leanpool's own (/v1/batch streamed as NDJSON, /v1/sessions for tactic "
        "mode, /v1/verify under the verdict policy, /v1/stats, /metrics). Needs the serve "
        f"extra. API keys: --api-key, or ${KEY_VARIABLE} (comma-separated). Stops gracefully "
        "on SIGTERM or Ctrl-C.",
    )
    service = parser.add_argument_group("service")
    service.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; 0.0.0.0 for every interface: use a key)",
    )
    service.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port (default {DEFAULT_PORT}, Kimina's; 0: any free port, printed when ready)",
    )
    service.add_argument(
        "--api-key",
        action="append",
        default=[],
        metavar="KEY",
        help=f"accept this API key (repeatable; default: ${KEY_VARIABLE}, comma-separated); "
        "without any, requests need no key",
    )
    service.add_argument(
        "--max-in-flight-per-key",
        type=positive_int,
        default=DEFAULT_MAX_IN_FLIGHT_PER_KEY,
        metavar="N",
        help="Lean requests one key may have queued or running (beyond: 429 with Retry-After; "
        f"default {DEFAULT_MAX_IN_FLIGHT_PER_KEY})",
    )
    service.add_argument(
        "--max-body-mb",
        type=positive_float,
        default=DEFAULT_MAX_BODY_MB,
        metavar="MB",
        help=f"largest request body (beyond: 413; default {DEFAULT_MAX_BODY_MB:g})",
    )
    service.add_argument(
        "--session-ttl",
        type=positive_float,
        default=DEFAULT_SESSION_TTL,
        metavar="SECONDS",
        help=f"close a tactic-mode session idle this long (default {DEFAULT_SESSION_TTL:g})",
    )
    service.add_argument(
        "--max-sessions-per-key",
        type=positive_int,
        default=DEFAULT_MAX_SESSIONS_PER_KEY,
        metavar="N",
        help=f"open sessions per key (default {DEFAULT_MAX_SESSIONS_PER_KEY})",
    )
    service.add_argument(
        "--drain-timeout",
        type=positive_float,
        default=DEFAULT_DRAIN_TIMEOUT,
        metavar="SECONDS",
        help="on SIGTERM, how long requests in flight may still finish, and then how long the "
        f"workers get to stop (default {DEFAULT_DRAIN_TIMEOUT:g})",
    )
    service.add_argument(
        "--access-log",
        default="-",
        metavar="FILE",
        help="append JSON access logs to FILE (default: stderr); they never contain the key",
    )
    service.add_argument("--no-access-log", action="store_true", help="write no access logs")
    run = add_pool_arguments(
        parser,
        unit="requests",
        timeout_help="the longest a Lean request may run; clients may ask for less, never more",
        memory_help="per-worker REPL memory (RSS) limit",
    )
    run.add_argument(
        "--backend",
        choices=("loky", "ray"),
        default="loky",
        help="local worker processes (loky, default) or Ray actors (needs the ray extra)",
    )
    add_policy_arguments(
        parser, "Defaults of /v1/verify; a request's own policy options override them."
    )
    add_sandbox_arguments(parser)
    add_lean_arguments(parser, simulator=True)
    parser.set_defaults(handler=run_serve)


def api_keys(args: argparse.Namespace) -> tuple[str, ...]:
    """--api-key values, else those in $LEANPOOL_API_KEY (separated by commas or whitespace)."""
    given = [key.strip() for key in args.api_key if key.strip()]
    if not given:
        given = [key for key in re.split(r"[,\s]+", os.environ.get(KEY_VARIABLE, "")) if key]
    return tuple(dict.fromkeys(given))


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_serve(args: argparse.Namespace) -> int:
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        _say(
            f"leanpool serve needs the serve extra ({exc.name} is missing): "
            "pip install 'leanpool[serve]'"
        )
        return EXIT_USAGE
    from leanpool._errors import LeanPoolError, LeanSetupError
    from leanpool._serve import ServeSettings, address, bind, create_app, run
    from leanpool._serve._accesslog import configure_access_log

    keys = api_keys(args)
    try:
        settings = ServeSettings(
            host=args.host,
            port=args.port,
            api_keys=keys,
            timeout=args.timeout or None,
            max_in_flight_per_key=args.max_in_flight_per_key,
            max_body_bytes=int(args.max_body_mb * 1024 * 1024),
            session_ttl=args.session_ttl,
            max_sessions_per_key=args.max_sessions_per_key,
            drain_timeout=args.drain_timeout,
            policy=policy_options(args),
            access_log=None if args.no_access_log else args.access_log,
            simulator=bool(args.sim),
            sandboxed=args.sandbox is not None,
        )
    except ValueError as exc:
        _say(f"leanpool serve: {exc}")
        return EXIT_USAGE
    try:
        sock = bind(settings.host, settings.port)
    except OSError as exc:
        _say(f"leanpool serve: cannot listen on {settings.host}:{settings.port}: {exc}")
        return EXIT_FAILED
    try:
        if args.sim:
            _say(f"leanpool serve: running on the {SIMULATOR_LABEL}.")
        try:
            config = build_config(args, verbose=args.verbose)
        except LeanSetupError as exc:
            _say(f"Lean setup failed.\n{exc}\n{SETUP_HINT}")
            return EXIT_USAGE
        except (TypeError, ValueError, FileNotFoundError) as exc:
            _say(f"Cannot use this Lean: {exc}\n{SETUP_HINT}")
            return EXIT_USAGE
        if not keys and not _LOOPBACK.match(settings.host):
            _say(
                f"leanpool serve: WARNING: listening on {settings.host} without an API key: "
                "anyone who can reach it may run Lean code here (set --api-key or "
                f"${KEY_VARIABLE})."
            )
        configure_access_log(settings.access_log)
        try:
            pool = _make_pool(args, config, settings)
        except (ImportError, LeanPoolError, RuntimeError, ValueError, TypeError) as exc:
            _say(f"leanpool serve: cannot start the pool: {exc}")
            return EXIT_FAILED
        url = address(sock)

        def ready() -> None:
            who = "an API key is required" if keys else "no API key required"
            lean = SIMULATOR_LABEL if args.sim else "Lean"
            _say(f"leanpool serve: listening on {url} ({pool.max_workers} workers, {lean}, {who})")

        return run(create_app(settings, pool, on_ready=ready), sock, settings)
    finally:
        sock.close()


def _make_pool(args: argparse.Namespace, config: Any, settings: Any) -> Any:
    from leanpool._pool import LeanPool

    options: dict[str, Any] = sandbox_options(args)
    options["backend"] = args.backend
    return LeanPool(
        config,
        args.workers,
        timeout=settings.timeout,
        memory_limit_mb=args.memory_limit_mb,
        max_tasks_per_worker=args.max_tasks_per_worker,
        progress=False,
        **options,
    )
