"""The schedule driver: the deployed schedule, read back and fired by hand; and waiting on AWS."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest

from jobcontroller.errors import ConfigError
from jobcontroller.ops import deploy as d
from jobcontroller.ops.driver import LostAnswers, ScheduleDriver, wait_for_state
from jobcontroller.ops.invocation import AsyncResult, Invocation
from jobcontroller.ops.schedules import slot_run_id

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


class _FailingRunner:
    """A runner whose delivery of one execution id raises (a lost connection, say); the
    others are queued. It records every event it was handed, from any thread."""

    simulates_time = False

    def __init__(self, failing_execution_id: str) -> None:
        self.failing = failing_execution_id
        self.events: list[dict] = []
        self._lock = threading.Lock()

    def invoke(self, event, **_):
        raise AssertionError("the driver delivers asynchronously")

    def invoke_async(self, event, **_):
        with self._lock:
            self.events.append(event)
        if event["execution_id"] == self.failing:
            raise ConnectionError("connection to Lambda lost")
        return AsyncResult((Invocation("request-1", "queued"),))


def test_driver_reads_the_schedule_back(target, stack):
    """The driver's spec is the deployed schedule: expression, input, retry policy, window, DLQ."""
    names, runner = stack
    spec = ScheduleDriver(target, names, runner).spec()
    assert spec.expression == "cron(0 * * * ? *)"
    assert spec.flexible_window == {"Mode": "OFF"}
    assert spec.retry_policy == {"MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 3600}
    assert spec.dead_letter_arn == target.arn("sqs", names.schedule_dlq)
    assert "<aws.scheduler.scheduled-time>" in spec.input_template


def test_rendering_is_pure_and_firing_counts_deliveries(target, stack):
    """render() consumes nothing (the same event each time); fire() uses and counts numbers."""
    names, runner = stack
    driver = ScheduleDriver(target, names, runner)
    first = driver.render(T0)
    assert driver.render(T0) == first
    assert first["scheduled_time"] == "2026-01-05T09:00:00Z"
    assert driver.delivered(T0) == 0
    (delivery,) = driver.fire(T0)
    assert delivery.execution_id == first["execution_id"]
    assert driver.delivered(T0) == 1
    (again,) = driver.fire(T0)
    assert again.event == driver.render(T0, delivery=2) != first
    assert ScheduleDriver(target, names, runner).render(T0) == first  # the same on every run


def test_a_duplicate_delivery_runs_the_slot_once(target, stack, stack_store):
    """Two deliveries of one slot: the first runs, the second skips with SLOT_DONE."""
    names, runner = stack
    deliveries = ScheduleDriver(target, names, runner).fire(T0, copies=2)
    assert [x.summary() for x in deliveries] == ["SUCCEEDED", "SKIPPED (SLOT_DONE)"]
    assert stack_store.read(names.job).run_count == 1


def test_concurrent_duplicates_race_and_one_wins(target, stack, stack_store):
    """Two copies delivered at once race in two processes; exactly one runs the slot."""
    names, runner = stack
    deliveries = ScheduleDriver(target, names, runner).fire(T0, copies=2, concurrent=True)
    outcomes = sorted(x.invocation.result["outcome"] for x in deliveries)
    assert outcomes == ["SKIPPED", "SUCCEEDED"]
    assert stack_store.read(names.job).run_count == 1


@pytest.mark.parametrize("concurrent", [True, False])
def test_a_delivery_that_raises_reaches_the_caller(target, stack, concurrent):
    """If one of three copies raises, fire() raises that error (not two of three deliveries),
    and the other copies were still delivered."""
    names, _ = stack
    probe = ScheduleDriver(target, names, _FailingRunner(""))
    failing = probe.render(T0, delivery=2)["execution_id"]
    runner = _FailingRunner(failing)
    driver = ScheduleDriver(target, names, runner)
    with pytest.raises(ConnectionError, match="connection to Lambda lost"):
        driver.fire(T0, copies=3, concurrent=concurrent)
    delivered = len(runner.events)
    assert delivered == (3 if concurrent else 2)  # one after another stops at the failure
    assert driver.delivered(T0) == 3  # the numbers were taken before delivering


def _schedule_retries(target, names, retries: int) -> None:
    d.ensure_schedule(target, names, settings=d.ScheduleSettings(max_retries=retries))


@pytest.mark.parametrize(("retries", "tries"), [(0, 1), (1, 2), (3, 4)])
def test_a_failing_delivery_is_tried_as_the_retry_policy_says(target, stack, retries, tries):
    """A delivery that raises is tried 1 + MaximumRetryAttempts times, then its error raised."""
    names, _ = stack
    _schedule_retries(target, names, retries)
    failing = ScheduleDriver(target, names, _FailingRunner("")).render(T0)["execution_id"]
    runner = _FailingRunner(failing)
    with pytest.raises(ConnectionError):
        ScheduleDriver(target, names, runner).fire(T0)
    assert len(runner.events) == tries
    assert [e["attempt"] for e in runner.events] == [str(n) for n in range(1, tries + 1)]


def test_a_lost_answer_with_retries_on_invokes_the_slot_again(target, stack, stack_store):
    """Retries on: the delivery whose answer was lost is sent again a minute later, and the
    function runs a second time, answering SLOT_DONE; the slot ran once."""
    names, runner = stack
    _schedule_retries(target, names, 2)
    lossy = LostAnswers(runner)
    (delivery,) = ScheduleDriver(target, names, lossy, run_ids=slot_run_id).fire(T0)
    assert delivery.attempt == 2 and delivery.delivered_at == T0 + timedelta(minutes=1)
    assert delivery.failed == (
        "DeliveryFailed: Lambda ran the event, but its answer to the Scheduler was lost",
    )
    assert [r.last.result["outcome"] for r in lossy.ran] == ["SUCCEEDED", "SKIPPED"]
    assert lossy.ran[1].last.result["reason"] == "SLOT_DONE"
    assert stack_store.read(names.job).run_count == 1


def test_a_lost_answer_with_retries_off_invokes_once_and_raises(target, stack, stack_store):
    """Retries off (the deployed policy): one invocation; the lost answer is the caller's."""
    names, runner = stack
    lossy = LostAnswers(runner)
    with pytest.raises(ConnectionError, match="answer to the Scheduler was lost"):
        ScheduleDriver(target, names, lossy).fire(T0)
    assert len(lossy.ran) == 1 and stack_store.read(names.job).run_count == 1


def test_driver_gives_fixed_run_ids_per_delivery(target, stack, stack_store):
    """With run_ids=slot_run_id every delivery's run id names its slot and its number."""
    names, runner = stack
    driver = ScheduleDriver(target, names, runner, run_ids=slot_run_id)
    driver.fire(T0, copies=2)
    (delivery,) = driver.fire(T0 + HOUR)
    assert delivery.invocation.result["run_id"] == "run-0105T1000-1"
    assert [r.run_id for r in stack_store.runs(names.job)] == [
        "run-0105T1000-1",
        "run-0105T0900-1",
    ]


def test_a_late_delivery_runs_at_its_arrival_time(target, stack, stack_store):
    """A delivery 59 s late still runs its slot; the run starts when it arrived."""
    names, runner = stack
    (delivery,) = ScheduleDriver(target, names, runner).fire(T0, delay_seconds=59)
    assert delivery.delivered_at == T0 + timedelta(seconds=59)
    assert delivery.invocation.result["outcome"] == "SUCCEEDED"
    state = stack_store.read(names.job)
    assert state.last_slot == T0 and state.last_run_ts == T0 + timedelta(seconds=59)


def test_an_event_older_than_the_max_age_goes_to_the_schedule_dlq(target, stack, stack_store):
    """A delivery later than MaximumEventAgeInSeconds is dead-lettered, and the job never runs."""
    names, runner = stack
    (delivery,) = ScheduleDriver(target, names, runner).fire(T0, delay_seconds=3601)
    assert delivery.dead_lettered == target.arn("sqs", names.schedule_dlq)
    assert delivery.invocation is None
    assert delivery.summary() == "dead-lettered (too old to deliver)"
    url = target.client("sqs").get_queue_url(QueueName=names.schedule_dlq)["QueueUrl"]
    (message,) = target.client("sqs").receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
    assert json.loads(message["Body"])["scheduled_time"] == "2026-01-05T09:00:00Z"
    assert stack_store.read(names.job).run_count == 0


def test_run_drives_a_window_of_slots_with_late_and_duplicate_deliveries(
    target, stack, stack_store
):
    """Three hourly slots, one late and one duplicated, give three runs and one SLOT_DONE."""
    names, runner = stack
    driver = ScheduleDriver(target, names, runner)
    seen = []
    deliveries = driver.run(
        T0, T0 + 3 * HOUR, late={T0: 59}, duplicates={T0 + HOUR: 1}, before_each=seen.append
    )
    assert [(x.slot.hour, x.summary()) for x in deliveries] == [
        (9, "SUCCEEDED"),
        (10, "SUCCEEDED"),
        (10, "SKIPPED (SLOT_DONE)"),
        (11, "SUCCEEDED"),
    ]
    assert seen == [T0, T0 + HOUR, T0 + 2 * HOUR]
    assert stack_store.read(names.job).run_count == 3


def test_a_disabled_schedule_has_no_slots(target, stack):
    """A schedule whose state is DISABLED fires no slots, as on AWS."""
    names, runner = stack
    d.ensure_schedule(target, names, settings=d.ScheduleSettings(enabled=False))
    assert ScheduleDriver(target, names, runner).slots(T0, T0 + 3 * HOUR) == []


def test_a_schedule_aimed_elsewhere_is_refused(target, stack):
    """If the schedule's target is not this function, firing it says to redeploy the schedule."""
    names, runner = stack
    other = d.Names("ann", "other_job")
    with pytest.raises(ConfigError, match="redeploy the schedule"):
        ScheduleDriver(target, other, runner, schedule_name=names.schedule).fire(T0)


def test_fewer_than_one_copy_is_refused_and_counts_nothing(target, stack):
    """copies=0 is a clear error, and no delivery number is used up."""
    names, runner = stack
    driver = ScheduleDriver(target, names, runner)
    with pytest.raises(ConfigError, match="at least 1"):
        driver.fire(T0, copies=0)
    assert driver.delivered(T0) == 0


# --- waiting for real AWS ------------------------------------------------------------------


def test_wait_for_state_returns_once_the_predicate_holds(stack):
    """Polling returns the first state that satisfies the predicate, reporting progress."""
    names, runner = stack
    ticks, seen = iter(range(0, 1000, 10)), []

    def sleep(_seconds):
        if len(seen) == 2:  # the "schedule" fires between the second and third poll
            runner.invoke({"job": names.job}, now=T0)

    state = wait_for_state(
        runner.target,
        names,
        lambda s: s.run_count >= 1,
        timeout=60,
        every=10,
        progress=lambda t, s: seen.append(t),
        sleep=sleep,
        monotonic=lambda: next(ticks),
    )
    assert state.run_count == 1
    assert len(seen) == 3


def test_wait_for_state_times_out_with_what_to_check(stack):
    """Polling that never succeeds raises TimeoutError naming the DLQ and log group to check."""
    names, runner = stack
    ticks = iter(range(0, 1000, 10))
    with pytest.raises(TimeoutError, match="ann-hourly_processor-schedule-dlq"):
        wait_for_state(
            runner.target,
            names,
            lambda s: s.run_count >= 5,
            timeout=30,
            every=10,
            sleep=lambda _s: None,
            monotonic=lambda: next(ticks),
        )


def _flexible(target, names, minutes):
    """Give the deployed schedule a FLEXIBLE window of `minutes` (UpdateSchedule, whole)."""
    scheduler = target.client("scheduler")
    current = scheduler.get_schedule(Name=names.schedule, GroupName=names.schedule_group)
    accepted = scheduler.meta.service_model.operation_model("UpdateSchedule").input_shape.members
    request = {k: v for k, v in current.items() if k in accepted}
    request["FlexibleTimeWindow"] = {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": minutes}
    scheduler.update_schedule(**request)


def test_a_flexible_window_delivers_each_slot_late_within_it(target, stack, realism):
    """Under the realism layer a FLEXIBLE window of 15 minutes delivers each slot somewhere in
    the 15 minutes after it (the same point on every run), and OFF delivers it on time."""
    names, _runner = stack
    runner = _FailingRunner("none")
    on_time = ScheduleDriver(target, names, runner).fire(T0)
    assert on_time[0].delivered_at == T0
    _flexible(target, names, 15)
    driver = ScheduleDriver(target, names, runner)
    slots = [T0 + HOUR * h for h in range(1, 9)]
    late = [driver.fire(slot)[0].delivered_at - slot for slot in slots]
    assert all(timedelta(0) <= d < timedelta(minutes=15) for d in late)
    assert len(set(late)) > 1  # not one fixed delay
    spec = driver.spec()
    assert late == [
        timedelta(seconds=realism.delivery_delay(spec.arn, slot, spec.flexible_window))
        for slot in slots
    ]
    realism.enabled = False
    assert driver.fire(T0 + 10 * HOUR)[0].delivered_at == T0 + 10 * HOUR
