"""The fenced-commit exercise: the right answer passes; each wrong one is caught and explained."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from jobcontroller.course.check_commit import (
    CHECK_JOB,
    check_commit,
    show_commit_solution,
    solution_commit,
)

RELEASE = (
    "SET #s = :idle, version = version + :one, run_count = run_count + :one, last_run_id = :me "
    "REMOVE run_id, lease_expires_at"
)
FENCE = "#s = :running AND run_id = :me"


def commit(
    *,
    update: str = RELEASE,
    condition: str | None = FENCE,
    transaction: bool = True,
    catch: bool = True,
    returns: object = True,
):
    """A learner's my_commit, built with one thing changed from the reference answer."""

    def my_commit(client, table, key, run_id, history_item):
        values = {
            ":idle": {"S": "IDLE"},
            ":running": {"S": "RUNNING"},
            ":me": {"S": run_id},
            ":one": {"N": "1"},
        }
        used = f"{update} {condition or ''}"
        values = {k: v for k, v in values.items() if k in used}
        request = {
            "TableName": table,
            "Key": key,
            "UpdateExpression": update,
            "ExpressionAttributeValues": values,
        }
        if "#s" in used:
            request["ExpressionAttributeNames"] = {"#s": "status"}
        if condition:
            request["ConditionExpression"] = condition
        try:
            if transaction:
                client.transact_write_items(
                    TransactItems=[
                        {"Update": request},
                        {"Put": {"TableName": table, "Item": history_item}},
                    ]
                )
            else:
                client.put_item(TableName=table, Item=history_item)
                client.update_item(**request)
        except ClientError:
            if not catch:
                raise
            return False
        return returns

    return my_commit


def read_then_write(client, table, key, run_id, history_item):
    """The naive lock again: read, check in Python, then commit with no condition."""
    item = client.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]
    if item["status"]["S"] != "RUNNING" or item.get("run_id", {}).get("S") != run_id:
        return False
    return commit(condition=None)(client, table, key, run_id, history_item)


@pytest.fixture
def store(fresh_aws):
    """A ControlStore on the embedded backend with the course's table created."""
    from jobcontroller.course.core import setup

    return setup().store


def test_the_solution_passes_and_leaves_no_scratch_job(store):
    """The reference answer gets all three cases right, and the scratch job is deleted after."""
    report = check_commit(solution_commit, store)
    assert report.passed, report.text()
    assert report.text() == "commit: 4 of 4 cases right. All correct: well done."
    assert store.raw_item(CHECK_JOB) is None


def test_the_checker_leaves_the_notebook_job_alone(store):
    """Checking works on its own job: the course job's control item is not touched."""
    before = store.raw_item("hourly_processor")
    check_commit(commit(condition=None), store)
    assert store.raw_item("hourly_processor") == before


@pytest.mark.parametrize(
    ("attempt", "case", "says"),
    [
        (commit(condition=None), "case 1 of 4", "your commit has no condition"),
        (
            commit(condition="#s = :running"),
            "case 1 of 4",
            "you check status but not run_id",
        ),
        (commit(catch=False), "case 1 of 4", "the exception escaped your function"),
        (commit(transaction=False), "case 1 of 4", "history item was written"),
        (commit(returns=None), "case 3 of 4", "your function returned None"),
        (
            commit(update=RELEASE.replace("version = version + :one, ", "")),
            "case 3 of 4",
            "version not bumped",
        ),
        (
            commit(update=RELEASE.replace(" REMOVE run_id, lease_expires_at", "")),
            "case 3 of 4",
            "the lock was not released",
        ),
        (
            commit(update=RELEASE.replace("run_count = run_count + :one, ", "")),
            "case 3 of 4",
            "run_count went from 0 to 0",
        ),
        (
            commit(condition=f"({FENCE}) OR #s = :idle"),
            "case 4 of 4",
            "the run is counted twice",
        ),
        (
            commit(condition="status = :running AND run_id = :me", catch=False),
            "case 1 of 4",
            "status is a reserved word",
        ),
        (read_then_write, "case 2 of 4", "you read the item and decided in Python"),
        (
            commit(condition="#s = :running AND run_id = :you"),
            "case 1 of 4",
            "your function caught that error and carried on",
        ),
    ],
    ids=[
        "no-condition",
        "status-only",
        "uncaught-refusal",
        "two-calls",
        "returns-none",
        "no-version-bump",
        "lock-kept",
        "not-counted",
        "repeat-counted",
        "reserved-word",
        "read-then-write",
        "swallows-errors",
    ],
)
def test_a_wrong_commit_is_explained(store, attempt, case, says):
    """Each wrong answer fails, and the explanation names the case and what went wrong."""
    report = check_commit(attempt, store)
    assert not report.passed
    text = report.text()
    assert text.startswith("commit: not yet")
    assert case in text
    assert says in text, text


def test_reveal_false_hides_the_solution(capsys):
    """show_commit_solution(reveal=False) says how to reveal it and prints no code."""
    show_commit_solution(reveal=False)
    hidden = capsys.readouterr().out
    assert "reveal=True" in hidden
    assert "transact_write_items" not in hidden
    show_commit_solution()
    assert "transact_write_items" in capsys.readouterr().out
