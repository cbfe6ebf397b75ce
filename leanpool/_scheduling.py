"""The scheduler's cost model: pure functions over plain numbers.

The dispatcher (`_dispatcher.py`) owns the queues and slots and calls these to decide: how many
requests go in one task, which header queue a free slot serves, whether another worker should
import a header, where a new session lives, and whether an idle slot should take a session over
from a busy one. Kept free of slots, queues and clocks so that each decision is tested
deterministically (tests/test_scheduling.py) instead of only end to end with real hangs.

All times are seconds. ``per_request`` is the running estimate of one request's time in a
worker (imports excluded); None until a first task was measured.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable
from dataclasses import dataclass

UNMEASURED_IMPORT_SECONDS = 1.0  # an import's cost before the first one was timed
TASK_SECONDS = 0.05  # work per task (see `batch_limit`)
UNMEASURED_BATCH = 4  # requests per task until a request's time in a worker is measured
# A session moved to a slot that lacks its header imports it there, and then again after each
# REPL restart (and in a standby REPL): a judgement, not a measurement. Measured on the RL
# benchmark: forbidding cross-header moves left a worker idle while the other had a backlog.
IMPORT_PENALTY = 3
_SMOOTHING = 0.2  # weight of the newest measurement in the running service estimate


def batch_limit(
    waiting: int, slots: int, depth: int, max_batch: int, per_request: float | None
) -> int:
    """Requests per task: enough to share the backlog among the slots' tasks, but no more than
    about `TASK_SECONDS` of work. A task's results come back together, so a long task delays
    its first answer, and its requests can no longer move to another worker; a round trip costs
    well under a millisecond, so short tasks lose little throughput."""
    per_task = math.ceil(waiting / (slots * depth))
    if per_request is None:
        per_task = min(per_task, UNMEASURED_BATCH)
    elif per_request > 0:
        per_task = min(per_task, math.ceil(TASK_SECONDS / per_request))
    return max(1, min(max_batch, per_task))


def updated_service_estimate(previous: float | None, busy: float, requests: int) -> float:
    """The running estimate after a task of `requests` kept its worker `busy` seconds."""
    per_request = max(0.0, busy) / requests
    if previous is None:
        return per_request
    return (1 - _SMOOTHING) * previous + _SMOOTHING * per_request


def import_estimate(seconds: float, imports: int) -> float:
    """Seconds per header import, from the imports timed so far."""
    return seconds / imports if imports else UNMEASURED_IMPORT_SECONDS


def worth_importing(
    waiting: int, holders: int, per_request: float | None, import_seconds: float | None
) -> bool:
    """Whether one more worker should import a header to help with the `waiting` requests that
    need it: only when the `holders` (workers that have it) would need longer for them than an
    import costs. With nothing measured yet (either None), yes: keep every worker busy."""
    if per_request is None or import_seconds is None:
        return True
    return waiting * per_request / max(1, holders) > import_seconds


@dataclass(frozen=True)
class HeaderQueue:
    """What a free slot knows of one non-empty queue of requests waiting for a header."""

    key: Hashable  # the header (None: requests without one)
    oldest: int  # sequence number of its first request
    length: int
    held_here: bool  # the free slot holds the header (always True for key None)
    holders: int  # live workers that hold it


def choose_queue(
    queues: Iterable[HeaderQueue], per_request: float | None, import_seconds: float | None
) -> HeaderQueue | None:
    """The queue a free slot serves: the oldest request whose header it holds (or that has
    none), else the oldest whose header no worker holds (so headers spread over workers instead
    of every worker importing every header), else the oldest whose header is worth importing
    here (`worth_importing`); None: leave the rest to the workers that hold their headers."""
    best: tuple[int, int] | None = None
    chosen: HeaderQueue | None = None
    for queue in queues:
        if queue.length <= 0:
            continue
        if queue.held_here:
            rank = 0
        elif queue.holders == 0:
            rank = 1
        elif worth_importing(queue.length, queue.holders, per_request, import_seconds):
            rank = 2
        else:
            continue
        if best is None or (rank, queue.oldest) < best:
            best, chosen = (rank, queue.oldest), queue
    return chosen


@dataclass(frozen=True)
class SlotLoad:
    """What session placement weighs of one slot."""

    index: int
    sessions: int  # sessions living there
    holds_header: bool  # it holds the header of the session's first request
    load: int  # requests in flight there or waiting for it


def place_session(slots: Iterable[SlotLoad]) -> int:
    """The slot a new session lives on: the fewest sessions first (sessions are long-lived, so
    balance matters most), then one that already holds its header, then the least loaded."""
    best = min(slots, key=lambda s: (s.sessions, not s.holds_header, s.load, s.index))
    return best.index


def remaining_work(expected: float, running_for: float) -> float:
    """How long a worker will still be busy, when its tasks in flight were expected to take
    `expected` seconds and have run `running_for`: while on time, what is left; once overrun,
    as long again as the overrun so far (work that overran, a hang waiting for its timeout or an
    unusually hard proof, tends to go on overrunning)."""
    return abs(expected - running_for)


def rebuild_cost(
    states: int, missing_headers: int, per_request: float, import_seconds: float
) -> float:
    """Seconds a slot needs before it can run a session request whose states it lacks: replay
    `states` recipes and import the `missing_headers` of their chain (`IMPORT_PENALTY` times,
    see there)."""
    return states * per_request + missing_headers * IMPORT_PENALTY * import_seconds


def steal_gain(
    victim_busy: float, position: int, per_request: float, thief_busy: float, rebuild: float
) -> float:
    """Seconds saved by moving a session whose first waiting request is at `position` in the
    busy slot's queue to an idle slot (positive: the move pays). There it waits for the busy
    slot's remaining work and the requests ahead of it; on the thief, for the thief's own
    remaining work (which grows while a task of its overruns, so a stuck thief steals nothing)
    plus the rebuild."""
    return victim_busy + position * per_request - thief_busy - rebuild
