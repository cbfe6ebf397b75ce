"""The scheduler's cost model, decision by decision, without processes or clocks."""

from __future__ import annotations

import pytest

from leanpool._scheduling import (
    IMPORT_PENALTY,
    TASK_SECONDS,
    UNMEASURED_BATCH,
    UNMEASURED_IMPORT_SECONDS,
    HeaderQueue,
    SlotLoad,
    batch_limit,
    choose_queue,
    import_estimate,
    place_session,
    rebuild_cost,
    remaining_work,
    steal_gain,
    updated_service_estimate,
    worth_importing,
)

# ---------------------------------------------------------------- batches


def test_a_lone_request_travels_alone() -> None:
    assert batch_limit(1, slots=2, depth=2, max_batch=64, per_request=0.001) == 1
    assert batch_limit(0, slots=2, depth=2, max_batch=64, per_request=None) == 1


def test_a_backlog_is_shared_among_the_slots_tasks() -> None:
    # 40 waiting over 2 slots x 2 tasks: 10 each (cheap requests: the time cap is far)
    assert batch_limit(40, slots=2, depth=2, max_batch=64, per_request=0.0001) == 10


def test_a_task_holds_about_task_seconds_of_work() -> None:
    # 1000 waiting at 10 ms each: 5 per task, not 250
    per_request = 0.01
    limit = batch_limit(1000, slots=2, depth=2, max_batch=64, per_request=per_request)
    assert limit == round(TASK_SECONDS / per_request)
    # slow requests (longer than a task's budget) go one by one
    assert batch_limit(1000, slots=2, depth=2, max_batch=64, per_request=2.0) == 1


def test_before_a_measurement_tasks_stay_small_and_max_batch_always_holds() -> None:
    assert batch_limit(1000, slots=1, depth=1, max_batch=64, per_request=None) == UNMEASURED_BATCH
    assert batch_limit(1000, slots=1, depth=1, max_batch=3, per_request=0.0) == 3
    # a measured zero (instant requests): only the backlog share and max_batch limit
    assert batch_limit(1000, slots=2, depth=2, max_batch=64, per_request=0.0) == 64


def test_the_service_estimate_starts_at_the_first_measurement_then_moves_slowly() -> None:
    first = updated_service_estimate(None, busy=1.0, requests=10)
    assert first == pytest.approx(0.1)
    after_a_slow_task = updated_service_estimate(first, busy=10.0, requests=10)
    assert first < after_a_slow_task < 1.0  # one outlier does not take over
    assert updated_service_estimate(None, busy=-0.5, requests=2) == 0.0  # clock noise


# ---------------------------------------------------------------- imports


def test_import_estimate_is_a_guess_until_an_import_was_timed() -> None:
    assert import_estimate(0.0, 0) == UNMEASURED_IMPORT_SECONDS
    assert import_estimate(6.0, 3) == pytest.approx(2.0)


def test_importing_a_header_pays_only_when_its_holders_would_take_longer() -> None:
    # 10 requests x 0.1 s on one holder = 1 s of work: a 2 s import does not pay, 0.5 s does
    assert not worth_importing(10, holders=1, per_request=0.1, import_seconds=2.0)
    assert worth_importing(10, holders=1, per_request=0.1, import_seconds=0.5)
    # two holders share the queue: half the wait
    assert not worth_importing(10, holders=2, per_request=0.1, import_seconds=0.6)
    # nothing measured yet: help (keep every worker busy)
    assert worth_importing(1, holders=1, per_request=None, import_seconds=9.0)
    assert worth_importing(1, holders=1, per_request=0.1, import_seconds=None)


def queue(
    key: tuple[str, ...] | None, oldest: int, length: int = 1, here: bool = False, holders: int = 0
) -> HeaderQueue:
    return HeaderQueue(key, oldest, length, here, holders)


def test_a_free_slot_serves_its_own_headers_first_even_when_younger() -> None:
    mine = queue(("A",), oldest=9, here=True, holders=1)
    unheld = queue(("B",), oldest=1)
    assert choose_queue([unheld, mine], per_request=0.1, import_seconds=1.0) is mine


def test_then_a_header_no_worker_holds_so_headers_spread() -> None:
    held_elsewhere = queue(("A",), oldest=1, length=100, holders=1)
    unheld = queue(("B",), oldest=5)
    chosen = choose_queue([held_elsewhere, unheld], per_request=0.1, import_seconds=1.0)
    assert chosen is unheld


def test_then_a_header_worth_importing_and_never_one_that_is_not() -> None:
    long_queue = queue(("A",), oldest=3, length=100, holders=1)  # 10 s of work on one holder
    short_queue = queue(("B",), oldest=1, length=2, holders=1)  # 0.2 s: cheaper to wait
    assert choose_queue([short_queue, long_queue], 0.1, 1.0) is long_queue
    assert choose_queue([short_queue], 0.1, 1.0) is None


def test_among_equals_the_oldest_request_wins_and_empty_queues_are_ignored() -> None:
    older = queue(None, oldest=2, here=True)
    younger = queue(("A",), oldest=7, here=True, holders=1)
    empty = queue(("C",), oldest=0, length=0, here=True)
    assert choose_queue([younger, empty, older], 0.1, 1.0) is older
    assert choose_queue([], 0.1, 1.0) is None


# ---------------------------------------------------------------- sessions


def test_a_session_goes_where_sessions_are_fewest_before_where_its_header_is() -> None:
    slots = [SlotLoad(0, sessions=2, holds_header=True, load=0), SlotLoad(1, 1, False, 50)]
    assert place_session(slots) == 1


def test_among_equally_many_sessions_the_header_then_the_load_then_the_index_decide() -> None:
    assert place_session([SlotLoad(0, 1, False, 0), SlotLoad(1, 1, True, 9)]) == 1
    assert place_session([SlotLoad(0, 1, False, 5), SlotLoad(1, 1, False, 2)]) == 1
    assert place_session([SlotLoad(0, 1, False, 2), SlotLoad(1, 1, False, 2)]) == 0


def test_remaining_work_counts_down_then_grows_with_an_overrun() -> None:
    assert remaining_work(expected=3.0, running_for=1.0) == pytest.approx(2.0)
    assert remaining_work(expected=3.0, running_for=3.0) == 0.0
    # 5 s past what was expected: expect 5 s more (a hang waiting for its timeout)
    assert remaining_work(expected=3.0, running_for=8.0) == pytest.approx(5.0)


def test_rebuilding_counts_replays_and_imports_with_their_penalty() -> None:
    assert rebuild_cost(4, 0, per_request=0.1, import_seconds=2.0) == pytest.approx(0.4)
    cost = rebuild_cost(4, 1, per_request=0.1, import_seconds=2.0)
    assert cost == pytest.approx(0.4 + IMPORT_PENALTY * 2.0)


def test_stealing_pays_only_when_waiting_costs_more_than_moving() -> None:
    # behind a 30 s hang, with 2 requests ahead: a 1 s rebuild on an idle slot pays
    assert steal_gain(30.0, 2, 0.1, thief_busy=0.0, rebuild=1.0) > 0
    # the busy slot is almost done: waiting 0.3 s beats a 1 s rebuild
    assert steal_gain(0.1, 2, 0.1, thief_busy=0.0, rebuild=1.0) < 0
    # a thief that is itself stuck (its own work overran by 60 s) takes nothing
    assert steal_gain(30.0, 2, 0.1, thief_busy=60.0, rebuild=0.0) < 0
