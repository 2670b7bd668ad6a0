"""Notebook 04's exercise: write the fenced commit, and a checker that runs it in a takeover.

The learner writes `my_commit(client, table, key, run_id, history_item) -> bool`: one
`transact_write_items` call that releases the lock held by `run_id` and counts the run (an
Update of the control item) together with the Put of the run-history item, conditional on
that run still holding the lock. It returns True when DynamoDB accepted it and False when the
condition refused it.

`check_commit(my_commit, store)` builds a takeover on a scratch job in the same table
(`commit_check`, so the notebook's own job is untouched), then asks the learner's function to:

1. commit late for the run whose lease ended and whose lock was taken over: nothing may change;
2. the same late commit, but the takeover lands between a read the function makes and its
   write (only if it reads first: deciding in Python on a read is the naive lock again);
3. commit for the run that holds the lock now: the lock is released and the run counted once;
4. commit that same run again (a retried commit): nothing may change.

It explains the first case that goes wrong, using what actually happened to the item and the
request the function sent (captured from botocore, not guessed).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from jobcontroller.embedded import exported
from jobcontroller.model import JobState, Outcome, job_key, parse_ts
from jobcontroller.store import ControlStore, RunRecord, _to_ddb

__all__ = ["CHECK_JOB", "CommitReport", "check_commit", "show_commit_solution", "solution_commit"]

CHECK_JOB = "commit_check"
_OLD, _NEW = "run-old", "run-new"
_T_OLD = parse_ts("2026-01-05T09:00:05Z")
_T_NEW = parse_ts("2026-01-05T10:00:05Z")
_LEASE = timedelta(minutes=15)


@dataclass(frozen=True)
class CommitReport:
    """What the commit checker found: cases right, and the first wrong one explained."""

    right: int
    total: int
    explanation: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return self.right == self.total

    def text(self) -> str:
        if self.passed:
            return f"commit: {self.right} of {self.total} cases right. All correct: well done."
        head = f"commit: not yet ({self.right} of {self.total} cases right)."
        return "\n".join([head, *self.explanation])

    def __repr__(self) -> str:
        return self.text()

    def __bool__(self) -> bool:
        return self.passed


# --- what the learner's function did ---------------------------------------------------------


@dataclass
class _Attempt:
    """One call of the learner's function: its result, or what it raised, and what it sent."""

    returned: Any = None
    raised: BaseException | None = None
    sent: list[tuple[str, dict[str, Any]]] | None = None
    # Errors DynamoDB answered with, even those the function caught: (code, message).
    errors: list[tuple[str, str]] = field(default_factory=list)

    def rejected(self) -> tuple[str, str] | None:
        """The first error that was not a refused condition (a malformed request), if any."""
        refusals = ("TransactionCanceledException", "ConditionalCheckFailedException")
        return next((e for e in self.errors if e[0] not in refusals), None)

    def updates(self) -> list[dict[str, Any]]:
        """The control-item updates sent, alone or inside a transaction."""
        found = []
        for operation, params in self.sent or []:
            if operation == "UpdateItem":
                found.append(params)
            for part in (
                params.get("TransactItems", []) if operation == "TransactWriteItems" else []
            ):
                if "Update" in part:
                    found.append(part["Update"])
        return found

    def condition(self) -> str | None:
        """The update's condition with #names resolved ('' if it had none), None if no update."""
        updates = self.updates()
        if not updates:
            return None
        update = updates[0]
        text = update.get("ConditionExpression") or ""
        names = update.get("ExpressionAttributeNames") or {}
        return re.sub(r"#\w+", lambda m: names.get(m.group(0), m.group(0)), text)

    def operations(self) -> list[str]:
        return [operation for operation, _ in self.sent or []]


@contextmanager
def _capture(client: Any, attempt: _Attempt) -> Iterator[None]:
    """Record every request `client` sends inside the block (as botocore built it), and
    every error DynamoDB answers with, whether or not the caller catches it."""
    attempt.sent = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        assert attempt.sent is not None
        attempt.sent.append((model.name, copy.deepcopy(params)))

    def answered(parsed: Any = None, **_: Any) -> None:
        error = (parsed or {}).get("Error") or {}
        if error.get("Code"):
            attempt.errors.append((error["Code"], error.get("Message", "")))

    client.meta.events.register("provide-client-params.dynamodb", record)
    client.meta.events.register("after-call.dynamodb", answered)
    try:
        yield
    finally:
        client.meta.events.unregister("provide-client-params.dynamodb", record)
        client.meta.events.unregister("after-call.dynamodb", answered)


def _call(fn: Callable[..., Any], store: ControlStore, run_id: str, record: RunRecord) -> _Attempt:
    attempt = _Attempt()
    key = _to_ddb(job_key(CHECK_JOB))
    with _capture(store.client, attempt):
        try:
            attempt.returned = fn(store.client, store.table, key, run_id, _to_ddb(record.to_item()))
        except Exception as exc:
            attempt.raised = exc
    return attempt


def _rejected(attempt: _Attempt) -> tuple[str, ...]:
    """Lines explaining a malformed request that the function caught, or nothing."""
    rejected = attempt.rejected()
    if rejected is None or attempt.raised is not None:
        return ()
    code, message = rejected
    hint = ""
    if "reserved keyword" in message:
        hint = " (status is a reserved word: write #s and map it in ExpressionAttributeNames)"
    return (
        f"  DynamoDB rejected your request: {code}: {message}{hint}",
        "  your function caught that error and carried on: return False only for a refused "
        "condition (TransactionCanceledException with ConditionalCheckFailed) and re-raise "
        "anything else, so a mistake shows its message.",
    )


# --- the scenario ----------------------------------------------------------------------------


def _record(run_id: str, started: datetime, slot: str) -> RunRecord:
    return RunRecord(
        job=CHECK_JOB,
        run_id=run_id,
        started_at=started,
        finished_at=started + timedelta(seconds=1),
        outcome=Outcome.SUCCEEDED,
        slot=parse_ts(slot),
        source="scheduler",
        expires_at=int((started + timedelta(days=7)).timestamp()),
    )


def _old_holder(store: ControlStore) -> None:
    """The old run took the lock at 09:00:05 and went silent (its lease ended at 09:15:05)."""
    store.delete_job(CHECK_JOB)
    store.init_job(CHECK_JOB, now=_T_OLD)
    store.acquire(
        store.read(CHECK_JOB),
        run_id=_OLD,
        now=_T_OLD,
        lease_until=_T_OLD + _LEASE,
        slot=parse_ts("2026-01-05T09:00:00Z"),
    )


def _take_over(store: ControlStore) -> None:
    """The 10:00 slot takes the expired lock over."""
    store.acquire(
        store.read(CHECK_JOB),
        run_id=_NEW,
        now=_T_NEW,
        lease_until=_T_NEW + _LEASE,
        slot=parse_ts("2026-01-05T10:00:00Z"),
        takeover=True,
    )


def _history(store: ControlStore) -> set[str]:
    return {r.run_id for r in store.runs(CHECK_JOB, limit=50)}


def _raised(attempt: _Attempt, holder: bool) -> tuple[str, ...]:
    exc = attempt.raised
    assert exc is not None
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        message = exc.response.get("Error", {}).get("Message", "")
        if code == "TransactionCanceledException" and not holder:
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons") or []]
            return (
                f"  DynamoDB refused it (right: CancellationReasons {reasons}), but the "
                "exception escaped your function.",
                "  what to do: catch ClientError; when its code is TransactionCanceledException "
                "and a CancellationReasons entry says ConditionalCheckFailed, return False.",
            )
        if code == "TransactionCanceledException":
            reasons = exc.response.get("CancellationReasons") or []
            return (
                "  your condition refused the run that holds the lock "
                f"(CancellationReasons {[r.get('Code') for r in reasons]}).",
                "  what to do: the condition must hold while status is RUNNING and run_id is "
                "this run's id; compare run_id with the run_id argument.",
            )
        if code == "ConditionalCheckFailedException":
            return (
                "  a single update_item was refused and raised ConditionalCheckFailedException.",
                "  what to do: send the Update and the Put in one transact_write_items call "
                "(a refused transaction raises TransactionCanceledException), and catch it.",
            )
        hint = ""
        if "reserved keyword" in message:
            hint = " (status is a reserved word: write #s and map it in ExpressionAttributeNames)"
        return (f"  DynamoDB rejected the request: {code}: {message}{hint}",)
    return (f"  your function raised {type(exc).__name__}: {exc}",)


def _late_commit(store: ControlStore, fn: Callable[..., Any]) -> tuple[str, ...]:
    """Case 1: the old run commits after the takeover. Nothing may change."""
    _old_holder(store)
    _take_over(store)
    before, runs_before = store.raw_item(CHECK_JOB), _history(store)
    attempt = _call(fn, store, _OLD, _record(_OLD, _T_OLD, "2026-01-05T09:00:00Z"))
    after, runs_after = store.raw_item(CHECK_JOB), _history(store)
    if after != before:
        state = JobState.from_item(_plain(after), job=CHECK_JOB)
        changed = (
            f"  the item now says status {state.status.value}, run_id {state.run_id or '-'}, "
            f"last_run_id {state.last_run_id or '-'}: {_NEW}'s lock is gone."
        )
        condition = attempt.condition()
        if condition is None:
            problem = "  your commit sent no Update of the control item that could be checked."
        elif not condition:
            problem = (
                f"  your commit has no condition: the late run ({_OLD}) overwrote its "
                f"successor ({_NEW})."
            )
        elif "status" in condition and "run_id" not in condition:
            problem = (
                f"  you check status but not run_id (your condition: {condition}): the "
                f"successor's status is RUNNING too, so the late run's commit passed."
            )
        else:
            problem = f"  your condition ({condition}) held for the late run {_OLD}."
        return (
            f"First wrong answer: case 1 of 4, {_OLD} commits after {_NEW} took its lock over.",
            problem,
            changed,
            "  why: only the run that still holds the lock may write its outcome: "
            "#s = :running AND run_id = :me.",
        )
    if attempt.raised is not None:
        return ("First wrong answer: case 1 of 4, the late commit.", *_raised(attempt, False))
    if _rejected(attempt):
        return ("First wrong answer: case 1 of 4, the late commit.", *_rejected(attempt))
    if _OLD in runs_after - runs_before:
        return (
            "First wrong answer: case 1 of 4, the late commit.",
            "  the control item was left alone, but the late run's history item was written "
            f"(operations sent: {', '.join(attempt.operations())}).",
            "  why: the Update and the Put must be one transact_write_items call, so both "
            "happen or neither does.",
        )
    if attempt.returned is not False:
        return (
            "First wrong answer: case 1 of 4, the late commit.",
            f"  nothing changed (right), but your function returned {attempt.returned!r}.",
            "  what to do: return False when DynamoDB refuses the commit, True when it accepts it.",
        )
    return ()


def _read_then_write(store: ControlStore, fn: Callable[..., Any]) -> tuple[str, ...]:
    """Case 2: the takeover lands right after the function's first read, before its write."""
    _old_holder(store)
    # A second client, so the takeover is neither captured as the learner's request nor
    # caught by the hook below.
    rival = ControlStore(
        store.table,
        client=exported.new_session().client(
            "dynamodb",
            region_name=store.client.meta.region_name,
            endpoint_url=store.client.meta.endpoint_url,
        ),
    )
    fired: list[str] = []

    def after_read(model: Any, **_: Any) -> None:
        if not fired and model.name in ("GetItem", "Query", "BatchGetItem"):
            fired.append(model.name)
            _take_over(rival)

    before_takeover = store.raw_item(CHECK_JOB)
    store.client.meta.events.register("after-call.dynamodb", after_read)
    try:
        attempt = _call(fn, store, _OLD, _record(_OLD, _T_OLD, "2026-01-05T09:00:00Z"))
    finally:
        store.client.meta.events.unregister("after-call.dynamodb", after_read)
    if not fired:
        # No read: the commit landed while the old run still held the lock, which is right.
        return ()
    after = store.raw_item(CHECK_JOB)
    state = JobState.from_item(_plain(after), job=CHECK_JOB)
    if after != before_takeover and state.run_id != _NEW:
        return (
            f"First wrong answer: case 2 of 4, {_OLD} commits; {_NEW} takes the lock over "
            f"right after your {fired[0]}.",
            "  you read the item and decided in Python: between your read and your write the "
            f"lock was taken over, and your write overwrote {_NEW}'s lock.",
            "  why: put the check in the ConditionExpression, so DynamoDB checks it at the "
            "moment it writes; then no read is needed at all.",
        )
    if attempt.raised is not None:
        return ("First wrong answer: case 2 of 4, the late commit.", *_raised(attempt, False))
    return ()


def _plain(item: dict[str, Any] | None) -> dict[str, Any]:
    from jobcontroller.store import _from_ddb

    return _from_ddb(item or {})


def _holder_commit(store: ControlStore, fn: Callable[..., Any]) -> tuple[str, ...]:
    """Case 3: the run that holds the lock commits: released, counted once, history written."""
    _old_holder(store)
    _take_over(store)
    held = store.read(CHECK_JOB)
    attempt = _call(fn, store, _NEW, _record(_NEW, _T_NEW, "2026-01-05T10:00:00Z"))
    where = f"First wrong answer: case 3 of 4, {_NEW} (the holder) commits."
    if attempt.raised is not None:
        return (where, *_raised(attempt, True))
    if _rejected(attempt):
        return (where, *_rejected(attempt))
    state = JobState.from_item(_plain(store.raw_item(CHECK_JOB)), job=CHECK_JOB)
    problems = []
    if state.status.value != "IDLE" or state.run_id is not None:
        problems.append(
            f"  the lock was not released: status {state.status.value}, run_id "
            f"{state.run_id or '-'} (set status to IDLE and REMOVE run_id)."
        )
    if state.version == held.version:
        problems.append(
            f"  version not bumped (still {held.version}): every write must bump it, or a "
            "reader holding the old version could still take the lock with version = :v."
        )
    elif state.version != held.version + 1:
        problems.append(
            f"  version went from {held.version} to {state.version}: bump it by exactly one."
        )
    if state.run_count != held.run_count + 1:
        problems.append(
            f"  run_count went from {held.run_count} to {state.run_count}: count the run once "
            "(run_count = run_count + :one)."
        )
    if _NEW not in _history(store):
        problems.append("  no run-history item: Put history_item in the same transaction.")
    if not problems and attempt.returned is not True:
        problems.append(f"  it committed, but your function returned {attempt.returned!r}.")
    if problems:
        return (where, problems[0], *problems[1:2])
    return ()


def _retried_commit(store: ControlStore, fn: Callable[..., Any]) -> tuple[str, ...]:
    """Case 4: the holder's commit, sent again after it succeeded: nothing may change."""
    before = store.raw_item(CHECK_JOB)
    attempt = _call(fn, store, _NEW, _record(_NEW, _T_NEW, "2026-01-05T10:00:00Z"))
    where = f"First wrong answer: case 4 of 4, {_NEW}'s commit sent a second time."
    if store.raw_item(CHECK_JOB) != before:
        return (
            where,
            "  the repeated commit changed the item again (the run is counted twice).",
            "  why: after the first commit the lock is released (status IDLE, no run_id), "
            "so a condition on both status and run_id refuses the repeat.",
        )
    if attempt.raised is not None:
        return (where, *_raised(attempt, False))
    if attempt.returned is not False:
        return (
            where,
            f"  nothing changed (right), but your function returned {attempt.returned!r}.",
        )
    return ()


def check_commit(fn: Callable[..., Any], store: ControlStore) -> CommitReport:
    """Run `fn(client, table, key, run_id, history_item)` in a takeover; explain the first miss.

    It works on the scratch job `commit_check` in `store`'s table and deletes it afterwards.
    """
    cases = (_late_commit, _read_then_write, _holder_commit, _retried_commit)
    right = 0
    first: tuple[str, ...] = ()
    try:
        for case in cases:
            problem = case(store, fn)
            if problem:
                first = problem
                break
            right += 1
    finally:
        store.delete_job(CHECK_JOB)
    return CommitReport(right, len(cases), first)


def solution_commit(
    client: Any, table: str, key: dict[str, Any], run_id: str, history_item: dict[str, Any]
) -> bool:
    """One answer: release and count, fenced on this run still holding the lock, with the Put."""
    try:
        client.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": table,
                        "Key": key,
                        "UpdateExpression": (
                            "SET #s = :idle, version = version + :one, "
                            "run_count = run_count + :one, last_run_id = :me "
                            "REMOVE run_id, lease_expires_at"
                        ),
                        # The fence: only the run that still holds the lock may commit.
                        "ConditionExpression": "#s = :running AND run_id = :me",
                        "ExpressionAttributeNames": {"#s": "status"},
                        "ExpressionAttributeValues": {
                            ":idle": {"S": "IDLE"},
                            ":running": {"S": "RUNNING"},
                            ":me": {"S": run_id},
                            ":one": {"N": "1"},
                        },
                    }
                },
                {"Put": {"TableName": table, "Item": history_item}},
            ]
        )
    except ClientError as exc:
        reasons = exc.response.get("CancellationReasons") or []
        if any(r.get("Code") == "ConditionalCheckFailed" for r in reasons):
            return False
        raise
    return True


def show_commit_solution(*, reveal: bool = True) -> None:
    """Print the reference `my_commit`; with `reveal=False` only say how to reveal it."""
    import inspect

    if not reveal:
        print(
            "The solution to the 'commit' exercise is hidden. Change reveal=False to "
            "reveal=True in this cell and run it again to see it."
        )
        return
    print(inspect.getsource(solution_commit))
