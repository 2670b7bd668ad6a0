"""The gate: a pure function of state, trigger and time (no AWS at all)."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobcontroller import Action, JobConfig, JobState, Reason, Status, Trigger, decide
from jobcontroller.course.counterexamples import simulate_schedule

JOB = "hourly_processor"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
CONFIG = JobConfig(interval_seconds=3600, cooldown_slack_seconds=60)


def at(minutes: float = 0, *, hours: float = 0) -> datetime:
    return T0 + timedelta(minutes=minutes, hours=hours)


def state(**changes: object) -> JobState:
    return replace(JobState.new(JOB), **changes)


def running(lease_until: datetime, **changes: object) -> JobState:
    return state(status=Status.RUNNING, run_id="run-old", lease_expires_at=lease_until, **changes)


def slot(when: datetime) -> Trigger:
    return Trigger(JOB, slot=when, source="scheduler")


MANUAL = Trigger(JOB)

# (name, state, trigger, now, expected action, expected reason)
CASES = [
    ("fresh job, scheduled", state(), slot(T0), at(0.5), Action.RUN, None),
    ("fresh job, manual", state(), MANUAL, at(0.5), Action.RUN, None),
    ("paused beats everything", state(paused=True), slot(T0), at(1), Action.SKIP, Reason.PAUSED),
    (
        "paused even with an expired lease",
        running(at(-10), paused=True),
        slot(T0),
        at(1),
        Action.SKIP,
        Reason.PAUSED,
    ),
    ("live lease", running(at(10)), slot(T0), at(1), Action.SKIP, Reason.RUNNING),
    ("live lease, manual", running(at(10)), MANUAL, at(1), Action.SKIP, Reason.RUNNING),
    ("lease ends exactly now", running(at(1)), slot(T0), at(1), Action.TAKEOVER, None),
    ("expired lease", running(at(-1)), slot(T0), at(1), Action.TAKEOVER, None),
    (
        "expired lease but the slot already ran",
        running(at(-1), last_slot=T0),
        slot(T0),
        at(1),
        Action.SKIP,
        Reason.SLOT_DONE,
    ),
    (
        "expired lease but still cooling down (manual)",
        running(at(-1), next_allowed_run=at(hours=1)),
        MANUAL,
        at(5),
        Action.SKIP,
        Reason.COOLDOWN,
    ),
    ("same slot again", state(last_slot=T0), slot(T0), at(2), Action.SKIP, Reason.SLOT_DONE),
    (
        "an older slot delivered late",
        state(last_slot=T0),
        slot(at(hours=-1)),
        at(2),
        Action.SKIP,
        Reason.SLOT_DONE,
    ),
    (
        "next slot, delivered 59 s late",
        state(last_slot=T0, next_allowed_run=at(hours=1)),
        slot(at(hours=1)),
        at(60.98),
        Action.RUN,
        None,
    ),
    (
        "an extra slot half an hour in",
        state(last_slot=T0, next_allowed_run=at(hours=1)),
        slot(at(30)),
        at(30),
        Action.SKIP,
        Reason.COOLDOWN,
    ),
    (
        "slot exactly at next_allowed_run - slack",
        state(last_slot=T0, next_allowed_run=at(hours=1)),
        slot(at(59)),
        at(59),
        Action.RUN,
        None,
    ),
    (
        "slot one second before the slack window",
        state(last_slot=T0, next_allowed_run=at(hours=1)),
        slot(at(59) - timedelta(seconds=1)),
        at(59),
        Action.SKIP,
        Reason.COOLDOWN,
    ),
    (
        "manual during cooldown",
        state(next_allowed_run=at(hours=1)),
        MANUAL,
        at(30),
        Action.SKIP,
        Reason.COOLDOWN,
    ),
    (
        "manual after cooldown",
        state(next_allowed_run=at(hours=1)),
        MANUAL,
        at(61),
        Action.RUN,
        None,
    ),
    (
        "failed last run does not block the next slot",
        state(last_error="boom", consecutive_failures=3, next_allowed_run=T0),
        slot(at(hours=1)),
        at(60),
        Action.RUN,
        None,
    ),
]


@pytest.mark.parametrize(
    ("name", "job_state", "trigger", "now", "action", "reason"),
    CASES,
    ids=[c[0] for c in CASES],
)
def test_decide_table(name, job_state, trigger, now, action, reason):
    """Each state x trigger x time gets the expected action and reason code."""
    decision = decide(job_state, trigger, now, config=CONFIG)
    assert (decision.action, decision.reason) == (action, reason), decision.detail
    assert decision.detail, "every decision explains itself"


def test_skip_details_name_the_evidence():
    """A RUNNING skip names the holder and its lease end, so the reason is checkable."""
    decision = decide(running(at(10)), slot(T0), at(1), config=CONFIG)
    assert "run-old" in decision.detail
    assert "2026-01-05T09:10:00Z" in decision.detail


HOURLY_48 = [T0 + timedelta(hours=i) for i in range(48)]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_slot_anchored_cooldown_runs_every_late_hour(seed):
    """Rule 5: 48 hourly triggers arriving 0-59 s late with 5-minute runs give 48 runs."""
    rng = random.Random(seed)
    delays = [rng.uniform(0, 59) for _ in HOURLY_48]
    steps = simulate_schedule(
        HOURLY_48, delays=delays, workload_seconds=300, config=CONFIG, cooldown_from="slot"
    )
    assert sum(step.decision.runs for step in steps) == 48


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_completion_anchored_cooldown_skips_every_other_hour(seed):
    """The contrast: measuring the cooldown from completion halves the same schedule."""
    rng = random.Random(seed)
    delays = [rng.uniform(1, 59) for _ in HOURLY_48]
    steps = simulate_schedule(
        HOURLY_48, delays=delays, workload_seconds=300, config=CONFIG, cooldown_from="completion"
    )
    ran = [step.decision.runs for step in steps]
    assert sum(ran) == 24
    assert ran == [True, False] * 24
    assert {s.decision.reason for s in steps if not s.decision.runs} == {Reason.COOLDOWN}


timestamps = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2026, 1, 3), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=0))


@st.composite
def states(draw):
    status = draw(st.sampled_from(Status))
    return state(
        status=status,
        run_id="run-x" if status is Status.RUNNING else None,
        lease_expires_at=draw(timestamps) if status is Status.RUNNING else None,
        paused=draw(st.booleans()),
        last_slot=draw(st.none() | timestamps),
        next_allowed_run=draw(st.none() | timestamps),
    )


@given(states(), st.none() | timestamps, timestamps)
def test_decide_invariants(job_state, trigger_slot, now):
    """Any state: SKIP carries a reason, RUN needs IDLE, TAKEOVER needs an expired lease."""
    trigger = Trigger(JOB, slot=trigger_slot, source="scheduler" if trigger_slot else "manual")
    decision = decide(job_state, trigger, now, config=CONFIG)
    assert (decision.reason is not None) == (decision.action is Action.SKIP)
    if decision.action is Action.RUN:
        assert job_state.status is Status.IDLE and not job_state.paused
    if decision.action is Action.TAKEOVER:
        assert job_state.status is Status.RUNNING and job_state.lease_expires_at <= now
    if job_state.paused:
        assert decision.reason is Reason.PAUSED
    assert decide(job_state, trigger, now, config=CONFIG) == decision


def test_running_without_a_lease_is_taken_over_with_a_readable_detail():
    """A RUNNING state built without a lease expiry is taken over; the detail says so."""
    no_lease = state(status=Status.RUNNING, run_id="run-old")
    decision = decide(no_lease, slot(T0), at(1), config=CONFIG)
    assert decision.action is Action.TAKEOVER
    assert decision.detail == "run run-old's lease expired at an unknown time"
