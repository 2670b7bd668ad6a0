"""Turn a Lambda event into a Trigger, or say exactly what is wrong with it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .errors import BadEvent, UnknownJob
from .model import Trigger, job_key

__all__ = ["parse_event", "schedule_input"]

_KNOWN_KEYS = {"job", "source", "scheduled_time", "execution_id", "attempt"}
_EXAMPLE = '{"job": "hourly_processor", "scheduled_time": "2026-01-05T09:00:00Z"}'


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


def _parse_scheduled_time(raw: Any) -> datetime:
    if not isinstance(raw, str):
        raise BadEvent(f"'scheduled_time' must be a string like 2026-01-05T09:00:00Z, got {raw!r}")
    if raw.startswith("<aws.scheduler"):
        raise BadEvent(
            f"'scheduled_time' is the unrendered placeholder {raw!r}: it is only filled in "
            "when EventBridge Scheduler delivers the event; send a real time or leave it out"
        )
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise BadEvent(
            f"'scheduled_time' {raw!r} is not an ISO 8601 time like 2026-01-05T09:00:00Z"
        ) from None
    if when.tzinfo is None:
        raise BadEvent(f"'scheduled_time' {raw!r} has no timezone: add 'Z' for UTC")
    return when


def parse_event(event: Any, *, job: str) -> Trigger:
    """Parse a Scheduler payload or a manual event for the job this function controls."""
    if event is None:
        event = {}
    if not isinstance(event, dict):
        raise BadEvent(
            f"the event must be a JSON object such as {_EXAMPLE}, got {type(event).__name__}"
        )
    unknown = sorted(set(event) - _KNOWN_KEYS)
    if unknown:
        raise BadEvent(
            f"unknown event field(s) {unknown}; allowed: {sorted(_KNOWN_KEYS)}, e.g. {_EXAMPLE}"
        )

    named = event.get("job", job)
    if not isinstance(named, str):
        raise BadEvent(f"'job' must be a string, got {named!r}")
    job_key(named)
    if named != job:
        raise UnknownJob(
            f"this function controls job {job!r}, but the event asks for {named!r}; "
            f"send it to that job's function or leave 'job' out"
        )

    source = event.get("source", "scheduler" if "scheduled_time" in event else "manual")
    if source not in ("scheduler", "manual"):
        raise BadEvent(f"'source' must be 'scheduler' or 'manual', got {source!r}")

    slot = None
    if event.get("scheduled_time") is not None:
        slot = _parse_scheduled_time(event["scheduled_time"])
    elif source == "scheduler":
        raise BadEvent("a scheduler event must carry 'scheduled_time' (its idempotency key)")

    attempt = event.get("attempt")
    if attempt is not None:
        try:
            attempt = int(attempt)
        except (TypeError, ValueError):
            raise BadEvent(f"'attempt' must be a whole number, got {attempt!r}") from None

    execution_id = event.get("execution_id")
    if execution_id is not None and not isinstance(execution_id, str):
        raise BadEvent(f"'execution_id' must be a string, got {execution_id!r}")

    return Trigger(job=job, slot=slot, source=source, execution_id=execution_id, attempt=attempt)
