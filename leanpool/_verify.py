"""Verifying one submission on a pool: Lean's answer, then Lean's own word on what it proves.

A submission's path (the policy is `leanpool._verdict`'s):

1. Its text is scanned for options and commands the policy refuses: found, it is ``rejected``
   at once and never runs.
2. One command runs it, with the reference statement (when given) declared first::

       <trusted header: the dataset's header, or the submission's import lines>
       theorem __leanpool_reference <the reference's binders and type> := sorry
       <the submission>

   The reference is elaborated before anything of the submission, so no notation, instance or
   `open` of the submission changes what it means. Positions are reported as if the reference
   line were not there, and its own messages (the `sorry` warning) are dropped.
3. When Lean reported no error, one more command in the submission's environment asks Lean what
   it proved: ``#print axioms`` for every theorem the submission declares, and for the reference
   theorem ``example : type_of% @NAME = type_of% @__leanpool_reference := by with_reducible
   rfl``. Both run on the same worker, on the same REPL (a pool session): no second import.

The verdict follows from both answers. Identical verifications in flight run once, and recent
ones are answered again from a small cache (answers are deterministic).
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from leanpool._errors import Blame, LeanPoolError, RequestError
from leanpool._futures import result_of
from leanpool._heartbeats import HeartbeatRewrite, apply_heartbeat_budget, original_column
from leanpool._lean_text import clean_theorem_string, remove_lean_comments
from leanpool._routing import split_header
from leanpool._verdict import Verdict, VerdictPolicy, parse_axioms_message
from leanpool.protocol import Command, CommandResponse, LeanError, ProofStepResponse

if TYPE_CHECKING:
    from leanpool._pool import PoolPort
    from leanpool._pool_session import PoolSession

REFERENCE_NAME = "__leanpool_reference"
_DECLARATION = re.compile(r"\b(theorem|lemma)\s+([^\s:({\[⦃]+)")
_SCOPE = re.compile(r"\b(namespace|section|end)\b[ \t]*([^\s]*)")
_CACHE_SIZE = 4096
# Lean's message when a command's `maxHeartbeats` is spent (`throwMaxHeartbeat`, Lean 4
# src/Lean/CoreM.lean): "(deterministic) timeout at `whnf`, maximum number of heartbeats
# (200000) has been reached" and a note naming the option (also `synthInstance.maxHeartbeats`).
_MAX_HEARTBEATS = re.compile(r"maximum number of heartbeats \(\d+\) has been reached")


@dataclass(frozen=True)
class Submission:
    """What to verify: code, and optionally the dataset's header and reference statement."""

    code: str
    formal_statement: str | None = None
    header: str | None = None


@dataclass(frozen=True)
class Verification:
    """A submission's verdict, with Lean's answer (or the error that stopped it)."""

    verdict: Verdict
    response: CommandResponse | ProofStepResponse | LeanError | None = None
    error: BaseException | None = None  # what stopped the verdict (a fault), if anything
    axioms: dict[str, list[str]] = field(default_factory=dict)  # per declared theorem
    seconds: float = 0.0
    # The policy's heartbeat budget (None: none), and the `set_option maxHeartbeats` values it
    # replaced (positions as the response's messages give them).
    heartbeat_budget: int | None = None
    heartbeats_rewritten: tuple[HeartbeatRewrite, ...] = ()

    @property
    def passed(self) -> bool:
        return self.verdict.passed

    @property
    def status(self) -> str:
        return self.verdict.status

    @property
    def reasons(self) -> tuple[str, ...]:
        return self.verdict.reasons

    @property
    def blame(self) -> Blame | None:
        """Whose fault a verdict other than "passed" is (`blame_of`)."""
        return blame_of(self.status, self.error)


def blame_of(status: str | None, error: object) -> Blame | None:
    """Whose fault a result is: None when it passed; the code's ("proof") when Lean rejected
    it or the policy did; else the error's own `LeanPoolError.blame` (a timeout is the
    code's, a lost worker the machine's)."""
    if status == "passed" or status is None:
        return None
    if status in ("lean_error", "rejected"):
        return "proof"
    if isinstance(error, LeanPoolError):
        return error.blame
    return "infrastructure"


@dataclass(frozen=True)
class _Plan:
    """The command that runs a submission, and what to ask about it afterwards."""

    text: str
    reference_line: int | None  # 1-based line of the declared reference (None: no reference)
    theorem: str | None  # the reference's theorem name
    declared: tuple[str, ...]  # theorems the submission declares (full names)
    body: str  # the submission's own text (what the policy scans)
    rewrites: tuple[HeartbeatRewrite, ...] = ()  # heartbeat budget (lines as reported)

    def checks(self, policy: VerdictPolicy) -> list[tuple[str, str]]:
        """(what, command line) for the second command; empty: nothing to ask."""
        lines: list[tuple[str, str]] = []
        if policy.check_axioms:
            lines.extend((f"axioms:{name}", f"#print axioms {name}") for name in self.declared)
        if self.theorem is not None:
            lines.append(
                (
                    "statement",
                    f"example : type_of% @{self.theorem} = type_of% @{REFERENCE_NAME} := by "
                    "with_reducible rfl",
                )
            )
        return lines


def plan_submission(submission: Submission, policy: VerdictPolicy | None = None) -> _Plan:
    """Where the reference goes, which theorems the submission declares, and (with the
    policy's heartbeat budget) its text with the budget applied.

    Raises `RequestError` for a reference statement that holds no theorem.
    """
    code = submission.code
    header = submission.header if submission.header and submission.header.strip() else None
    if header is not None:
        if code.startswith(header):
            trusted, body = header, code[len(header) :]
        else:
            trusted, body = header.rstrip("\n") + "\n\n", code
    else:
        split = split_header(code)
        trusted, body = (split.header, split.body) if split is not None else ("", code)
    if trusted and not trusted.endswith("\n"):
        trusted += "\n"
    rewrites: tuple[HeartbeatRewrite, ...] = ()
    if policy is not None and policy.heartbeat_budget is not None:
        body, rewrites = apply_heartbeat_budget(
            body, policy.heartbeat_budget, lower=policy.lower_heartbeats
        )
        above = trusted.count("\n")  # lines as reported: the trusted header's, then the body's
        rewrites = tuple(dataclasses.replace(r, line=r.line + above) for r in rewrites)
    declared = declared_theorems(body)
    if submission.formal_statement is None:
        return _Plan(trusted + body, None, None, tuple(declared), body, rewrites)
    theorem, reference = reference_declaration(submission.formal_statement)
    if theorem not in declared:
        declared.append(theorem)
    text = trusted + reference + "\n" + body
    return _Plan(text, trusted.count("\n") + 1, theorem, tuple(declared), body, rewrites)


def reference_declaration(statement: str) -> tuple[str, str]:
    """(theorem name, one line declaring the reference statement as `__leanpool_reference`)."""
    without_comments = remove_lean_comments(statement)
    found = _DECLARATION.search(without_comments or "")
    cleaned = clean_theorem_string(statement, REFERENCE_NAME, add_sorry=False)
    if found is None or cleaned is None:
        raise RequestError(
            "The reference statement holds no theorem or lemma: "
            f"{statement.strip()[:200]!r}. Give it as the dataset does, e.g. "
            "'theorem name (x : Nat) : x + 0 = x := by sorry'."
        )
    name = found.group(2).removeprefix("_root_.")
    return name, " ".join(cleaned.split()) + " := sorry"


def declared_theorems(code: str) -> list[str]:
    """Full names of the theorems and lemmas `code` declares (namespaces followed)."""
    text = remove_lean_comments(code) or code
    events: list[tuple[int, str, str]] = []
    for match in _SCOPE.finditer(text):
        events.append((match.start(), match.group(1), match.group(2)))
    for match in _DECLARATION.finditer(text):
        events.append((match.start(), "decl", match.group(2)))
    scopes: list[tuple[str, str]] = []  # ("namespace" | "section", name)
    names: list[str] = []
    for _start, kind, name in sorted(events):
        if kind in ("namespace", "section"):
            scopes.append((kind, name if kind == "namespace" else ""))
        elif kind == "end":
            if scopes:
                scopes.pop()
        else:
            if name.startswith("_root_."):
                full = name.removeprefix("_root_.")
            else:
                prefix = [part for kind_, part in scopes if kind_ == "namespace" and part]
                full = ".".join([*prefix, name])
            if full not in names:
                names.append(full)
    return names


# ---------------------------------------------------------------- judging the answers
def judge(
    plan: _Plan | None,
    policy: VerdictPolicy,
    first: Any,
    checks: Any = None,
) -> tuple[Verdict, Any, dict[str, list[str]]]:
    """(verdict, the response as the caller should see it, axioms per theorem)."""
    if isinstance(first, BaseException):
        return Verdict("fault", (f"fault:{type(first).__name__}",)), first, {}
    if isinstance(first, LeanError):
        return Verdict("lean_error", ("repl_refused",)), first, {}
    if isinstance(first, ProofStepResponse):
        return _judge_step(first, policy), first, {}
    if not isinstance(first, CommandResponse):
        return Verdict("fault", ("fault:unexpected_answer",)), first, {}
    response = first
    if plan is not None and plan.reference_line is not None:
        response, reference_errors = _without_reference(first, plan.reference_line)
        if reference_errors:
            verdict = Verdict("fault", ("reference_error",), {"errors": reference_errors})
            return verdict, _as_written(response, plan.rewrites), {}
    if plan is not None and plan.rewrites:
        response = _as_written(response, plan.rewrites)
    if response.has_errors():
        return Verdict("lean_error", _error_reasons(response)), response, {}
    reasons: list[str] = []
    if not policy.allow_sorry and _uses_sorry(response):
        reasons.append("sorry")
    axioms: dict[str, list[str]] = {}
    if plan is not None and plan.checks(policy):
        if isinstance(checks, BaseException):
            reasons_ = (f"fault:{type(checks).__name__}",)
            return Verdict("fault", reasons_), response, {}
        found = _read_checks(plan, policy, checks, axioms)
        reasons.extend(r for r in found if r not in reasons)
    if reasons:
        return Verdict("rejected", tuple(reasons)), response, axioms
    return Verdict("passed"), response, axioms


def _error_reasons(response: CommandResponse | ProofStepResponse) -> tuple[str, ...]:
    """``error``, and ``max_heartbeats`` when Lean ran out of heartbeats (a runaway)."""
    runaway = any(
        m.severity == "error" and _MAX_HEARTBEATS.search(m.data) for m in response.messages
    )
    return ("error", "max_heartbeats") if runaway else ("error",)


def _as_written(response: CommandResponse, rewrites: tuple[HeartbeatRewrite, ...]) -> Any:
    """The response with columns as in the submission as written: on a line where a heartbeat
    value was rewritten, what follows the value moved by the difference in length."""
    if not rewrites:
        return response
    lines = {r.line for r in rewrites}

    def restored(item: Any) -> Any:
        update: dict[str, Any] = {}
        for key in ("start_pos", "end_pos"):
            pos = getattr(item, key, None)
            if pos is not None and pos.line in lines:
                column = original_column(rewrites, pos.line, pos.column)
                if column != pos.column:
                    update[key] = pos.model_copy(update={"column": column})
        return item.model_copy(update=update) if update else item

    return response.model_copy(
        update={
            "messages": [restored(m) for m in response.messages],
            "sorries": [restored(s) for s in response.sorries],
        }
    )


def _judge_step(step: ProofStepResponse, policy: VerdictPolicy) -> Verdict:
    if step.has_errors():
        return Verdict("lean_error", _error_reasons(step))
    if step.proof_status != "Completed":
        sorry = step.proof_status is not None and "sorry" in step.proof_status
        if not (sorry and policy.allow_sorry):
            return Verdict("rejected", ("sorry" if sorry else "incomplete",))
    return Verdict("passed")


def _uses_sorry(response: CommandResponse) -> bool:
    return bool(response.sorries) or any(
        m.severity == "warning" and "declaration uses 'sorry'" in m.data.replace("`", "'")
        for m in response.messages
    )


def _read_checks(
    plan: _Plan, policy: VerdictPolicy, checks: Any, axioms: dict[str, list[str]]
) -> list[str]:
    """Reasons from the check command's answer (filling `axioms`); fails closed."""
    lines = plan.checks(policy)
    if isinstance(checks, LeanError) or not isinstance(checks, CommandResponse):
        return ["check_failed"]
    by_line: dict[int, list[Any]] = {}
    for message in checks.messages:
        by_line.setdefault(message.start_pos.line, []).append(message)
    reasons: list[str] = []
    for number, (what, _command) in enumerate(lines, start=1):
        messages = by_line.get(number, [])
        errors = [m for m in messages if m.severity == "error"]
        if what == "statement":
            if errors:
                unknown = any("unknown" in m.data.lower() for m in errors)
                reasons.append("statement_missing" if unknown else "statement_mismatch")
            continue
        name = what.removeprefix("axioms:")
        parsed = next(
            (
                p
                for p in (parse_axioms_message(m.data) for m in messages if m.severity == "info")
                if p is not None
            ),
            None,
        )
        if errors or parsed is None:
            missing = name == plan.theorem
            reasons.append("statement_missing" if missing else f"check_failed:{name}")
            continue
        axioms[name] = parsed[1]
        reasons.extend(r for r in policy.axiom_reasons(parsed[1]) if r not in reasons)
    return reasons


def _without_reference(response: CommandResponse, line: int) -> tuple[CommandResponse, list[str]]:
    """The response as if the reference line were not there, and the errors on that line."""
    errors: list[str] = []
    messages = []
    for message in response.messages:
        if message.start_pos.line == line:
            if message.severity == "error":
                errors.append(message.data)
            continue  # the reference's own `sorry` warning
        messages.append(_moved(message, line))
    sorries = [
        _moved(s, line) for s in response.sorries if s.start_pos is None or s.start_pos.line != line
    ]
    return response.model_copy(update={"messages": messages, "sorries": sorries}), errors


def _moved(item: Any, line: int) -> Any:
    """`item` with positions after the reference line moved up by one line."""
    update: dict[str, Any] = {}
    for key in ("start_pos", "end_pos"):
        pos = getattr(item, key, None)
        if pos is not None and pos.line > line:
            update[key] = pos.model_copy(update={"line": pos.line - 1})
    return item.model_copy(update=update) if update else item


# ---------------------------------------------------------------- running on a pool
class Verifier:
    """Runs verifications on one pool; folds identical ones and remembers recent verdicts."""

    def __init__(self, pool: PoolPort, remember: bool) -> None:
        self._pool = pool
        self._remember = remember
        self._lock = threading.Lock()
        self._in_flight: dict[tuple[Any, ...], Future[Verification]] = {}
        self._done: OrderedDict[tuple[Any, ...], Verification] = OrderedDict()

    def submit(
        self, submission: Submission, policy: VerdictPolicy, timeout: float | None
    ) -> Future[Verification]:
        """A future of the verification (bad input raises `RequestError` here)."""
        started = time.monotonic()
        plan = plan_submission(submission, policy)
        forbidden = policy.forbidden(plan.body)
        if forbidden:
            future: Future[Verification] = Future()
            rejected = Verification(
                Verdict("rejected", tuple(forbidden)),
                seconds=0.0,
                heartbeat_budget=policy.heartbeat_budget,
                heartbeats_rewritten=plan.rewrites,
            )
            future.set_result(rejected)
            return future
        key = (plan.text, policy, timeout) if self._remember else None
        if key is not None:
            with self._lock:
                if key in self._done:
                    self._done.move_to_end(key)
                    done: Future[Verification] = Future()
                    done.set_result(self._done[key])
                    return done
                if key in self._in_flight:
                    return _follow(self._in_flight[key])
        result: Future[Verification] = Future()
        if key is not None:
            with self._lock:
                self._in_flight[key] = result
            result.add_done_callback(partial(self._finished, key))
        needs_checks = bool(plan.checks(policy))
        if needs_checks:
            session = self._pool.session()
            first = session.submit(Command(cmd=plan.text), timeout=timeout)
        else:
            session = None
            first = self._pool.submit(Command(cmd=plan.text), timeout=timeout)
        _chain(first, result)
        first.add_done_callback(
            lambda f: self._after_first(f, plan, policy, timeout, session, result, started)
        )
        return result

    def _after_first(
        self,
        first: Future[Any],
        plan: _Plan,
        policy: VerdictPolicy,
        timeout: float | None,
        session: PoolSession | None,
        result: Future[Verification],
        started: float,
    ) -> None:
        first_result = result_of(first)
        if result.done():  # cancelled meanwhile
            _close(session)
            return
        env = getattr(first_result, "env", None)
        needs_checks = session is not None and isinstance(first_result, CommandResponse)
        if needs_checks:
            response, reference_errors = (
                _without_reference(first_result, plan.reference_line)
                if plan.reference_line is not None
                else (first_result, [])
            )
            needs_checks = not reference_errors and not response.has_errors() and env is not None
        if not needs_checks:
            _close(session)
            _finish(result, plan, policy, first_result, None, started)
            return
        assert session is not None
        checks_text = "\n".join(command for _what, command in plan.checks(policy))
        try:
            second = self._pool.submit(
                Command(cmd=checks_text, env=env), timeout=timeout, session=session, urgent=True
            )
        except LeanPoolError as exc:  # the pool shut down meanwhile
            _close(session)
            _finish(result, plan, policy, first_result, exc, started)
            return
        _chain(second, result)

        def after_checks(done: Future[Any]) -> None:
            _close(session)
            if not result.done():
                _finish(result, plan, policy, first_result, result_of(done), started)

        second.add_done_callback(after_checks)

    def _finished(self, key: tuple[Any, ...], future: Future[Verification]) -> None:
        with self._lock:
            if self._in_flight.get(key) is future:
                del self._in_flight[key]
            if future.cancelled() or future.exception() is not None:
                return
            verification = future.result()
            if verification.verdict.status != "fault":  # faults may not repeat
                self._done[key] = verification
                while len(self._done) > _CACHE_SIZE:
                    self._done.popitem(last=False)


def _finish(
    result: Future[Verification],
    plan: _Plan,
    policy: VerdictPolicy,
    first: Any,
    checks: Any,
    started: float,
) -> None:
    verdict, response, axioms = judge(plan, policy, first, checks)
    error = response if isinstance(response, BaseException) else None
    if error is None and verdict.status == "fault" and isinstance(checks, BaseException):
        error = checks  # the check command met the fault: it is what stopped the verdict
    shown = None if isinstance(response, BaseException) else response
    with contextlib.suppress(Exception):  # InvalidStateError: cancelled meanwhile
        result.set_result(
            Verification(
                verdict,
                shown,
                error,
                axioms,
                time.monotonic() - started,
                policy.heartbeat_budget,
                plan.rewrites,
            )
        )


def _chain(inner: Future[Any], outer: Future[Verification]) -> None:
    """Cancelling the verification cancels the request it waits for."""
    outer.add_done_callback(lambda f: inner.cancel() if f.cancelled() else None)


def _follow(leader: Future[Verification]) -> Future[Verification]:
    """A future of its own that gets the leader's verification (cancelling it cancels only it)."""
    follower: Future[Verification] = Future()

    def copy(done: Future[Verification]) -> None:
        with contextlib.suppress(Exception):
            if done.cancelled():
                follower.cancel()
            elif done.exception() is not None:
                follower.set_exception(done.exception())
            else:
                follower.set_result(done.result())

    leader.add_done_callback(copy)
    return follower


def _close(session: PoolSession | None) -> None:
    if session is not None:
        with contextlib.suppress(Exception):
            session.close()
