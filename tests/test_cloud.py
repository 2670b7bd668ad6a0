"""The helpers of notebooks 06-08: set-up, displays, the replayed day, the proof checks, and
the real-AWS path (watch), run here against the embedded backend with Lambda stood in for."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from jobcontroller.course import lab as cloud
from jobcontroller.course import lab_views
from jobcontroller.course.display import cell
from jobcontroller.errors import ConfigError
from jobcontroller.model import Drill, Status
from jobcontroller.ops import deploy as d
from jobcontroller.ops.driver import ScheduleDriver
from jobcontroller.ops.standin import StandInAccount


@pytest.fixture
def lab(fresh_aws):
    """A deployed lab for prefix 'learner' on the freshly reset embedded backend."""
    lab = cloud.start(prefix="learner")
    yield lab
    lab.close()


def test_start_deploys_a_fresh_stack_and_an_idle_job(lab):
    """start() on the embedded backend deploys the nine resources and an IDLE job."""
    assert len(d.leftovers(lab.target, "learner")) == 9
    state = lab.store.read("hourly_processor")
    assert (state.status, state.version, state.run_count) == (Status.IDLE, 0, 0)
    assert lab.embedded and lab.target.account == "123456789012"


def test_start_empty_removes_what_an_earlier_run_left(lab):
    """stack='empty' starts 06 from nothing, even after a deployment in the same process."""
    again = cloud.start(prefix="learner", stack="empty")
    assert d.leftovers(again.target, "learner") == []
    again.close()


def test_a_short_day_replays_and_the_proof_checks_pass(lab):
    """Three slots, the second failing and the first delivered twice: the proof holds."""
    plan = cloud.DayPlan(slots=3, duplicates={"09:00": 1}, late={}, fail=("10:00",), crash=())
    day = lab.drive(plan)
    assert [(s.how, s.outcome) for s in day.steps] == [
        ("on time", "SUCCEEDED"),
        ("again", "SKIPPED (SLOT_DONE)"),
        ("on time", "FAILED"),
        ("on time", "SUCCEEDED"),
    ]
    assert [s.run_id for s in day.steps if s.succeeded] == ["run-0105T0900-1", "run-0105T1100-1"]
    proof = lab.proof(day)
    assert proof.passed, proof
    before, after = day.moment("10:00")
    assert (before.failure_count, after.failure_count) == (0, 1)
    with pytest.raises(ConfigError, match="12:00"):
        day.moment("12:00")


def test_the_proof_says_wrong_when_the_state_disagrees(lab):
    """A control item whose run_count does not match the runs fails the proof, by name."""
    day = lab.drive(cloud.DayPlan(slots=1, duplicates={}, late={}, fail=(), crash=()))
    state = lab.store.read("hourly_processor")
    lab.store.write_unconditionally(dataclasses.replace(state, run_count=5))
    proof = lab.proof(day)
    assert not proof.passed
    wrong = [row for row in proof.rows if not row[3]]
    assert wrong == [("run_count = successful runs", "1", "5", False)]
    assert "SOME CHECKS FAIL" in proof.table().text()


def test_the_plan_lists_only_the_unusual_slots():
    """The plan's table names each duplicate, late delivery, failure and crash."""
    text = cloud.DayPlan().table().text()
    assert "10:00  delivered 2 times, one after another" in text
    assert "12:00  arrives 59 s late" in text
    assert "14:00  its run fails (drill FAIL)" in text
    assert "17:00  its run crashes holding the lock (drill CRASH)" in text
    assert "09:00" not in text.splitlines()[3:]


def test_displays_read_back_what_was_deployed(lab):
    """The displays show the deployed settings as the APIs report them."""
    assert "expires_at (ENABLING)" in lab.show_table().text()  # AWS takes a while
    assert "MaximumRetryAttempts      0" in lab.show_async_config().text()
    schedule = lab.show_schedule().text()
    assert "flexible time window             OFF" in schedule
    assert "learner-hourly_processor-schedule-dlq" in schedule
    policy = lab.show_role(lab.names.function_role).text()
    assert '"dynamodb:LeadingKeys"' in policy and '"Resource": "*"' not in policy
    event = lab.show_event().text()
    assert '"scheduled_time": "<aws.scheduler.scheduled-time>"' in event
    assert '"scheduled_time": "2026-01-05T09:00:00Z"' in event
    kinds = [row[0] for row in lab.show_resources().rows]
    assert kinds.count("iam role") == 2 and kinds.count("sqs queue") == 2


def test_the_tag_display_lists_each_tag_once():
    """A tag listed twice (as moto does for DynamoDB) is shown once."""
    tags = [{"Key": "a", "Value": "1"}, {"Key": "a", "Value": "1"}]
    assert lab_views._tags(tags) == "a=1"


def test_replay_and_watch_refuse_the_wrong_backend(lab):
    """replay() is for the embedded backend, watch() for real AWS."""
    with pytest.raises(ConfigError, match="watch"):
        lab.watch(cloud.DayPlan())
    real = cloud.Lab(dataclasses.replace(lab.target, embedded=False), lab.names)
    with pytest.raises(ConfigError, match="replay"):
        real.replay(cloud.DayPlan())


def test_watch_runs_the_real_aws_path(fresh_aws):
    """watch(): failure, an asynchronous crash reported in the on-failure queue, takeover, a
    one-off at() schedule fired by the Scheduler, a duplicate; the proof holds.

    The account is stood in for (ops.standin): Lambda is the local runner on the account's
    virtual clock, which the waits move on (past the crashed run's lease; to the one-off
    schedule's time), and the Scheduler fires the schedule when that clock passes it, so
    the outcome does not depend on how fast the machine is.
    """
    names = d.Names("learner")
    account = StandInAccount(d.connect(fresh_aws.session(), say=None), names)
    d.deploy(
        account.target,
        names,
        function=d.FunctionSettings(timeout_seconds=60, workload_seconds=0),
        clock=account.clock,
    )
    lab = cloud.Lab(account.target, names, clock=account.clock, runner=account.runner)
    day = lab.watch(cloud.DayPlan())
    account.close()
    assert [(s.how, s.outcome) for s in day.steps] == [
        ("by hand", "FAILED"),
        ("by hand, asynchronously", "crashed (Runtime.ExitError)"),
        ("by hand, after the lease", "SUCCEEDED"),
        ("one-off at() schedule", "ran (seen in the table)"),
        ("again, by hand", "SKIPPED (SLOT_DONE)"),
    ]
    assert [s.drill for s in day.steps] == [Drill.FAIL, Drill.CRASH, None, None, None]
    assert day.steps[2].result["took_over_from"] == day.steps[1].state_after.run_id
    crashed = day.steps[1].state_after
    assert crashed.lease_expires_at - crashed.last_run_ts == timedelta(seconds=60 - 10)
    (record,) = lab.show_failures().rows
    assert record == (
        cell(day.steps[1].slot, time="hh:mm"),
        "RetriesExhausted",
        "1",
        "Runtime.ExitError",
    )
    proof = lab.proof(day)
    assert proof.passed, proof
    assert [name for name, *_ in account.scheduler.deliveries] == [
        names.once_schedule(day.steps[3].slot)
    ]
    spec = ScheduleDriver(account.target, names, lab.runner).spec()
    assert spec.state == "ENABLED"  # the hourly schedule is back on
    scheduler = account.target.client("scheduler")
    left = scheduler.list_schedules(GroupName=names.schedule_group)["Schedules"]
    assert [s["Name"] for s in left] == [names.schedule]  # the one-off deleted itself
    assert (
        lab.show_moment(day, "crash").title
        == lab.show_moment(day, cell(day.steps[1].slot, time="hh:mm")).title
    )


def test_a_synchronous_crash_reaches_no_on_failure_queue(lab):
    """Lambda's destinations apply to asynchronous invokes only: a crash invoked
    synchronously answers its error to the caller, and the on-failure queue stays empty."""
    lab.store.set_drill(lab.names.job, Drill.CRASH)
    invocation = lab.runner.invoke(lab.driver.render(cloud.COURSE_DAY), now=cloud.COURSE_DAY)
    assert invocation.status == "crashed"
    assert lab.show_failures().rows == ()
    lab.reset_job()
    lab.store.set_drill(lab.names.job, Drill.CRASH)
    lab.runner.invoke_async(lab.driver.render(cloud.COURSE_DAY), now=cloud.COURSE_DAY)
    assert [row[3] for row in lab.show_failures().rows] == ["Runtime.ExitError"]


def test_moments_are_found_by_name_on_a_replayed_day(lab):
    """ "failure", "crash" and "takeover" name the replay's 14:00, 17:00 and 18:00 slots."""
    plan = cloud.DayPlan(slots=4, duplicates={}, late={}, fail=("09:00",), crash=("10:00",))
    day = lab.drive(plan)
    assert [day.slot_of(m) for m in ("failure", "crash", "takeover")] == ["09:00", "10:00", "11:00"]
    assert day.moment("crash") == day.moment("10:00")
    assert "around the 11:00 slot" in lab.show_moment(day, "takeover").text()
    quiet = lab.drive(cloud.DayPlan(slots=1, duplicates={}, late={}, fail=(), crash=()))
    with pytest.raises(ConfigError, match="no crash"):
        quiet.moment("crash")


def test_a_replayed_run_stores_the_same_times_however_busy_the_machine_is(lab):
    """In a replay the function's clock and remaining time run on simulated time only: the
    lease is exactly timeout minus margin after the slot, the finish exactly the work after."""
    day = lab.drive(cloud.DayPlan(slots=2, duplicates={}, late={}, fail=(), crash=("09:00",)))
    crashed = day.steps[0].state_after
    assert crashed.lease_expires_at == cloud.COURSE_DAY + timedelta(seconds=60 - 10)
    (run,) = lab.history()
    assert run.finished_at == run.started_at + timedelta(seconds=1)
