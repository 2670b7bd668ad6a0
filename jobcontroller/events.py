"""Turn a Lambda event into a Trigger, or say exactly what is wrong with it.

Every malformed event raises `BadEvent` (or `UnknownJob` for another job's event), never a
plain Python error, and every message quotes at most a short prefix of the input.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from .errors import BadEvent, UnknownJob, preview
from .model import Trigger, format_ts, job_key

__all__ = ["MAX_SLOT_AGE", "MAX_SLOT_SKEW", "check_slot", "parse_event", "schedule_input"]

_KNOWN_KEYS = {"job", "source", "scheduled_time", "execution_id", "attempt"}
_EXAMPLE = '{"job": "hourly_processor", "scheduled_time": "2026-01-05T09:00:00Z"}'
# ISO 8601 as Scheduler renders <aws.scheduler.scheduled-time>, plus optional fractions and
# numeric offsets for manual events. ASCII digits only: `\d` would also match other scripts'.
_TIME_PATTERN = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})"
)
_ATTEMPT_PATTERN = re.compile(r"[0-9]{1,9}")

# How far a slot may lie from the invocation's clock. A delivery can be late by at most
# Scheduler's maximum event age (24 h at most, MaximumEventAgeInSeconds <= 86400) plus the
# time Lambda may hold an asynchronous event before running it (6 h at most,
# MaximumEventAgeInSeconds <= 21600); an older slot did not come from the schedule.
# https://docs.aws.amazon.com/scheduler/latest/APIReference/API_RetryPolicy.html
# https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-configuring.html
MAX_SLOT_AGE = timedelta(seconds=86_400 + 21_600)
# A slot is never in the future for the Scheduler that sent it; this allows for the clock
# of the invoker and of this function disagreeing a little.
MAX_SLOT_SKEW = timedelta(minutes=5)


def schedule_input(job: str) -> dict[str, str]:
    """The schedule target's input: Scheduler fills in the <aws.scheduler.*> placeholders.

    https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-schedule-context-attributes.html
    """
    job_key(job)
    return {
        "job": job,
        "source": "scheduler",
        "scheduled_time": "<aws.scheduler.scheduled-time>",
        "execution_id": "<aws.scheduler.execution-id>",
        "attempt": "<aws.scheduler.attempt-number>",
    }


def check_slot(slot: datetime, *, now: datetime) -> None:
    """BadEvent unless `slot` lies within what a delivery at `now` can carry.

    No older than MAX_SLOT_AGE and no later than MAX_SLOT_SKEW: a slot far in the past or
    the future would otherwise mark years of real slots as done, or overflow the calendar.
    """
    try:
        # In UTC first: comparing or printing another offset near year 1 or 9999 overflows.
        slot, now = slot.astimezone(UTC), now.astimezone(UTC)
    except OverflowError:
        raise BadEvent(
            "scheduled slot is not a time between years 0001 and 9999 in UTC; nothing was "
            "written: send the slot the schedule fired for, or leave it out"
        ) from None
    earliest = _shifted(now, -MAX_SLOT_AGE)
    latest = _shifted(now, MAX_SLOT_SKEW)
    if earliest <= slot <= latest:
        return
    where = "in the past" if slot < earliest else "in the future"
    raise BadEvent(
        f"scheduled slot {format_ts(slot)} is too far {where} for this invocation at "
        f"{format_ts(now)}: expected a slot at most {_hours(MAX_SLOT_AGE)} earlier (the "
        f"schedule's and Lambda's maximum event age) and at most {_hours(MAX_SLOT_SKEW)} "
        f"later (clock skew), between {format_ts(earliest)} and {format_ts(latest)}. "
        "Nothing was written; send the slot the schedule fired for, or leave it out."
    )


def _shifted(when: datetime, by: timedelta) -> datetime:
    """`when + by`, stopping at the calendar's ends instead of overflowing."""
    try:
        return when + by
    except OverflowError:
        return (datetime.min if by < timedelta(0) else datetime.max).replace(tzinfo=UTC)


def _hours(span: timedelta) -> str:
    minutes = int(span.total_seconds()) // 60
    return f"{minutes // 60} h" if minutes >= 60 else f"{minutes} min"


def _parse_scheduled_time(raw: Any) -> datetime:
    if not isinstance(raw, str):
        raise BadEvent(
            f"'scheduled_time' must be a string like 2026-01-05T09:00:00Z, got {preview(raw)}"
        )
    if raw.startswith("<aws.scheduler"):
        raise BadEvent(
            f"'scheduled_time' is the unrendered placeholder {preview(raw)}: it is only filled "
            "in when EventBridge Scheduler delivers the event; send a real time or leave it out"
        )
    if _TIME_PATTERN.fullmatch(raw) is None:
        if _TIME_PATTERN.fullmatch(raw + "Z") is not None:
            raise BadEvent(f"'scheduled_time' {preview(raw)} has no timezone: add 'Z' for UTC")
        raise BadEvent(
            f"'scheduled_time' {preview(raw)} is not an ISO 8601 time like 2026-01-05T09:00:00Z"
        )
    try:
        # Converting to UTC can leave the calendar (0001-01-01T00:00:00+01:00).
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).astimezone(UTC)
    except (ValueError, OverflowError):
        raise BadEvent(
            f"'scheduled_time' {preview(raw)} is not a real time between years 0001 and 9999 "
            "in UTC, like 2026-01-05T09:00:00Z"
        ) from None


def _parse_attempt(raw: Any) -> int:
    # Scheduler renders <aws.scheduler.attempt-number> as text ("1"); JSON may send 1.
    if isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw < 10**9:
        return raw
    if isinstance(raw, str) and _ATTEMPT_PATTERN.fullmatch(raw):
        return int(raw)
    raise BadEvent(f"'attempt' must be a whole number like 1, got {preview(raw)}")


def parse_event(event: Any, *, job: str) -> Trigger:
    """Parse a Scheduler payload or a manual event for the job this function controls."""
    if event is None:
        event = {}
    if not isinstance(event, dict):
        raise BadEvent(
            f"the event must be a JSON object such as {_EXAMPLE}, got {type(event).__name__}"
        )
    odd_keys = [k for k in event if not isinstance(k, str)]
    if odd_keys:
        raise BadEvent(f"event field names must be strings, got {preview(odd_keys)}")
    unknown = sorted(set(event) - _KNOWN_KEYS)
    if unknown:
        raise BadEvent(
            f"unknown event field(s) {preview(unknown)}; allowed: {sorted(_KNOWN_KEYS)}, "
            f"e.g. {_EXAMPLE}"
        )

    named = event.get("job", job)
    if not isinstance(named, str):
        raise BadEvent(f"'job' must be a string, got {preview(named)}")
    job_key(named)
    if named != job:
        raise UnknownJob(
            f"this function controls job {job!r}, but the event asks for {preview(named)}; "
            f"send it to that job's function or leave 'job' out"
        )

    source = event.get("source", "scheduler" if "scheduled_time" in event else "manual")
    if not isinstance(source, str) or source not in ("scheduler", "manual"):
        raise BadEvent(f"'source' must be 'scheduler' or 'manual', got {preview(source)}")

    slot = None
    if event.get("scheduled_time") is not None:
        slot = _parse_scheduled_time(event["scheduled_time"])
    elif source == "scheduler":
        raise BadEvent("a scheduler event must carry 'scheduled_time' (its idempotency key)")

    attempt = event.get("attempt")
    if attempt is not None:
        attempt = _parse_attempt(attempt)

    execution_id = event.get("execution_id")
    if execution_id is not None and not isinstance(execution_id, str):
        raise BadEvent(f"'execution_id' must be a string, got {preview(execution_id)}")

    return Trigger(job=job, slot=slot, source=source, execution_id=execution_id, attempt=attempt)
