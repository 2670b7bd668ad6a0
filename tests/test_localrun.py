"""The local Lambda runner and schedule driver: what moto cannot do, done honestly."""

from __future__ import annotations

import io
import json
import os
import re
import time
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from jobcontroller import ManualClock
from jobcontroller.errors import ConfigError
from jobcontroller.ops import deploy as d
from jobcontroller.ops import runner as lr
from jobcontroller.ops.packaging import ZIP_NAME
from jobcontroller.store import ControlStore

PYTHON312 = Path("/root/.pyenv/versions/3.12.1/bin/python3")
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)

PROBE = """
import json, os, sys, time

def info(event, context):
    return {
        "pid": os.getpid(),
        "path": sys.path[:2],
        "env": {k: os.environ.get(k) for k in event.get("env", [])},
        "remaining_ms": context.get_remaining_time_in_millis(),
        "request_id": context.aws_request_id,
        "function_name": context.function_name,
        "importable": {m: _importable(m) for m in ("boto3", "moto", "pytest", "jobcontroller")},
    }

def _importable(name):
    try:
        __import__(name)
    except ImportError:
        return False
    return True

def sleep(event, context):
    time.sleep(event.get("seconds", 60))
    return "woke"

def fail(event, context):
    raise ValueError("bad input: " + event.get("why", ""))

def die(event, context):
    os._exit(3)
"""


def _zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


@pytest.fixture
def target(fresh_aws):
    """A Target on the freshly reset embedded backend."""
    return d.connect(fresh_aws.session(), say=None)


@pytest.fixture
def probe(target, tmp_path):
    """A tiny function (probe.py) deployed in moto, and a runner for it."""
    code = _zip({"probe.py": PROBE})
    role = target.client("iam").create_role(
        RoleName="probe", AssumeRolePolicyDocument=json.dumps(d.lambda_trust_policy())
    )["Role"]["Arn"]
    target.client("lambda").create_function(
        FunctionName="probe",
        Runtime="python3.12",
        Role=role,
        Handler="probe.info",
        Code={"ZipFile": code},
        Timeout=5,
        Environment={"Variables": {"GREETING": "hi"}},
    )
    with lr.LocalLambdaRunner(target, "probe", code=code, work_dir=tmp_path / "run") as runner:
        yield runner


def _set_handler(target, handler: str, timeout: int = 5) -> None:
    target.client("lambda").update_function_configuration(
        FunctionName="probe", Handler=handler, Timeout=timeout
    )


@pytest.fixture
def stack(target):
    """The course's stack for 'ann' (a workload of 0 s) and a recording runner for it."""
    names = d.Names("ann")
    d.deploy(
        target,
        names,
        function=d.FunctionSettings(workload_seconds=0),
        clock=ManualClock("2026-01-05T08:00:00Z"),
    )
    with lr.LocalLambdaRunner(target, names.function, record_calls=True) as runner:
        yield names, runner


@pytest.fixture
def store(target, stack):
    """The stack's control store."""
    names, _ = stack
    return ControlStore(names.table, client=target.client("dynamodb"))


# --- the runner, on a probe function ----------------------------------------------------


def test_each_invocation_runs_in_a_fresh_process(probe):
    """Two invocations run in two new processes, neither of them this one."""
    first, second = probe.invoke({}), probe.invoke({})
    assert first.ok and second.ok
    pids = {first.result["pid"], second.result["pid"], os.getpid()}
    assert len(pids) == 3


def test_code_comes_first_on_the_path_and_only_boto3_is_installed(probe):
    """sys.path starts with the extracted zip then the runtime site; moto and pytest are absent."""
    result = probe.invoke({}).result
    assert Path(result["path"][0]).name.startswith("code-")
    assert Path(result["path"][1]).name == "runtime-site"
    assert result["importable"] == {
        "boto3": True,
        "moto": False,
        "pytest": False,
        "jobcontroller": False,
    }


def test_function_environment_and_backend_reach_the_child(probe, fresh_aws):
    """The child sees the function's variables, Lambda's reserved ones and the embedded endpoint."""
    names = ["GREETING", "AWS_LAMBDA_FUNCTION_NAME", "AWS_ENDPOINT_URL", "AWS_REGION", "_HANDLER"]
    env = probe.invoke({"env": names}).result["env"]
    assert env == {
        "GREETING": "hi",
        "AWS_LAMBDA_FUNCTION_NAME": "probe",
        "AWS_ENDPOINT_URL": fresh_aws.endpoint_url,
        "AWS_REGION": "us-east-1",
        "_HANDLER": "probe.info",
    }


def test_context_counts_down_from_the_configured_timeout(probe, target):
    """get_remaining_time_in_millis starts just under the timeout read back from the Lambda API."""
    _set_handler(target, "probe.info", timeout=7)
    result = probe.invoke({}).result
    assert 7000 - 5000 < result["remaining_ms"] <= 7000
    assert result["function_name"] == "probe"


def test_configuration_changes_are_read_back_each_time(probe, target):
    """A changed handler or environment in the Lambda API applies to the next invocation."""
    target.client("lambda").update_function_configuration(
        FunctionName="probe", Environment={"Variables": {"GREETING": "hello"}}
    )
    assert probe.invoke({"env": ["GREETING"]}).result["env"] == {"GREETING": "hello"}
    assert probe.configuration().environment == {"GREETING": "hello"}


def test_a_handler_past_its_timeout_is_killed(probe, target):
    """A handler still running at the configured timeout is killed and reported as timed out."""
    _set_handler(target, "probe.sleep", timeout=2)
    started = time.monotonic()
    invocation = probe.invoke({"seconds": 60})
    assert time.monotonic() - started < 15
    assert invocation.status == "timeout"
    assert invocation.error["errorMessage"] == "Task timed out after 2.00 seconds"


def test_an_exception_comes_back_as_the_functions_error(probe, target):
    """A raised exception is reported with its type, message and stack trace, as Lambda does."""
    _set_handler(target, "probe.fail")
    invocation = probe.invoke({"why": "no slot"})
    assert invocation.status == "error"
    assert invocation.error["errorType"] == "ValueError"
    assert invocation.error["errorMessage"] == "bad input: no slot"
    assert any("probe.py" in line for line in invocation.error["stackTrace"])


def test_a_process_that_dies_is_a_runtime_exit_error(probe, target):
    """A process that exits without answering is reported like Lambda's Runtime.ExitError."""
    _set_handler(target, "probe.die")
    invocation = probe.invoke({})
    assert invocation.status == "crashed"
    assert invocation.error == {
        "errorType": "Runtime.ExitError",
        "errorMessage": "Runtime exited with error: exit status 3",
    }


def test_a_handler_that_cannot_be_imported_is_an_import_error(probe, target):
    """A handler naming a missing module is reported as Runtime.ImportModuleError."""
    _set_handler(target, "nowhere.handler")
    invocation = probe.invoke({})
    assert invocation.status == "error"
    assert invocation.error["errorType"] == "Runtime.ImportModuleError"


def test_code_that_is_not_the_deployed_code_is_refused(target, probe, tmp_path):
    """A runner whose zip differs from the function's CodeSha256 refuses to run it."""
    other = lr.LocalLambdaRunner(target, "probe", code=_zip({"probe.py": "x = 1\n"}))
    with pytest.raises(ConfigError, match="CodeSha256"):
        other.invoke({})
    other.close()


def test_the_local_runner_refuses_a_real_aws_target(target):
    """LocalLambdaRunner only runs for the embedded backend."""
    real = d.Target(target.session, "111122223333", "eu-west-1", embedded=False)
    with pytest.raises(ConfigError, match="embedded backend"):
        lr.LocalLambdaRunner(real, "probe", code=b"")


# --- the runner, on the course's handler -------------------------------------------------


def test_the_built_zip_runs_the_controller(stack, store):
    """A manual trigger through the runner runs the job, at the simulated time, with the run id."""
    names, runner = stack
    invocation = runner.invoke({"job": names.job}, now=T0, run_id="run-0001")
    assert invocation.ok, invocation.log
    assert invocation.result["outcome"] == "SUCCEEDED"
    assert invocation.result["run_id"] == "run-0001"
    state = store.read(names.job)
    assert (state.run_count, state.last_run_ts, state.last_run_id) == (1, T0, "run-0001")


def test_simulated_time_runs_on_and_sleeps_without_waiting(target, stack, store):
    """In a replay the workload's 30 s pass on the child's clock at once, not in real time."""
    names, runner = stack
    d.ensure_function(
        target,
        names,
        zip_path=runner.work_dir / "build" / ZIP_NAME,
        settings=d.FunctionSettings(workload_seconds=30),
    )
    started = time.monotonic()
    invocation = runner.invoke({"job": names.job}, now=T0, run_id="run-0001")
    assert time.monotonic() - started < 10
    assert invocation.result["outcome"] == "SUCCEEDED", invocation.log
    (run,) = store.runs(names.job)
    assert (run.started_at, run.finished_at) == (T0, T0 + timedelta(seconds=30))


def test_now_for_a_handler_without_injection_points_is_refused(probe):
    """Simulated time needs the handler module's `clock`; a function without it says so."""
    invocation = probe.invoke({}, now=T0)
    assert invocation.status == "error"
    assert invocation.error["errorType"] == "LocalRunner.NoInjectionPoint"
    assert "clock" in invocation.error["errorMessage"]


def test_the_runner_records_every_aws_call_the_handler_makes(stack):
    """record_calls lists the handler's DynamoDB calls, each on the stack's table."""
    names, runner = stack
    invocation = runner.invoke({"job": names.job}, now=T0)
    operations = [(c.service, c.operation) for c in invocation.calls]
    assert operations == [
        ("dynamodb", "GetItem"),
        ("dynamodb", "UpdateItem"),
        ("dynamodb", "TransactWriteItems"),
    ]
    assert invocation.calls[0].params["TableName"] == names.table
    for item in invocation.calls[2].params["TransactItems"]:
        (only,) = item.values()
        assert only["TableName"] == names.table


def test_async_failure_goes_to_the_on_failure_queue_once(stack, store, target):
    """A crashed async run is not retried (0 retries) and its record lands in the failure queue."""
    names, runner = stack
    store.set_drill(names.job, "CRASH")
    result = runner.invoke_async({"job": names.job}, now=T0)
    assert [a.status for a in result.attempts] == ["crashed"]
    assert result.sent_to == target.arn("sqs", names.failure_queue)
    sqs = target.client("sqs")
    url = sqs.get_queue_url(QueueName=names.failure_queue)["QueueUrl"]
    (message,) = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    record = json.loads(message["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert record["requestPayload"] == {"job": names.job}
    assert record["timestamp"] == "2026-01-05T09:00:00.000Z"
    assert store.read(names.job).status.value == "RUNNING"  # the crash left the lock held


def test_async_success_sends_nothing(stack, target):
    """A successful async run sends no record to the on-failure queue."""
    names, runner = stack
    result = runner.invoke_async({"job": names.job}, now=T0)
    assert result.sent_to is None and result.last.ok
    url = target.client("sqs").get_queue_url(QueueName=names.failure_queue)["QueueUrl"]
    assert target.client("sqs").receive_message(QueueUrl=url).get("Messages", []) == []


@pytest.mark.skipif(not PYTHON312.exists(), reason="no Python 3.12 interpreter on this machine")
def test_the_zip_runs_under_python_312(target, stack):
    """The same zip runs under Python 3.12, the function's configured runtime."""
    names, _ = stack
    with lr.LocalLambdaRunner(target, names.function, python=PYTHON312) as runner:
        invocation = runner.invoke({"job": names.job}, now=T0)
    assert invocation.ok, invocation.log
    assert invocation.result["outcome"] == "SUCCEEDED"


# --- fire times --------------------------------------------------------------------------


def test_hourly_cron_fires_24_times_a_day():
    """cron(0 * * * ? *) fires on every hour of a day, on the hour."""
    times = lr.fire_times("cron(0 * * * ? *)", T0, T0 + 24 * HOUR)
    assert len(times) == 24
    assert times[0] == T0 and times[-1] == T0 + 23 * HOUR


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("cron(15 9-11 * * ? *)", ["09:15", "10:15", "11:15"]),
        ("cron(0,30 9 * * ? *)", ["09:00", "09:30"]),
        ("cron(*/20 10 ? * * *)", ["10:00", "10:20", "10:40"]),
        ("rate(45 minutes)", ["09:00", "09:45", "10:30", "11:15"]),
        ("rate(1 hour)", ["09:00", "10:00", "11:00"]),
        ("at(2026-01-05T10:30:00)", ["10:30"]),
        ("at(2026-01-06T10:30:00)", []),
    ],
)
def test_supported_expressions_fire_when_aws_would(expression, expected):
    """rate(), at() and daily cron() patterns give the slots EventBridge Scheduler fires."""
    times = lr.fire_times(expression, T0, T0 + 3 * HOUR, anchor=T0 - 24 * HOUR)
    assert [t.strftime("%H:%M") for t in times] == expected


def test_rate_counts_from_its_anchor():
    """rate(2 hours) started at 08:30 fires at 10:30 and 12:30 inside 09:00-13:00."""
    times = lr.fire_times("rate(2 hours)", T0, T0 + 4 * HOUR, anchor=T0 - timedelta(minutes=30))
    assert [t.strftime("%H:%M") for t in times] == ["10:30", "12:30"]


def test_cron_in_another_timezone_is_converted_to_utc():
    """cron(0 10 * * ? *) in Europe/Paris fires at 09:00 UTC in January."""
    times = lr.fire_times("cron(0 10 * * ? *)", T0, T0 + HOUR, timezone="Europe/Paris")
    assert times == [T0]


@pytest.mark.parametrize(
    "expression",
    [
        "cron(0 9 1 * ? *)",
        "cron(0 9 ? * MON *)",
        "cron(0 25 * * ? *)",
        "cron(0 * * *)",
        "every hour",
        "rate(0 hours)",
        "rate(1 week)",
    ],
)
def test_unsupported_expressions_are_a_clear_error(expression):
    """Expressions the driver cannot compute raise ConfigError naming the expression."""
    with pytest.raises(ConfigError, match=re.escape(expression)):
        lr.fire_times(expression, T0, T0 + HOUR, anchor=T0)


def test_rate_without_an_anchor_is_a_clear_error():
    """A rate() expression needs to know when it started; without it the error says so."""
    with pytest.raises(ConfigError, match="anchor"):
        lr.fire_times("rate(1 hour)", T0, T0 + HOUR)


# --- the schedule driver -----------------------------------------------------------------


def test_driver_reads_the_schedule_back(target, stack):
    """The driver's spec is the deployed schedule: expression, input, retry policy, window, DLQ."""
    names, runner = stack
    spec = lr.ScheduleDriver(target, names, runner).spec()
    assert spec.expression == "cron(0 * * * ? *)"
    assert spec.flexible_window == {"Mode": "OFF"}
    assert spec.retry_policy == {"MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 3600}
    assert spec.dead_letter_arn == target.arn("sqs", names.schedule_dlq)
    assert "<aws.scheduler.scheduled-time>" in spec.input_template


def test_driver_renders_the_context_attributes(target, stack):
    """Rendering fills in scheduled time, a 16-hex execution id and the attempt number."""
    names, runner = stack
    driver = lr.ScheduleDriver(target, names, runner)
    first, second = driver.render(T0), driver.render(T0)
    assert first["scheduled_time"] == "2026-01-05T09:00:00Z"
    assert first["attempt"] == "1"
    assert len(first["execution_id"]) == 16 and int(first["execution_id"], 16) >= 0
    assert first["execution_id"] != second["execution_id"]
    again = lr.ScheduleDriver(target, names, runner).render(T0)
    assert again["execution_id"] == first["execution_id"]  # the same on every run


def test_a_duplicate_delivery_runs_the_slot_once(target, stack, store):
    """Two deliveries of one slot: the first runs, the second skips with SLOT_DONE."""
    names, runner = stack
    deliveries = lr.ScheduleDriver(target, names, runner).fire(T0, copies=2)
    assert [x.summary() for x in deliveries] == ["SUCCEEDED", "SKIPPED (SLOT_DONE)"]
    assert store.read(names.job).run_count == 1


def test_concurrent_duplicates_race_and_one_wins(target, stack, store):
    """Two copies delivered at once race in two processes; exactly one runs the slot."""
    names, runner = stack
    deliveries = lr.ScheduleDriver(target, names, runner).fire(T0, copies=2, concurrent=True)
    outcomes = sorted(x.invocation.result["outcome"] for x in deliveries)
    assert outcomes == ["SKIPPED", "SUCCEEDED"]
    assert store.read(names.job).run_count == 1


def test_driver_gives_fixed_run_ids_per_delivery(target, stack, store):
    """With run_ids=slot_run_id every delivery's run id names its slot and its number."""
    names, runner = stack
    driver = lr.ScheduleDriver(target, names, runner, run_ids=lr.slot_run_id)
    driver.fire(T0, copies=2)
    (delivery,) = driver.fire(T0 + HOUR)
    assert delivery.invocation.result["run_id"] == "run-0105T1000-1"
    assert [r.run_id for r in store.runs(names.job)] == ["run-0105T1000-1", "run-0105T0900-1"]


def test_a_late_delivery_runs_at_its_arrival_time(target, stack, store):
    """A delivery 59 s late still runs its slot; the run starts when it arrived."""
    names, runner = stack
    (delivery,) = lr.ScheduleDriver(target, names, runner).fire(T0, delay_seconds=59)
    assert delivery.delivered_at == T0 + timedelta(seconds=59)
    assert delivery.invocation.result["outcome"] == "SUCCEEDED"
    state = store.read(names.job)
    assert state.last_slot == T0 and state.last_run_ts == T0 + timedelta(seconds=59)


def test_an_event_older_than_the_max_age_goes_to_the_schedule_dlq(target, stack, store):
    """A delivery later than MaximumEventAgeInSeconds is dead-lettered, and the job never runs."""
    names, runner = stack
    (delivery,) = lr.ScheduleDriver(target, names, runner).fire(T0, delay_seconds=3601)
    assert delivery.dead_lettered == target.arn("sqs", names.schedule_dlq)
    assert delivery.invocation is None
    url = target.client("sqs").get_queue_url(QueueName=names.schedule_dlq)["QueueUrl"]
    (message,) = target.client("sqs").receive_message(QueueUrl=url)["Messages"]
    assert json.loads(message["Body"])["scheduled_time"] == "2026-01-05T09:00:00Z"
    assert store.read(names.job).run_count == 0


def test_run_drives_a_window_of_slots_with_late_and_duplicate_deliveries(target, stack, store):
    """Three hourly slots, one late and one duplicated, give three runs and one SLOT_DONE."""
    names, runner = stack
    driver = lr.ScheduleDriver(target, names, runner)
    deliveries = driver.run(T0, T0 + 3 * HOUR, late={T0: 59}, duplicates={T0 + HOUR: 1})
    assert [(x.slot.hour, x.summary()) for x in deliveries] == [
        (9, "SUCCEEDED"),
        (10, "SUCCEEDED"),
        (10, "SKIPPED (SLOT_DONE)"),
        (11, "SUCCEEDED"),
    ]
    assert store.read(names.job).run_count == 3


def test_a_disabled_schedule_has_no_slots(target, stack):
    """A schedule whose state is DISABLED fires no slots, as on AWS."""
    names, runner = stack
    d.ensure_schedule(target, names, settings=d.ScheduleSettings(enabled=False))
    assert lr.ScheduleDriver(target, names, runner).slots(T0, T0 + 3 * HOUR) == []


def test_a_schedule_aimed_elsewhere_is_refused(target, stack):
    """If the schedule's target is not this function, firing it says to redeploy the schedule."""
    names, runner = stack
    other = d.Names("ann", "other_job")
    with pytest.raises(ConfigError, match="redeploy the schedule"):
        lr.ScheduleDriver(target, other, runner, schedule_name=names.schedule).fire(T0)


# --- real AWS: the same calls through Lambda's Invoke API ----------------------------------


def _stubbed_lambda(target, response):
    client = target.client("lambda")
    stub = Stubber(client)
    stub.add_response("invoke", response)
    stub.activate()
    return stub


def test_remote_runner_maps_a_function_error(target):
    """On real AWS an Unhandled function error comes back as status error with Lambda's payload."""
    payload = json.dumps({"errorType": "ValueError", "errorMessage": "x"}).encode()
    _stubbed_lambda(
        target,
        {
            "StatusCode": 200,
            "FunctionError": "Unhandled",
            "Payload": StreamingBody(io.BytesIO(payload), len(payload)),
        },
    )
    invocation = lr.RemoteLambdaRunner(target, "ann-hourly_processor").invoke({"job": "x"})
    assert invocation.status == "error"
    assert invocation.error == {"errorType": "ValueError", "errorMessage": "x"}


def test_remote_runner_cannot_simulate_time(target):
    """Real Lambda runs on real time, so passing `now` is refused."""
    with pytest.raises(ConfigError, match="real time"):
        lr.RemoteLambdaRunner(target, "f").invoke({}, now=T0)


def test_runner_for_picks_local_on_the_embedded_backend(target, stack):
    """runner_for gives the local runner on the embedded backend."""
    names, _ = stack
    runner = lr.runner_for(target, names)
    assert isinstance(runner, lr.LocalLambdaRunner)
    runner.close()


def test_runner_for_picks_lambda_on_real_aws(target):
    """runner_for gives the Invoke API runner for a real-AWS target."""
    real = d.Target(target.session, "111122223333", "eu-west-1", embedded=False)
    assert isinstance(lr.runner_for(real, d.Names("ann")), lr.RemoteLambdaRunner)


# --- what the handler needs from IAM, and waiting for real AWS ---------------------------


def test_recorded_calls_resolve_to_authorizations_the_role_grants(stack, target):
    """The handler's calls need Get/Update/PutItem on its table for JOB#<job>, all granted."""
    names, runner = stack
    invocation = runner.invoke({"job": names.job}, now=T0)
    needed = lr.authorizations(invocation.calls, account=target.account, region=target.region)
    table = target.arn("dynamodb", f"table/{names.table}")
    assert [(a.action, a.resource, a.leading_key) for a in needed] == [
        ("dynamodb:GetItem", table, "JOB#hourly_processor"),
        ("dynamodb:UpdateItem", table, "JOB#hourly_processor"),
        ("dynamodb:UpdateItem", table, "JOB#hourly_processor"),
        ("dynamodb:PutItem", table, "JOB#hourly_processor"),
    ]
    (grant, *_) = d.function_role_policy(names, account=target.account, region=target.region)[
        "Statement"
    ]
    for authorization in needed:
        assert authorization.action in grant["Action"]
        assert authorization.resource in grant["Resource"]
        leading = grant["Condition"]["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"]
        assert authorization.leading_key in leading


def test_a_non_dynamodb_call_maps_to_its_service_action():
    """A call to another service needs `<service>:<Operation>`, with no resource resolved."""
    call = lr.AwsCall("sqs", "SendMessage", {"QueueUrl": "u"})
    (needed,) = lr.authorizations([call], account="1", region="r")
    assert (needed.action, needed.resource) == ("sqs:SendMessage", None)


def test_wait_for_state_returns_once_the_predicate_holds(stack, store):
    """Polling returns the first state that satisfies the predicate, reporting progress."""
    names, runner = stack
    ticks, seen = iter(range(0, 1000, 10)), []

    def sleep(_seconds):
        if len(seen) == 2:  # the "schedule" fires between the second and third poll
            runner.invoke({"job": names.job}, now=T0)

    state = lr.wait_for_state(
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
        lr.wait_for_state(
            runner.target,
            names,
            lambda s: s.run_count >= 5,
            timeout=30,
            every=10,
            sleep=lambda _s: None,
            monotonic=lambda: next(ticks),
        )
