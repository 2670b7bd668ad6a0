"""The controller end to end on the embedded backend: the seed's proof checks and more."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from jobcontroller import (
    BadEvent,
    ConfigError,
    Drill,
    JobConfig,
    JobController,
    ManualClock,
    Outcome,
    Reason,
    SequentialIds,
    Status,
    SystemClock,
    Trigger,
    placeholder,
)

pytestmark = [pytest.mark.every_backend, pytest.mark.contract]

JOB = "hourly_processor"


def scheduled(slot):
    return Trigger(JOB, slot=slot, source="scheduler")


def test_success_updates_the_seed_fields(make_controller, store, clock):
    """Proof check: run_count increments; last_success_ts and next_allowed_run are set."""
    controller = make_controller()
    slot = clock.now()
    clock.advance(20)
    result = controller.invoke(scheduled(slot), placeholder(seconds=90))
    state = store.read(JOB)
    assert result.outcome is Outcome.SUCCEEDED and result.run_id == "run-0001"
    assert state.run_count == 1
    assert state.last_success_ts == slot + timedelta(seconds=110)
    assert state.next_allowed_run == slot + timedelta(hours=1)
    assert (state.status, state.run_id, state.last_slot) == (Status.IDLE, None, slot)
    assert result.state == state


def test_failure_is_recorded_and_releases_the_lock(make_controller, store, clock):
    """Proof check: a failing run sets last_error and returns to IDLE; run_count stays."""
    result = make_controller().invoke(scheduled(clock.now()), placeholder(fail=True))
    state = store.read(JOB)
    assert result.outcome is Outcome.FAILED and "simulated failure" in result.error
    assert (state.status, state.run_count, state.failure_count) == (Status.IDLE, 0, 1)
    assert state.last_error == result.error
    assert state.consecutive_failures == 1
    [history] = store.runs(JOB)
    assert (history.outcome, history.error) == ("FAILED", result.error)


def test_a_failed_slot_is_retried_by_state_not_infrastructure(make_controller, store, clock):
    """After a failure the next trigger runs (no cooldown), and success resets the streak."""
    controller = make_controller()
    slot = clock.now()
    controller.invoke(scheduled(slot), placeholder(fail=True))
    clock.advance(hours=1)
    result = controller.invoke(scheduled(slot + timedelta(hours=1)), placeholder())
    assert result.outcome is Outcome.SUCCEEDED
    assert store.read(JOB).consecutive_failures == 0


def test_gated_skip_writes_nothing(make_controller, store, clock, raw_item):
    """Rule 6: a skipped invocation returns a reason and leaves the item byte for byte."""
    controller = make_controller()
    slot = clock.now()
    controller.invoke(scheduled(slot), placeholder())
    before = raw_item()
    result = controller.invoke(scheduled(slot), placeholder())
    assert (result.outcome, result.reason) == (Outcome.SKIPPED, Reason.SLOT_DONE)
    assert raw_item() == before


def test_48_late_hourly_slots_with_long_runs_all_run(make_controller, store, clock):
    """Rule 5 on the real store: 48 slots, 0-59 s late, 5-minute runs -> 48 runs, not 24."""
    controller = make_controller()
    rng = random.Random(48)
    start = clock.now()
    outcomes = []
    for hour in range(48):
        slot = start + timedelta(hours=hour)
        clock.set(slot + timedelta(seconds=rng.randint(0, 59)))
        outcomes.append(controller.invoke(scheduled(slot), placeholder(seconds=300)).outcome)
    assert outcomes == [Outcome.SUCCEEDED] * 48
    assert store.read(JOB).run_count == 48


def test_drills_apply_to_one_run(make_controller, store, clock):
    """A FAIL drill makes exactly the next run fail and is cleared by its acquire."""
    controller = make_controller()
    store.set_drill(JOB, Drill.FAIL)
    first = controller.invoke(scheduled(clock.now()), placeholder())
    assert first.outcome is Outcome.FAILED and store.read(JOB).drill is None
    clock.advance(hours=1)
    second = controller.invoke(scheduled(clock.now()), placeholder())
    assert second.outcome is Outcome.SUCCEEDED


def test_paused_job_skips_until_resumed(make_controller, store, clock):
    """A paused job skips with PAUSED; after resume the same trigger runs."""
    controller = make_controller()
    store.set_paused(JOB, True)
    assert controller.invoke(scheduled(clock.now()), placeholder()).reason is Reason.PAUSED
    store.set_paused(JOB, False)
    assert controller.invoke(scheduled(clock.now()), placeholder()).outcome is Outcome.SUCCEEDED


def test_manual_trigger_cooldown_from_its_start(make_controller, store, clock):
    """A manual run is keyed by arrival; the next manual run waits one interval from its start."""
    controller = make_controller()
    first = controller.invoke(Trigger(JOB), placeholder(seconds=600))
    assert first.outcome is Outcome.SUCCEEDED and "manual" in first.keyed_by
    assert store.read(JOB).next_allowed_run == clock.now() - timedelta(seconds=600) + timedelta(
        hours=1
    )
    assert controller.invoke(Trigger(JOB), placeholder()).reason is Reason.COOLDOWN
    clock.advance(minutes=49)
    assert controller.invoke(Trigger(JOB), placeholder()).outcome is Outcome.SUCCEEDED


def test_lease_comes_from_the_remaining_time(make_controller, store, clock):
    """Rule 2: the lease ends the margin before the Lambda's remaining time runs out."""
    seen = {}

    def workload(ctx):
        seen["deadline"] = ctx.deadline
        seen["lease"] = store.read(JOB).lease_expires_at

    make_controller().invoke(scheduled(clock.now()), workload, remaining_ms=60_000)
    assert seen["deadline"] == seen["lease"] == clock.now() + timedelta(seconds=50)


def test_lease_longer_than_the_lambda_is_refused(make_controller, store, clock, raw_item):
    """Too little remaining time for the margin is a config error, raised before any write."""
    before = raw_item()
    with pytest.raises(ConfigError, match="JOB_LEASE_MARGIN_SECONDS"):
        make_controller().invoke(scheduled(clock.now()), placeholder(), remaining_ms=5_000)
    assert raw_item() == before


def test_workload_that_overruns_its_lease_stops_and_fails(make_controller, store, clock):
    """The placeholder stops at its deadline and the run is recorded as failed, not left hanging."""
    result = make_controller().invoke(
        scheduled(clock.now()), placeholder(seconds=120), remaining_ms=60_000
    )
    assert result.outcome is Outcome.FAILED and "WorkloadTimeout" in result.error
    assert store.read(JOB).status is Status.IDLE


def test_every_transition_is_persisted(make_controller, store, clock):
    """Rule 7: a brand-new controller (no memory) decides the same as the one that ran."""
    slot = clock.now()
    make_controller().invoke(scheduled(slot), placeholder())
    fresh = make_controller()
    assert fresh.invoke(scheduled(slot), placeholder()).reason is Reason.SLOT_DONE


def test_a_takeover_at_the_lease_boundary_never_overlaps_the_workload(store, clock):
    """The workload's deadline is never later than the stored lease, so a takeover never overlaps.

    The clock starts at a fraction of a second: the stored lease has whole seconds, and a
    workload whose deadline kept the fraction would still be running when the lease as
    stored had passed and a second run took over.
    """
    fractional = ManualClock("2026-01-05T09:00:00.770Z")
    first = JobController(store, JOB, clock=fractional, new_run_id=SequentialIds("first-"))
    second = JobController(store, JOB, clock=fractional, new_run_id=SequentialIds("second-"))
    slot = clock.now()
    started = fractional.now()
    seen = {}

    def overtaken(ctx):
        seen["deadline"], seen["lease"] = ctx.deadline, store.read(JOB).lease_expires_at
        fractional.set(max(seen["lease"], fractional.now()))  # the stored lease has passed
        seen["takeover"] = second.invoke(scheduled(slot), placeholder(seconds=0))
        seen["remaining"] = ctx.remaining()

    first.invoke(scheduled(slot), overtaken, remaining_ms=900_000)
    assert seen["takeover"].took_over_from == "first-0001"
    assert seen["remaining"] <= timedelta(0), "the first workload was still inside its deadline"
    assert seen["deadline"] <= seen["lease"]
    assert seen["deadline"] <= started + timedelta(seconds=900 - 10)


def test_the_workload_deadline_is_the_stored_lease(make_controller, store):
    """The deadline handed to the workload is the lease exactly as stored (whole seconds)."""
    fractional = ManualClock("2026-01-05T09:00:00.250Z")
    controller = JobController(store, JOB, clock=fractional)
    seen = {}

    def workload(ctx):
        seen["deadline"], seen["lease"] = ctx.deadline, store.read(JOB).lease_expires_at

    controller.invoke(Trigger(JOB), workload, remaining_ms=60_000)
    whole_second = fractional.now().replace(microsecond=0)
    assert seen["deadline"] == seen["lease"] == whole_second + timedelta(seconds=50)


@pytest.mark.parametrize(
    "slot",
    [
        "0999-12-31T23:00:00Z",
        "2999-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "2026-01-03T09:00:00Z",
    ],
)
def test_slots_outside_the_bounds_change_nothing(make_controller, store, raw_item, slot):
    """A slot far in the past or future is a BadEvent before any write, so the job never wedges."""
    before = raw_item()
    when = ManualClock(slot).now()
    with pytest.raises(BadEvent, match="expected"):
        make_controller().invoke(scheduled(when), placeholder())
    assert raw_item() == before
    assert store.runs(JOB) == []


def test_a_slot_at_the_end_of_the_calendar_is_refused_before_any_write(store, raw_item):
    """If slot + interval cannot be represented, the invocation is refused before acquiring."""
    end = ManualClock("9999-12-31T23:30:00Z")
    controller = JobController(store, JOB, clock=end)
    before = raw_item()
    with pytest.raises(BadEvent, match="9999"):
        controller.invoke(scheduled(end.now()), placeholder(seconds=0), remaining_ms=60_000)
    assert raw_item() == before


def test_run_history_expires_by_the_wall_clock(store, clock):
    """The TTL is counted from the wall clock, not from the (manual) clock that drives the run."""
    wall = ManualClock("2026-11-29T10:00:00Z")
    controller = JobController(store, JOB, clock=clock, wall_clock=wall)
    controller.invoke(Trigger(JOB), placeholder(seconds=0))
    [run] = store.runs(JOB)
    assert run.expires_at == int((wall.now() + timedelta(days=7)).timestamp())
    assert isinstance(JobController(store, JOB).wall_clock, SystemClock)


class _Skewed:
    """One invoker's view of a shared clock, off by `offset` seconds; sleeping moves both."""

    def __init__(self, base: ManualClock, offset: float) -> None:
        self.base, self.offset = base, timedelta(seconds=offset)

    def now(self):
        return self.base.now() + self.offset

    def sleep(self, seconds: float) -> None:
        self.base.advance(seconds)


@pytest.mark.parametrize(("tolerated", "overlap"), [(30, False), (0, True)])
def test_skewed_clocks_never_let_two_workloads_overlap_when_the_skew_is_tolerated(
    store, clock, tolerated, overlap
):
    """A holder 30 s slow and a successor 30 s fast: with clock_skew_seconds=30 the holder has
    stopped before the successor can take over; tolerating no skew lets them overlap."""
    config = JobConfig(clock_skew_seconds=tolerated, run_history_days=36_500)
    ids = SequentialIds()
    holder = JobController(store, JOB, config=config, clock=_Skewed(clock, -30), new_run_id=ids)
    successor = JobController(store, JOB, config=config, clock=_Skewed(clock, +30), new_run_id=ids)
    seen: dict[str, object] = {}

    def successor_work(ctx):
        seen["holder still working"] = seen["holder"].remaining() > timedelta(0)
        return "second"

    def holder_work(ctx):
        seen["holder"] = ctx
        while ctx.remaining() > timedelta(0):  # honours its deadline, one second at a time
            ctx.clock.sleep(1)
            if "taken over" not in seen:
                duplicate = successor.invoke(
                    scheduled(ctx.slot), successor_work, remaining_ms=120_000
                )
                if duplicate.outcome is Outcome.SUCCEEDED:
                    seen["taken over"] = duplicate
        return "first"

    holder.invoke(scheduled(clock.now()), holder_work, remaining_ms=120_000)
    assert "taken over" in seen  # the successor did take over, once the lease had passed
    assert seen["holder still working"] is overlap
