"""The local Lambda runner: the built zip, run in a fresh process as Lambda would run it."""

from __future__ import annotations

import io
import json
import os
import time
import zipfile
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest

import jobcontroller
from jobcontroller.errors import ConfigError
from jobcontroller.ops import deploy as d
from jobcontroller.ops import retry
from jobcontroller.ops.packaging import ZIP_NAME
from jobcontroller.ops.parallel import run_together
from jobcontroller.ops.remote import RemoteLambdaRunner
from jobcontroller.ops.runner import BOOTSTRAP, LocalLambdaRunner, runner_for

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

PROBE = """
import json, os, sys, time

def info(event, context):
    return {
        "pid": os.getpid(),
        "path": sys.path,
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

invocations = 0  # module-level state: kept by a warm execution environment

def state(event, context):
    global invocations
    invocations += 1
    if event.get("die"):
        os._exit(3)
    time.sleep(event.get("seconds", 0))
    return {"pid": os.getpid(), "invocations": invocations, "cwd": os.getcwd()}

def meet(event, context):
    # Returns only once `n` invocations have arrived here: served one after another by a
    # single environment, the first would wait until the timeout killed it.
    folder = event["folder"]
    open(os.path.join(folder, str(os.getpid())), "w").close()
    while len(os.listdir(folder)) < event["n"]:
        time.sleep(0.01)
    return os.getpid()
"""

# A stand-in for the course's handler module, under the same name: if the child could import
# this package's `jobcontroller` (the installed one), it would answer with another file.
ZIPPED_HANDLER = """
import sys
import jobcontroller

def lambda_handler(event, context):
    return {"handler": __file__, "package": jobcontroller.__file__, "path": sys.path}
"""


def _zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def _create_function(target, code: bytes, handler: str) -> None:
    role = target.client("iam").create_role(
        RoleName="probe", AssumeRolePolicyDocument=json.dumps(d.lambda_trust_policy())
    )["Role"]["Arn"]
    # As on AWS, the new role is not assumable by Lambda at once (embedded.realism).
    retry.until_consistent(
        target,
        partial(
            target.client("lambda").create_function,
            FunctionName="probe",
            Runtime="python3.12",
            Role=role,
            Handler=handler,
            Code={"ZipFile": code},
            Timeout=5,
            Environment={"Variables": {"GREETING": "hi"}},
        ),
        waits_for=[retry.ROLE_NOT_ASSUMABLE_BY_LAMBDA],
        what="probe",
    )


@pytest.fixture
def probe(target, tmp_path):
    """A tiny function (probe.py) deployed in moto, and a runner for it."""
    code = _zip({"probe.py": PROBE})
    _create_function(target, code, "probe.info")
    with LocalLambdaRunner(target, "probe", code=code, work_dir=tmp_path / "run") as runner:
        yield runner


def _set_handler(target, handler: str, timeout: int = 5) -> None:
    target.client("lambda").update_function_configuration(
        FunctionName="probe", Handler=handler, Timeout=timeout
    )


# --- the child process, on a probe function ---------------------------------------------


def test_an_idle_environment_serves_the_next_invocation_warm(probe):
    """The first invocation starts a process (cold, with its init duration); the next one runs
    in the same process (warm, no init duration); neither is this process."""
    first, second = probe.invoke({}), probe.invoke({})
    assert first.ok and second.ok
    assert (first.cold, second.cold) == (True, False)
    assert first.init_duration_ms is not None and first.init_duration_ms >= 0
    assert second.init_duration_ms is None
    assert first.result["pid"] == second.result["pid"] != os.getpid()
    assert first.environment == second.environment == "env-1"


def test_module_level_state_survives_warm_invocations(probe, target):
    """A module-level counter goes on counting across warm invocations, as on Lambda."""
    _set_handler(target, "probe.state")
    counts = [probe.invoke({}).result["invocations"] for _ in range(3)]
    assert counts == [1, 2, 3]


def test_without_warm_environments_each_invocation_is_a_fresh_process(target, tmp_path):
    """warm=False starts a new process for every invocation, each one cold."""
    code = _zip({"probe.py": PROBE})  # once: each zip carries the time it was made
    _create_function(target, code, "probe.state")
    with LocalLambdaRunner(
        target, "probe", code=code, work_dir=tmp_path / "run", warm=False
    ) as runner:
        first, second = runner.invoke({}), runner.invoke({})
        assert runner.environments() == []
    assert (first.cold, second.cold) == (True, True)
    assert first.result["invocations"] == second.result["invocations"] == 1
    assert first.result["pid"] != second.result["pid"]


def test_invocations_that_arrive_together_get_separate_environments(probe, target):
    """Two invocations at once run in two environments: the idle one (warm) and a new one
    (cold), each with its own module-level state and working directory; both wait idle
    afterwards."""
    _set_handler(target, "probe.state")
    probe.invoke({})
    warm, cold = probe.invoke_together([{}, {}])
    assert (warm.cold, cold.cold) == (False, True)
    assert (warm.environment, cold.environment) == ("env-1", "env-2")
    assert (warm.result["invocations"], cold.result["invocations"]) == (2, 1)
    assert warm.result["pid"] != cold.result["pid"]
    assert warm.result["cwd"] != cold.result["cwd"]  # each its own working directory (/tmp)
    assert probe.environments() == ["env-1", "env-2"]


def test_overlapping_threads_get_separate_environments(probe, target, tmp_path):
    """Invocations from threads that overlap each get an environment: each handler returns
    only once all three have started, which one shared environment could never do."""
    _set_handler(target, "probe.meet")
    folder = tmp_path / "met"
    folder.mkdir()
    results = run_together([partial(probe.invoke, {"folder": str(folder), "n": 3})] * 3)
    assert [r.status for r in results] == ["ok"] * 3
    assert len({r.result for r in results}) == 3
    assert len(probe.environments()) == 3


def test_a_crash_retires_the_environment(probe, target):
    """After the process exits mid-invocation, the next invocation starts a new one (cold) and
    the module-level state starts again."""
    _set_handler(target, "probe.state")
    before = probe.invoke({})
    crashed = probe.invoke({"die": True})
    after = probe.invoke({})
    assert crashed.status == "crashed" and crashed.cold is False
    assert after.cold is True and after.result["invocations"] == 1
    assert after.result["pid"] != before.result["pid"]
    with pytest.raises(ProcessLookupError):
        os.kill(before.result["pid"], 0)  # stopped and waited for: no zombie left


def test_an_exception_leaves_the_environment_warm(probe, target):
    """A handler that raises does not end the runtime (Lambda's Python runtime catches it):
    the next invocation is warm."""
    _set_handler(target, "probe.fail")
    first, second = probe.invoke({}), probe.invoke({})
    assert (first.status, second.status) == ("error", "error")
    assert (first.cold, second.cold) == (True, False)


def test_a_configuration_update_retires_every_environment(probe, target):
    """After update_function_configuration the next invocation is cold, in a new process,
    and the environments of the old configuration are gone."""
    old = probe.invoke_together([{}, {}])
    target.client("lambda").update_function_configuration(
        FunctionName="probe", Environment={"Variables": {"GREETING": "hello"}}
    )
    new = probe.invoke({})
    assert new.cold is True and new.environment == "env-3"
    assert probe.environments() == ["env-3"]
    for invocation in old:
        with pytest.raises(ProcessLookupError):
            os.kill(invocation.result["pid"], 0)


def test_close_stops_every_environment(target, tmp_path):
    """close() ends every environment's process and waits for it (no process, no zombie)."""
    code = _zip({"probe.py": PROBE})
    _create_function(target, code, "probe.state")
    runner = LocalLambdaRunner(target, "probe", code=code)
    pids = [i.result["pid"] for i in runner.invoke_together([{}, {}])]
    runner.close()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_code_comes_first_on_the_path_and_only_boto3_is_installed(probe):
    """sys.path starts with the extracted zip then the runtime site; moto and pytest are absent."""
    result = probe.invoke({}).result
    assert Path(result["path"][0]) == probe.code_dir
    assert Path(result["path"][1]).name == "runtime-site"
    assert result["importable"] == {
        "boto3": True,
        "moto": False,
        "pytest": False,
        "jobcontroller": False,
    }


def test_the_bootstraps_package_is_not_on_the_childs_path(probe):
    """The bootstrap runs from this package by path, yet neither its directory nor the
    directory holding this package's `jobcontroller` is on the child's sys.path."""
    path = probe.invoke({}).result["path"]
    assert BOOTSTRAP.is_file()
    installed = Path(jobcontroller.__file__).parent
    assert str(BOOTSTRAP.parent) not in path
    assert str(installed.parent) not in path


def test_the_handler_is_imported_from_the_zip_not_the_installed_package(target, tmp_path):
    """A zip with its own jobcontroller.handler runs that module, from the extracted zip."""
    code = _zip({"jobcontroller/__init__.py": "", "jobcontroller/handler.py": ZIPPED_HANDLER})
    _create_function(target, code, "jobcontroller.handler.lambda_handler")
    with LocalLambdaRunner(target, "probe", code=code, work_dir=tmp_path / "run") as runner:
        invocation = runner.invoke({})
        code_dir = runner.code_dir
    assert invocation.ok, invocation.log
    assert Path(invocation.result["handler"]) == code_dir / "jobcontroller" / "handler.py"
    assert Path(invocation.result["package"]) == code_dir / "jobcontroller" / "__init__.py"
    assert invocation.result["path"][0] == str(code_dir)


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
    """A handler still running at the configured timeout is killed and reported as timed out;
    its environment is retired, so the next invocation starts a new one."""
    _set_handler(target, "probe.state", timeout=1)
    before = probe.invoke({})
    started = time.monotonic()
    invocation = probe.invoke({"seconds": 60})
    assert time.monotonic() - started < 15
    assert invocation.status == "timeout"
    assert invocation.error["errorMessage"] == "Task timed out after 1.00 seconds"
    after = probe.invoke({})
    assert after.cold is True and after.result["invocations"] == 1
    with pytest.raises(ProcessLookupError):
        os.kill(before.result["pid"], 0)


def test_an_exception_comes_back_as_the_functions_error(probe, target):
    """A raised exception is reported with its type, message and stack trace, as Lambda does."""
    _set_handler(target, "probe.fail")
    invocation = probe.invoke({"why": "no slot"})
    assert invocation.status == "error"
    assert invocation.error["errorType"] == "ValueError"
    assert invocation.error["errorMessage"] == "bad input: no slot"
    assert any("probe.py" in line for line in invocation.error["stackTrace"])
    assert "ValueError: bad input: no slot" in invocation.log


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
    other = LocalLambdaRunner(target, "probe", code=_zip({"probe.py": "x = 1\n"}))
    with pytest.raises(ConfigError, match="CodeSha256"):
        other.invoke({})
    other.close()


def test_the_local_runner_refuses_a_real_aws_target(target):
    """LocalLambdaRunner only runs for the embedded backend."""
    real = d.Target(target.session, "111122223333", "eu-west-1", embedded=False)
    with pytest.raises(ConfigError, match="embedded backend"):
        LocalLambdaRunner(real, "probe", code=b"")


def test_now_for_a_handler_without_injection_points_is_refused(probe):
    """Simulated time needs the handler module's `clock`; a function without it says so."""
    invocation = probe.invoke({}, now=T0)
    assert invocation.status == "error"
    assert invocation.error["errorType"] == "LocalRunner.NoInjectionPoint"
    assert "clock" in invocation.error["errorMessage"]


# --- the runner, on the course's handler -------------------------------------------------


def test_the_built_zip_runs_the_controller(stack, stack_store):
    """A manual trigger through the runner runs the job, at the simulated time, with the run id."""
    names, runner = stack
    invocation = runner.invoke({"job": names.job}, now=T0, run_id="run-0001")
    assert invocation.ok, invocation.log
    assert invocation.result["outcome"] == "SUCCEEDED"
    assert invocation.result["run_id"] == "run-0001"
    state = stack_store.read(names.job)
    assert (state.run_count, state.last_run_ts, state.last_run_id) == (1, T0, "run-0001")


def test_simulated_time_runs_on_and_sleeps_without_waiting(target, stack, stack_store):
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
    (run,) = stack_store.runs(names.job)
    assert (run.started_at, run.finished_at) == (T0, T0 + timedelta(seconds=30))


def test_in_a_replay_the_lease_is_the_timeout_less_the_margin_from_the_simulated_time(
    stack, stack_store
):
    """The lease a replayed run takes ends exactly timeout - margin after `now` (60 - 10 s),
    however long the child took to start: simulated time stands still while it works."""
    names, runner = stack
    stack_store.set_drill(names.job, "CRASH")  # a crashed run leaves its lease in the item
    invocation = runner.invoke({"job": names.job}, now=T0, run_id="run-0001")
    assert invocation.status == "crashed"
    config = runner.configuration()
    margin = int(config.environment["JOB_LEASE_MARGIN_SECONDS"])
    lease = stack_store.read(names.job).lease_expires_at
    assert lease == T0 + timedelta(seconds=config.timeout_seconds - margin)


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


def test_a_warm_invocation_gets_its_own_run_id_calls_and_log(stack):
    """What the runner sets for one invocation (fixed run id, recorded calls, captured log)
    does not carry over to the next one in the same warm environment."""
    names, runner = stack
    first = runner.invoke({"job": names.job}, now=T0, run_id="run-0001")
    later = T0 + timedelta(hours=1)
    second = runner.invoke({"job": names.job, "scheduled_time": "2026-01-05T10:00:00Z"}, now=later)
    assert (first.cold, second.cold) == (True, False)
    assert second.result["outcome"] == "SUCCEEDED", second.log
    assert second.result["run_id"] != "run-0001"
    assert [c.operation for c in second.calls] == ["GetItem", "UpdateItem", "TransactWriteItems"]
    assert "run-0001" in first.log and "run-0001" not in second.log


def test_async_failure_goes_to_the_on_failure_queue_once(stack, stack_store, target):
    """A crashed async run is not retried (0 retries) and its record lands in the failure queue."""
    names, runner = stack
    stack_store.set_drill(names.job, "CRASH")
    result = runner.invoke_async({"job": names.job}, now=T0)
    assert [a.status for a in result.attempts] == ["crashed"]
    assert result.sent_to == target.arn("sqs", names.failure_queue)
    sqs = target.client("sqs")
    url = sqs.get_queue_url(QueueName=names.failure_queue)["QueueUrl"]
    (message,) = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
    record = json.loads(message["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert record["requestPayload"] == {"job": names.job}
    assert record["timestamp"] == "2026-01-05T09:00:00.000Z"
    assert stack_store.read(names.job).status.value == "RUNNING"  # the crash left the lock held


def test_async_success_sends_nothing(stack, target):
    """A successful async run sends no record to the on-failure queue."""
    names, runner = stack
    result = runner.invoke_async({"job": names.job}, now=T0)
    assert result.sent_to is None and result.last.ok
    url = target.client("sqs").get_queue_url(QueueName=names.failure_queue)["QueueUrl"]
    answer = target.client("sqs").receive_message(QueueUrl=url, WaitTimeSeconds=1)
    assert answer.get("Messages", []) == []


@pytest.mark.parametrize(("retries", "attempts"), [(None, 3), (2, 3), (1, 2), (0, 1)])
def test_async_retries_follow_the_functions_maximum_retry_attempts(
    probe, target, retries, attempts
):
    """A failing async invoke runs 1 + MaximumRetryAttempts times (Lambda's default: 2)."""
    _set_handler(target, "probe.die")
    if retries is not None:
        target.client("lambda").put_function_event_invoke_config(
            FunctionName="probe", MaximumRetryAttempts=retries
        )
    result = probe.invoke_async({})
    assert [a.status for a in result.attempts] == ["crashed"] * attempts


def test_async_retry_after_a_crash_runs_a_minute_later_and_takes_the_slot_over(
    stack, stack_store, target
):
    """With retries on, the retry of a crashed run comes 1 min later, past the lease, and
    runs the same slot again (a takeover) under its own fixed run id."""
    names, runner = stack
    d.ensure_async_config(target, names, settings=d.FunctionSettings(async_max_retries=2))
    stack_store.set_drill(names.job, "CRASH")
    slot = "2026-01-05T09:00:00Z"
    result = runner.invoke_async({"job": names.job, "scheduled_time": slot}, now=T0, run_id="r1")
    assert [a.status for a in result.attempts] == ["crashed", "ok"]
    assert result.started == (T0, T0 + timedelta(minutes=1))
    assert result.sent_to is None
    state = stack_store.read(names.job)
    assert (state.run_count, state.takeover_count) == (1, 1)
    assert [r.run_id for r in stack_store.runs(names.job)] == ["r1-retry1"]


def test_the_zip_runs_under_python_312(target, stack, python312):
    """The same zip runs under Python 3.12, the function's configured runtime."""
    names, _ = stack
    with LocalLambdaRunner(target, names.function, python=python312) as runner:
        invocation = runner.invoke({"job": names.job}, now=T0)
    assert invocation.ok, invocation.log
    assert invocation.result["outcome"] == "SUCCEEDED"


# --- choosing the runner -----------------------------------------------------------------


def test_runner_for_picks_local_on_the_embedded_backend(target, stack):
    """runner_for gives the local runner on the embedded backend."""
    names, _ = stack
    runner = runner_for(target, names)
    assert isinstance(runner, LocalLambdaRunner)
    runner.close()


def test_runner_for_picks_lambda_on_real_aws(target):
    """runner_for gives the Invoke API runner for a real-AWS target."""
    real = d.Target(target.session, "111122223333", "eu-west-1", embedded=False)
    assert isinstance(runner_for(real, d.Names("ann")), RemoteLambdaRunner)
