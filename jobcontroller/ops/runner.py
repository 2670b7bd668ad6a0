"""Run the deployed function's code on this machine, as Lambda would: moto cannot.

moto stores a Lambda function but cannot run it without Docker. So, on the embedded backend,
`LocalLambdaRunner` reads the function's configuration back from the Lambda API (handler,
environment, timeout, CodeSha256), checks that the zip it holds is the code Lambda has, and
runs it in a Python process of its own (ops.bootstrap): `sys.path` is the
extracted zip and then boto3 and its dependencies only (what the Lambda runtime provides),
the environment is the function's plus credentials and the endpoint, the context's remaining
time counts down from the configured timeout, and the process is killed at the timeout. The
process imports the handler once and serves later invocations while it is idle (a warm
execution environment, ops.environments), as Lambda does.

On real AWS, `runner_for` returns a `RemoteLambdaRunner` (ops.remote, Lambda's Invoke API).
The schedule that fires the function is driven by ops.driver. Nothing here is in the zip.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import io
import json
import os
import re
import sys
import tempfile
import threading
import uuid
import zipfile
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from jobcontroller.errors import ConfigError
from jobcontroller.ops import bootstrap
from jobcontroller.ops.deploy import Names, Target
from jobcontroller.ops.environments import EnvironmentPool, Served, Spec
from jobcontroller.ops.invocation import (
    AsyncResult,
    AwsCall,
    FunctionConfig,
    FunctionRunner,
    Invocation,
    as_utc,
)
from jobcontroller.ops.packaging import build_zip
from jobcontroller.ops.remote import RemoteLambdaRunner

__all__ = ["BOOTSTRAP", "LocalLambdaRunner", "runner_for", "runtime_site", "send_to_queue"]

# The child process's program, run by path from this package (see its docstring for why).
BOOTSTRAP = Path(bootstrap.__file__)

# The distributions the Lambda Python runtime provides; their dependencies come along.
# https://docs.aws.amazon.com/lambda/latest/dg/lambda-python.html
_RUNTIME_DISTRIBUTIONS = ("boto3",)


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
        base = Path(str(dist.locate_file("")))
        for name in _top_level_names(dist):
            link = dest / name
            if not link.exists():
                link.symlink_to(base / name)
    return dest


def _new_request_id() -> str:
    return str(uuid.uuid4())


class LocalLambdaRunner:
    """Run the deployed function's code in Lambda-like execution environments (embedded backend).

    `code` is the deployment zip (a path or bytes); by default the runner builds it from
    this package. Either way it must be the code Lambda holds: moto does not serve the code
    back (get_function's Code.Location names an S3 host outside the embedded backend), so
    the runner compares the zip's sha256 with the function's CodeSha256 instead, and refuses
    a mismatch. `python` is the interpreter (e.g. a python3.12 to match the runtime).
    With `record_calls=True` each Invocation lists the AWS calls the handler made.

    Each invocation runs in an execution environment (ops.environments): a child process that
    imported the handler once and is reused while idle (warm), so module-level state lives on
    between invocations as on Lambda; overlapping invocations get one each; a crash, a timeout
    or a changed configuration or code retires them. `warm=False` starts a fresh process for
    every invocation. The timeout counts from when the request reaches the environment; a
    cold start's init phase has its own budget (ops.environments.INIT_LIMIT_SECONDS), as on
    Lambda.
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
        warm: bool = True,
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
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
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
        self.code_dir = self.work_dir / f"code-{digest.hex()[:16]}"
        self._site = self.work_dir / "runtime-site"
        # The environments' working directories (one each, as Lambda's /tmp; the code stays
        # read-only) and the recorded calls.
        self._cwd = self.work_dir / "tmp"
        self._cwd.mkdir(exist_ok=True)
        self._lock = threading.Lock()
        self._pool = EnvironmentPool(self.work_dir / "environments", reuse=warm)

    def close(self) -> None:
        """Stop the execution environments and delete the runner's scratch directory."""
        self._pool.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> LocalLambdaRunner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def now(self) -> datetime:
        """The function's clock when `now` is not given: this machine's (or the injected one)."""
        return self._clock()

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
            if not self.code_dir.exists():
                staging = Path(tempfile.mkdtemp(dir=self.work_dir, prefix=".code-"))
                with zipfile.ZipFile(io.BytesIO(self._code)) as archive:
                    archive.extractall(staging)
                staging.rename(self.code_dir)
            if not self._site.exists():
                runtime_site(self._site)

    # -- invoking -------------------------------------------------------------------------

    def _spec(self, config: FunctionConfig) -> Spec:
        """What an execution environment for `config` is started with (its pool key)."""
        env = _lambda_environment(self.target, config, self.code_dir, self.work_dir)
        init = {
            "path": [str(self.code_dir), str(self._site)],
            "handler": config.handler,
            "record": self.record_calls,
        }
        return Spec(
            # -I -S -B: isolated, no site-packages, no bytecode written (ops.bootstrap says why)
            command=(self.python, "-I", "-S", "-B", str(BOOTSTRAP)),
            env=tuple(sorted(env.items())),
            cwd=str(self._cwd),
            init=json.dumps(init),
            config=config,
        )

    def _request(
        self, event: Any, config: FunctionConfig, now: datetime | None, run_id: str | None
    ) -> tuple[dict[str, Any], Path | None]:
        request_id = self.request_ids()
        record = None
        if self.record_calls:
            record = self._cwd / f"calls-{uuid.uuid4().hex}.jsonl"
        request = {
            "event": event,
            "request_id": request_id,
            "function": {
                "name": config.name,
                "arn": config.arn,
                "memory_mb": config.memory_mb,
                "timeout_seconds": config.timeout_seconds,
            },
            "record": None if record is None else str(record),
            "now": None if now is None else as_utc(now).isoformat(),
            "run_id": run_id,
        }
        return request, record

    def invoke(
        self, event: Any, *, now: datetime | None = None, run_id: str | None = None
    ) -> Invocation:
        """Run the handler once on `event` and return how it ended (RequestResponse).

        `now` starts the child's clock at that time (so a notebook can replay January at
        its own pace; the workload's sleeps then pass without waiting); `run_id` fixes the
        run id the controller uses (default: random). Both are set through the handler
        module's injection points (`jobcontroller.handler.clock`, `.new_run_id`), for this
        invocation only. An idle execution environment serves it if there is one (warm).
        """
        return self.invoke_together([event], now=now, run_ids=[run_id])[0]

    def invoke_together(
        self,
        events: Sequence[Any],
        *,
        now: datetime | None = None,
        run_ids: Sequence[str | None] | None = None,
    ) -> list[Invocation]:
        """Invocations that arrive at the same moment, one per event: each runs in its own
        execution environment (idle ones first, then new ones), as concurrent requests do on
        Lambda. Their results, in the order of `events`."""
        ids = list(run_ids) if run_ids is not None else [None] * len(events)
        if len(ids) != len(events):
            raise ConfigError(f"{len(events)} events but {len(ids)} run ids: give one per event")
        config = self.configuration()
        self._prepare()
        spec = self._spec(config)
        requests = [self._request(e, config, now, i) for e, i in zip(events, ids, strict=True)]
        served = self._pool.invoke_together(
            spec, [r for r, _ in requests], timeout=config.timeout_seconds
        )
        return [
            _invocation(request["request_id"], config, answer, _read_calls(record))
            for (request, record), answer in zip(requests, served, strict=True)
        ]

    def environments(self) -> list[str]:
        """The execution environments waiting for an invocation (warm), oldest first."""
        return self._pool.idle()

    def invoke_async(
        self, event: Any, *, now: datetime | None = None, run_id: str | None = None
    ) -> AsyncResult:
        """Invoke as the Scheduler does (InvocationType=Event), with Lambda's async handling:
        retry up to the function's MaximumRetryAttempts, then send a record to its
        on-failure destination. Both are read back from the function's event invoke config.

        In a replay (`now` given) the retries run on the replay's clock, one minute and then
        two minutes after the attempt before, without waiting; a fixed `run_id` gives the
        retries fixed ids too (`<run_id>-retry1`, `-retry2`), so a notebook prints the same.
        """
        config = self.configuration()
        invoke_config = _event_invoke_config(self.target, config.name)
        retries = invoke_config.get("MaximumRetryAttempts", 2)
        attempts = [self.invoke(event, now=now, run_id=run_id)]
        started = [] if now is None else [as_utc(now)]
        # Lambda waits about a minute before the first retry and two more before the second.
        # https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html
        for attempt in range(1, retries + 1):
            if attempts[-1].ok:
                break
            later = None if now is None else started[-1] + timedelta(minutes=attempt)
            retry_id = None if run_id is None else f"{run_id}-retry{attempt}"
            attempts.append(self.invoke(event, now=later, run_id=retry_id))
            if later is not None:
                started.append(later)
        if attempts[-1].ok:
            return AsyncResult(tuple(attempts), started=tuple(started))
        destination = (
            invoke_config.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        )
        if destination:
            when = started[-1] if started else self._clock()
            record = _failure_record(config, event, attempts, when)
            send_to_queue(self.target, destination, record)
        return AsyncResult(tuple(attempts), destination, tuple(started))


def _lambda_environment(
    target: Target, config: FunctionConfig, code_dir: Path, work_dir: Path
) -> dict[str, str]:
    """The child's whole environment: the function's variables, Lambda's, and the backend's."""
    credentials = target.session.get_credentials()
    if credentials is None:
        raise ConfigError("the boto3 session has no credentials to give the function")
    frozen = credentials.get_frozen_credentials()
    endpoint = target.client("dynamodb").meta.endpoint_url
    empty = work_dir / "no-aws-config"
    env = dict(config.environment)
    # What Lambda sets for every function (reserved: a function cannot override them).
    # https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime
    env.update(
        {
            "AWS_REGION": target.region,
            "AWS_DEFAULT_REGION": target.region,
            "AWS_LAMBDA_FUNCTION_NAME": config.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{config.name}",
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{config.runtime}",
            "LAMBDA_TASK_ROOT": str(code_dir),
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


def _invocation(
    request_id: str, config: FunctionConfig, served: Served, calls: tuple[AwsCall, ...]
) -> Invocation:
    """How the invocation ended, as Lambda's Invoke API would report it."""
    result = None
    error: dict[str, Any] | None
    if served.status == "timeout":
        error = {
            "errorType": "Sandbox.Timedout",
            "errorMessage": f"Task timed out after {config.timeout_seconds:.2f} seconds",
        }
    elif served.status == "crashed":
        error = {
            "errorType": "Runtime.ExitError",
            "errorMessage": f"Runtime exited with error: exit status {served.exit_code}",
        }
    else:
        answer = served.answer or {}
        result, error = answer.get("result"), answer.get("error")
    return Invocation(
        request_id,
        served.status,
        result=result,
        error=error,
        duration_ms=served.duration_ms,
        log=served.log,
        calls=calls,
        cold=served.cold,
        init_duration_ms=served.init_ms,
        environment=served.environment,
    )


def _read_calls(path: Path | None) -> tuple[AwsCall, ...]:
    if path is None or not path.exists():
        return ()
    calls = []
    for line in path.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        calls.append(AwsCall(entry["service"], entry["operation"], entry["params"]))
    path.unlink()
    return tuple(calls)


def _event_invoke_config(target: Target, function_name: str) -> dict[str, Any]:
    from botocore.exceptions import ClientError

    try:
        config: dict[str, Any] = target.client("lambda").get_function_event_invoke_config(
            FunctionName=function_name
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
        return {}  # Lambda's defaults: two retries, no destination
    return config


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


def send_to_queue(target: Target, queue_arn: str, body: dict[str, Any]) -> None:
    """Send `body` as JSON to the SQS queue `queue_arn` (a dead-letter or failure queue)."""
    # arn:aws:sqs:region:account:name
    *_, account, name = queue_arn.split(":")
    sqs = target.client("sqs")
    url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body, default=str))


def runner_for(target: Target, names: Names, **options: Any) -> FunctionRunner:
    """A local runner on the embedded backend, Lambda's Invoke API on real AWS."""
    if target.embedded:
        return LocalLambdaRunner(target, names.function, **options)
    return RemoteLambdaRunner(target, names.function)
