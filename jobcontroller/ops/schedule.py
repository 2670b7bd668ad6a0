"""The schedule that fires the function: its settings, the recurring schedule, a one-off.

EventBridge Scheduler delivers the job's trigger at each slot with the scheduled time in the
input (the handler's once-per-slot key), never retries (rule 8: retries come from state) and
dead-letters what it cannot deliver. Schedules cannot carry tags, so they live in a tagged
schedule group named from the prefix.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from jobcontroller.clock import Clock, SystemClock
from jobcontroller.errors import ConfigError
from jobcontroller.events import schedule_input
from jobcontroller.ops.naming import Names, Target, error_code, schedule_group_arn
from jobcontroller.ops.retry import ROLE_NOT_ASSUMABLE_BY_SCHEDULER, until_consistent

__all__ = [
    "DEFAULT_SCHEDULE",
    "ScheduleSettings",
    "ensure_schedule",
    "schedule_once",
    "schedule_request",
    "set_schedule_enabled",
]


# On the hour, every hour, in UTC: the slots are predictable (09:00, 10:00, ...), where
# `rate(1 hour)` would fire relative to whenever the schedule was created.
DEFAULT_SCHEDULE = "cron(0 * * * ? *)"


@dataclass(frozen=True)
class ScheduleSettings:
    """The schedule: when it fires and what it does when a delivery fails."""

    expression: str = DEFAULT_SCHEDULE
    timezone: str = "UTC"
    # Retries off, failures to the dead-letter queue (rule 8). An event older than one
    # interval is dropped to the queue rather than delivered on top of the next slot.
    max_retries: int = 0
    max_event_age_seconds: int = 3600
    enabled: bool = True


def _ensure_schedule_group(target: Target, names: Names) -> str:
    scheduler = target.client("scheduler")
    tags = [{"Key": k, "Value": v} for k, v in names.tags.items()]
    # Look before creating: moto's create_schedule_group silently replaces an existing group
    # (and so drops its schedules) where AWS answers ConflictException.
    arn = schedule_group_arn(scheduler, names.schedule_group)
    if arn is None:
        try:
            return scheduler.create_schedule_group(Name=names.schedule_group, Tags=tags)[
                "ScheduleGroupArn"
            ]
        except ClientError as exc:
            if error_code(exc) != "ConflictException":
                raise
            arn = scheduler.get_schedule_group(Name=names.schedule_group)["Arn"]
    scheduler.tag_resource(ResourceArn=arn, Tags=tags)
    return arn


def _scheduler_role_arn(target: Target, names: Names, role_arn: str | None) -> str:
    if role_arn:
        return role_arn
    return target.client("iam").get_role(RoleName=names.scheduler_role)["Role"]["Arn"]


def schedule_request(
    names: Names,
    settings: ScheduleSettings,
    *,
    function_arn: str,
    role_arn: str,
    dead_letter_arn: str,
) -> dict[str, Any]:
    """The recurring schedule, as create_schedule takes it."""
    return {
        "Name": names.schedule,
        "GroupName": names.schedule_group,
        "ScheduleExpression": settings.expression,
        "ScheduleExpressionTimezone": settings.timezone,
        # OFF: deliver at the slot, not somewhere in a window after it.
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "Target": {
            "Arn": function_arn,
            "RoleArn": role_arn,
            # The Scheduler fills in the <aws.scheduler.*> placeholders at each delivery; the
            # scheduled time is the handler's once-per-slot key (rule 4).
            "Input": json.dumps(schedule_input(names.job)),
            "RetryPolicy": {
                "MaximumRetryAttempts": settings.max_retries,
                "MaximumEventAgeInSeconds": settings.max_event_age_seconds,
            },
            "DeadLetterConfig": {"Arn": dead_letter_arn},
        },
        "State": "ENABLED" if settings.enabled else "DISABLED",
        "ActionAfterCompletion": "NONE",
        "Description": f"jobcontroller: {names.job} for {names.prefix}",
    }


def _schedule_request(
    target: Target, names: Names, settings: ScheduleSettings, role_arn: str | None
) -> dict[str, Any]:
    return schedule_request(
        names,
        settings,
        function_arn=target.arn("lambda", f"function:{names.function}"),
        role_arn=_scheduler_role_arn(target, names, role_arn),
        dead_letter_arn=target.arn("sqs", names.schedule_dlq),
    )


def _put_schedule(
    target: Target, request: dict[str, Any], *, say: Callable[[str], None] | None = None
) -> str:
    scheduler = target.client("scheduler")

    def put() -> str:
        try:
            return str(scheduler.create_schedule(**request)["ScheduleArn"])
        except ClientError as exc:
            if error_code(exc) != "ConflictException":
                raise
        # update_schedule replaces every field, so the result is the same as a fresh create.
        return str(scheduler.update_schedule(**request)["ScheduleArn"])

    # The Scheduler checks that it can assume the role, which a role seconds old may fail.
    return until_consistent(
        target,
        put,
        waits_for=[ROLE_NOT_ASSUMABLE_BY_SCHEDULER],
        what=f"schedule {request['Name']}",
        say=say,
    )


def set_schedule_enabled(
    target: Target, names: Names, enabled: bool, *, say: Callable[[str], None] | None = None
) -> str:
    """Switch the recurring schedule on or off and change nothing else; returns its ARN.

    UpdateSchedule replaces every field (a field left out gets its default), so the schedule
    is read first and sent back whole, with only its state changed: a custom expression or
    time zone set at deploy time survives.
    https://docs.aws.amazon.com/scheduler/latest/APIReference/API_UpdateSchedule.html
    """
    scheduler = target.client("scheduler")
    current = scheduler.get_schedule(Name=names.schedule, GroupName=names.schedule_group)
    accepted = scheduler.meta.service_model.operation_model("UpdateSchedule").input_shape.members
    request = {k: v for k, v in current.items() if k in accepted}
    request["State"] = "ENABLED" if enabled else "DISABLED"
    return _put_schedule(target, request, say=say)


def ensure_schedule(
    target: Target,
    names: Names,
    *,
    settings: ScheduleSettings | None = None,
    role_arn: str | None = None,
    say: Callable[[str], None] | None = None,
) -> str:
    """The recurring schedule (in its tagged group) that invokes the function. Returns its ARN."""
    settings = settings or ScheduleSettings()
    _ensure_schedule_group(target, names)
    return _put_schedule(target, _schedule_request(target, names, settings, role_arn), say=say)


def schedule_once(
    target: Target,
    names: Names,
    *,
    at: datetime | None = None,
    minutes_ahead: float = 3,
    clock: Clock | None = None,
    role_arn: str | None = None,
) -> tuple[str, datetime]:
    """A one-off `at(...)` schedule, deleted by the Scheduler once it has fired.

    It lets a learner on real AWS watch a scheduled delivery within minutes instead of
    waiting for the top of the hour. Returns the schedule's ARN and when it fires.
    """
    now = (clock or SystemClock()).now()
    when = at or now + timedelta(minutes=minutes_ahead)
    if when.tzinfo is None:
        raise ConfigError("`at` needs a timezone-aware time, e.g. datetime(..., tzinfo=UTC)")
    when = when.astimezone(UTC).replace(microsecond=0)
    if when <= now + timedelta(seconds=30):
        raise ConfigError(
            f"`at` ({when:%Y-%m-%dT%H:%M:%SZ}) must be at least 30 s after now "
            f"({now:%Y-%m-%dT%H:%M:%SZ}): pick a later time"
        )
    _ensure_schedule_group(target, names)
    request = _schedule_request(target, names, ScheduleSettings(), role_arn)
    request.update(
        Name=names.once_schedule(when),
        ScheduleExpression=f"at({when:%Y-%m-%dT%H:%M:%S})",
        ScheduleExpressionTimezone="UTC",
        State="ENABLED",
        # The Scheduler deletes a one-off schedule after it fired, so it leaves nothing.
        ActionAfterCompletion="DELETE",
        Description=f"jobcontroller: one-off run of {names.job} for {names.prefix}",
    )
    return _put_schedule(target, request), when
