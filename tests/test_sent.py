"""Capturing what a client sent: the request as botocore serialised it, shown as a client call."""

from __future__ import annotations

import ast

import boto3
import pytest
from botocore.exceptions import ClientError

from jobcontroller.course.sent import capture, show_item

KEY = {"PK": {"S": "JOB#hourly_processor"}, "SK": {"S": "STATE"}}


def test_a_client_call_is_recorded_as_sent(store, dynamodb):
    """A GetItem is recorded with its operation and exactly the parameters sent."""
    with capture(dynamodb) as sent:
        dynamodb.get_item(TableName="job_control", Key=KEY, ConsistentRead=True)
    assert sent.operations == ["GetItem"]
    assert sent[0].params == {"TableName": "job_control", "Key": KEY, "ConsistentRead": True}
    assert sent[0].method == "get_item"


def test_the_store_lock_is_shown_as_the_update_item_it_sends(store, clock):
    """The package's acquire shows as one conditional UpdateItem with its placeholders filled."""
    from datetime import timedelta

    state = store.read("hourly_processor")
    now = clock.now()
    with capture(store.client) as sent:
        store.acquire(
            state, run_id="run-A", now=now, lease_until=now + timedelta(minutes=15), slot=now
        )
    (request,) = sent
    assert request.operation == "UpdateItem"
    assert (
        request.params["ConditionExpression"] == "#version = :expected_version AND #status = :idle"
    )
    assert request.params["ExpressionAttributeValues"][":run_id"] == {"S": "run-A"}
    assert request.params["ReturnValuesOnConditionCheckFailure"] == "ALL_OLD"


def test_the_resource_layer_is_captured_after_it_rewrites_the_call(store):
    """A Table.put_item with plain values is captured in DynamoDB's typed form, as sent."""
    table = boto3.resource("dynamodb").Table("job_control")
    with capture(table.meta.client) as sent:
        table.put_item(Item={"PK": "JOB#other", "SK": "STATE", "version": 0})
    assert sent[0].params["Item"] == {
        "PK": {"S": "JOB#other"},
        "SK": {"S": "STATE"},
        "version": {"N": "0"},
    }


def test_a_refused_request_is_still_recorded(store, dynamodb):
    """A conditional write that DynamoDB refuses was sent, so it is in the capture."""
    with capture(dynamodb) as sent, pytest.raises(ClientError):
        dynamodb.put_item(
            TableName="job_control",
            Item={**KEY, "status": {"S": "IDLE"}},
            ConditionExpression="attribute_not_exists(PK)",
        )
    assert sent.operations == ["PutItem"]


def test_only_the_named_operations_are_kept(store, dynamodb):
    """`operations=` filters what is kept; other calls in the block are left out."""
    with capture(dynamodb, operations=["UpdateItem"]) as sent:
        dynamodb.get_item(TableName="job_control", Key=KEY)
    assert len(sent) == 0
    assert sent.text() == "(no request was sent)"


def test_capture_stops_at_the_end_of_the_block(store, dynamodb):
    """After the block, the client's calls are no longer recorded."""
    with capture(dynamodb) as sent:
        pass
    dynamodb.get_item(TableName="job_control", Key=KEY)
    assert len(sent) == 0


def test_the_text_is_the_python_call_that_sends_the_same_request(store, dynamodb):
    """The shown request is valid Python whose keyword arguments equal the captured ones."""
    long_update = "SET " + ", ".join(f"#a{i} = :v{i}" for i in range(8))
    params = {
        "TableName": "job_control",
        "Key": KEY,
        "UpdateExpression": long_update,
        "ExpressionAttributeNames": {f"#a{i}": f"attr{i}" for i in range(8)},
        "ExpressionAttributeValues": {f":v{i}": {"BOOL": i % 2 == 0} for i in range(8)},
    }
    with capture(dynamodb) as sent:
        dynamodb.update_item(**params)
    text = sent[0].text()
    assert text.startswith("dynamodb.update_item(")
    call = ast.parse(text, mode="eval").body
    assert isinstance(call, ast.Call)
    rebuilt = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}
    assert rebuilt == params
    assert max(len(line) for line in text.splitlines()) <= 100


def test_show_item_curates_a_returned_item(store, dynamodb):
    """show_item lists the key first, then the asked fields, with DynamoDB types and no metadata."""
    response = dynamodb.get_item(TableName="job_control", Key=KEY, ConsistentRead=True)
    table = show_item(response["Item"], fields=("status", "version", "last_error"))
    assert [row[0] for row in table.rows] == ["PK", "SK", "status", "version", "last_error"]
    assert table.rows[2:] == (
        ("status", "S", "IDLE"),
        ("version", "N", "0"),
        ("last_error", "NULL", "null"),
    )
    assert "RequestId" not in table.text()
    assert show_item(None).notes == ("(no item)",)
