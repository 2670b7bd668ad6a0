"""Least privilege, proved: the function's role allows exactly what the handler did.

The end-to-end run (`e2e_run` in tests/conftest.py) recorded every AWS call the handler made
in its 27 invocations, and read both roles' policies back from IAM before teardown. These
tests resolve the calls to IAM authorisations (`ops.authz.authorizations`) and hold the
deployed policy to them: every authorisation is granted on a named resource, every granted
action is used, and no action or resource is a wildcard.

The one wildcard allowed anywhere is the log-stream suffix `<log group ARN>:*`: Lambda names
each log stream at run time, so the stream cannot be named in advance; the group can, and is.

Slow (marked `slow`): it needs the end-to-end run, a day of invocations of the built zip.
"""

from __future__ import annotations

import pytest

from jobcontroller.ops.authz import Authorization, authorizations

pytestmark = pytest.mark.slow

# Granted but never called by the handler, each for a reason:
NOT_CALLED_BY_THE_HANDLER = {
    # The Lambda runtime writes the function's logs with the function's role, not the handler.
    "logs:CreateLogStream": "the Lambda runtime creates the log stream",
    "logs:PutLogEvents": "the Lambda runtime writes the log events",
    # Lambda sends a failed asynchronous invocation's record to the on-failure destination
    # with the function's role: https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html
    "sqs:SendMessage": "the Lambda service sends failed async invocations to the queue",
}


def _as_list(value):
    return [value] if isinstance(value, str) else list(value)


@pytest.fixture(scope="module")
def policy(e2e_run):
    """The function role's only policy, as IAM returned it."""
    role = e2e_run.function_role
    assert role.attached == []  # no managed policy adds anything
    (document,) = role.inline.values()
    return document


@pytest.fixture(scope="module")
def needed(e2e_run):
    """The authorisations the handler's recorded calls needed."""
    target = e2e_run.target
    return authorizations(e2e_run.calls, account=target.account, region=target.region)


def _arns(e2e_run):
    target, names = e2e_run.target, e2e_run.names
    return {
        "table": target.arn("dynamodb", f"table/{names.table}"),
        "log_group": target.arn("logs", f"log-group:{names.log_group}"),
        "failure_queue": target.arn("sqs", names.failure_queue),
        "function": target.arn("lambda", f"function:{names.function}"),
        "schedule_dlq": target.arn("sqs", names.schedule_dlq),
    }


def _allows(statement, authorization) -> bool:
    if statement["Effect"] != "Allow" or authorization.action not in _as_list(statement["Action"]):
        return False
    if authorization.resource not in _as_list(statement["Resource"]):
        return False
    condition = statement.get("Condition")
    if condition is None:
        return True
    # The only condition the policy uses: every key touched has the job's partition key.
    (operator, keys), *rest = condition.items()
    assert not rest and operator == "ForAllValues:StringEquals", condition
    return authorization.leading_key in keys["dynamodb:LeadingKeys"]


def test_the_run_recorded_the_handlers_calls(e2e_run, needed):
    """Every one of the 27 invocations made at least its GetItem, all to DynamoDB."""
    assert sum(c.operation == "GetItem" for c in e2e_run.calls) == e2e_run.invocations
    assert {c.service for c in e2e_run.calls} == {"dynamodb"}
    assert {a.action for a in needed} == {
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
        "dynamodb:PutItem",
    }


def test_every_call_is_allowed_on_the_named_table_for_the_jobs_key(e2e_run, policy, needed):
    """Each authorisation the handler needed is granted on the table's ARN for JOB#<job>."""
    table = _arns(e2e_run)["table"]
    for authorization in needed:
        assert authorization.resource == table
        assert authorization.leading_key == f"JOB#{e2e_run.names.job}"
        assert any(_allows(s, authorization) for s in policy["Statement"]), authorization


def test_another_jobs_items_are_not_allowed(e2e_run, policy, needed):
    """The same actions on another job's partition key, or another table, are refused."""
    for authorization in needed:
        other_job = Authorization(authorization.action, authorization.resource, "JOB#other")
        other_table = Authorization(
            authorization.action,
            authorization.resource.replace(e2e_run.names.table, "job_control"),
            authorization.leading_key,
        )
        for refused in (other_job, other_table):
            assert not any(_allows(s, refused) for s in policy["Statement"]), refused


def test_the_policy_grants_exactly_the_used_actions_and_names_each_exception(policy, needed):
    """Granted = used by the handler + the three the Lambda runtime and service use."""
    granted = {a for s in policy["Statement"] for a in _as_list(s["Action"])}
    used = {a.action for a in needed}
    assert used <= granted
    assert granted - used == set(NOT_CALLED_BY_THE_HANDLER)


def test_no_wildcard_action_and_no_wildcard_resource(e2e_run, policy):
    """No action contains '*'; no resource is '*'; the log-stream suffix is the one wildcard."""
    arns = _arns(e2e_run)
    for statement in policy["Statement"]:
        assert set(statement) <= {"Sid", "Effect", "Action", "Resource", "Condition"}
        assert statement["Effect"] == "Allow"
        assert not any("*" in action for action in _as_list(statement["Action"]))
        for resource in _as_list(statement["Resource"]):
            assert resource != "*"
            if "*" in resource:
                # The single allowed wildcard: streams inside the function's own log group.
                assert resource == f"{arns['log_group']}:*", resource


def test_each_statement_names_its_resource(e2e_run, policy):
    """The table, the log group's streams and the on-failure queue, each by its ARN."""
    arns = _arns(e2e_run)
    by_action = {
        action: _as_list(s["Resource"]) for s in policy["Statement"] for action in s["Action"]
    }
    for action in ("dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:PutItem"):
        assert by_action[action] == [arns["table"]]
    for action in ("logs:CreateLogStream", "logs:PutLogEvents"):
        assert by_action[action] == [f"{arns['log_group']}:*"]
    assert by_action["sqs:SendMessage"] == [arns["failure_queue"]]


def test_only_lambda_may_assume_the_function_role(e2e_run):
    """The function role's trust policy names the Lambda service and nothing else."""
    (statement,) = e2e_run.function_role.trust["Statement"]
    assert statement["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert statement["Action"] == "sts:AssumeRole"


def test_the_scheduler_role_may_only_invoke_this_function_and_dead_letter(e2e_run):
    """The scheduler's role: invoke this function, send to its DLQ; no wildcard; own account."""
    arns = _arns(e2e_run)
    role = e2e_run.scheduler_role
    assert role.attached == []
    (document,) = role.inline.values()
    grants = {
        (action, resource)
        for s in document["Statement"]
        for action in _as_list(s["Action"])
        for resource in _as_list(s["Resource"])
    }
    assert grants == {
        ("lambda:InvokeFunction", arns["function"]),
        ("sqs:SendMessage", arns["schedule_dlq"]),
    }
    (trust,) = role.trust["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": e2e_run.target.account}}
