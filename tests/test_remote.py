"""The remote runner: the same calls through Lambda's Invoke API, on real AWS (stubbed here)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from jobcontroller.errors import ConfigError
from jobcontroller.ops.remote import RemoteLambdaRunner, cold_start

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _stubbed_lambda(target, response, name="f"):
    runner = RemoteLambdaRunner(target, name, timeout_seconds=60)
    stub = Stubber(runner.invoker())
    stub.add_response("invoke", response)
    stub.activate()
    return runner


def _payload(value) -> StreamingBody:
    raw = json.dumps(value).encode()
    return StreamingBody(io.BytesIO(raw), len(raw))


def test_remote_runner_maps_a_function_error(target):
    """On real AWS an Unhandled function error comes back as status error with Lambda's payload."""
    error = {"errorType": "ValueError", "errorMessage": "x"}
    runner = _stubbed_lambda(
        target,
        {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": _payload(error)},
        "ann-hourly_processor",
    )
    invocation = runner.invoke({"job": "x"})
    assert invocation.status == "error"
    assert invocation.error == error


def test_remote_runner_reports_a_timeout(target):
    """A function error whose payload says it timed out is reported as a timeout."""
    error = {"errorMessage": "2026-01-05T09:00:00Z Task timed out after 3.00 seconds"}
    runner = _stubbed_lambda(
        target, {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": _payload(error)}
    )
    invocation = runner.invoke({})
    assert invocation.status == "timeout"


def test_remote_runner_returns_the_functions_answer(target):
    """A successful invocation carries the handler's return value."""
    runner = _stubbed_lambda(
        target, {"StatusCode": 200, "Payload": _payload({"outcome": "SUCCEEDED"})}
    )
    invocation = runner.invoke({})
    assert invocation.ok
    assert invocation.summary() == "SUCCEEDED"


def test_remote_runner_cannot_simulate_time(target):
    """Real Lambda runs on real time, so passing `now` is refused."""
    with pytest.raises(ConfigError, match="real time"):
        RemoteLambdaRunner(target, "f").invoke({}, now=T0)
    with pytest.raises(ConfigError, match="real time"):
        RemoteLambdaRunner(target, "f").invoke_async({}, now=T0)


def test_remote_runner_reads_the_time_on_aws_s_clock_not_the_laptops(target):
    """now() follows the Date header of Lambda's answer: a laptop 5 minutes slow still sees
    AWS's time, so a lease is compared with the clock the function's gate uses."""
    aws_time = datetime.now(UTC) + timedelta(minutes=5)
    runner = _stubbed_lambda(
        target,
        {
            "StatusCode": 200,
            "Payload": _payload({"outcome": "SUCCEEDED"}),
            "ResponseMetadata": {
                "HTTPStatusCode": 200,
                "HTTPHeaders": {"date": format_datetime(aws_time, usegmt=True)},
            },
        },
    )
    runner.invoke({})
    assert abs(runner.now() - aws_time) < timedelta(seconds=3)


@pytest.mark.parametrize(
    ("log", "expected"),
    [
        (
            "END RequestId: r\nREPORT RequestId: r\tDuration: 3.1 ms\tInit Duration: 412.56 ms",
            (True, 413),
        ),
        (
            "END RequestId: r\nREPORT RequestId: r\tDuration: 3.1 ms\tBilled Duration: 4 ms",
            (False, None),
        ),
        ("", (None, None)),
    ],
)
def test_cold_start_is_read_from_the_report_line(log, expected):
    """Lambda's REPORT line has an Init Duration on a cold start only; no REPORT line in the
    log tail means it is not known."""
    assert cold_start(log) == expected
