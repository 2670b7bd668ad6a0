"""Schedule expressions and events, computed as EventBridge Scheduler would (pure functions)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from jobcontroller.errors import ConfigError
from jobcontroller.events import schedule_input
from jobcontroller.ops.schedules import (
    ScheduleSpec,
    execution_id,
    fire_times,
    render_event,
    slot_run_id,
)

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _spec(**changes) -> ScheduleSpec:
    """A schedule as the Scheduler API would report it, with the course's input template."""
    schedule = {
        "Name": "ann-hourly_processor",
        "GroupName": "ann",
        "Arn": "arn:aws:scheduler:us-east-1:123456789012:schedule/ann/ann-hourly_processor",
        "ScheduleExpression": "cron(0 * * * ? *)",
        "Target": {"Arn": "arn:fn", "Input": json.dumps(schedule_input("hourly_processor"))},
        **changes,
    }
    return ScheduleSpec.from_api(schedule)


# --- fire times --------------------------------------------------------------------------


def test_hourly_cron_fires_24_times_a_day():
    """cron(0 * * * ? *) fires on every hour of a day, on the hour."""
    times = fire_times("cron(0 * * * ? *)", T0, T0 + 24 * HOUR)
    assert len(times) == 24
    assert times[0] == T0 and times[-1] == T0 + 23 * HOUR


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("cron(15 9-11 * * ? *)", ["09:15", "10:15", "11:15"]),
        ("cron(0,30 9 * * ? *)", ["09:00", "09:30"]),
        ("cron(*/20 10 ? * * *)", ["10:00", "10:20", "10:40"]),
        ("rate(45 minutes)", ["09:00", "09:45", "10:30", "11:15"]),
        ("rate(1 hour)", ["09:00", "10:00", "11:00"]),
        ("at(2026-01-05T10:30:00)", ["10:30"]),
        ("at(2026-01-06T10:30:00)", []),
    ],
)
def test_supported_expressions_fire_when_aws_would(expression, expected):
    """rate(), at() and daily cron() patterns give the slots EventBridge Scheduler fires."""
    times = fire_times(expression, T0, T0 + 3 * HOUR, anchor=T0 - 24 * HOUR)
    assert [t.strftime("%H:%M") for t in times] == expected


def test_rate_counts_from_its_anchor():
    """rate(2 hours) started at 08:30 fires at 10:30 and 12:30 inside 09:00-13:00."""
    times = fire_times("rate(2 hours)", T0, T0 + 4 * HOUR, anchor=T0 - timedelta(minutes=30))
    assert [t.strftime("%H:%M") for t in times] == ["10:30", "12:30"]


def test_cron_in_another_timezone_is_converted_to_utc():
    """cron(0 10 * * ? *) in Europe/Paris fires at 09:00 UTC in January."""
    times = fire_times("cron(0 10 * * ? *)", T0, T0 + HOUR, timezone="Europe/Paris")
    assert times == [T0]


@pytest.mark.parametrize(
    "expression",
    [
        "cron(0 9 1 * ? *)",
        "cron(0 9 ? * MON *)",
        "cron(0 25 * * ? *)",
        "cron(0 * * *)",
        "cron(0/0 * * * ? *)",
        "cron(a-b * * * ? *)",
        "every hour",
        "rate(0 hours)",
        "rate(1 week)",
    ],
)
def test_unsupported_expressions_are_a_clear_error(expression):
    """Expressions the driver cannot compute raise ConfigError naming the expression."""
    with pytest.raises(ConfigError, match=re.escape(expression)):
        fire_times(expression, T0, T0 + HOUR, anchor=T0)


def test_rate_without_an_anchor_is_a_clear_error():
    """A rate() expression needs to know when it started; without it the error says so."""
    with pytest.raises(ConfigError, match="anchor"):
        fire_times("rate(1 hour)", T0, T0 + HOUR)


def test_an_unknown_timezone_or_a_naive_time_is_a_clear_error():
    """A timezone that is not an IANA name, or a time without a zone, is refused."""
    with pytest.raises(ConfigError, match="IANA"):
        fire_times("cron(0 * * * ? *)", T0, T0 + HOUR, timezone="Mars/Olympus")
    with pytest.raises(ConfigError, match="timezone-aware"):
        fire_times("cron(0 * * * ? *)", T0.replace(tzinfo=None), T0 + HOUR)


# --- events and ids ----------------------------------------------------------------------


def test_rendering_fills_in_the_context_attributes():
    """The event carries the scheduled time, a 16-hex execution id and the attempt number."""
    event = render_event(_spec(), T0, attempt=2)
    assert event["scheduled_time"] == "2026-01-05T09:00:00Z"
    assert event["attempt"] == "2"
    assert len(event["execution_id"]) == 16 and int(event["execution_id"], 16) >= 0
    assert "<aws.scheduler" not in json.dumps(event)


def test_each_delivery_has_its_own_execution_id_and_the_same_on_every_run():
    """Delivery numbers give distinct execution ids; the same number gives the same id."""
    spec = _spec()
    first, again = render_event(spec, T0), render_event(spec, T0, delivery=1)
    second = render_event(spec, T0, delivery=2)
    assert first == again
    assert second["execution_id"] != first["execution_id"]
    assert first["execution_id"] == execution_id(spec, T0, 1)
    assert execution_id(spec, T0 + HOUR, 1) != execution_id(spec, T0, 1)


def test_delivery_numbers_count_from_one():
    """A delivery number below 1 is refused."""
    with pytest.raises(ConfigError, match="count from 1"):
        render_event(_spec(), T0, delivery=0)


def test_an_empty_input_template_delivers_an_empty_event():
    """A schedule without an input delivers {} (the handler then refuses it, as on AWS)."""
    spec = _spec(Target={"Arn": "arn:fn"})
    assert render_event(spec, T0) == {}


def test_slot_run_ids_name_the_slot_and_the_delivery():
    """slot_run_id reads as the slot's date, time and delivery number (UTC)."""
    paris = T0.astimezone(ZoneInfo("Europe/Paris"))
    assert slot_run_id(paris, 2) == "run-0105T0900-2"
