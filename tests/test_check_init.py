"""The set-up exercise's checker: the right answer passes, each wrong one is explained."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from jobcontroller import ControlStore
from jobcontroller.course.check_init import check_init, solution_init
from jobcontroller.embedded.memory import MemoryDynamoDB


@pytest.fixture
def store():
    """The course's table, in memory."""
    control = ControlStore("job_control", client=MemoryDynamoDB())
    control.create_table()
    return control


def _item(job, version=None):
    return {
        "PK": {"S": f"JOB#{job}"},
        "SK": {"S": "STATE"},
        "status": {"S": "IDLE"},
        "version": version or {"N": "0"},
    }


def no_condition(dynamodb, table, job):
    dynamodb.put_item(TableName=table, Item=_item(job))
    return True


def version_as_text(dynamodb, table, job):
    dynamodb.put_item(
        TableName=table,
        Item=_item(job, {"S": "0"}),
        ConditionExpression="attribute_not_exists(PK)",
    )
    return True


def does_not_catch(dynamodb, table, job):
    dynamodb.put_item(
        TableName=table, Item=_item(job), ConditionExpression="attribute_not_exists(PK)"
    )
    return True


def swallows_everything(dynamodb, table, job):
    try:
        return does_not_catch(dynamodb, table, job)
    except ClientError:
        return False


def test_the_solution_passes_every_check(store):
    """The reference answer passes all three checks and leaves no item behind."""
    report = check_init(solution_init, store)
    assert report.ok, report.text()
    assert len(report.passed) == 3
    assert store.raw_item("nightly_report") is None


@pytest.mark.parametrize(
    ("fn", "says"),
    [
        (no_condition, "replaced a live item"),
        (version_as_text, "cannot read the item"),
        (does_not_catch, "let ConditionalCheckFailedException escape"),
        (swallows_everything, "table that does not exist"),
        (lambda dynamodb, table, job: None, "no item was written"),
    ],
    ids=["no condition", "version as text", "no catch", "swallows all", "writes nothing"],
)
def test_each_wrong_answer_is_explained(store, fn, says):
    """A wrong set-up fails with a headline naming its mistake, and cleans up after itself."""
    report = check_init(fn, store)
    assert not report.ok
    assert says in report.headline
    assert report.text().startswith("not yet:")
    assert store.raw_item("nightly_report") is None
