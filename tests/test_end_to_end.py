"""End to end on the embedded backend: deploy, 24 scheduled slots through the built zip, verify
the seed's proof checks on the stored state, tear down, and find nothing left.

The run itself is the session fixture `e2e_run` (tests/conftest.py), shared with
tests/test_iam.py: 27 invocations of the built zip, each in a fresh process, about 0.45 s
apiece, so the whole run takes about 15 s. Each test below checks one part of what it saw.

Slow (marked `slow`): the day is the point, every slot through the built zip, so it stays whole.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from conftest import E2E_DRILLS, E2E_LATE, E2E_RACING, E2E_SEQUENTIAL

pytestmark = pytest.mark.slow

JOB = "hourly_processor"
DAY = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _outcomes(run, key):
    return [x.invocation.summary() for x in run.deliveries[key]]


def test_the_schedule_fired_24_hourly_slots(e2e_run):
    """The driver read the deployed cron schedule back and fired 24 slots, 09:00 to 08:00."""
    assert len(e2e_run.slots) == 24
    assert e2e_run.slots[0] == DAY
    assert e2e_run.slots[-1] == DAY + timedelta(hours=23)
    extra = sum(n - 1 for n in (*E2E_SEQUENTIAL.values(), *E2E_RACING.values()))
    assert e2e_run.invocations == 24 + extra


def test_every_ordinary_slot_ran_once(e2e_run):
    """Every slot without a drill or duplicate ran exactly once and succeeded."""
    special = {*E2E_SEQUENTIAL, *E2E_RACING, *E2E_DRILLS}
    ordinary = [key for key in e2e_run.deliveries if key not in special]
    assert len(ordinary) == 24 - len(special)
    for key in ordinary:
        assert _outcomes(e2e_run, key) == ["SUCCEEDED"], key


def test_a_sequential_duplicate_skips_with_slot_done(e2e_run):
    """The same slot delivered twice, one after the other: one run, then SLOT_DONE."""
    (key,) = E2E_SEQUENTIAL
    assert _outcomes(e2e_run, key) == ["SUCCEEDED", "SKIPPED (SLOT_DONE)"]


def test_racing_duplicates_run_the_slot_once(e2e_run):
    """Copies of one slot delivered at the same moment, in separate processes: one run."""
    (key,) = E2E_RACING
    results = [x.invocation.result for x in e2e_run.deliveries[key]]
    outcomes = Counter(r["outcome"] for r in results)
    assert outcomes == {"SUCCEEDED": 1, "SKIPPED": E2E_RACING[key] - 1}
    # Which reason a loser gets depends on when it read the item; all of them are refusals.
    reasons = {r["reason"] for r in results if r["outcome"] == "SKIPPED"}
    assert reasons <= {"LOST_RACE", "RUNNING", "SLOT_DONE"}
    assert e2e_run.after[key].last_slot == _t(f"2026-01-05T{key}:00Z")


def test_a_late_delivery_runs_its_slot_when_it_arrives(e2e_run):
    """A delivery 59 s late runs its slot; the run starts when it arrived."""
    ((key, delay),) = E2E_LATE.items()
    slot = _t(f"2026-01-05T{key}:00Z")
    assert _outcomes(e2e_run, key) == ["SUCCEEDED"]
    state = e2e_run.after[key]
    assert state.last_run_ts == slot + timedelta(seconds=delay)
    assert state.next_allowed_run == slot + timedelta(hours=1)


def test_the_failing_run_is_recorded_and_releases_the_lock(e2e_run):
    """Seed proof check: after a failure, last_error is set and status is back at IDLE."""
    state = e2e_run.after["14:00"]
    assert _outcomes(e2e_run, "14:00") == ["FAILED"]
    assert state.status.value == "IDLE" and state.run_id is None
    assert state.last_error == "PlaceholderFailure: run run-0105T1400-1 failed (simulated failure)"
    assert state.last_error_ts == _t("2026-01-05T14:00:01Z")
    assert (state.failure_count, state.consecutive_failures) == (1, 1)
    # A failure neither marks its slot done nor moves the cooldown: the next hour retries.
    assert state.last_slot == _t("2026-01-05T13:00:00Z")
    assert state.next_allowed_run == _t("2026-01-05T14:00:00Z")
    assert _outcomes(e2e_run, "15:00") == ["SUCCEEDED"]


def test_the_crash_holds_the_lock_until_the_next_slot_takes_over(e2e_run):
    """A crashed run leaves RUNNING with a lease; the next slot, after the lease, takes over."""
    crashed = e2e_run.after["17:00"]
    assert [x.invocation.status for x in e2e_run.deliveries["17:00"]] == ["crashed"]
    assert crashed.status.value == "RUNNING" and crashed.run_id == "run-0105T1700-1"
    # The lease is the Lambda's remaining time (60 s timeout) minus the 10 s margin.
    assert _t("2026-01-05T17:00:40Z") <= crashed.lease_expires_at <= _t("2026-01-05T17:00:50Z")
    takeover = e2e_run.deliveries["18:00"][0].invocation.result
    assert takeover["outcome"] == "SUCCEEDED"
    assert takeover["took_over_from"] == "run-0105T1700-1"


def test_the_crash_went_to_the_on_failure_queue_and_nothing_was_dead_lettered(e2e_run):
    """Lambda's on-failure destination holds the crash, once; the schedule's DLQ is empty."""
    (record,) = e2e_run.failure_records
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 1  # retries are off
    assert record["requestPayload"]["scheduled_time"] == "2026-01-05T17:00:00Z"
    assert record["responsePayload"]["errorType"] == "Runtime.ExitError"
    assert e2e_run.schedule_dlq == []


def test_the_seed_proof_checks_hold_on_the_final_state(e2e_run):
    """run_count, last_success_ts and next_allowed_run are what 22 successful runs leave."""
    state = e2e_run.final
    assert state.run_count == 22  # 24 slots, minus the failure and the crash
    assert state.last_success_ts == _t("2026-01-06T08:00:01Z")  # the 1 s workload's end
    assert state.next_allowed_run == _t("2026-01-06T09:00:00Z")  # last slot + 1 hour
    assert state.last_slot == _t("2026-01-06T08:00:00Z")
    assert state.status.value == "IDLE" and state.run_id is None
    assert (state.failure_count, state.consecutive_failures) == (1, 0)
    assert state.last_error.startswith("PlaceholderFailure")  # kept after later successes


def test_the_takeover_is_recorded(e2e_run):
    """The control item and the run history both record whose lease was taken over."""
    assert e2e_run.final.takeover_count == 1
    assert e2e_run.final.last_takeover_from == "run-0105T1700-1"
    (taker,) = [r for r in e2e_run.history if r.took_over_from]
    assert (taker.run_id, taker.took_over_from) == ("run-0105T1800-1", "run-0105T1700-1")


def test_run_history_has_one_item_per_finished_run_each_with_a_ttl(e2e_run):
    """23 history items (22 successes, 1 failure), one per slot, each expiring in 7 days."""
    history = e2e_run.history
    assert Counter(r.outcome for r in history) == {"SUCCEEDED": 22, "FAILED": 1}
    assert len({r.slot for r in history}) == len(history)
    days = int(e2e_run.function_env["JOB_RUN_HISTORY_DAYS"])
    assert days == 7
    for record in history:
        assert record.expires_at == int((record.finished_at + timedelta(days=days)).timestamp())
    # A table this new still says ENABLING on AWS (up to an hour; embedded.realism).
    assert e2e_run.ttl == {"TimeToLiveStatus": "ENABLING", "AttributeName": "expires_at"}


def test_teardown_leaves_nothing_tagged_and_is_safe_to_repeat(e2e_run):
    """Teardown deletes all nine resources, a second teardown deletes nothing, none is left."""
    assert len(e2e_run.present_before_teardown) == 9
    assert len(e2e_run.teardown.deleted) == 9
    assert e2e_run.teardown.deleted[0].startswith("schedule ")  # nothing new starts first
    assert e2e_run.teardown.deleted[-1] == "table e2e-job_control"  # the state goes last
    assert e2e_run.teardown_again.deleted == ()
    assert e2e_run.leftovers == []


def test_the_run_takes_a_reasonable_time(e2e_run):
    """The whole run stays well under a minute (about 0.45 s per local invocation)."""
    print(
        f"end to end: {e2e_run.seconds:.1f} s for {e2e_run.invocations} invocations "
        f"({e2e_run.seconds_per_invocation:.2f} s each)"
    )
    assert e2e_run.seconds < 60
