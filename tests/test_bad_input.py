"""Rule 9: bad input gets a specific error that says what to do, and changes no stored state."""

from __future__ import annotations

import pytest

from jobcontroller import (
    BadEvent,
    ControlItemCorrupt,
    ControlItemMissing,
    TableMissing,
    UnknownJob,
)
from jobcontroller.handler import lambda_handler

JOB = "hourly_processor"


class LambdaContext:
    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@pytest.fixture
def env(monkeypatch, store):
    monkeypatch.setenv("JOB_TABLE", store.table)
    monkeypatch.setenv("JOB_NAME", JOB)
    monkeypatch.setenv("JOB_WORKLOAD_SECONDS", "0")
    return monkeypatch


def whole_table(dynamodb):
    items = dynamodb.scan(TableName="job_control", ConsistentRead=True)["Items"]
    return sorted(items, key=lambda i: (i["PK"]["S"], i["SK"]["S"]))


@pytest.mark.parametrize(
    ("event", "error", "advice"),
    [
        ("", BadEvent, "JSON object"),
        ([], BadEvent, "JSON object"),
        (42, BadEvent, "JSON object"),
        ({"job": JOB, "scheduled_time": "9 o'clock"}, BadEvent, "ISO 8601"),
        ({"job": JOB, "scheduled_time": 1767600000}, BadEvent, "must be a string"),
        ({"job": ["hourly_processor"]}, BadEvent, "must be a string"),
        ({"source": "scheduler"}, BadEvent, "scheduled_time"),
        ({"job": JOB, "extra": 1}, BadEvent, "unknown event field"),
        ({"job": "nightly"}, UnknownJob, "send it to that job's function"),
    ],
)
def test_bad_events_change_nothing(env, dynamodb, event, error, advice):
    """Malformed, wrongly typed or foreign events raise their own error; the table is untouched."""
    before = whole_table(dynamodb)
    with pytest.raises(error, match=advice):
        lambda_handler(event, LambdaContext())
    assert whole_table(dynamodb) == before


def test_missing_control_item(env, dynamodb):
    """A job that was never initialised raises ControlItemMissing and creates nothing."""
    dynamodb.delete_item(
        TableName="job_control", Key={"PK": {"S": f"JOB#{JOB}"}, "SK": {"S": "STATE"}}
    )
    with pytest.raises(ControlItemMissing, match="init_job"):
        lambda_handler({}, LambdaContext())
    assert whole_table(dynamodb) == []


@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        ("status", {"S": "STUCK"}),
        ("status", {"N": "1"}),
        ("version", {"S": "three"}),
        ("run_count", {"BOOL": True}),
        ("next_allowed_run", {"S": "soon"}),
        ("last_success_ts", {"N": "1767600000"}),
        ("paused", {"S": "false"}),
        ("drill", {"S": "EXPLODE"}),
    ],
)
def test_corrupted_item_is_reported_not_repaired(env, dynamodb, raw_item, attribute, value):
    """A corrupted item raises ControlItemCorrupt naming the attribute; nothing is written."""
    item = raw_item()
    item[attribute] = value
    dynamodb.put_item(TableName="job_control", Item=item)
    with pytest.raises(ControlItemCorrupt, match=attribute):
        lambda_handler({}, LambdaContext())
    assert raw_item() == item


def test_operator_actions_refuse_a_corrupted_item(store, dynamodb, raw_item):
    """Pause and drills validate the item first, so they never build on corrupted state."""
    item = raw_item()
    item["status"] = {"S": "STUCK"}
    dynamodb.put_item(TableName="job_control", Item=item)
    with pytest.raises(ControlItemCorrupt):
        store.set_paused(JOB, True)
    assert raw_item() == item


def test_missing_table(env, dynamodb):
    """A missing table raises TableMissing saying to create it, and creates nothing."""
    dynamodb.delete_table(TableName="job_control")
    with pytest.raises(TableMissing, match="create_table"):
        lambda_handler({}, LambdaContext())
    assert dynamodb.list_tables()["TableNames"] == []


def test_a_control_item_without_version_is_reported_not_repaired(env, store, dynamodb, raw_item):
    """An item without `version` is ControlItemCorrupt everywhere, never LOST_RACE, never mended."""
    item = raw_item()
    del item["version"]
    dynamodb.put_item(TableName="job_control", Item=item)
    with pytest.raises(ControlItemCorrupt, match="'version' is missing"):
        lambda_handler({}, LambdaContext())
    with pytest.raises(ControlItemCorrupt, match="'version'"):
        store.set_paused(JOB, True)
    with pytest.raises(ControlItemCorrupt, match="'version'"):
        store.set_drill(JOB, "FAIL")
    assert raw_item() == item


def test_operator_actions_do_not_mend_a_version_lost_after_their_read(
    store, dynamodb, raw_item, monkeypatch
):
    """If `version` vanishes between the operator's read and write, the write is refused too."""
    valid = store.read(JOB)
    item = raw_item()
    del item["version"]
    dynamodb.put_item(TableName="job_control", Item=item)
    monkeypatch.setattr(store, "read", lambda job: valid)
    with pytest.raises(ControlItemCorrupt, match="'version'"):
        store.set_paused(JOB, True)
    assert raw_item() == item


@pytest.mark.parametrize(
    "scheduled_time",
    [
        "0999-12-31T23:00:00Z",
        "2999-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "2026-01-05T09:00:00Z\x00",
        "0001-01-01T00:00:00+01:00",
    ],
)
def test_slots_the_schedule_cannot_send_change_nothing(
    env, dynamodb, clock, scheduled_time, monkeypatch
):
    """Slots outside what a delivery can carry are BadEvent through the handler, table untouched."""
    monkeypatch.setattr("jobcontroller.handler.clock", clock)
    before = whole_table(dynamodb)
    with pytest.raises(BadEvent):
        lambda_handler({"job": JOB, "scheduled_time": scheduled_time}, LambdaContext())
    assert whole_table(dynamodb) == before
