"""Where ``verbose=True`` output goes: the ``leanpool`` logger, made visible when nobody set up
logging.

LeanInteract users expect ``run(..., verbose=True)`` to show the REPL exchange on the terminal
(LeanInteract attaches a handler to its logger at import). leanpool logs instead of printing and
attaches nothing at import; it adds a stderr handler only when verbose output is asked for and
neither its logger nor the root logger has one, so an application that configured logging keeps
full control of where records go.
"""

from __future__ import annotations

import logging
import threading

logger = logging.getLogger("leanpool")
_lock = threading.Lock()
_handler: logging.Handler | None = None


def show_verbose_output() -> None:
    """Let INFO records of the ``leanpool`` logger through, to stderr if nothing else shows them."""
    global _handler
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    if _handler is not None or logger.handlers or logging.getLogger().handlers:
        return
    with _lock:
        if _handler is None:
            from rich.console import Console
            from rich.logging import RichHandler

            _handler = RichHandler(console=Console(stderr=True), show_path=False)
            logger.addHandler(_handler)
