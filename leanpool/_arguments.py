"""Checks of what callers pass, shared by the server, the pool and the CLI.

A bad argument must be refused before anything is sent to a REPL: found later (inside the
exchange, or in a worker), it would interrupt a request that is already written, and the
REPL's answer would be left in the pipe.
"""

from __future__ import annotations

import math
import numbers

from leanpool._errors import RequestError


def check_timeout(value: object, name: str = "timeout") -> float | None:
    """`value` as a timeout in seconds: None (no limit), or a positive number.

    ``float("inf")`` also means no limit. Refused with `RequestError`: NaN, zero and negative
    numbers, booleans, and anything that is not a real number (a string such as ``"5"``
    included: it would fail deep inside a request).
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise RequestError(
            f"{name} must be a number of seconds or None, got {value!r} ({type(value).__name__})."
        )
    seconds = float(value)
    if math.isnan(seconds):
        raise RequestError(f"{name} must be a number of seconds or None, got NaN.")
    if seconds <= 0:
        raise RequestError(f"{name} must be positive (seconds), got {value!r}.")
    return None if math.isinf(seconds) else seconds
