"""The stack's IAM policy documents, least privilege (pure: deploy, the template test and the
IAM test read them).

The function's role may only perform the DynamoDB actions the handler uses, on its table and
its job's partition key, write its own log group and dead-letter to its own queue; the
scheduler's role may only invoke that function and dead-letter to its queue.
"""

from __future__ import annotations

from typing import Any

from jobcontroller.ops.naming import Names

__all__ = [
    "FUNCTION_DYNAMODB_ACTIONS",
    "FUNCTION_LOG_ACTIONS",
    "function_role_policy",
    "lambda_trust_policy",
    "scheduler_role_policy",
    "scheduler_trust_policy",
]


def _statement(sid: str, actions: list[str], resources: list[str], **extra: Any) -> dict:
    return {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources, **extra}


def lambda_trust_policy() -> dict[str, Any]:
    """Who may assume the function's role: the Lambda service."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }


def scheduler_trust_policy(account: str) -> dict[str, Any]:
    """Who may assume the scheduler's role: EventBridge Scheduler, for this account only.

    The SourceAccount condition stops another account's schedule from using the role
    (the confused-deputy case): https://docs.aws.amazon.com/scheduler/latest/UserGuide/cross-service-confused-deputy-prevention.html
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "scheduler.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": account}},
            }
        ],
    }


# The DynamoDB actions the handler performs (docs/architecture.md). TransactWriteItems has
# no IAM action of its own: each item in it is authorised as its UpdateItem or PutItem.
# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html
FUNCTION_DYNAMODB_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem")
FUNCTION_LOG_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents")


def function_role_policy(names: Names, *, account: str, region: str, partition: str = "aws"):
    """The function's only permissions: its job's items in its table, its log group, its
    failure queue."""
    table_arn = f"arn:{partition}:dynamodb:{region}:{account}:table/{names.table}"
    log_group_arn = f"arn:{partition}:logs:{region}:{account}:log-group:{names.log_group}"
    queue_arn = f"arn:{partition}:sqs:{region}:{account}:{names.failure_queue}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            _statement(
                "OwnJobItemsOnly",
                list(FUNCTION_DYNAMODB_ACTIONS),
                [table_arn],
                # Every key the function touches must have this partition key, so a bug (or
                # an attacker with the function's credentials) cannot touch another job.
                # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/specifying-conditions.html
                Condition={
                    "ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [f"JOB#{names.job}"]}
                },
            ),
            # Written by the Lambda runtime, not the handler. Stream names are chosen by
            # Lambda at run time, so this is the one wildcard, and only inside our own group.
            _statement("OwnLogGroup", list(FUNCTION_LOG_ACTIONS), [f"{log_group_arn}:*"]),
            # Lambda delivers a failed asynchronous invocation to the on-failure destination
            # with the function's own role.
            _statement("AsyncFailureDestination", ["sqs:SendMessage"], [queue_arn]),
        ],
    }


def scheduler_role_policy(names: Names, *, account: str, region: str, partition: str = "aws"):
    """The scheduler's only permissions: invoke this function, dead-letter to its queue."""
    function_arn = f"arn:{partition}:lambda:{region}:{account}:function:{names.function}"
    dlq_arn = f"arn:{partition}:sqs:{region}:{account}:{names.schedule_dlq}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            _statement("InvokeThisFunctionOnly", ["lambda:InvokeFunction"], [function_arn]),
            _statement("DeadLetterToOwnQueue", ["sqs:SendMessage"], [dlq_arn]),
        ],
    }
