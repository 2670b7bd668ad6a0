"""Typed records: the control item's conversion and validation, timestamps, job names."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from jobcontroller import ControlItemCorrupt, Drill, JobConfig, JobState, Status, UnknownJob
from jobcontroller.model import format_ts, job_key, parse_ts

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_timestamps_round_trip_and_sort_as_strings():
    """Stored timestamps are fixed width UTC, so string order is time order."""
    later = T0 + timedelta(seconds=1)
    assert format_ts(T0) == "2026-01-05T09:00:00Z"
    assert parse_ts(format_ts(later)) == later
    assert format_ts(T0) < format_ts(later)
    plus_two = datetime(2026, 1, 5, 11, 0, tzinfo=timezone(timedelta(hours=2)))
    assert format_ts(plus_two) == "2026-01-05T09:00:00Z"


def test_naive_datetimes_are_refused():
    """A datetime without a timezone cannot be stored: it would be ambiguous."""
    with pytest.raises(ValueError, match="UTC-aware"):
        format_ts(datetime(2026, 1, 5))


@pytest.mark.parametrize("name", ["", "a b", "x" * 65, "JOB#x", 7, None])
def test_bad_job_names(name):
    """Job names that cannot form a key raise UnknownJob with the allowed alphabet."""
    with pytest.raises(UnknownJob, match="letters, digits"):
        job_key(name)


def test_new_state_has_every_seed_attribute():
    """A fresh item carries the seed's attributes from the start (NULL where empty)."""
    item = JobState.new("hourly_processor", now=T0).to_item()
    assert item["PK"] == "JOB#hourly_processor" and item["SK"] == "STATE"
    assert item["status"] == "IDLE" and item["version"] == 0 and item["run_count"] == 0
    for name in ("last_run_ts", "last_success_ts", "next_allowed_run", "last_error"):
        assert name in item and item[name] is None


def test_item_round_trip():
    """to_item and from_item are inverse, including DynamoDB's Decimal numbers."""
    original = replace(
        JobState.new("hourly_processor", now=T0),
        status=Status.RUNNING,
        version=7,
        run_count=3,
        run_id="run-0003",
        lease_expires_at=T0 + timedelta(minutes=14),
        last_slot=T0,
        drill=Drill.FAIL,
        paused=True,
    )
    item = original.to_item()
    item = {
        k: Decimal(v) if isinstance(v, int) and not isinstance(v, bool) else v
        for k, v in item.items()
    }
    assert JobState.from_item(item, job="hourly_processor") == original


def good_item(**changes):
    item = JobState.new("hourly_processor", now=T0).to_item()
    item.update(changes)
    return item


@pytest.mark.parametrize(
    ("changes", "attribute"),
    [
        ({"status": "STUCK"}, "status"),
        ({"status": None}, "status"),
        ({"version": "3"}, "version"),
        ({"version": Decimal("1.5")}, "version"),
        ({"run_count": -1}, "run_count"),
        ({"run_count": True}, "run_count"),
        ({"next_allowed_run": "tomorrow"}, "next_allowed_run"),
        ({"last_success_ts": 1767600000}, "last_success_ts"),
        ({"last_error": 42}, "last_error"),
        ({"paused": "no"}, "paused"),
        ({"drill": "EXPLODE"}, "drill"),
        ({"status": "RUNNING"}, "run_id/lease_expires_at"),
        ({"PK": "JOB#other"}, "PK/SK"),
    ],
)
def test_corrupt_items_name_the_attribute(changes, attribute):
    """A corrupted item raises ControlItemCorrupt naming the bad attribute and the fix."""
    with pytest.raises(ControlItemCorrupt) as info:
        JobState.from_item(good_item(**changes), job="hourly_processor")
    assert repr(attribute) in str(info.value)
    assert "init_job" in str(info.value)


def test_unknown_attributes_survive_a_round_trip():
    """Attributes this version does not know are kept, not dropped, when an item is rewritten."""
    state = JobState.from_item(good_item(owner="team-a"), job="hourly_processor")
    assert state.to_item()["owner"] == "team-a"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"interval_seconds": 0}, "interval_seconds must be > 0"),
        ({"interval_seconds": 60, "cooldown_slack_seconds": 60}, "smaller than the interval"),
        ({"lease_margin_seconds": -1}, "lease_margin_seconds"),
        ({"run_history_days": 1.5}, "run_history_days"),
    ],
)
def test_bad_config(options, message):
    """Inconsistent job settings are refused with the field named."""
    with pytest.raises(ValueError, match=message):
        JobConfig(**options)
