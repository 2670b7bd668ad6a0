"""The stood-in account (ops.standin): Lambda on the account's clock, and a Scheduler that
fires the deployed schedules by itself as that clock passes their times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from jobcontroller.errors import ConfigError
from jobcontroller.ops import deploy as d
from jobcontroller.ops.standin import StandInAccount
from jobcontroller.store import ControlStore

START = datetime(2026, 1, 5, 8, 55, tzinfo=UTC)
NINE = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.fixture
def account(fresh_aws):
    """A stood-in account with the course's stack for 'ann' deployed (a workload of 0 s)."""
    names = d.Names("ann")
    standin = StandInAccount(d.connect(fresh_aws.session(), say=None), names, start=START)
    d.deploy(
        standin.target, names, function=d.FunctionSettings(workload_seconds=0), clock=standin.clock
    )
    yield standin
    standin.close()


def _state(account):
    names = account.names
    return ControlStore(names.table, client=account.target.client("dynamodb")).read(names.job)


def _hourly(account):
    return [
        (delivery.slot, delivery.delivered_at, summary)
        for name, delivery, summary in account.scheduler.deliveries
        if name == account.names.schedule
    ]


def test_the_scheduler_delivers_each_slot_once_at_its_time_with_the_window_off(account):
    """Three hours on the account's clock: the hourly schedule (window OFF) fires three
    times, at 09:00, 10:00 and 11:00, asynchronously, and each run succeeds once."""
    deployed_at = account.clock.now()
    account.clock.sleep(3 * 3600)
    slots = [NINE + HOUR * h for h in range(3)]
    assert _hourly(account) == [(s, s, "SUCCEEDED") for s in slots]
    assert account.clock.now() == deployed_at + 3 * HOUR
    state = _state(account)
    assert (state.run_count, state.last_slot) == (3, slots[-1])


def test_a_flexible_window_delivers_each_slot_late_within_it(account, realism):
    """With a FLEXIBLE window of 15 minutes each slot arrives within 15 minutes after it, at
    the point the realism layer picked, and still runs once."""
    scheduler = account.target.client("scheduler")
    names = account.names
    current = scheduler.get_schedule(Name=names.schedule, GroupName=names.schedule_group)
    accepted = scheduler.meta.service_model.operation_model("UpdateSchedule").input_shape.members
    request = {k: v for k, v in current.items() if k in accepted}
    request["FlexibleTimeWindow"] = {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15}
    scheduler.update_schedule(**request)
    account.clock.sleep(4 * 3600)
    hourly = _hourly(account)
    assert [slot for slot, _, _ in hourly] == [NINE + HOUR * h for h in range(4)]
    late = [at - slot for slot, at, _ in hourly]
    assert all(timedelta(0) <= x < timedelta(minutes=15) for x in late) and any(late)
    arn = current["Arn"]
    window = request["FlexibleTimeWindow"]
    assert late == [
        timedelta(seconds=realism.delivery_delay(arn, slot, window)) for slot, _, _ in hourly
    ]
    assert [summary for *_, summary in hourly] == ["SUCCEEDED"] * 4


def test_slots_that_pass_while_the_schedule_is_off_are_never_delivered(account):
    """Disabled over 09:00 and 10:00, enabled again: only 11:00 is delivered."""
    d.set_schedule_enabled(account.target, account.names, False)
    account.clock.sleep(2 * 3600)
    d.set_schedule_enabled(account.target, account.names, True)
    account.clock.sleep(3600)
    assert [slot for slot, _, _ in _hourly(account)] == [NINE + 2 * HOUR]


def test_a_delivery_to_a_deleted_function_goes_to_the_schedule_dlq(account):
    """The function deleted, the Scheduler's delivery fails and the event is dead-lettered."""
    account.target.client("lambda").delete_function(FunctionName=account.names.function)
    account.clock.sleep(3600)
    ((name, delivery, summary),) = account.scheduler.deliveries
    assert name == account.names.schedule
    assert delivery is None and "ResourceNotFoundException" in summary
    sqs = account.target.client("sqs")
    url = sqs.get_queue_url(QueueName=account.names.schedule_dlq)["QueueUrl"]
    (message,) = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
    assert '"scheduled_time": "2026-01-05T09:00:00Z"' in message["Body"]


def test_a_stand_in_needs_the_embedded_backend_with_realism(fresh_aws):
    """Without the realism layer there is no AWS time to run the account on: refused."""
    plain = d.connect(fresh_aws.session(), say=None, realism=False)
    with pytest.raises(ConfigError, match="realism layer"):
        StandInAccount(plain, d.Names("ann"))
