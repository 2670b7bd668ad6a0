"""The helpers of notebooks 06-08: set-up, displays, the replayed day, the proof checks, and
the real-AWS path (watch), run here against the embedded backend with Lambda stood in for."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from jobcontroller.course import lab as cloud
from jobcontroller.course import lab_day, lab_views
from jobcontroller.errors import ConfigError
from jobcontroller.model import Drill, Status
from jobcontroller.ops import deploy as d
from jobcontroller.ops.driver import ScheduleDriver
from jobcontroller.ops.driver import wait_for_state as real_wait_for_state
from jobcontroller.ops.runner import LocalLambdaRunner
from jobcontroller.ops.schedules import fire_times


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


class _LambdaStandIn:
    """Lambda's Invoke API, stood in for by the local runner on Lambda's own clock: the real
    time plus however far the test has moved it on (`advance_to`), so waiting for a lease or
    a scheduled time takes no real time. Each run's clock stands still while it starts up,
    as a warm Lambda's does, so a busy machine cannot eat into its lease."""

    simulates_time = False

    def __init__(self, runner: LocalLambdaRunner) -> None:
        self.runner = runner
        self.offset = timedelta(0)

    def now(self):
        return datetime.now(UTC) + self.offset

    def advance_to(self, when):
        self.offset += max(timedelta(0), when - self.now())

    def invoke(self, event, **_):
        return self.runner.invoke(event, now=self.now())

    def invoke_async(self, event, **_):
        return self.runner.invoke_async(event, now=self.now())


def test_watch_runs_the_real_aws_path(fresh_aws, monkeypatch):
    """watch(): failure, crash, takeover, then a one-off at() schedule awaited, duplicate; proof ok.

    Lambda and the Scheduler are stood in for: the local runner invokes on Lambda's clock,
    which the waits move on (past the crashed run's lease; to the one-off schedule's time)
    instead of sleeping, so the outcome does not depend on how fast the machine is. A 60 s
    timeout gives each run a 50 s lease, far more than any start-up takes.
    """
    target = d.connect(fresh_aws.session(), say=None)
    names = d.Names("learner")
    d.deploy(target, names, function=d.FunctionSettings(timeout_seconds=60, workload_seconds=0))
    lab = cloud.Lab(dataclasses.replace(target, embedded=False), names)
    local = LocalLambdaRunner(target, names.function)
    lab._runner = stand_in = _LambdaStandIn(local)
    waits = []

    def wait(target_, names_, predicate, **options):
        waits.append(options["timeout"])
        if len(waits) == 2:  # the real scheduler fires the one-off schedule at its time
            scheduler = target.client("scheduler")
            (once,) = [
                s["Name"]
                for s in scheduler.list_schedules(GroupName=names.schedule_group)["Schedules"]
                if "-once-" in s["Name"]
            ]
            driver = ScheduleDriver(target, names, lab.runner, schedule_name=once)
            (when,) = fire_times(
                driver.spec().expression, stand_in.now(), stand_in.now() + timedelta(hours=1)
            )
            stand_in.advance_to(when)
            assert lab.runner.invoke(driver.render(when)).ok
        else:  # Lambda's clock passes the crashed run's lease
            lease = lab.store.read(names.job).lease_expires_at
            stand_in.advance_to(lease + timedelta(seconds=1))
        return real_wait_for_state(target_, names_, predicate, **options, sleep=lambda _s: None)

    monkeypatch.setattr(lab_day, "wait_for_state", wait)
    day = lab.watch(cloud.DayPlan())
    local.close()
    assert [s.outcome for s in day.steps] == [
        "FAILED",
        "crashed (Runtime.ExitError)",
        "SUCCEEDED",
        "ran (seen in the table)",
        "SKIPPED (SLOT_DONE)",
    ]
    assert [s.drill for s in day.steps] == [Drill.FAIL, Drill.CRASH, None, None, None]
    assert day.steps[2].result["took_over_from"] == day.steps[1].run_id
    crashed = day.steps[1].state_after
    assert crashed.lease_expires_at - crashed.last_run_ts == timedelta(seconds=60 - 10)
    proof = lab.proof(day)
    assert proof.passed, proof
    spec = ScheduleDriver(target, names, lab.runner).spec()
    assert spec.state == "ENABLED"  # the hourly schedule is back on


def test_a_replayed_run_stores_the_same_times_however_busy_the_machine_is(lab):
    """In a replay the function's clock and remaining time run on simulated time only: the
    lease is exactly timeout minus margin after the slot, the finish exactly the work after."""
    day = lab.drive(cloud.DayPlan(slots=2, duplicates={}, late={}, fail=(), crash=("09:00",)))
    crashed = day.steps[0].state_after
    assert crashed.lease_expires_at == cloud.COURSE_DAY + timedelta(seconds=60 - 10)
    (run,) = lab.history()
    assert run.finished_at == run.started_at + timedelta(seconds=1)
