"""Running the application under uvicorn, with a graceful stop.

The listening socket is bound before anything else (so port 0 gives a port to announce, and a
port in use fails before the pool starts). On SIGTERM or SIGINT uvicorn stops accepting
connections, lets the requests in flight finish for up to the drain time, cancels the rest
(their Lean requests are cancelled with them), and ends the application's lifespan, which stops
the pool: its workers and REPLs end, and nothing is left behind. A second SIGINT stops at once;
workers whose parent is gone are ended by the kernel (see `LeanPool`).
"""

from __future__ import annotations

import math
import signal
import socket
from typing import Any

from leanpool._serve._settings import ServeSettings

BACKLOG = 2048


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on `host`:`port` (port 0: any free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except BaseException:
        sock.close()
        raise
    return sock


def address(sock: socket.socket) -> str:
    """The socket's address as a URL base (``http://127.0.0.1:8000``)."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def run(app: Any, sock: socket.socket, settings: ServeSettings) -> int:
    """Serve `app` on `sock` until SIGTERM or SIGINT; 0 after a graceful stop."""
    import uvicorn

    config = uvicorn.Config(
        app,
        lifespan="on",
        access_log=False,  # ours is structured, and leaves the key out (see _accesslog)
        log_level="warning",
        timeout_graceful_shutdown=math.ceil(settings.drain_timeout),
        backlog=BACKLOG,
        server_header=False,
        timeout_keep_alive=5,
    )
    server = uvicorn.Server(config)
    # uvicorn re-raises the signal that stopped it once it is done, to end the process "as the
    # signal would"; the service has already stopped gracefully by then: end with status 0.
    seen: list[int] = []
    previous = {
        sig: signal.signal(sig, lambda number, frame: seen.append(number))
        for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
    return 0
