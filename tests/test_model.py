"""Typed records: the control item's conversion and validation, timestamps, job names."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from jobcontroller import ControlItemCorrupt, Drill, JobConfig, JobState, Status, UnknownJob
from jobcontroller.model import (
    Outcome,
    RunRecord,
    finish_transition,
    format_ts,
    job_key,
    parse_ts,
)

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


@pytest.mark.parametrize("year", [1, 999, 2026, 9999])
def test_timestamps_have_a_four_digit_year(year):
    """Every stored timestamp is 20 characters with a zero-padded year, and parses back."""
    when = datetime(year, 1, 5, 9, tzinfo=UTC)
    text = format_ts(when)
    assert len(text) == 20 and text.startswith(f"{year:04d}-01-05T")
    assert parse_ts(text) == when


def test_a_missing_version_is_corrupt_with_the_fix_in_the_message():
    """An item without `version` is refused, not read as 0, and the message says how to fix it."""
    item = good_item()
    del item["version"]
    with pytest.raises(ControlItemCorrupt, match="'version' is missing") as info:
        JobState.from_item(item, job="hourly_processor")
    assert "set it to a number" in str(info.value)


def test_other_missing_counters_read_as_zero():
    """Counters that only count (not the lock's version) default to 0 for older items."""
    item = good_item()
    del item["failure_count"], item["takeover_count"]
    state = JobState.from_item(item, job="hourly_processor")
    assert (state.failure_count, state.takeover_count) == (0, 0)


def test_messages_quote_only_a_short_prefix_of_bad_values():
    """A huge bad value is quoted by a short prefix, so an error is never megabytes long."""
    with pytest.raises(UnknownJob) as bad_name:
        job_key("x" * 1_000_000 + "!")
    with pytest.raises(ControlItemCorrupt) as bad_item:
        JobState.from_item(good_item(last_error=["y"] * 100_000), job="hourly_processor")
    for info in (bad_name, bad_item):
        assert len(str(info.value)) < 400
        assert "chars" in str(info.value) or "..." in str(info.value)


def held_state(**changes):
    options = {
        "status": Status.RUNNING,
        "version": 4,
        "run_count": 2,
        "failure_count": 1,
        "consecutive_failures": 1,
        "run_id": "run-0003",
        "lease_expires_at": T0 + timedelta(minutes=14),
        "run_slot": T0,
    }
    options.update(changes)
    return replace(JobState.new("hourly_processor", now=T0), **options)


def run_record(outcome, **changes):
    options = {"slot": T0, "error": None, "expires_at": 99}
    options.update(changes)
    return RunRecord(
        "hourly_processor", "run-0003", T0, T0 + timedelta(seconds=5), outcome, **options
    )


def test_finish_transition_of_a_success():
    """A success releases the lock, counts the run, resets the failure streak and keeps the slot."""
    held = held_state()
    new = finish_transition(
        held, run_record(Outcome.SUCCEEDED), next_allowed_run=T0 + timedelta(hours=1)
    )
    assert (new.status, new.version, new.run_id, new.lease_expires_at) == (
        Status.IDLE,
        5,
        None,
        None,
    )
    assert (new.run_count, new.consecutive_failures, new.failure_count) == (3, 0, 1)
    assert (new.last_slot, new.next_allowed_run) == (T0, T0 + timedelta(hours=1))
    assert (new.last_success_ts, new.last_run_id) == (T0 + timedelta(seconds=5), "run-0003")


def test_finish_transition_of_a_failure():
    """A failure releases the lock and records the error, leaving the success fields alone."""
    held = held_state(last_slot=T0 - timedelta(hours=1))
    new = finish_transition(held, run_record(Outcome.FAILED, error="boom"), next_allowed_run=None)
    assert (new.status, new.version, new.run_slot) == (Status.IDLE, 5, None)
    assert (new.run_count, new.failure_count, new.consecutive_failures) == (2, 2, 2)
    assert (new.last_error, new.last_error_ts) == ("boom", T0 + timedelta(seconds=5))
    assert new.last_slot == T0 - timedelta(hours=1) and new.last_success_ts is None


@pytest.mark.parametrize("outcome", [Outcome.SKIPPED, Outcome.FENCED])
def test_finish_transition_refuses_outcomes_that_never_commit(outcome):
    """Only a success or a failure is ever committed; anything else is a programming error."""
    with pytest.raises(ValueError, match="SUCCEEDED or FAILED"):
        finish_transition(held_state(), run_record(outcome), next_allowed_run=None)


def test_finish_transition_refuses_a_record_of_another_run():
    """The transition applies only to the run that holds the lock."""
    with pytest.raises(ValueError, match="holds the lock"):
        finish_transition(
            held_state(run_id="run-0002"), run_record(Outcome.SUCCEEDED), next_allowed_run=None
        )


def test_outcome_is_one_enum():
    """The package's Outcome is the model's enum, and run records carry it, not a string."""
    from jobcontroller import Outcome as exported

    assert exported is Outcome
    item = run_record(Outcome.FAILED, error="x").to_item()
    assert RunRecord.from_item(item).outcome is Outcome.FAILED
