"""Notebook 05's failure-first replays (course.retries_lab): each retry layer left on adds an
invocation, switched off there is one; the deployed stack is left with both at 0."""

from __future__ import annotations

import pytest

from jobcontroller.course import lab as cloud
from jobcontroller.course.retries_lab import lambda_retries, scheduler_retries
from jobcontroller.model import Status


@pytest.fixture(scope="module")
def lab():
    """The deployed course stack on the embedded backend."""
    lab = cloud.start(say=None)
    yield lab
    lab.close()


def test_lambda_retries_on_take_the_crashed_slot_over_a_minute_later(lab):
    """Retries 2: the crash, then one retry at 09:01 that takes over and runs the slot."""
    replay = lambda_retries(lab, retries=2)
    assert replay.invocations == 2
    assert [row.by for row in replay.rows] == ["the Scheduler, 09:00 slot", "Lambda retry 1"]
    assert replay.rows[1].started.strftime("%H:%M:%S") == "09:01:00"
    assert (replay.state.run_count, replay.state.takeover_count) == (1, 1)
    assert "took over from run-0105T0900-1" in replay.table().text()


def test_lambda_retries_off_leave_one_invocation_and_the_lock_held(lab):
    """Retries 0: one crashed invocation, the lock still held, a failure record sent."""
    replay = lambda_retries(lab, retries=0)
    assert replay.invocations == 1
    assert replay.state.status is Status.RUNNING
    assert "failure record sent to" in replay.note


def test_scheduler_retries_on_invoke_the_slot_twice_and_the_second_is_slot_done(lab):
    """A lost answer with retries 2: a second invocation a minute later, skipped SLOT_DONE."""
    replay = scheduler_retries(lab, retries=2)
    assert replay.invocations == 2
    assert "SKIPPED (SLOT_DONE)" in replay.table().text()
    assert replay.state.run_count == 1


def test_scheduler_retries_off_invoke_once_and_restore_the_deployed_settings(lab):
    """Retries 0: one invocation; the schedule and the function both end at 0 retries."""
    replay = scheduler_retries(lab, retries=0)
    assert replay.invocations == 1
    assert lab.driver.spec().retry_policy["MaximumRetryAttempts"] == 0
    config = lab.target.client("lambda").get_function_event_invoke_config(
        FunctionName=lab.names.function
    )
    assert config["MaximumRetryAttempts"] == 0
