"""Tear down one participant's stack, and prove it: `teardown`, then `leftovers`.

Deletion runs in dependency order and is safe to repeat; it ends by listing everything that
still carries the prefix (by tag, IAM path or name prefix), and fails if anything does.
"""

from __future__ import annotations

import time
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
from jobcontroller.store import ControlStore

__all__ = ["TeardownIncomplete", "TeardownReport", "leftovers", "teardown"]


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


def _delete_queue(sqs: Any, name: str) -> bool:
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError as exc:
        if error_code(exc) in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
            return False
        raise
    sqs.delete_queue(QueueUrl=url)
    return True


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
    sleep: Callable[[float], None] = time.sleep,
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
            target.client("dynamodb").get_waiter("table_not_exists").wait(
                TableName=names.table, WaiterConfig={"Delay": 2, "MaxAttempts": 60}
            )
    left = leftovers(target, names.prefix)
    waited = 0.0
    while left and waited < settle_seconds:
        sleep(5)
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


def leftovers(target: Target, prefix: str) -> list[str]:
    """ARNs of everything that still belongs to `prefix`; empty after a complete teardown.

    Tables, functions, log groups and queues are found by their tag through the Resource
    Groups Tagging API (moto serves it for these four; verified in tests/test_deploy.py).
    IAM roles and schedules it does not list in moto (and schedules cannot carry tags at
    all), so those are listed by name: roles under the prefix's IAM path, schedule groups
    and schedules by the name prefix `<prefix>-`.
    """
    names = Names(prefix)  # validates the prefix
    found: set[str] = set()
    tagging = target.client("resourcegroupstaggingapi")
    for page in tagging.get_paginator("get_resources").paginate(
        TagFilters=[{"Key": TAG_KEY, "Values": [prefix]}]
    ):
        found.update(r["ResourceARN"] for r in page["ResourceTagMappingList"])
    iam = target.client("iam")
    for page in iam.get_paginator("list_roles").paginate(PathPrefix=names.iam_path):
        found.update(r["Arn"] for r in page["Roles"])
    scheduler = target.client("scheduler")
    for page in scheduler.get_paginator("list_schedule_groups").paginate(NamePrefix=f"{prefix}-"):
        found.update(g["Arn"] for g in page["ScheduleGroups"])
    for page in scheduler.get_paginator("list_schedules").paginate(NamePrefix=f"{prefix}-"):
        found.update(s["Arn"] for s in page["Schedules"])
    return sorted(found)
