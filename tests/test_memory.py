"""DynamoDB in memory answers as DynamoDB documents, where the store depends on it."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from jobcontroller.embedded.memory import MemoryDynamoDB

TABLE = "t"
KEY = {"PK": {"S": "JOB#a"}, "SK": {"S": "STATE"}}


@pytest.fixture
def now() -> list[float]:
    """A hand-moved clock for request tokens, in seconds."""
    return [0.0]


@pytest.fixture
def db(now: list[float]) -> MemoryDynamoDB:
    """A client with one table holding one item: status IDLE, version 3."""
    client = MemoryDynamoDB(clock=lambda: now[0])
    client.create_table(
        TableName=TABLE,
        KeySchema=[
            {"AttributeName": "PK", "KeyType": "HASH"},
            {"AttributeName": "SK", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "PK", "AttributeType": "S"},
            {"AttributeName": "SK", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    client.put_item(TableName=TABLE, Item={**KEY, "status": {"S": "IDLE"}, "version": {"N": "3"}})
    return client


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def _update(db: MemoryDynamoDB, condition: str, values: dict, **extra) -> dict:
    return db.update_item(
        TableName=TABLE,
        Key=KEY,
        UpdateExpression="SET #s = :r, version = version + :one",
        ConditionExpression=condition,
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":r": {"S": "RUNNING"}, ":one": {"N": "1"}, **values},
        ReturnValues="ALL_NEW",
        **extra,
    )


def test_a_matching_condition_applies_the_update(db):
    """`#s = :i AND version = :v` on a matching item sets status and increments version."""
    new = _update(db, "#s = :i AND version = :v", {":i": {"S": "IDLE"}, ":v": {"N": "3"}})
    assert new["Attributes"]["status"] == {"S": "RUNNING"}
    assert new["Attributes"]["version"] == {"N": "4"}


def test_a_refused_condition_returns_the_old_item_and_changes_nothing(db):
    """With ALL_OLD, a refused write carries the blocking item, and the item stays as it was."""
    with pytest.raises(ClientError) as exc:
        _update(
            db,
            "#s = :i AND version = :v",
            {":i": {"S": "IDLE"}, ":v": {"N": "2"}},
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    assert _code(exc) == "ConditionalCheckFailedException"
    assert exc.value.response["Item"]["version"] == {"N": "3"}
    assert db.get_item(TableName=TABLE, Key=KEY)["Item"]["status"] == {"S": "IDLE"}


@pytest.mark.parametrize(
    ("condition", "value", "holds"),
    [
        ("version = :x", {"S": "3"}, False),  # a number never equals a string
        ("version < :x", {"S": "9"}, False),  # nor is it ordered against one
        ("version <> :x", {"S": "3"}, True),
        ("missing = :x", {"S": "3"}, False),  # a missing attribute compares false
        ("missing <> :x", {"S": "3"}, True),
        ("attribute_not_exists(missing) AND version >= :x", {"N": "3"}, True),
        ("NOT (version <= :x)", {"N": "3"}, False),
        ("version = :x OR attribute_exists(PK)", {"N": "0"}, True),
    ],
)
def test_conditions_follow_dynamodb_comparison_rules(db, condition, value, holds):
    """Type mismatches and missing attributes make comparisons false, never an error."""
    try:
        db.update_item(
            TableName=TABLE,
            Key=KEY,
            UpdateExpression="SET touched = :x",
            ConditionExpression=condition,
            ExpressionAttributeValues={":x": value},
        )
        applied = True
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "ConditionalCheckFailedException"
        applied = False
    assert applied is holds


def test_if_not_exists_and_remove(db):
    """`if_not_exists` starts a missing counter from its default; REMOVE deletes attributes."""
    db.update_item(
        TableName=TABLE,
        Key=KEY,
        UpdateExpression="SET n = if_not_exists(n, :zero) + :one REMOVE version",
        ExpressionAttributeValues={":zero": {"N": "0"}, ":one": {"N": "1"}},
    )
    item = db.get_item(TableName=TABLE, Key=KEY)["Item"]
    assert item["n"] == {"N": "1"}
    assert "version" not in item


def test_a_transaction_applies_all_or_nothing(db):
    """When one part's condition fails, no part is written, and the reasons say which failed."""
    run = {"PK": {"S": "JOB#a"}, "SK": {"S": "RUN#1"}, "outcome": {"S": "SUCCEEDED"}}
    with pytest.raises(ClientError) as exc:
        db.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": TABLE, "Item": run}},
                {
                    "Update": {
                        "TableName": TABLE,
                        "Key": KEY,
                        "UpdateExpression": "SET #s = :i",
                        "ConditionExpression": "#s = :r",
                        "ExpressionAttributeNames": {"#s": "status"},
                        "ExpressionAttributeValues": {":i": {"S": "IDLE"}, ":r": {"S": "RUNNING"}},
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                },
            ]
        )
    assert _code(exc) == "TransactionCanceledException"
    reasons = exc.value.response["CancellationReasons"]
    assert [r["Code"] for r in reasons] == ["None", "ConditionalCheckFailed"]
    assert reasons[1]["Item"]["status"] == {"S": "IDLE"}
    assert "Item" not in db.get_item(TableName=TABLE, Key={"PK": run["PK"], "SK": run["SK"]})


def _counter_transaction(db, token: str, by: str = "1") -> None:
    db.transact_write_items(
        TransactItems=[
            {
                "Update": {
                    "TableName": TABLE,
                    "Key": KEY,
                    "UpdateExpression": "SET version = version + :by",
                    "ExpressionAttributeValues": {":by": {"N": by}},
                }
            }
        ],
        ClientRequestToken=token,
    )


def test_a_request_token_makes_a_repeat_a_no_op_for_ten_minutes(db, now):
    """The same transaction with the same token succeeds again without applying twice."""
    _counter_transaction(db, "tok")
    now[0] += 599
    _counter_transaction(db, "tok")
    assert db.get_item(TableName=TABLE, Key=KEY)["Item"]["version"] == {"N": "4"}
    now[0] += 2  # past DynamoDB's 10-minute window the token is forgotten
    _counter_transaction(db, "tok")
    assert db.get_item(TableName=TABLE, Key=KEY)["Item"]["version"] == {"N": "5"}


def test_a_reused_token_with_other_parameters_is_refused(db):
    """The same token with different parameters raises IdempotentParameterMismatchException."""
    _counter_transaction(db, "tok")
    with pytest.raises(ClientError) as exc:
        _counter_transaction(db, "tok", by="2")
    assert _code(exc) == "IdempotentParameterMismatchException"
    assert db.get_item(TableName=TABLE, Key=KEY)["Item"]["version"] == {"N": "4"}


def test_query_sorts_pages_and_projects(db):
    """A reverse query with a limit pages through the partition's RUN# items, newest first."""
    for n in range(5):
        db.put_item(TableName=TABLE, Item={"PK": {"S": "JOB#a"}, "SK": {"S": f"RUN#{n}"}})
    request = {
        "TableName": TABLE,
        "KeyConditionExpression": "PK = :pk AND begins_with(SK, :run)",
        "ExpressionAttributeValues": {":pk": {"S": "JOB#a"}, ":run": {"S": "RUN#"}},
        "ScanIndexForward": False,
        "Limit": 2,
        "ProjectionExpression": "SK",
    }
    seen = []
    while True:
        page = db.query(**request)
        seen += [i["SK"]["S"] for i in page["Items"]]
        if "LastEvaluatedKey" not in page:
            break
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    assert seen == [f"RUN#{n}" for n in (4, 3, 2, 1, 0)]


def test_a_missing_table_is_resource_not_found(db):
    """Requests on a table that does not exist fail as DynamoDB's do."""
    with pytest.raises(ClientError) as exc:
        db.get_item(TableName="nope", Key=KEY)
    assert _code(exc) == "ResourceNotFoundException"


def test_an_expression_outside_the_subset_is_refused_by_name(db):
    """An operator the fake does not implement raises NotImplementedError, never a guess."""
    with pytest.raises(NotImplementedError, match="IN"):
        db.update_item(
            TableName=TABLE,
            Key=KEY,
            UpdateExpression="SET a = :x",
            ConditionExpression="version IN (:x)",
            ExpressionAttributeValues={":x": {"N": "3"}},
        )
