"""Events: Scheduler payloads and manual triggers become Triggers, or a clear error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from jobcontroller import (
    BadEvent,
    JobControllerError,
    Trigger,
    UnknownJob,
    parse_event,
    schedule_input,
)
from jobcontroller.events import MAX_SLOT_AGE, MAX_SLOT_SKEW, check_slot

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


@pytest.mark.parametrize(
    "event",
    [
        {"attempt": float("inf")},
        {"attempt": float("nan")},
        {"attempt": 1.5},
        {"attempt": True},
        {"attempt": "9" * 5000},
        {1: "one", "job": JOB},
        {1: "one", "extra": 2},
        {("a", "b"): 1},
        {"scheduled_time": "0001-01-01T00:00:00+01:00"},
        {"scheduled_time": "9999-12-31T23:59:59-01:00"},
        {"scheduled_time": "2026-01-05T09:00:00Z\x00"},
        {"scheduled_time": "2026-01-05T09:00:00Z "},
        {"scheduled_time": "2026-01-05 09:00:00Z"},
        {"scheduled_time": "2026-01-05T09:00:00+00:00:30"},
        {"scheduled_time": "\u0662\u0660\u0662\u0666-01-05T09:00:00Z"},
        {"scheduled_time": "2026-02-30T09:00:00Z"},
    ],
)
def test_every_malformed_event_raises_bad_event(event):
    """Odd numbers, odd keys, out-of-range offsets and trailing junk are BadEvent, never a crash."""
    with pytest.raises(BadEvent):
        parse_event(event, job=JOB)


@pytest.mark.parametrize(
    "event",
    [
        {"job": "x" * 1_000_000},
        {"scheduled_time": "y" * 1_000_000},
        {"source": "z" * 1_000_000},
        {"attempt": "w" * 1_000_000},
        {"k" * 1_000_000: 1},
        {"execution_id": ["e"] * 100_000},
    ],
)
def test_messages_quote_only_a_short_prefix_of_the_input(event):
    """A huge bad value is quoted by its first characters, so the message stays short."""
    with pytest.raises(JobControllerError) as info:
        parse_event(event, job=JOB)
    assert len(str(info.value)) < 500


def test_times_are_normalised_to_utc():
    """A slot with an offset becomes the same instant in UTC, with microseconds kept."""
    trigger = parse_event({"scheduled_time": "2026-01-05T10:00:00.5+01:00"}, job=JOB)
    assert trigger.slot == datetime(2026, 1, 5, 9, 0, 0, 500_000, tzinfo=UTC)
    assert trigger.slot.tzinfo is UTC


NOW = datetime(2026, 1, 5, 9, 0, 7, tzinfo=UTC)


@pytest.mark.parametrize(
    "offset", [-MAX_SLOT_AGE, -timedelta(hours=1), timedelta(0), MAX_SLOT_SKEW]
)
def test_slots_within_the_bounds_are_accepted(offset):
    """A slot up to the maximum event age in the past or the clock skew ahead is fine."""
    check_slot(NOW + offset, now=NOW)


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        (-MAX_SLOT_AGE - timedelta(seconds=1), "at most"),
        (MAX_SLOT_SKEW + timedelta(seconds=1), "at most"),
        (datetime(999, 12, 31, 23, tzinfo=UTC) - NOW, "in the past"),
        (datetime(2999, 1, 1, tzinfo=UTC) - NOW, "in the future"),
    ],
)
def test_slots_outside_the_bounds_are_bad_events(offset, expected):
    """A slot older than any delivery can be, or later than clock skew allows, is refused."""
    with pytest.raises(BadEvent, match=expected) as info:
        check_slot(NOW + offset, now=NOW)
    assert "2026-01-05T09:00:07Z" in str(info.value)


def test_slot_bounds_follow_the_documented_aws_limits():
    """The age bound is Scheduler's 24 h maximum event age plus Lambda's 6 h async queue."""
    assert timedelta(seconds=86_400 + 21_600) == MAX_SLOT_AGE
    assert timedelta(minutes=5) == MAX_SLOT_SKEW
