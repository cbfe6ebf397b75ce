"""The heartbeat budget: `set_option maxHeartbeats 0` rewritten to a finite limit (every form,
never inside comments or literals, positions kept), and end to end on the simulator: a runaway
fails fast as Lean's heartbeat error instead of a wall-clock timeout and a REPL restart."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leanpool import LeanPool
from leanpool._heartbeats import apply_heartbeat_budget, original_column
from leanpool._lean_text import code_only
from leanpool._verdict import VerdictPolicy
from leanpool.protocol import CommandResponse
from leanpool.testing import sim_config

BUDGET = 400000


def rewrite(code: str, **options: bool) -> tuple[str, list[tuple[int, int, int, bool]]]:
    text, rewrites = apply_heartbeat_budget(code, BUDGET, **options)
    return text, [(r.line, r.column, r.original, r.scoped) for r in rewrites]


# ---------------------------------------------------------------- the rewrite
def test_every_form_is_rewritten() -> None:
    code = (
        "set_option maxHeartbeats 0\n"
        "set_option maxHeartbeats 0 in\n"
        "theorem t : 1 = 1 := by\n"
        "  set_option maxHeartbeats 0 in\n"
        "  simp\n"
        "  set_option maxHeartbeats 0 in rfl\n"
        "example : True := by set_option maxHeartbeats 0x0 in trivial\n"
        "set_option «maxHeartbeats» 0 in\n"
        "set_option\n  maxHeartbeats   0 in\n"
    )
    text, found = rewrite(code)
    assert found == [
        (1, 25, 0, False),
        (2, 25, 0, True),
        (4, 27, 0, True),
        (6, 27, 0, True),
        (7, 46, 0, True),
        (8, 27, 0, True),
        (10, 18, 0, True),
    ]
    assert text == code.replace(" 0x0 ", f" {BUDGET} ").replace(" 0", f" {BUDGET}")
    assert not re.search(r"maxHeartbeats»?\s+0", text)


def test_values_above_the_budget_are_lowered_only_when_asked() -> None:
    code = "set_option maxHeartbeats 1000000 in\ntheorem t : 1 = 1 := rfl\n"
    assert rewrite(code) == (code, [])
    text, found = rewrite(code, lower=True)
    assert text == code.replace("1000000", str(BUDGET))
    assert found == [(1, 25, 1000000, True)]
    within = "set_option maxHeartbeats 200000\nset_option maxHeartbeats 400000\n"
    assert rewrite(within, lower=True) == (within, [])


@pytest.mark.parametrize(
    "code",
    [
        "set_option synthInstance.maxHeartbeats 0",  # a separate option, left alone
        "set_option maxHeartbeats 00.5",  # not a numeric literal Lean reads for a Nat option
        "set_option maxHeartbeatsX 0",
        "my.set_option maxHeartbeats 0",
        "-- set_option maxHeartbeats 0",
        "/- set_option maxHeartbeats 0 -/",
        "/- /- nested -/ set_option maxHeartbeats 0 -/",
        "/-- doc: set_option maxHeartbeats 0 -/\ntheorem t : True := trivial",
        'def s := "set_option maxHeartbeats 0"',
        'def s := "a \\" set_option maxHeartbeats 0"',
        'def s := r#"set_option maxHeartbeats 0 " still"#',
    ],
)
def test_what_is_not_a_setting_is_left_alone(code: str) -> None:
    assert rewrite(code) == (code, [])


def test_a_quote_in_a_character_literal_does_not_start_a_string() -> None:
    code = 'def q := \'"\'\nset_option maxHeartbeats 0 in\ndef r := "x"'
    assert rewrite(code)[1] == [(2, 25, 0, True)]
    primed = "theorem h' : True := trivial\nset_option maxHeartbeats 0\n-- it's"
    assert rewrite(primed)[1] == [(2, 25, 0, False)]


def test_a_budget_must_be_a_limit() -> None:
    for bad in (0, -1, True, 1.5):
        with pytest.raises((ValueError, TypeError)):
            apply_heartbeat_budget("x", bad)  # type: ignore[arg-type]
        with pytest.raises((ValueError, TypeError)):
            VerdictPolicy(heartbeat_budget=bad)  # type: ignore[arg-type]


_SETTING = st.sampled_from(
    [
        "set_option maxHeartbeats 0",
        "set_option maxHeartbeats 0 in",
        "  set_option maxHeartbeats 0 in simp",
        "set_option maxHeartbeats 123",
    ]
)
_NOISE = st.sampled_from(
    [
        "theorem t : 1 = 1 := by",
        "  rfl",
        "-- set_option maxHeartbeats 0",
        "/- set_option maxHeartbeats 0",
        "   still a comment: set_option maxHeartbeats 0 -/",
        'def s := "set_option maxHeartbeats 0"',
        "set_option synthInstance.maxHeartbeats 0",
        "",
        "  exact ⟨by simp, 'x'⟩",
    ]
)


@given(st.lists(st.one_of(_SETTING, _NOISE), max_size=12))
def test_only_settings_change_and_lines_keep_their_place(lines: list[str]) -> None:
    code = "\n".join(lines)
    text, rewrites = apply_heartbeat_budget(code, BUDGET)
    masked = code_only(code)
    before, after = code.split("\n"), text.split("\n")
    assert len(before) == len(after)
    changed = {r.line for r in rewrites}
    for number, (old, new) in enumerate(zip(before, after, strict=True), start=1):
        if number not in changed:
            assert old == new  # comments, strings, other lines: untouched
            continue
        for rewrite in (r for r in rewrites if r.line == number):
            # the value replaced was code (not in a comment or a string) and was 0
            start = sum(len(line) + 1 for line in before[: number - 1]) + rewrite.column
            assert masked[start] == "0" and rewrite.original == 0
        # everything before the value keeps its column; what follows maps back
        first = min(r.column for r in rewrites if r.line == number)
        assert new[:first] == old[:first]
        for column in range(len(new)):
            if column >= first + len(str(BUDGET)):
                assert new[column] == old[original_column(rewrites, number, column)]
    # what is left of a setting to 0 is only in comments and strings
    assert not re.search(r"set_option maxHeartbeats 0\b", code_only(text))


# ---------------------------------------------------------------- end to end on the simulator
RUNAWAY = "set_option maxHeartbeats 0 in\ntheorem t : 1 + 1 = 2 := by\n  norm_num --!sim runaway\n"


@pytest.fixture
def pool() -> Iterator[LeanPool]:
    with LeanPool(sim_config(), 1, timeout=3, progress=False) as p:
        yield p


def test_a_runaway_fails_fast_as_a_lean_error_under_the_budget(pool: LeanPool) -> None:
    pool.run("#eval 1")
    repl = pool.stats().workers[0]["repl_pid"]
    verification = pool.verify(RUNAWAY, heartbeat_budget=BUDGET)
    assert verification.status == "lean_error"
    assert verification.reasons == ("error", "max_heartbeats")
    assert verification.heartbeat_budget == BUDGET
    assert [(r.line, r.original, r.budget) for r in verification.heartbeats_rewritten] == [
        (1, 0, BUDGET)
    ]
    response = verification.response
    assert isinstance(response, CommandResponse)
    [error] = [m for m in response.messages if m.severity == "error"]
    assert error.data.startswith(
        f"(deterministic) timeout at `whnf`, maximum number of heartbeats ({BUDGET}) has been "
        "reached\n\nNote: Use `set_option maxHeartbeats <num>` to set the limit."
    )
    stats = pool.stats()
    assert stats.workers[0]["repl_pid"] == repl  # the same REPL: no restart
    assert "LeanTimeoutError" not in stats.failed


def test_the_pool_s_budget_is_every_verification_s_default() -> None:
    with LeanPool(sim_config(), 1, timeout=3, progress=False, heartbeat_budget=BUDGET) as pool:
        verification = pool.verify(RUNAWAY)
        assert verification.reasons == ("error", "max_heartbeats")
        assert verification.heartbeat_budget == BUDGET
        assert pool.verify(RUNAWAY, heartbeat_budget=150000).heartbeat_budget == 150000
    for wrong in (0, -1, 2.5, True, "100"):
        with pytest.raises(ValueError, match="heartbeat_budget"):
            LeanPool(sim_config(), 1, heartbeat_budget=wrong)  # type: ignore[arg-type]


def test_without_the_budget_a_runaway_hits_the_wall_clock_timeout(pool: LeanPool) -> None:
    verification = pool.verify(RUNAWAY)
    assert verification.status == "fault"
    assert verification.reasons == ("fault:LeanTimeoutError",)
    assert verification.heartbeat_budget is None and verification.heartbeats_rewritten == ()


def test_a_proof_within_the_budget_passes_and_columns_are_the_users(pool: LeanPool) -> None:
    code = "set_option maxHeartbeats 0 in theorem t : 2 = 2 := by rfl --!sim heartbeats=300000"
    passed = pool.verify(code, heartbeat_budget=BUDGET)
    assert passed.passed, passed.verdict
    over = pool.verify(code, heartbeat_budget=250000)
    assert over.reasons == ("error", "max_heartbeats")
    response = over.response
    assert isinstance(response, CommandResponse)
    # The simulator reports a directive's message at the directive: the column is where the
    # directive is in the text as written, not in the rewritten text (5 characters longer there).
    assert response.messages[0].start_pos.column == code.index("--!sim")


def test_the_budget_is_in_the_batch_record_and_the_summary(pool: LeanPool) -> None:
    with pool.batch(heartbeat_budget=BUDGET) as batch:
        batch.submit(RUNAWAY, id="runaway")
        batch.submit("theorem u : 2 = 2 := rfl", id="honest")
    records = {entry.id: json.loads(json.dumps(entry.record())) for entry in batch.results}
    assert records["runaway"]["verdict"] == "lean_error"
    assert records["runaway"]["heartbeat_budget"] == BUDGET
    assert [r["original"] for r in records["runaway"]["heartbeats_rewritten"]] == [0]
    assert records["honest"]["heartbeats_rewritten"] == []
    assert batch.summary().reasons["max_heartbeats"] == 1
