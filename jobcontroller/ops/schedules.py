"""EventBridge Scheduler schedules, computed here: when one fires, and the event it delivers.

moto stores a schedule but never fires it. The schedule driver (ops.driver) reads the
schedule back (`ScheduleSpec`), computes its slots with `fire_times`, and renders each
delivery's event with `render_event`. Everything here is a pure function of its arguments.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jobcontroller.errors import ConfigError
from jobcontroller.model import format_ts
from jobcontroller.ops.invocation import as_utc

__all__ = ["ScheduleSpec", "execution_id", "fire_times", "render_event", "slot_run_id"]


@dataclass(frozen=True)
class ScheduleSpec:
    """A schedule as the Scheduler API reports it."""

    name: str
    group: str
    arn: str
    expression: str
    timezone: str
    state: str
    target_arn: str
    input_template: str
    retry_policy: dict[str, int]
    dead_letter_arn: str | None
    flexible_window: dict[str, Any]
    start_date: datetime | None = None
    end_date: datetime | None = None
    created: datetime | None = None
    # DELETE: the Scheduler deletes a one-off schedule once it has fired.
    action_after_completion: str = "NONE"

    @classmethod
    def from_api(cls, schedule: Mapping[str, Any]) -> ScheduleSpec:
        target = schedule["Target"]

        def aware(when: datetime | None) -> datetime | None:
            return None if when is None else when.astimezone(UTC)

        return cls(
            name=schedule["Name"],
            group=schedule.get("GroupName", "default"),
            arn=schedule["Arn"],
            expression=schedule["ScheduleExpression"],
            timezone=schedule.get("ScheduleExpressionTimezone") or "UTC",
            state=schedule.get("State", "ENABLED"),
            target_arn=target["Arn"],
            input_template=target.get("Input", ""),
            retry_policy=dict(target.get("RetryPolicy", {})),
            dead_letter_arn=target.get("DeadLetterConfig", {}).get("Arn"),
            flexible_window=dict(schedule.get("FlexibleTimeWindow", {})),
            start_date=aware(schedule.get("StartDate")),
            end_date=aware(schedule.get("EndDate")),
            created=aware(schedule.get("CreationDate")),
            action_after_completion=schedule.get("ActionAfterCompletion") or "NONE",
        )


# --- when a schedule fires -----------------------------------------------------------------

_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_CRON = re.compile(r"^cron\((.+)\)$")
_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
_SUPPORTED = (
    "the local driver understands rate(N minutes|hours|days), at(yyyy-mm-ddThh:mm:ss) and "
    "cron(minutes hours * * ? *) with numbers, lists, ranges, '*' and '/step' in the first "
    "two fields"
)


def _cron_field(text: str, low: int, high: int, expression: str) -> list[int]:
    values: set[int] = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            if not step_text.isdigit() or int(step_text) == 0:
                raise ConfigError(f"{expression}: bad step {step_text!r}; {_SUPPORTED}")
            step = int(step_text)
        if part == "*":
            first, last = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            if not (a.isdigit() and b.isdigit()):
                raise ConfigError(f"{expression}: bad range {part!r}; {_SUPPORTED}")
            first, last = int(a), int(b)
        elif part.isdigit():
            first = int(part)
            last = high if step > 1 else first
        else:
            raise ConfigError(f"{expression}: cannot read {part!r}; {_SUPPORTED}")
        if not low <= first <= last <= high:
            raise ConfigError(f"{expression}: {part!r} is outside {low}-{high}")
        values.update(range(first, last + 1, step))
    return sorted(values)


def _rate_times(
    expression: str, count: int, unit: str, start: datetime, end: datetime, anchor: datetime | None
) -> list[datetime]:
    if count == 0:
        raise ConfigError(f"{expression}: the rate must be at least 1 {unit}")
    if anchor is None:
        raise ConfigError(
            f"{expression} fires relative to when it started: pass anchor= (the "
            "schedule's StartDate or creation time)"
        )
    step = timedelta(**{f"{unit}s": count})
    anchor = as_utc(anchor)
    when = anchor + step * max(0, -((anchor - start) // step))
    times = []
    while when < end:
        if when >= start:
            times.append(when)
        when += step
    return times


def _cron_times(
    expression: str, fields: list[str], start: datetime, end: datetime, zone: ZoneInfo
) -> list[datetime]:
    if len(fields) != 6:
        raise ConfigError(f"{expression}: a cron expression has 6 fields; {_SUPPORTED}")
    minutes_text, hours_text, dom, month, dow, year = fields
    if dom not in ("*", "?") or month != "*" or dow not in ("*", "?") or year != "*":
        raise ConfigError(f"{expression}: only daily patterns are supported; {_SUPPORTED}")
    minutes = _cron_field(minutes_text, 0, 59, expression)
    hours = _cron_field(hours_text, 0, 23, expression)
    times = []
    # A day either side, so that a zone's offset cannot push a firing out of the window.
    day = start.astimezone(zone).date() - timedelta(days=1)
    last_day = end.astimezone(zone).date() + timedelta(days=1)
    while day <= last_day:
        for hour in hours:
            for minute in minutes:
                local = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
                when = local.astimezone(UTC)
                if start <= when < end:
                    times.append(when)
        day += timedelta(days=1)
    return sorted(set(times))


def fire_times(
    expression: str,
    start: datetime,
    end: datetime,
    *,
    timezone: str = "UTC",
    anchor: datetime | None = None,
) -> list[datetime]:
    """The times (UTC) a schedule expression fires in [start, end).

    `anchor` is when a rate() schedule started counting (its StartDate or creation time).
    """
    start, end = as_utc(start), as_utc(end)
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unknown schedule timezone {timezone!r}: use an IANA name") from None
    expression = expression.strip()
    if match := _RATE.match(expression):
        count, unit = int(match.group(1)), match.group(2).rstrip("s")
        return _rate_times(expression, count, unit, start, end, anchor)
    if match := _AT.match(expression):
        when = datetime.fromisoformat(match.group(1)).replace(tzinfo=zone).astimezone(UTC)
        return [when] if start <= when < end else []
    if match := _CRON.match(expression):
        return _cron_times(expression, match.group(1).split(), start, end, zone)
    raise ConfigError(f"cannot compute when {expression!r} fires: {_SUPPORTED}")


# --- what a delivery carries ---------------------------------------------------------------


def execution_id(spec: ScheduleSpec, slot: datetime, delivery: int) -> str:
    """The execution id of `slot`'s `delivery`-th delivery (counting from 1).

    Unique per attempted delivery, as the Scheduler's are, and the same on every run of a
    notebook, being derived from the schedule, the slot and that number.
    """
    if delivery < 1:
        raise ConfigError(f"delivery numbers count from 1, got {delivery}")
    seed = f"{spec.arn}|{format_ts(as_utc(slot))}|{delivery}".encode()
    return hashlib.sha256(seed).hexdigest()[:16]


def render_event(
    spec: ScheduleSpec, slot: datetime, *, delivery: int = 1, attempt: int = 1
) -> dict[str, Any]:
    """The event the Scheduler delivers for `slot`: the schedule's input template with its
    context attributes filled in, for the slot's `delivery`-th delivery and `attempt`.

    https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-schedule-context-attributes.html
    """
    values = {
        "<aws.scheduler.schedule-arn>": spec.arn,
        "<aws.scheduler.scheduled-time>": format_ts(as_utc(slot)),
        "<aws.scheduler.execution-id>": execution_id(spec, slot, delivery),
        "<aws.scheduler.attempt-number>": str(attempt),
    }
    text = spec.input_template
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    return json.loads(text) if text else {}


def slot_run_id(slot: datetime, delivery: int) -> str:
    """A readable fixed run id for a replay: `run-0105T0900-1` is the first delivery of the
    09:00 slot on 5 January (UTC). Unique per delivery, as the controller's random ids are."""
    return f"run-{as_utc(slot):%m%dT%H%M}-{delivery}"
