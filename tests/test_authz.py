"""Recorded AWS calls resolved to the IAM authorisations they needed."""

from __future__ import annotations

from datetime import UTC, datetime

from jobcontroller.ops import deploy as d
from jobcontroller.ops.authz import authorizations
from jobcontroller.ops.invocation import AwsCall

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_recorded_calls_resolve_to_authorizations_the_role_grants(stack, target):
    """The handler's calls need Get/Update/PutItem on its table for JOB#<job>, all granted."""
    names, runner = stack
    invocation = runner.invoke({"job": names.job}, now=T0)
    needed = authorizations(invocation.calls, account=target.account, region=target.region)
    table = target.arn("dynamodb", f"table/{names.table}")
    assert [(a.action, a.resource, a.leading_key) for a in needed] == [
        ("dynamodb:GetItem", table, "JOB#hourly_processor"),
        ("dynamodb:UpdateItem", table, "JOB#hourly_processor"),
        ("dynamodb:UpdateItem", table, "JOB#hourly_processor"),
        ("dynamodb:PutItem", table, "JOB#hourly_processor"),
    ]
    (grant, *_) = d.function_role_policy(names, account=target.account, region=target.region)[
        "Statement"
    ]
    for authorization in needed:
        assert authorization.action in grant["Action"]
        assert authorization.resource in grant["Resource"]
        leading = grant["Condition"]["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"]
        assert authorization.leading_key in leading


def test_a_non_dynamodb_call_maps_to_its_service_action():
    """A call to another service needs `<service>:<Operation>`, with no resource resolved."""
    call = AwsCall("sqs", "SendMessage", {"QueueUrl": "u"})
    (needed,) = authorizations([call], account="1", region="r")
    assert (needed.action, needed.resource) == ("sqs:SendMessage", None)


def test_a_transaction_needs_each_items_own_action():
    """TransactWriteItems is authorised item by item: a Put needs PutItem, a check its own."""
    call = AwsCall(
        "dynamodb",
        "TransactWriteItems",
        {
            "TransactItems": [
                {"Put": {"TableName": "t", "Item": {"PK": {"S": "JOB#a"}}}},
                {"ConditionCheck": {"TableName": "u", "Key": {"PK": {"S": "JOB#b"}}}},
            ]
        },
    )
    needed = authorizations([call], account="1", region="r", partition="aws-cn")
    assert [(a.action, a.resource, a.leading_key) for a in needed] == [
        ("dynamodb:PutItem", "arn:aws-cn:dynamodb:r:1:table/t", "JOB#a"),
        ("dynamodb:ConditionCheckItem", "arn:aws-cn:dynamodb:r:1:table/u", "JOB#b"),
    ]
