"""Events: Scheduler payloads and manual triggers become Triggers, or a clear error."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from jobcontroller import BadEvent, Trigger, UnknownJob, parse_event, schedule_input

JOB = "hourly_processor"


def test_scheduler_event():
    """A rendered Scheduler payload carries its slot, execution id and attempt."""
    trigger = parse_event(
        {
            "job": JOB,
            "source": "scheduler",
            "scheduled_time": "2026-01-05T09:00:00Z",
            "execution_id": "abc",
            "attempt": "1",
        },
        job=JOB,
    )
    assert trigger == Trigger(
        JOB,
        slot=datetime(2026, 1, 5, 9, tzinfo=UTC),
        source="scheduler",
        execution_id="abc",
        attempt=1,
    )
    assert trigger.keyed_by == "scheduled slot 2026-01-05T09:00:00Z"


@pytest.mark.parametrize("event", [{}, None, {"job": JOB}, {"source": "manual"}])
def test_manual_events_say_how_they_are_keyed(event):
    """A manual trigger has no slot and says it is keyed by arrival time."""
    trigger = parse_event(event, job=JOB)
    assert trigger.slot is None and trigger.source == "manual"
    assert "no once-per-slot check" in trigger.keyed_by


def test_schedule_input_parses_once_rendered():
    """The schedule's input template, once Scheduler renders it, is a valid event."""
    rendered = {
        k: v.replace("<aws.scheduler.scheduled-time>", "2026-01-05T10:00:00Z")
        .replace("<aws.scheduler.execution-id>", "e-1")
        .replace("<aws.scheduler.attempt-number>", "1")
        for k, v in schedule_input(JOB).items()
    }
    assert parse_event(rendered, job=JOB).slot == datetime(2026, 1, 5, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("event", "error", "message"),
    [
        ("run please", BadEvent, "JSON object"),
        ([JOB], BadEvent, "JSON object"),
        ({"jobb": JOB}, BadEvent, "unknown event field"),
        ({"job": 5}, BadEvent, "'job' must be a string"),
        ({"job": "nightly"}, UnknownJob, "controls job 'hourly_processor'"),
        ({"job": "bad name!"}, UnknownJob, "not a valid job name"),
        ({"scheduled_time": "yesterday"}, BadEvent, "ISO 8601"),
        ({"scheduled_time": 1767600000}, BadEvent, "must be a string"),
        ({"scheduled_time": "2026-01-05T09:00:00"}, BadEvent, "no timezone"),
        ({"scheduled_time": "<aws.scheduler.scheduled-time>"}, BadEvent, "unrendered"),
        ({"source": "scheduler"}, BadEvent, "must carry 'scheduled_time'"),
        ({"source": "cron"}, BadEvent, "'source' must be"),
        ({"attempt": "first"}, BadEvent, "'attempt' must be a whole number"),
        ({"execution_id": 3}, BadEvent, "'execution_id' must be a string"),
    ],
)
def test_bad_events(event, error, message):
    """Each malformed event raises its specific error with a message that says what to do."""
    with pytest.raises(error, match=message):
        parse_event(event, job=JOB)
