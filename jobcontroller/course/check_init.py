"""Exercise (notebook 01): write a job's set-up. `check_init(fn, ...)` runs a learner's
`put_item` for a second job and explains the first thing it gets wrong.

The learner writes `fn(dynamodb, table, job) -> bool`: one `put_item` of the job's IDLE
control item in DynamoDB's typed form, conditional so that it never replaces an item that is
already there; True when it wrote the item, False when DynamoDB refused the condition. The
checker, on the course's table and a job of its own (deleted afterwards):

1. set-up on a table without the job: True, and the package can read the item (`JobState`:
   key, `status` IDLE, `version` and counters as numbers);
2. the job runs (the item moves on: version and run_count change), then set-up again: False,
   and the item is exactly as the run left it;
3. an error that is not a refused condition (a missing table) is raised, not hidden.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from jobcontroller.errors import JobControllerError
from jobcontroller.model import JobState, job_key
from jobcontroller.store import ControlStore

__all__ = ["InitReport", "check_init", "solution_init"]

JOB = "nightly_report"

InitFn = Callable[[Any, str, str], Any]


@dataclass(frozen=True)
class InitReport:
    """Checks passed, and the first failure with what to change."""

    passed: tuple[str, ...]
    headline: str = ""
    explanation: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.headline

    def text(self) -> str:
        done = [f"  ok   {line}" for line in self.passed] or ["  (none yet)"]
        if self.ok:
            return "\n".join(["set-up: all 3 checks passed.", *done])
        return "\n".join(
            [f"not yet: {self.headline}", *self.explanation, "", "Checks passed so far:", *done]
        )

    def __repr__(self) -> str:
        return self.text()

    def __bool__(self) -> bool:
        return self.ok


class _Failed(Exception):
    def __init__(self, headline: str, *explanation: str) -> None:
        super().__init__(headline)
        self.headline = headline
        self.explanation = explanation


def _call(fn: InitFn, dynamodb: Any, table: str) -> Any:
    try:
        return fn(dynamodb, table, JOB)
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        if code == "ConditionalCheckFailedException":
            raise _Failed(
                "your function let ConditionalCheckFailedException escape.",
                "A refused condition is an answer, not an error: catch ClientError, and return",
                "False when err.response['Error']['Code'] is 'ConditionalCheckFailedException'",
                "(raise anything else again).",
            ) from None
        raise _Failed(
            f"DynamoDB refused the request: {code}.",
            f"  {exc.response['Error'].get('Message', '')[:160]}",
            "Check the item's typed form ({'S': ...}, {'N': '0'}) and the key attributes.",
        ) from None


def _first_call(fn: InitFn, dynamodb: Any, table: str, store: ControlStore) -> JobState:
    answer = _call(fn, dynamodb, table)
    raw = store.raw_item(JOB)
    if raw is None:
        raise _Failed(
            "no item was written for the job.",
            f"Write the key {job_key(JOB)} (PK 'JOB#<job>', SK 'STATE') with put_item.",
        )
    if answer is not True:
        raise _Failed(
            f"the item was written, but your function returned {answer!r}.",
            "Return True when put_item succeeds, so the caller knows it created the job.",
        )
    try:
        return store.read(JOB)
    except JobControllerError as exc:
        raise _Failed(
            "the package cannot read the item you wrote.",
            f"  {str(exc).split('. Nothing was changed')[0]}.",
            "Numbers are {'N': '0'} (text inside), strings {'S': ...}, an empty field "
            "{'NULL': True}.",
        ) from None


def _second_call(fn: InitFn, dynamodb: Any, table: str, store: ControlStore) -> None:
    store.client.update_item(
        TableName=table,
        Key={"PK": {"S": f"JOB#{JOB}"}, "SK": {"S": "STATE"}},
        UpdateExpression="SET version = :v, run_count = :r",
        ExpressionAttributeValues={":v": {"N": "7"}, ":r": {"N": "3"}},
    )
    before = store.raw_item(JOB)
    answer = _call(fn, dynamodb, table)
    after = store.raw_item(JOB)
    if after != before:
        raise _Failed(
            "set-up replaced a live item: the run's version 7 and run_count 3 are gone.",
            "put_item replaces the whole item unless a condition stops it. Add",
            "ConditionExpression='attribute_not_exists(PK)': write only if there is no such item.",
        )
    if answer is not False:
        raise _Failed(
            f"the item was left alone, but your function returned {answer!r}.",
            "Return False when the condition refused the write: the job existed already.",
        )


def _missing_table(fn: InitFn, dynamodb: Any) -> None:
    try:
        answer = fn(dynamodb, "no_such_table_for_the_check", JOB)
    except ClientError:
        return
    raise _Failed(
        f"on a table that does not exist your function returned {answer!r}.",
        "Only a refused condition means 'already there'; raise any other error again, so a",
        "missing table or a typo is seen, not taken for success.",
    )


def check_init(fn: InitFn, store: ControlStore) -> InitReport:
    """Run `fn(dynamodb, table, job)` through the set-up checks on `store`'s table."""
    passed: list[str] = []
    try:
        store.delete_job(JOB)
        state = _first_call(fn, store.client, store.table, store)
        passed.append(f"the first set-up wrote a readable item: {state.status.value}, version 0")
        _second_call(fn, store.client, store.table, store)
        passed.append("set-up again after a run: refused, the run's item untouched, False")
        _missing_table(fn, store.client)
        passed.append("a missing table is raised, not taken for 'already there'")
    except _Failed as failed:
        return InitReport(tuple(passed), failed.headline, failed.explanation)
    finally:
        store.delete_job(JOB)
    return InitReport(tuple(passed))


def solution_init(dynamodb: Any, table: str, job: str) -> bool:
    """One answer to the set-up exercise."""
    item = {
        "PK": {"S": f"JOB#{job}"},
        "SK": {"S": "STATE"},
        "status": {"S": "IDLE"},
        "version": {"N": "0"},
        "run_count": {"N": "0"},
    }
    try:
        dynamodb.put_item(
            TableName=table, Item=item, ConditionExpression="attribute_not_exists(PK)"
        )
    except ClientError as err:
        if err.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    return True
