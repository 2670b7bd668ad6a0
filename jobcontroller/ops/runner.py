"""Run the deployed function and fire its schedule where moto cannot: the two missing parts.

moto stores a Lambda function but cannot run it without Docker, and it stores a schedule but
never fires it. So, on the embedded backend:

- `LocalLambdaRunner` reads the function's configuration back from the Lambda API (handler,
  environment, timeout, CodeSha256), checks that the zip it holds is the code Lambda has,
  and runs it in a fresh Python process per invocation: `sys.path` is the extracted zip and
  then boto3 and its dependencies only (what the Lambda runtime provides), the environment
  is the function's plus credentials and the endpoint, the context's remaining time counts
  down from the configured timeout, and the process is killed at the timeout.
- `ScheduleDriver` reads the schedule back from the Scheduler API (expression, input
  template, retry policy, flexible window), computes the slots it fires in a window,
  renders the `<aws.scheduler.*>` context attributes and delivers them through the runner,
  for chosen slots, late or more than once, as the real Scheduler may.

On real AWS, `runner_for` returns a `RemoteLambdaRunner` (Lambda's Invoke API) and the real
schedule does the firing. Nothing here is in the Lambda zip.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import io
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jobcontroller.errors import ConfigError
from jobcontroller.model import JobState
from jobcontroller.ops.deploy import Names, Target
from jobcontroller.ops.packaging import build_zip

__all__ = [
    "AsyncResult",
    "Authorization",
    "AwsCall",
    "Delivery",
    "FunctionConfig",
    "Invocation",
    "LocalLambdaRunner",
    "RemoteLambdaRunner",
    "ScheduleDriver",
    "ScheduleSpec",
    "authorizations",
    "fire_times",
    "runner_for",
    "runtime_site",
    "slot_run_id",
    "wait_for_state",
]

# The distributions the Lambda Python runtime provides; their dependencies come along.
# https://docs.aws.amazon.com/lambda/latest/dg/lambda-python.html
_RUNTIME_DISTRIBUTIONS = ("boto3",)


# --- results -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AwsCall:
    """One AWS API call the handler made (recorded in the child process)."""

    service: str  # botocore's service name, e.g. "dynamodb"
    operation: str  # e.g. "UpdateItem"
    params: dict[str, Any]


@dataclass(frozen=True)
class Invocation:
    """How one invocation ended, in the shape Lambda's Invoke API reports it.

    `status` is `ok` (the handler returned `result`), `error` (it raised: `error` holds
    errorType, errorMessage and stackTrace), `crashed` (the process died without an answer,
    as on Lambda's `Runtime.ExitError`) or `timeout` (killed at the configured timeout).
    """

    request_id: str
    status: str
    result: Any = None
    error: dict[str, Any] | None = None
    duration_ms: int = 0
    log: str = ""
    calls: tuple[AwsCall, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def summary(self) -> str:
        if self.ok and isinstance(self.result, dict):
            reason = self.result.get("reason")
            return self.result.get("outcome", "ok") + (f" ({reason})" if reason else "")
        if self.error:
            return f"{self.status}: {self.error.get('errorType')}"
        return self.status


@dataclass(frozen=True)
class FunctionConfig:
    """The parts of a function's configuration the runner uses, as the Lambda API reports it."""

    name: str
    arn: str
    handler: str
    runtime: str
    timeout_seconds: int
    memory_mb: int
    environment: dict[str, str]
    code_sha256: str

    @classmethod
    def from_api(cls, config: Mapping[str, Any]) -> FunctionConfig:
        return cls(
            name=config["FunctionName"],
            arn=config["FunctionArn"],
            handler=config["Handler"],
            runtime=config["Runtime"],
            timeout_seconds=int(config["Timeout"]),
            memory_mb=int(config.get("MemorySize", 128)),
            environment=dict(config.get("Environment", {}).get("Variables", {})),
            code_sha256=config["CodeSha256"],
        )


@dataclass(frozen=True)
class Authorization:
    """One IAM authorisation an AWS call needs: the action, the resource, the partition key."""

    action: str  # e.g. "dynamodb:UpdateItem"
    resource: str | None  # the resource's ARN, where the call names one
    leading_key: str | None = None  # the item's partition key (for dynamodb:LeadingKeys)


# TransactWriteItems has no IAM action of its own: each item is authorised as its own
# write. https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html
_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}


def _leading_key(params: Mapping[str, Any]) -> str | None:
    key = params.get("Key") or params.get("Item") or {}
    value = key.get("PK", {})
    return value.get("S") if isinstance(value, dict) else None


def authorizations(
    calls: Iterable[AwsCall], *, account: str, region: str, partition: str = "aws"
) -> list[Authorization]:
    """The IAM authorisations `calls` needed, in order (DynamoDB calls resolved to items)."""
    needed = []
    for call in calls:
        if call.service == "dynamodb" and call.operation in (
            "TransactWriteItems",
            "TransactGetItems",
        ):
            items = [
                (kind, body)
                for entry in call.params["TransactItems"]
                for kind, body in entry.items()
            ]
        elif call.service == "dynamodb" and "TableName" in call.params:
            items = [(None, call.params)]
        else:
            needed.append(Authorization(f"{call.service}:{call.operation}", None))
            continue
        for kind, body in items:
            operation = call.operation if kind is None else _TRANSACT_ACTIONS[kind]
            table = f"arn:{partition}:dynamodb:{region}:{account}:table/{body['TableName']}"
            needed.append(Authorization(f"dynamodb:{operation}", table, _leading_key(body)))
    return needed


class FunctionRunner(Protocol):
    """Invoke the deployed function: locally on the embedded backend, via Lambda on AWS."""

    simulates_time: bool

    def invoke(
        self, event: Any, *, now: datetime | None = None, run_id: str | None = None
    ) -> Invocation: ...

    def invoke_async(
        self, event: Any, *, now: datetime | None = None, run_id: str | None = None
    ) -> AsyncResult: ...


@dataclass(frozen=True)
class AsyncResult:
    """An asynchronous invocation: its attempts and where a final failure was sent."""

    attempts: tuple[Invocation, ...]
    sent_to: str | None = None  # the on-failure destination's ARN, if it got a record

    @property
    def last(self) -> Invocation | None:
        return self.attempts[-1] if self.attempts else None


# --- the child process -------------------------------------------------------------------

# Run as `python -I -S -B bootstrap.py request.json`: isolated (no PYTHON* variables, no user
# site, not the current directory), without site-packages (only what we put on sys.path) and
# without writing bytecode into the extracted code (Lambda's /var/task is read-only too).
_BOOTSTRAP = textwrap.dedent(
    '''
    import importlib, json, sys, time, traceback
    from datetime import datetime, timedelta

    with open(sys.argv[1], encoding="utf-8") as handle:
        request = json.load(handle)
    sys.path[:0] = request["path"]

    simulated = None  # the SimulatedClock of a replay (see inject)

    def write(path, payload):
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, default=str)

    class Context:
        """The parts of Lambda's context object that handlers use."""

        def __init__(self, function):
            self.function_name = function["name"]
            self.function_version = "$LATEST"
            self.invoked_function_arn = function["arn"]
            self.memory_limit_in_mb = function["memory_mb"]
            self.aws_request_id = request["request_id"]
            self.log_group_name = "/aws/lambda/" + function["name"]
            self.log_stream_name = "local/" + request["request_id"]

        def get_remaining_time_in_millis(self):
            if simulated is not None:  # a replay: time passes on the simulated clock only
                return max(0, int((request["timeout_seconds"] - simulated.elapsed()) * 1000))
            return max(0, int((request["deadline"] - time.time()) * 1000))

    def record_calls(path):
        """Append every AWS API call (service, operation, parameters) to `path` as it is made."""
        from botocore.client import BaseClient

        original = BaseClient._make_api_call

        def recorded(self, operation_name, params):
            entry = {"service": self.meta.service_model.service_name,
                     "operation": operation_name, "params": params}
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(entry, default=str) + "\\n")
            return original(self, operation_name, params)

        BaseClient._make_api_call = recorded

    class SimulatedClock:
        """The handler's clock in a replay: it starts at the simulated time and moves only
        when the handler sleeps, at once instead of waiting (as ManualClock does). So a
        replayed day does not wait for its workloads, and the times it stores do not depend
        on how busy this machine is (a clock that also ran on with the process's own time
        stored 18:00:02 instead of 18:00:01 under load). The workload measures its lease on
        this same clock; the real timeout still kills a run that never returns."""

        def __init__(self, start):
            self._start, self._slept = start, 0.0

        def now(self):
            return self._start + timedelta(seconds=self._slept)

        def elapsed(self):
            return self._slept

        def sleep(self, seconds):
            self._slept += max(float(seconds), 0.0)

    def inject(module):
        """Set the handler module's injection points (jobcontroller.handler.clock and
        .new_run_id) for a simulated time or a fixed run id. The zip's code is unchanged."""
        global simulated
        missing = [name for name, wanted in (("clock", request.get("now")),
                                             ("new_run_id", request.get("run_id")))
                   if wanted is not None and not hasattr(module, name)]
        if missing:
            raise RuntimeError(
                f"handler module {module.__name__!r} has no injection point "
                f"{', '.join(missing)}: leave out now=/run_id= for this function")
        if request.get("now") is not None:
            simulated = module.clock = SimulatedClock(datetime.fromisoformat(request["now"]))
            if hasattr(module, "wall_clock"):
                # A simulated day stamps its history's TTL on simulated time too, so the
                # lab's stored outputs stay the same (moto never expires items).
                module.wall_clock = simulated
        if request.get("run_id") is not None:
            run_id = request["run_id"]
            module.new_run_id = lambda: run_id

    if request.get("record"):
        record_calls(request["record"])
    module_name, _, function_name = request["handler"].rpartition(".")
    try:
        module = importlib.import_module(module_name)
        handler = getattr(module, function_name)
    except Exception as exc:
        write(request["result"], {"status": "error", "error": {
            "errorType": "Runtime.ImportModuleError",
            "errorMessage": f"Unable to import module {module_name!r}: {exc}",
            "stackTrace": traceback.format_exc().splitlines()}})
        sys.exit(0)
    try:
        inject(module)
    except Exception as exc:
        write(request["result"], {"status": "error", "error": {
            "errorType": "LocalRunner.NoInjectionPoint", "errorMessage": str(exc),
            "stackTrace": []}})
        sys.exit(0)
    # Lambda's timeout counts the invoke phase; start-up and imports (the init phase) have
    # their own budget. Counting them here would make the remaining time, and so the lease,
    # depend on how busy this machine is.
    # https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html
    request["deadline"] = time.time() + request["timeout_seconds"]
    try:
        result = handler(request["event"], Context(request["function"]))
        json.dumps(result)
    except Exception as exc:
        traceback.print_exc()
        write(request["result"], {"status": "error", "error": {
            "errorType": type(exc).__name__, "errorMessage": str(exc),
            "stackTrace": traceback.format_exc().splitlines()}})
        sys.exit(0)
    write(request["result"], {"status": "ok", "result": result})
    '''
)


def _top_level_names(dist: importlib.metadata.Distribution) -> set[str]:
    names = set()
    for file in dist.files or ():
        top = file.parts[0]
        if top.endswith((".dist-info", ".egg-info", ".pth")) or top in ("..", "__pycache__"):
            continue
        if len(file.parts) == 1 and not top.endswith(".py"):
            continue
        names.add(top)
    return names


def _runtime_closure(roots: Iterable[str]) -> list[importlib.metadata.Distribution]:
    seen: dict[str, importlib.metadata.Distribution] = {}
    todo = list(roots)
    while todo:
        name = re.split(r"[\s;<>=!~\[(]", todo.pop(), maxsplit=1)[0].lower().replace("_", "-")
        if name in seen:
            continue
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        seen[name] = dist
        for requirement in dist.requires or ():
            if "extra ==" not in requirement:
                todo.append(requirement)
    return [seen[k] for k in sorted(seen)]


def runtime_site(dest: Path) -> Path:
    """A directory holding boto3 and its dependencies only (symlinks into site-packages)."""
    dest.mkdir(parents=True, exist_ok=True)
    for dist in _runtime_closure(_RUNTIME_DISTRIBUTIONS):
        base = Path(dist.locate_file(""))
        for name in _top_level_names(dist):
            link = dest / name
            if not link.exists():
                link.symlink_to(base / name)
    return dest


def _new_request_id() -> str:
    return str(uuid.uuid4())


class LocalLambdaRunner:
    """Run the deployed function's code in a fresh process per invocation (embedded backend).

    `code` is the deployment zip (a path or bytes); by default the runner builds it from
    this package. Either way it must be the code Lambda holds: moto does not serve the code
    back (get_function's Code.Location names an S3 host outside the embedded backend), so
    the runner compares the zip's sha256 with the function's CodeSha256 instead, and refuses
    a mismatch. `python` is the interpreter (e.g. a python3.12 to match the runtime).
    With `record_calls=True` each Invocation lists the AWS calls the handler made.

    The process is killed `timeout` after it starts, so interpreter start-up counts against
    that (slightly stricter than Lambda, whose cold-start init has its own budget); the
    context's remaining time, like Lambda's, counts from when the handler is called.
    """

    simulates_time = True

    def __init__(
        self,
        target: Target,
        function_name: str,
        *,
        code: str | os.PathLike[str] | bytes | None = None,
        python: str | os.PathLike[str] | None = None,
        work_dir: str | os.PathLike[str] | None = None,
        record_calls: bool = False,
        request_ids: Callable[[], str] = _new_request_id,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if not target.embedded:
            raise ConfigError(
                "LocalLambdaRunner runs code on this machine for the embedded backend; on "
                "real AWS use runner_for(target, names), which calls Lambda"
            )
        self.target = target
        self.function_name = function_name
        self.python = str(python or sys.executable)
        self.record_calls = record_calls
        self.request_ids = request_ids
        self._clock = clock or (lambda: datetime.now(UTC))
        self._tmp = None
        if work_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="jobcontroller-run-")
            work_dir = self._tmp.name
        self.work_dir = Path(work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        if code is None:
            code = build_zip(out_dir=self.work_dir / "build")
        self._code = code if isinstance(code, bytes) else Path(code).read_bytes()
        digest = hashlib.sha256(self._code).digest()
        self.code_sha256 = base64.b64encode(digest).decode("ascii")
        self._code_dir = self.work_dir / f"code-{digest.hex()[:16]}"
        self._site = self.work_dir / "runtime-site"
        self._lock = threading.Lock()

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> LocalLambdaRunner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- configuration, read back every time so an update_function_configuration shows --

    def configuration(self) -> FunctionConfig:
        """The function's configuration as the Lambda API reports it now."""
        lam = self.target.client("lambda")
        config = FunctionConfig.from_api(
            lam.get_function_configuration(FunctionName=self.function_name)
        )
        if config.code_sha256 != self.code_sha256:
            raise ConfigError(
                f"function {self.function_name!r} holds code with CodeSha256 "
                f"{config.code_sha256}, but this runner's zip is {self.code_sha256}: "
                "redeploy (deploy.ensure_function) or pass code= the zip that was deployed"
            )
        return config

    def _prepare(self) -> None:
        with self._lock:
            if not self._code_dir.exists():
                staging = Path(tempfile.mkdtemp(dir=self.work_dir, prefix=".code-"))
                with zipfile.ZipFile(io.BytesIO(self._code)) as archive:
                    archive.extractall(staging)
                staging.rename(self._code_dir)
            if not self._site.exists():
                runtime_site(self._site)
            bootstrap = self.work_dir / "bootstrap.py"
            if not bootstrap.exists():
                bootstrap.write_text(_BOOTSTRAP, encoding="utf-8")

    def _environment(self, config: FunctionConfig) -> dict[str, str]:
        session = self.target.session
        credentials = session.get_credentials()
        if credentials is None:
            raise ConfigError("the boto3 session has no credentials to give the function")
        frozen = credentials.get_frozen_credentials()
        endpoint = self.target.client("dynamodb").meta.endpoint_url
        empty = self.work_dir / "no-aws-config"
        env = dict(config.environment)
        # What Lambda sets for every function (reserved: a function cannot override them).
        # https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime
        env.update(
            {
                "AWS_REGION": self.target.region,
                "AWS_DEFAULT_REGION": self.target.region,
                "AWS_LAMBDA_FUNCTION_NAME": config.name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_mb),
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{config.name}",
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{config.runtime}",
                "LAMBDA_TASK_ROOT": str(self._code_dir),
                "_HANDLER": config.handler,
                "TZ": ":UTC",
                "LANG": "C.UTF-8",
                "PATH": os.defpath,
                "AWS_ACCESS_KEY_ID": frozen.access_key,
                "AWS_SECRET_ACCESS_KEY": frozen.secret_key,
                # Not Lambda's: the embedded backend's address, and no learner's profile.
                "AWS_ENDPOINT_URL": endpoint,
                "AWS_CONFIG_FILE": str(empty / "config"),
                "AWS_SHARED_CREDENTIALS_FILE": str(empty / "credentials"),
                "AWS_EC2_METADATA_DISABLED": "true",
            }
        )
        if frozen.token:
            env["AWS_SESSION_TOKEN"] = frozen.token
        return env

    # -- invoking -------------------------------------------------------------------------

    def invoke(
        self, event: Any, *, now: datetime | None = None, run_id: str | None = None
    ) -> Invocation:
        """Run the handler once on `event` and return how it ended (RequestResponse).

        `now` starts the child's clock at that time (so a notebook can replay January at
        its own pace; the workload's sleeps then pass without waiting); `run_id` fixes the
        run id the controller uses (default: random). Both are set through the handler
        module's injection points (`jobcontroller.handler.clock`, `.new_run_id`).
        """
        config = self.configuration()
        self._prepare()
        request_id = self.request_ids()
        scratch = Path(tempfile.mkdtemp(dir=self.work_dir, prefix="invoke-"))
        record = scratch / "calls.jsonl" if self.record_calls else None
        start = time.time()
        request = {
            "path": [str(self._code_dir), str(self._site)],
            "handler": config.handler,
            "event": event,
            "request_id": request_id,
            "deadline": start + config.timeout_seconds,
            "timeout_seconds": config.timeout_seconds,
            "function": {"name": config.name, "arn": config.arn, "memory_mb": config.memory_mb},
            "result": str(scratch / "result.json"),
            "record": None if record is None else str(record),
            "now": None if now is None else _utc(now).isoformat(),
            "run_id": run_id,
        }
        (scratch / "request.json").write_text(json.dumps(request, default=str), encoding="utf-8")
        process = subprocess.Popen(
            [
                self.python,
                "-I",
                "-S",
                "-B",
                str(self.work_dir / "bootstrap.py"),
                str(scratch / "request.json"),
            ],
            cwd=scratch,
            env=self._environment(config),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # so a timeout kills the whole process group
        )
        timed_out = False
        try:
            output, _ = process.communicate(timeout=config.timeout_seconds)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
        duration_ms = int((time.time() - start) * 1000)
        calls = _read_calls(record)
        log = output.decode("utf-8", "replace")
        result_file = scratch / "result.json"
        try:
            if timed_out:
                return Invocation(
                    request_id,
                    "timeout",
                    error={
                        "errorType": "Sandbox.Timedout",
                        "errorMessage": f"Task timed out after {config.timeout_seconds:.2f} "
                        "seconds",
                    },
                    duration_ms=duration_ms,
                    log=log,
                    calls=calls,
                )
            if not result_file.exists():
                return Invocation(
                    request_id,
                    "crashed",
                    error={
                        "errorType": "Runtime.ExitError",
                        "errorMessage": "Runtime exited with error: exit status "
                        f"{process.returncode}",
                    },
                    duration_ms=duration_ms,
                    log=log,
                    calls=calls,
                )
            answer = json.loads(result_file.read_text(encoding="utf-8"))
            return Invocation(
                request_id,
                answer["status"],
                result=answer.get("result"),
                error=answer.get("error"),
                duration_ms=duration_ms,
                log=log,
                calls=calls,
            )
        finally:
            for path in sorted(scratch.iterdir()):
                path.unlink()
            scratch.rmdir()

    def invoke_async(
        self, event: Any, *, now: datetime | None = None, run_id: str | None = None
    ) -> AsyncResult:
        """Invoke as the Scheduler does (InvocationType=Event), with Lambda's async handling:
        retry up to the function's MaximumRetryAttempts, then send a record to its
        on-failure destination. Both are read back from the function's event invoke config.
        """
        config = self.configuration()
        invoke_config = _event_invoke_config(self.target, config.name)
        retries = invoke_config.get("MaximumRetryAttempts", 2)
        attempts = [self.invoke(event, now=now, run_id=run_id)]
        # Lambda waits about a minute before the first retry and two before the second.
        for attempt in range(1, retries + 1):
            if attempts[-1].ok:
                break
            later = None if now is None else _utc(now) + timedelta(minutes=1 + 2 * (attempt - 1))
            attempts.append(self.invoke(event, now=later))
        if attempts[-1].ok:
            return AsyncResult(tuple(attempts))
        destination = (
            invoke_config.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        )
        if destination:
            when = _utc(now) if now is not None else self._clock()
            record = _failure_record(config, event, attempts, when)
            _send_to_queue(self.target, destination, record)
        return AsyncResult(tuple(attempts), destination)


def _utc(when: datetime) -> datetime:
    if when.tzinfo is None:
        raise ConfigError("times must be timezone-aware, e.g. datetime(..., tzinfo=UTC)")
    return when.astimezone(UTC)


def _read_calls(path: Path | None) -> tuple[AwsCall, ...]:
    if path is None or not path.exists():
        return ()
    calls = []
    for line in path.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        calls.append(AwsCall(entry["service"], entry["operation"], entry["params"]))
    return tuple(calls)


def _event_invoke_config(target: Target, function_name: str) -> dict[str, Any]:
    from botocore.exceptions import ClientError

    try:
        return target.client("lambda").get_function_event_invoke_config(FunctionName=function_name)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
        return {}  # Lambda's defaults: two retries, no destination


def _failure_record(
    config: FunctionConfig, event: Any, attempts: list[Invocation], when: datetime
) -> dict[str, Any]:
    """The record Lambda sends to an on-failure destination.

    https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html
    """
    last = attempts[-1]
    return {
        "version": "1.0",
        "timestamp": when.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "requestContext": {
            "requestId": last.request_id,
            "functionArn": f"{config.arn}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": len(attempts),
        },
        "requestPayload": event,
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        },
        "responsePayload": last.error,
    }


def _send_to_queue(target: Target, queue_arn: str, body: dict[str, Any]) -> None:
    # arn:aws:sqs:region:account:name
    *_, account, name = queue_arn.split(":")
    sqs = target.client("sqs")
    url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body, default=str))


class RemoteLambdaRunner:
    """The same calls against real Lambda (Invoke API); time cannot be simulated there."""

    simulates_time = False

    def __init__(self, target: Target, function_name: str) -> None:
        self.target = target
        self.function_name = function_name

    def configuration(self) -> FunctionConfig:
        lam = self.target.client("lambda")
        return FunctionConfig.from_api(
            lam.get_function_configuration(FunctionName=self.function_name)
        )

    def _check_now(self, now: datetime | None) -> None:
        if now is not None:
            raise ConfigError(
                "real Lambda runs on real time: `now` can only be simulated on the embedded "
                "backend; leave it out"
            )

    def invoke(self, event: Any, *, now: datetime | None = None, **_: Any) -> Invocation:
        """Invoke synchronously (RequestResponse) and return the result or the error."""
        self._check_now(now)
        started = time.time()
        response = self.target.client("lambda").invoke(
            FunctionName=self.function_name,
            InvocationType="RequestResponse",
            LogType="Tail",
            Payload=json.dumps(event).encode(),
        )
        payload = json.loads(response["Payload"].read() or b"null")
        log = base64.b64decode(response.get("LogResult", "")).decode("utf-8", "replace")
        request_id = response.get("ResponseMetadata", {}).get("RequestId", "")
        duration_ms = int((time.time() - started) * 1000)
        if "FunctionError" in response:
            timed_out = "timed out" in str(payload)
            return Invocation(
                request_id,
                "timeout" if timed_out else "error",
                error=payload,
                duration_ms=duration_ms,
                log=log,
            )
        return Invocation(request_id, "ok", result=payload, duration_ms=duration_ms, log=log)

    def invoke_async(self, event: Any, *, now: datetime | None = None, **_: Any) -> AsyncResult:
        """Queue an asynchronous invocation (as the Scheduler does); Lambda reports nothing."""
        self._check_now(now)
        response = self.target.client("lambda").invoke(
            FunctionName=self.function_name,
            InvocationType="Event",
            Payload=json.dumps(event).encode(),
        )
        request_id = response.get("ResponseMetadata", {}).get("RequestId", "")
        return AsyncResult((Invocation(request_id, "queued"),))


def runner_for(target: Target, names: Names, **options: Any) -> FunctionRunner:
    """A local runner on the embedded backend, Lambda's Invoke API on real AWS."""
    if target.embedded:
        return LocalLambdaRunner(target, names.function, **options)
    return RemoteLambdaRunner(target, names.function)


# --- schedules ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ScheduleSpec:
    """A schedule as the Scheduler API reports it."""

    name: str
    group: str
    arn: str
    expression: str
    timezone: str
    state: str
    target_arn: str
    input_template: str
    retry_policy: dict[str, int]
    dead_letter_arn: str | None
    flexible_window: dict[str, Any]
    start_date: datetime | None = None
    end_date: datetime | None = None
    created: datetime | None = None

    @classmethod
    def from_api(cls, schedule: Mapping[str, Any]) -> ScheduleSpec:
        target = schedule["Target"]

        def aware(when: datetime | None) -> datetime | None:
            return None if when is None else when.astimezone(UTC)

        return cls(
            name=schedule["Name"],
            group=schedule.get("GroupName", "default"),
            arn=schedule["Arn"],
            expression=schedule["ScheduleExpression"],
            timezone=schedule.get("ScheduleExpressionTimezone") or "UTC",
            state=schedule.get("State", "ENABLED"),
            target_arn=target["Arn"],
            input_template=target.get("Input", ""),
            retry_policy=dict(target.get("RetryPolicy", {})),
            dead_letter_arn=target.get("DeadLetterConfig", {}).get("Arn"),
            flexible_window=dict(schedule.get("FlexibleTimeWindow", {})),
            start_date=aware(schedule.get("StartDate")),
            end_date=aware(schedule.get("EndDate")),
            created=aware(schedule.get("CreationDate")),
        )


_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_CRON = re.compile(r"^cron\((.+)\)$")
_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
_SUPPORTED = (
    "the local driver understands rate(N minutes|hours|days), at(yyyy-mm-ddThh:mm:ss) and "
    "cron(minutes hours * * ? *) with numbers, lists, ranges, '*' and '/step' in the first "
    "two fields"
)


def _cron_field(text: str, low: int, high: int, expression: str) -> list[int]:
    values: set[int] = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            if not step_text.isdigit() or int(step_text) == 0:
                raise ConfigError(f"{expression}: bad step {step_text!r}; {_SUPPORTED}")
            step = int(step_text)
        if part == "*":
            first, last = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            if not (a.isdigit() and b.isdigit()):
                raise ConfigError(f"{expression}: bad range {part!r}; {_SUPPORTED}")
            first, last = int(a), int(b)
        elif part.isdigit():
            first = int(part)
            last = high if step > 1 else first
        else:
            raise ConfigError(f"{expression}: cannot read {part!r}; {_SUPPORTED}")
        if not low <= first <= last <= high:
            raise ConfigError(f"{expression}: {part!r} is outside {low}-{high}")
        values.update(range(first, last + 1, step))
    return sorted(values)


def fire_times(
    expression: str,
    start: datetime,
    end: datetime,
    *,
    timezone: str = "UTC",
    anchor: datetime | None = None,
) -> list[datetime]:
    """The times (UTC) a schedule expression fires in [start, end).

    `anchor` is when a rate() schedule started counting (its StartDate or creation time).
    """
    start, end = _utc(start), _utc(end)
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unknown schedule timezone {timezone!r}: use an IANA name") from None
    expression = expression.strip()
    if match := _RATE.match(expression):
        count, unit = int(match.group(1)), match.group(2).rstrip("s")
        if count == 0:
            raise ConfigError(f"{expression}: the rate must be at least 1 {unit}")
        step = timedelta(**{f"{unit}s": count})
        if anchor is None:
            raise ConfigError(
                f"{expression} fires relative to when it started: pass anchor= (the "
                "schedule's StartDate or creation time)"
            )
        anchor = _utc(anchor)
        first = anchor + step * max(0, -((anchor - start) // step))
        times = []
        when = first
        while when < end:
            if when >= start:
                times.append(when)
            when += step
        return times
    if match := _AT.match(expression):
        when = datetime.fromisoformat(match.group(1)).replace(tzinfo=zone).astimezone(UTC)
        return [when] if start <= when < end else []
    if match := _CRON.match(expression):
        fields = match.group(1).split()
        if len(fields) != 6:
            raise ConfigError(f"{expression}: a cron expression has 6 fields; {_SUPPORTED}")
        minutes_text, hours_text, dom, month, dow, year = fields
        if dom not in ("*", "?") or month != "*" or dow not in ("*", "?") or year != "*":
            raise ConfigError(f"{expression}: only daily patterns are supported; {_SUPPORTED}")
        minutes = _cron_field(minutes_text, 0, 59, expression)
        hours = _cron_field(hours_text, 0, 23, expression)
        times = []
        day = start.astimezone(zone).date() - timedelta(days=1)
        last_day = end.astimezone(zone).date() + timedelta(days=1)
        while day <= last_day:
            for hour in hours:
                for minute in minutes:
                    local = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
                    when = local.astimezone(UTC)
                    if start <= when < end:
                        times.append(when)
            day += timedelta(days=1)
        return sorted(set(times))
    raise ConfigError(f"cannot compute when {expression!r} fires: {_SUPPORTED}")


@dataclass(frozen=True)
class Delivery:
    """One delivery of a schedule's event to its target, and what came of it."""

    slot: datetime
    delivered_at: datetime
    attempt: int
    execution_id: str
    event: dict[str, Any]
    result: AsyncResult | None = None
    dead_lettered: str | None = None  # the schedule DLQ's ARN if the event went there

    @property
    def invocation(self) -> Invocation | None:
        return None if self.result is None else self.result.last

    def summary(self) -> str:
        if self.dead_lettered:
            return "dead-lettered (too old to deliver)"
        invocation = self.invocation
        return "-" if invocation is None else invocation.summary()


def _ts(when: datetime) -> str:
    return _utc(when).strftime("%Y-%m-%dT%H:%M:%SZ")


def slot_run_id(slot: datetime, delivery: int) -> str:
    """A readable fixed run id for a replay: `run-0105T0900-1` is the first delivery of the
    09:00 slot on 5 January (UTC). Unique per delivery, as the controller's random ids are."""
    return f"run-{_utc(slot):%m%dT%H%M}-{delivery}"


@dataclass
class ScheduleDriver:
    """Fire a deployed schedule by hand: for chosen slots, late, or more than once.

    Everything is read back from the Scheduler API at each call: the expression, the input
    template, the retry policy, the flexible window, the dead-letter queue.
    """

    target: Target
    names: Names
    runner: FunctionRunner
    schedule_name: str | None = None
    # Fixed run ids for a replay (e.g. `slot_run_id`): called with the slot and the
    # delivery's number for that slot. None: the function picks its own (random) ids, as
    # on AWS, where this is ignored.
    run_ids: Callable[[datetime, int], str] | None = None
    _deliveries: dict[datetime, int] = field(default_factory=dict, init=False, repr=False)

    def spec(self) -> ScheduleSpec:
        """The schedule as the Scheduler API holds it now."""
        schedule = self.target.client("scheduler").get_schedule(
            Name=self.schedule_name or self.names.schedule, GroupName=self.names.schedule_group
        )
        return ScheduleSpec.from_api(schedule)

    def slots(
        self, start: datetime, end: datetime, *, anchor: datetime | None = None
    ) -> list[datetime]:
        """The slots the schedule fires in [start, end), inside its start and end dates."""
        spec = self.spec()
        if spec.state != "ENABLED":
            return []
        times = fire_times(
            spec.expression,
            start,
            end,
            timezone=spec.timezone,
            anchor=anchor or spec.start_date or spec.created,
        )
        return [
            t
            for t in times
            if (spec.start_date is None or t >= spec.start_date)
            and (spec.end_date is None or t < spec.end_date)
        ]

    def render(
        self, slot: datetime, *, attempt: int = 1, execution_id: str | None = None
    ) -> dict[str, Any]:
        """The event the Scheduler would deliver for `slot` (context attributes filled in)."""
        spec = self.spec()
        return self._render(spec, slot, attempt, execution_id or self._execution_id(spec, slot))

    def _execution_id(self, spec: ScheduleSpec, slot: datetime) -> str:
        return self._next_delivery(spec, slot)[1]

    def _next_delivery(self, spec: ScheduleSpec, slot: datetime) -> tuple[int, str]:
        # The delivery's number for this slot, and its execution id: unique per attempted
        # delivery (as the Scheduler's are), and the same on every run of a notebook, being
        # derived from the schedule, the slot and that number.
        count = self._deliveries.get(slot, 0) + 1
        self._deliveries[slot] = count
        seed = f"{spec.arn}|{_ts(slot)}|{count}".encode()
        return count, hashlib.sha256(seed).hexdigest()[:16]

    @staticmethod
    def _render(
        spec: ScheduleSpec, slot: datetime, attempt: int, execution_id: str
    ) -> dict[str, Any]:
        # https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-schedule-context-attributes.html
        values = {
            "<aws.scheduler.schedule-arn>": spec.arn,
            "<aws.scheduler.scheduled-time>": _ts(slot),
            "<aws.scheduler.execution-id>": execution_id,
            "<aws.scheduler.attempt-number>": str(attempt),
        }
        text = spec.input_template
        for placeholder, value in values.items():
            text = text.replace(placeholder, value)
        return json.loads(text) if text else {}

    def fire(
        self,
        slot: datetime,
        *,
        delay_seconds: float = 0,
        copies: int = 1,
        concurrent: bool = False,
    ) -> list[Delivery]:
        """Deliver `slot`'s event `copies` times, `delay_seconds` after the slot.

        `copies > 1` is the Scheduler's at-least-once delivery; `concurrent=True` makes the
        copies arrive at once (racing for the lock) instead of one after another. An event
        older than the retry policy's MaximumEventAgeInSeconds goes to the schedule's
        dead-letter queue instead of the function, as the Scheduler does.
        """
        spec = self.spec()
        if spec.target_arn != self.target.arn("lambda", f"function:{self.names.function}"):
            raise ConfigError(
                f"schedule {spec.name} targets {spec.target_arn}, not function "
                f"{self.names.function}: redeploy the schedule (deploy.ensure_schedule)"
            )
        if copies < 1:
            raise ConfigError("copies must be at least 1")
        slot = _utc(slot)
        delivered_at = slot + timedelta(seconds=delay_seconds)
        # Everything a copy needs is fixed here, before any copy is delivered, so racing
        # copies get the same execution ids and run ids on every run.
        jobs = []
        for _ in range(copies):
            count, execution_id = self._next_delivery(spec, slot)
            run_id = None if self.run_ids is None else self.run_ids(slot, count)
            jobs.append((self._render(spec, slot, 1, execution_id), delivered_at, run_id))
        max_age = spec.retry_policy.get("MaximumEventAgeInSeconds", 86400)
        if delay_seconds > max_age:
            return [self._dead_letter(spec, slot, event, when) for event, when, _ in jobs]

        def deliver(event: dict[str, Any], when: datetime, run_id: str | None) -> Delivery:
            options: dict[str, Any] = {}
            if self.runner.simulates_time:
                options = {"now": when, "run_id": run_id}
            result = self.runner.invoke_async(event, **options)
            return Delivery(slot, when, 1, event["execution_id"], event, result)

        if concurrent and copies > 1:
            results: list[Delivery | None] = [None] * copies
            threads = [
                threading.Thread(target=lambda i=i: results.__setitem__(i, deliver(*jobs[i])))
                for i in range(copies)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            return [r for r in results if r is not None]
        return [deliver(*job) for job in jobs]

    def _dead_letter(
        self, spec: ScheduleSpec, slot: datetime, event: dict[str, Any], when: datetime
    ) -> Delivery:
        if spec.dead_letter_arn:
            _send_to_queue(self.target, spec.dead_letter_arn, event)
        return Delivery(
            slot, when, 1, event.get("execution_id", ""), event, None, spec.dead_letter_arn
        )

    def run(
        self,
        start: datetime,
        end: datetime,
        *,
        late: Mapping[datetime, float] | None = None,
        duplicates: Mapping[datetime, int] | None = None,
        before_each: Callable[[datetime], None] | None = None,
    ) -> list[Delivery]:
        """Fire every slot in [start, end) in order: `late` maps a slot to its delay in
        seconds, `duplicates` to extra copies. `before_each(slot)` runs first (a notebook
        sets a drill there)."""
        late = {_utc(k): v for k, v in (late or {}).items()}
        duplicates = {_utc(k): v for k, v in (duplicates or {}).items()}
        deliveries = []
        for slot in self.slots(start, end):
            if before_each is not None:
                before_each(slot)
            deliveries.extend(
                self.fire(slot, delay_seconds=late.get(slot, 0), copies=1 + duplicates.get(slot, 0))
            )
        return deliveries


def wait_for_state(
    target: Target,
    names: Names,
    predicate: Callable[[JobState], bool],
    *,
    timeout: float = 600,
    every: float = 10,
    progress: Callable[[float, JobState | None], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> JobState:
    """Poll the job's control item until `predicate(state)` holds (real AWS: the schedule
    fires when it fires). `progress(elapsed_seconds, state)` is called after each read, so a
    notebook can show a progress bar. TimeoutError names what was awaited and the last state.
    """
    from jobcontroller.errors import ControlItemMissing, TableMissing
    from jobcontroller.store import ControlStore

    store = ControlStore(names.table, client=target.client("dynamodb"))
    started = monotonic()
    state: JobState | None = None
    while True:
        try:
            state = store.read(names.job)
        except (ControlItemMissing, TableMissing):
            state = None
        elapsed = monotonic() - started
        if progress is not None:
            progress(elapsed, state)
        if state is not None and predicate(state):
            return state
        if elapsed >= timeout:
            last = (
                "no control item"
                if state is None
                else (f"status {state.status.value}, run_count {state.run_count}")
            )
            raise TimeoutError(
                f"job {names.job!r} in {names.table!r} did not reach the awaited state within "
                f"{timeout:g} s (last seen: {last}); check the schedule fired (its "
                f"dead-letter queue {names.schedule_dlq}) and the function's log group "
                f"{names.log_group}, then wait again"
            )
        sleep(min(every, max(timeout - elapsed, 0)))
