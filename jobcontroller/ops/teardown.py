"""Tear down one participant's stack, and prove it: `teardown`, then `leftovers`.

Deletion runs in dependency order and is safe to repeat; it ends by listing everything that
still carries the prefix (by tag, IAM path or name prefix), and fails if anything does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from botocore.exceptions import ClientError

from jobcontroller.errors import TeardownIncomplete
from jobcontroller.ops.naming import (
    TAG_KEY,
    Names,
    Target,
    error_code,
    ignore_codes,
    schedule_group_arn,
)
from jobcontroller.ops.retry import wait_until
from jobcontroller.store import ControlStore

__all__ = ["TeardownIncomplete", "TeardownReport", "leftovers", "still_there", "teardown"]


@dataclass(frozen=True)
class TeardownReport:
    """What teardown deleted (in order) and what, tagged with the prefix, is left (nothing)."""

    deleted: tuple[str, ...]
    leftovers: tuple[str, ...]


def _delete_role(iam: Any, name: str) -> bool:
    try:
        for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
            iam.delete_role_policy(RoleName=name, PolicyName=policy)
        for attached in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
            iam.detach_role_policy(RoleName=name, PolicyArn=attached["PolicyArn"])
        iam.delete_role(RoleName=name)
    except ClientError as exc:
        if error_code(exc) == "NoSuchEntity":
            return False
        raise
    return True


_NO_QUEUE = ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")


def _queue_is_ours(sqs: Any, url: str) -> bool:
    """False if the queue is gone or on its way: SQS can still find a queue for up to 60 s
    after DeleteQueue, and even accept a second delete; teardown removes our tag first, so a
    queue without it is one already being deleted.
    https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_DeleteQueue.html
    """
    try:
        tags = sqs.list_queue_tags(QueueUrl=url).get("Tags", {})
    except ClientError as exc:
        if error_code(exc) in _NO_QUEUE:
            return False
        raise
    return TAG_KEY in tags


def _delete_queue(sqs: Any, name: str) -> bool:
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError as exc:
        if error_code(exc) in _NO_QUEUE:
            return False
        raise
    ours = _queue_is_ours(sqs, url)
    if ours:
        sqs.untag_queue(QueueUrl=url, TagKeys=[TAG_KEY])
    # Deleted either way (an untagged queue of our name is still ours to remove), but only a
    # tagged one counts as deleted now; a deleted queue may answer NonExistentQueue.
    return ignore_codes(_NO_QUEUE, lambda: sqs.delete_queue(QueueUrl=url)) and ours


def _delete_schedules(scheduler: Any, names: Names) -> list[str]:
    deleted = []
    try:
        pages = scheduler.get_paginator("list_schedules").paginate(GroupName=names.schedule_group)
        schedules = [s["Name"] for page in pages for s in page["Schedules"]]
    except ClientError as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise
        schedules = []
    for name in sorted(schedules):
        if ignore_codes(
            ["ResourceNotFoundException"],
            partial(scheduler.delete_schedule, Name=name, GroupName=names.schedule_group),
        ):
            deleted.append(f"schedule {names.schedule_group}/{name}")
    return deleted


def teardown(
    target: Target,
    names: Names,
    *,
    keep_table: bool = False,
    settle_seconds: float | None = None,
    say: Callable[[str], None] | None = None,
) -> TeardownReport:
    """Delete the stack in dependency order; safe to repeat. Raises TeardownIncomplete if
    anything tagged with the prefix is still there afterwards.

    Order: the schedules first (nothing new starts), then what invokes the function, the
    function, what it uses, and the table last (it holds the state a learner inspects).
    `settle_seconds` (default: 0 embedded, 180 on real AWS) is how long to keep checking
    while real AWS finishes asynchronous deletions (tables, schedule groups, the tagging
    index).
    """
    say = say or (lambda _message: None)
    if settle_seconds is None:
        settle_seconds = 0 if target.embedded else 180
    deleted: list[str] = []

    def note(done: bool, what: str) -> None:
        if done:
            deleted.append(what)
            say(f"deleted {what}")

    scheduler, iam = target.client("scheduler"), target.client("iam")
    for what in _delete_schedules(scheduler, names):
        note(True, what)
    # Look first: moto answers a missing group with a 500 instead of ResourceNotFoundException.
    if schedule_group_arn(scheduler, names.schedule_group) is not None:
        note(
            ignore_codes(
                ["ResourceNotFoundException"],
                lambda: scheduler.delete_schedule_group(Name=names.schedule_group),
            ),
            f"schedule group {names.schedule_group}",
        )
    note(_delete_role(iam, names.scheduler_role), f"role {names.scheduler_role}")
    # Deleting the function deletes its asynchronous invoke configuration with it.
    note(
        ignore_codes(
            ["ResourceNotFoundException"],
            lambda: target.client("lambda").delete_function(FunctionName=names.function),
        ),
        f"function {names.function}",
    )
    note(_delete_role(iam, names.function_role), f"role {names.function_role}")
    note(
        ignore_codes(
            ["ResourceNotFoundException"],
            lambda: target.client("logs").delete_log_group(logGroupName=names.log_group),
        ),
        f"log group {names.log_group}",
    )
    sqs = target.client("sqs")
    note(_delete_queue(sqs, names.failure_queue), f"queue {names.failure_queue}")
    note(_delete_queue(sqs, names.schedule_dlq), f"queue {names.schedule_dlq}")
    if not keep_table:
        store = ControlStore(names.table, client=target.client("dynamodb"))
        if store.delete_table():
            note(True, f"table {names.table}")
            wait_until(
                target, "dynamodb", "table_not_exists", TableName=names.table, delay=2, attempts=60
            )
    left = leftovers(target, names.prefix)
    waited = 0.0
    while left and waited < settle_seconds:
        target.sleep(5)
        waited += 5
        left = leftovers(target, names.prefix)
    if keep_table:
        table_arn = target.arn("dynamodb", f"table/{names.table}")
        left = [arn for arn in left if arn != table_arn]
    if left:
        raise TeardownIncomplete(
            f"after teardown of prefix {names.prefix!r} these are still there: "
            f"{', '.join(left)}; run teardown again (real AWS may need a minute), or delete "
            "them by hand"
        )
    return TeardownReport(tuple(deleted), tuple(left))


def leftovers(target: Target, prefix: str, *, settle_seconds: float = 0) -> list[str]:
    """ARNs of everything that still belongs to `prefix`; empty after a complete teardown.

    Candidates come from the Resource Groups Tagging API (by tag) and from each service's own
    listing by the name prefix `<prefix>-` (tables, functions, queues, log groups). The tagging
    API lists "resources that are or were tagged": a deleted one can linger there, and a new
    one appears late, so every candidate is confirmed with its own service (describe/get) and
    what is gone is dropped. IAM roles are listed under the prefix's IAM path; schedule groups
    and schedules (which cannot carry tags) by name. `settle_seconds` keeps looking (every
    5 s of AWS time) for resources that show up late.
    https://docs.aws.amazon.com/resourcegroupstagging/latest/APIReference/API_GetResources.html
    """
    names = Names(prefix)  # validates the prefix
    found = _leftovers_once(target, names)
    waited = 0.0
    while waited < settle_seconds:
        target.sleep(5)
        waited += 5
        found |= _leftovers_once(target, names)
    return sorted(found)


def _leftovers_once(target: Target, names: Names) -> set[str]:
    prefix = names.prefix
    candidates: set[str] = set()
    tagging = target.client("resourcegroupstaggingapi")
    for page in tagging.get_paginator("get_resources").paginate(
        TagFilters=[{"Key": TAG_KEY, "Values": [prefix]}]
    ):
        candidates.update(r["ResourceARN"] for r in page["ResourceTagMappingList"])
    candidates |= _by_name(target, f"{prefix}-")
    found = {arn for arn in candidates if still_there(target, arn)}
    iam = target.client("iam")
    for page in iam.get_paginator("list_roles").paginate(PathPrefix=names.iam_path):
        found.update(r["Arn"] for r in page["Roles"])
    scheduler = target.client("scheduler")
    for page in scheduler.get_paginator("list_schedule_groups").paginate(NamePrefix=f"{prefix}-"):
        found.update(g["Arn"] for g in page["ScheduleGroups"])
    for page in scheduler.get_paginator("list_schedules").paginate(NamePrefix=f"{prefix}-"):
        found.update(s["Arn"] for s in page["Schedules"])
    return found


def _by_name(target: Target, start: str) -> set[str]:
    """Tables, functions, queues and log groups whose names start with `start`."""
    arns: set[str] = set()
    for page in target.client("dynamodb").get_paginator("list_tables").paginate():
        arns.update(
            target.arn("dynamodb", f"table/{t}") for t in page["TableNames"] if t.startswith(start)
        )
    for page in target.client("lambda").get_paginator("list_functions").paginate():
        arns.update(
            f["FunctionArn"] for f in page["Functions"] if f["FunctionName"].startswith(start)
        )
    urls = target.client("sqs").list_queues(QueueNamePrefix=start).get("QueueUrls", [])
    arns.update(target.arn("sqs", url.rstrip("/").rsplit("/", 1)[-1]) for url in urls)
    logs = target.client("logs")
    for page in logs.get_paginator("describe_log_groups").paginate(
        logGroupNamePrefix=f"/aws/lambda/{start}"
    ):
        arns.update(target.arn("logs", f"log-group:{g['logGroupName']}") for g in page["logGroups"])
    return arns


_GONE = {
    "ResourceNotFoundException",
    "NoSuchEntity",
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
}


def still_there(target: Target, arn: str) -> bool:
    """Whether the resource `arn` names still exists, asked of its own service."""
    parts = arn.split(":", 5)
    service, resource = parts[2], parts[5]
    try:
        if service == "dynamodb":
            target.client("dynamodb").describe_table(TableName=resource.split("/", 1)[1])
        elif service == "lambda":
            target.client("lambda").get_function(FunctionName=arn)
        elif service == "sqs":
            sqs = target.client("sqs")
            url = sqs.get_queue_url(QueueName=resource, QueueOwnerAWSAccountId=parts[4])
            return _queue_is_ours(sqs, url["QueueUrl"])
        elif service == "logs":
            group = resource.split(":", 1)[1].removesuffix(":*")
            found = target.client("logs").describe_log_groups(logGroupNamePrefix=group)
            return any(g["logGroupName"] == group for g in found["logGroups"])
        elif service == "scheduler" and resource.startswith("schedule-group/"):
            target.client("scheduler").get_schedule_group(Name=resource.split("/", 1)[1])
        elif service == "iam" and resource.startswith("role/"):
            target.client("iam").get_role(RoleName=resource.rsplit("/", 1)[1])
    except ClientError as exc:
        if error_code(exc) in _GONE:
            return False
        raise
    return True
