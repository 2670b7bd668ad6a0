"""Exercise: write the lock. `check_lock(fn)` runs a learner's conditional write, explains the
first thing it gets wrong, and shows what no lock without a lease can do.

The learner writes `fn(dynamodb, table, key, version, run_id, now) -> bool`: one UpdateItem
that takes the lock only if the item is still IDLE at the `version` that was read, and
returns True when it did, False when DynamoDB refused the condition. `key` is the item's key
in DynamoDB's typed form and `now` a UTC timestamp string.

The checker works on its own table (`lock_check`) on the local backend (`course.backend`):
the embedded one serves one request at a time and DynamoDB Local is Amazon's engine, so on
both each conditional write is atomic as it is in DynamoDB. In order:

1. one call on an IDLE item: True, and the item says RUNNING, names the run, version + 1;
2. a race: 32 threads that read the same item call `fn` at once: exactly one True;
3. a forced interleaving: two contenders read the same version; the first takes the lock and
   its run finishes; then the second writes with its old read: it must be refused;
4. an error that is not a refused condition (a missing table) is raised, not hidden;
5. a crashed holder (reported, not required in notebook 02): with no lease, the item stays
   RUNNING and every later trigger exits, so the job is wedged until notebook 04's lease.

Course tooling only: the Lambda never imports this module.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError

from jobcontroller.course.backend import connect_local
from jobcontroller.course.sent import SentRequest, capture
from jobcontroller.store import ControlStore

__all__ = ["RACERS", "LockReport", "check_lock", "solution_acquire"]

RACERS = 32
_TABLE = "lock_check"
_JOB = "lock_check"
_KEY = {"PK": {"S": f"JOB#{_JOB}"}, "SK": {"S": "STATE"}}
_NOW = "2026-01-05T09:00:05Z"
_TIMEOUT = 60.0

LockFn = Callable[..., Any]


@dataclass(frozen=True)
class LockReport:
    """What the lock checker found: checks passed, the first failure explained, what is next."""

    passed: tuple[str, ...]
    total: int
    headline: str = ""
    explanation: tuple[str, ...] = ()
    still_to_come: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.headline

    def text(self) -> str:
        done = [f"  ok   {line}" for line in self.passed] or ["  (none yet)"]
        if not self.ok:
            head = f"not yet: {self.headline}"
            return "\n".join([head, *self.explanation, "", "Checks passed so far:", *done])
        head = f"lock: all {self.total} checks passed."
        return "\n".join([head, *done, "", *self.still_to_come])

    def __repr__(self) -> str:
        return self.text()

    def __bool__(self) -> bool:
        return self.ok


class _Failed(Exception):
    """One check failed: a headline and the lines that explain it."""

    def __init__(self, headline: str, *lines: str) -> None:
        super().__init__(headline)
        self.headline = headline
        self.lines = lines


# --- reading what the learner sent ----------------------------------------------------------


def _condition(request: SentRequest | None) -> str | None:
    return None if request is None else request.params.get("ConditionExpression")


def _checks(request: SentRequest | None, attribute: str) -> bool:
    """Whether the request's condition refers to `attribute` (directly or by a #alias)."""
    condition = _condition(request)
    if not condition or request is None:
        return False
    names = request.params.get("ExpressionAttributeNames") or {}
    aliases = [alias for alias, name in names.items() if name == attribute]
    words = set(re.findall(r"#?[A-Za-z_][A-Za-z0-9_]*", condition))
    return attribute in words or any(alias in words for alias in aliases)


def _bare_status(request: SentRequest | None) -> bool:
    """Whether an expression uses the reserved word `status` without a #alias."""
    if request is None:
        return False
    for name in ("UpdateExpression", "ConditionExpression"):
        text = request.params.get(name) or ""
        if re.search(r"(?<![#:\w])status\b", text):
            return True
    return False


def _shown_condition(request: SentRequest | None) -> str:
    condition = _condition(request)
    return f"  your condition:  {condition}" if condition else "  your write has no condition."


# --- the item --------------------------------------------------------------------------------


def _item(dynamodb: Any) -> dict[str, Any]:
    response = dynamodb.get_item(TableName=_TABLE, Key=_KEY, ConsistentRead=True)
    return response.get("Item") or {}


def _value(item: dict[str, Any], name: str) -> str | None:
    attribute = item.get(name)
    if not attribute or "NULL" in attribute:
        return None
    ((_, value),) = attribute.items()
    return str(value)


def _fresh_item(store: ControlStore) -> None:
    """The job's IDLE control item at version 0, as init_job writes it."""
    from jobcontroller.clock import ManualClock

    store.delete_job(_JOB)
    store.init_job(_JOB, now=ManualClock("2026-01-05T09:00:00Z").now())


def _finish(dynamodb: Any, run_id: str) -> None:
    """The holder's run ends as the package's commit ends it: IDLE, version moved on, fenced."""
    dynamodb.update_item(
        TableName=_TABLE,
        Key=_KEY,
        UpdateExpression=(
            "SET #s = :idle, version = version + :one, run_count = run_count + :one, "
            "last_run_id = :run_id, run_id = :null"
        ),
        ConditionExpression="run_id = :run_id",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={
            ":idle": {"S": "IDLE"},
            ":one": {"N": "1"},
            ":run_id": {"S": run_id},
            ":null": {"NULL": True},
        },
    )


# --- calling the learner's function ----------------------------------------------------------


def _call(fn: LockFn, dynamodb: Any, version: int, run_id: str, table: str = _TABLE) -> Any:
    return fn(dynamodb, table, _KEY, version, run_id, _NOW)


def _raised(exc: Exception, request: SentRequest | None) -> _Failed:
    """Explain an exception that escaped the learner's function."""
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ConditionalCheckFailedException":
            return _Failed(
                "your function let ConditionalCheckFailedException out",
                "  A refused condition is the lock's answer 'another run holds it', not an error.",
                "  Catch ClientError, and return False when",
                "  err.response['Error']['Code'] == 'ConditionalCheckFailedException';",
                "  raise anything else again.",
            )
        if code == "ValidationException" and _bare_status(request):
            return _Failed(
                "DynamoDB refused the request: status is a reserved word",
                "  Write #s in your expressions and pass "
                "ExpressionAttributeNames={'#s': 'status'}.",
            )
        return _Failed(
            f"DynamoDB refused the request: {code}",
            f"  {exc.response.get('Error', {}).get('Message', '')}",
        )
    return _Failed(f"your function raised {type(exc).__name__}: {exc}")


def _one_call(fn: LockFn, dynamodb: Any, store: ControlStore) -> tuple[str, SentRequest | None]:
    """Check 1: one call on an IDLE item at version 0 takes the lock and says so."""
    _fresh_item(store)
    with capture(dynamodb, operations=["UpdateItem"]) as sent:
        try:
            answer = _call(fn, dynamodb, 0, "run-A")
        except Exception as exc:
            raise _raised(exc, sent[-1] if len(sent) else None) from None
    request = sent[-1] if len(sent) else None
    if request is None:
        raise _Failed(
            "your function sent no UpdateItem",
            "  Take the lock with dynamodb.update_item(...): one conditional write.",
        )
    if not isinstance(answer, bool):
        raise _Failed(
            f"your function returned {answer!r}",
            "  Return True when your write was accepted, False when its condition refused it.",
        )
    item = _item(dynamodb)
    if not answer:
        raise _Failed(
            "your function said it lost, on an IDLE item at version 0 that nobody holds",
            _shown_condition(request),
            "  The item was: status IDLE, version 0. Pass the version that was read (:v).",
        )
    if _value(item, "status") != "RUNNING":
        raise _Failed(
            f"after your write the item's status is {_value(item, 'status')}",
            "  Set it: SET #s = :running, with ':running': {'S': 'RUNNING'}.",
        )
    if _value(item, "run_id") != "run-A":
        raise _Failed(
            "the item does not say who holds the lock",
            "  SET run_id = :run_id as well: the fenced commit (notebook 04) checks it.",
        )
    if _value(item, "version") != "1":
        raise _Failed(
            f"the version did not move on (it is {_value(item, 'version')}, it should be 1)",
            "  SET version = :next, with ':next': {'N': str(version + 1)}.",
            "  Why: if a write leaves the version as it was, a request built from an older read",
            "  matches `version = :v` again as soon as the item is back at IDLE: the request",
            "  you saw succeed twice above. Every write must change the version.",
        )
    return "one call on an IDLE item: it took the lock (RUNNING, run-A, version 0 -> 1)", request


def _race(fn: LockFn, dynamodb: Any, store: ControlStore, request: SentRequest | None) -> str:
    """Check 2: many contenders that read the same item write at once: one winner."""
    _fresh_item(store)
    start = threading.Barrier(RACERS)
    answers: list[Any] = [None] * RACERS
    errors: list[Exception | None] = [None] * RACERS
    applied = []

    def count_applied(http_response: Any = None, **_: Any) -> None:
        if http_response is not None and http_response.status_code == 200:
            applied.append(1)

    def contend(index: int) -> None:
        try:
            start.wait(timeout=_TIMEOUT)
            answers[index] = _call(fn, dynamodb, 0, f"run-{index + 1:02d}")
        except Exception as exc:  # reported below
            errors[index] = exc

    event = "after-call.dynamodb.UpdateItem"
    dynamodb.meta.events.register(event, count_applied, unique_id="lock-check-race")
    try:
        threads = [threading.Thread(target=contend, args=(i,)) for i in range(RACERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        dynamodb.meta.events.unregister(event, unique_id="lock-check-race")
    raised = [e for e in errors if e is not None]
    if raised:
        failed = _raised(raised[0], request)
        count = f"  ({len(raised)} of {RACERS} racing threads raised it.)"
        raise _Failed(failed.headline, *failed.lines, count)
    winners = [f"run-{i + 1:02d}" for i, answer in enumerate(answers) if answer is True]
    holder = _value(_item(dynamodb), "run_id")
    story = (
        f"  {RACERS} threads read the same item (IDLE, version 0) and called your function at once;"
    )
    if len(winners) > 1 and _condition(request) is None:
        raise _Failed(
            "two winners: your write has no condition",
            story,
            f"  {len(winners)} of them returned True, so the workload would run "
            f"{len(winners)} times.",
            "  Add ConditionExpression='#s = :idle AND version = :v' (with ':idle' and ':v' in",
            "  ExpressionAttributeValues): DynamoDB checks the condition and writes in one step,",
            "  so only the first of the writes can pass.",
        )
    if len(winners) > len(applied) or (winners and holder not in winners):
        raise _Failed(
            "your function said True for a write DynamoDB refused",
            story,
            f"  {len(winners)} returned True, but DynamoDB applied {len(applied)} write(s) "
            f"and the item names {holder}.",
            "  Return True only when update_item returned; False when it raised "
            "ConditionalCheckFailedException.",
        )
    if len(winners) > 1:
        raise _Failed(
            f"{len(winners)} winners: your condition let more than one writer through",
            story,
            _shown_condition(request),
            "  Every one of them read status IDLE at version 0: require both in the condition.",
        )
    if not winners:
        raise _Failed(
            "nobody won the race",
            story,
            f"  all {RACERS} returned False, so nothing would ever run.",
            _shown_condition(request),
        )
    return f"{RACERS} racing threads that read the same item: exactly one took the lock"


def _live_holder(fn: LockFn, dynamodb: Any, request: SentRequest | None) -> str:
    """Check 3: with run-A holding the lock, a write built from reading that item is refused."""
    _call(fn, dynamodb, 0, "run-A")  # the item is fresh from the race's reset: IDLE, version 0
    held = _value(_item(dynamodb), "version")
    try:
        answer = _call(fn, dynamodb, int(held or 0), "run-B")
    except Exception as exc:
        raise _raised(exc, request) from None
    if answer is True:
        raise _Failed(
            "a live holder lost the lock: your condition does not check status",
            f"  run-A held the lock (RUNNING, version {held}). run-B read that item and called",
            "  your function without asking the gate first, and took the lock from run-A.",
            _shown_condition(request),
            "  Add #s = :idle to the condition: the lock must hold on its own, whatever the",
            "  caller checked before (the design card's condition has both clauses).",
        )
    return "a contender that read the item while run-A held it: refused"


def _stale(fn: LockFn, dynamodb: Any, store: ControlStore, request: SentRequest | None) -> str:
    """Check 3: a contender whose read is older than a whole run is refused."""
    _fresh_item(store)
    # Both contenders read the item now: IDLE, version 0.
    if _call(fn, dynamodb, 0, "run-A") is not True:
        raise _Failed("your function did not take an IDLE lock (run-A, version 0)")
    _finish(dynamodb, "run-A")
    version = _value(_item(dynamodb), "version")
    try:
        late = _call(fn, dynamodb, 0, "run-B")
    except Exception as exc:
        raise _raised(exc, request) from None
    if late is True:
        versioned = _checks(request, "version")
        fix = (
            "  Your condition checks the version, but the version you wrote did not stay moved on."
            if versioned
            else "  Add the version clause: AND version = :v, with ':v' the version run-B read."
        )
        raise _Failed(
            "a stale reader won: add the version clause",
            "  run-A and run-B both read the item at version 0, IDLE. run-A took the lock, ran",
            f"  and finished: the item was IDLE again, at version {version}. Then run-B's write",
            "  arrived, built from its old read, and your condition let it in: slot 09:00 ran",
            "  twice.",
            _shown_condition(request),
            fix,
            "  Every write moves the version on, so an old read can never match again.",
        )
    return (
        "a stale reader (read version 0, wrote after run-A's whole run): refused, nothing written"
    )


def _errors_surface(fn: LockFn, dynamodb: Any) -> str:
    """Check 4: only a refused condition means 'lost'; anything else is raised."""
    try:
        answer = _call(fn, dynamodb, 0, "run-A", table=f"{_TABLE}_missing")
    except Exception:
        return "an error that is not a refused condition (no such table): raised, not hidden"
    raise _Failed(
        "your function hid an error",
        f"  Called on a table that does not exist, it returned {answer!r} instead of raising.",
        "  Only ConditionalCheckFailedException means 'another run holds the lock'. Hiding",
        "  other errors makes a broken table look like a busy job: it never runs, and nobody",
        "  is told why. Return False for that one code; raise everything else.",
    )


def _wedged(dynamodb: Any) -> tuple[str, ...]:
    """What a crash does to a lock without a lease: the item stays RUNNING for good."""
    holder = _value(_item(dynamodb), "run_id") or "the holder"
    return (
        "Still to come (notebook 04): a crashed holder wedges the job.",
        f"  {holder} took the lock and crashed before releasing it. The item says RUNNING",
        "  and will say so for ever: the triggers at 10:00, at 11:00 and on every day after",
        "  read it and exit with RUNNING. Without a lease nobody can take over (rule 2).",
    )


def check_lock(fn: LockFn, *, dynamodb: Any = None) -> LockReport:
    """Run `fn(dynamodb, table, key, version, run_id, now)` through the lock's checks.

    It stops at the first check that fails and explains it; when all pass it says what a
    lock without a lease still cannot do. It runs on a local backend only (it races
    threads and drops its own table), never in an AWS account (ConfigError there).
    """
    # It races threads and drops its own table: never in an AWS account.
    local = connect_local(purpose="check_lock (it races threads and drops its own table)")
    if dynamodb is None:
        # One connection per racing thread, so none waits for another's socket.
        dynamodb = local.client("dynamodb", config=Config(max_pool_connections=RACERS + 4))
    store = ControlStore(_TABLE, client=dynamodb)
    store.create_table()
    passed: list[str] = []
    total = 5
    try:
        line, request = _one_call(fn, dynamodb, store)
        passed.append(line)
        passed.append(_race(fn, dynamodb, store, request))
        _fresh_item(store)
        passed.append(_live_holder(fn, dynamodb, request))
        passed.append(_stale(fn, dynamodb, store, request))
        passed.append(_errors_surface(fn, dynamodb))
    except _Failed as failed:
        return LockReport(tuple(passed), total, failed.headline, failed.lines)
    # The crash: run-A takes the lock and never comes back.
    _fresh_item(store)
    _call(fn, dynamodb, 0, "run-A")
    return LockReport(tuple(passed), total, still_to_come=_wedged(dynamodb))


def solution_acquire(
    dynamodb: Any, table: str, key: dict[str, Any], version: int, run_id: str, now: str
) -> bool:
    """One answer to the lock exercise: the design card's conditional write, made safe."""
    try:
        dynamodb.update_item(
            TableName=table,
            Key=key,
            # Take the lock, name the holder, and move the version on: every write does.
            UpdateExpression=(
                "SET #s = :running, version = :next, run_id = :run_id, last_run_ts = :now"
            ),
            # Nobody holds it, and nobody has written since we read it.
            ConditionExpression="#s = :idle AND version = :v",
            # `status` is a reserved word in DynamoDB expressions: refer to it by an alias.
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={
                ":running": {"S": "RUNNING"},
                ":idle": {"S": "IDLE"},
                ":v": {"N": str(version)},
                ":next": {"N": str(version + 1)},
                ":run_id": {"S": run_id},
                ":now": {"S": now},
            },
        )
    except ClientError as err:
        # The condition was false: another run got there first. Nothing was written.
        if err.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    return True
