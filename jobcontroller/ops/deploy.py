"""Deploy one participant's stack: table, roles, log group, queues, function, schedule.

Every step is idempotent and callable on its own (notebook 05 runs them one by one); `deploy`
runs them all in order. This module is also the one door to the deploy story: it re-exports
what a caller of the steps needs from the modules beside it, so `from jobcontroller.ops import
deploy` reaches all of it:
- `naming`: the prefix rules, `Names`, `Target`, `connect` (the real-AWS opt-in);
- `iam`: the roles' policy documents;
- `schedule`: `ScheduleSettings`, the recurring and the one-off schedule;
- `queues`: the two dead-letter queues;
- `teardown`: `teardown` and the `leftovers` proof.

`infra/template.yaml` declares the same stack for CloudFormation; tests/test_infra.py holds
the two to the same settings, so change both together.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from jobcontroller.clock import Clock, SystemClock
from jobcontroller.errors import ConfigError, TeardownIncomplete
from jobcontroller.handler import JOB_CONFIG_VARIABLES, Settings, environment, settings_from_env
from jobcontroller.model import JobConfig
from jobcontroller.ops.iam import (
    function_role_policy,
    lambda_trust_policy,
    scheduler_role_policy,
    scheduler_trust_policy,
)
from jobcontroller.ops.naming import (
    DEFAULT_JOB,
    REAL_AWS_ENV,
    TAG_KEY,
    Names,
    Target,
    connect,
    error_code,
    ignore_codes,
)
from jobcontroller.ops.packaging import HANDLER, build_zip, inspect_zip
from jobcontroller.ops.queues import Queues, ensure_queues
from jobcontroller.ops.retry import (
    DESTINATION_NOT_PERMITTED,
    ROLE_NOT_ASSUMABLE_BY_LAMBDA,
    UPDATE_IN_PROGRESS,
    until_consistent,
    wait_until,
)
from jobcontroller.ops.schedule import (
    DEFAULT_SCHEDULE,
    ScheduleSettings,
    ensure_schedule,
    schedule_once,
    schedule_request,
    set_schedule_enabled,
)
from jobcontroller.ops.teardown import TeardownReport, leftovers, teardown
from jobcontroller.store import ControlStore

__all__ = [
    # re-exported from naming, iam, schedule and teardown (see the docstring)
    "DEFAULT_JOB",
    "DEFAULT_SCHEDULE",
    "REAL_AWS_ENV",
    "TAG_KEY",
    # this module
    "Deployment",
    "FunctionSettings",
    "Names",
    "Queues",
    "ScheduleSettings",
    "Target",
    "TeardownIncomplete",
    "TeardownReport",
    "async_invoke_config",
    "connect",
    "deploy",
    "ensure_async_config",
    "ensure_function",
    "ensure_function_role",
    "ensure_log_group",
    "ensure_queues",
    "ensure_schedule",
    "ensure_scheduler_role",
    "ensure_table",
    "function_config",
    "function_role_policy",
    "init_job",
    "lambda_trust_policy",
    "leftovers",
    "schedule_once",
    "schedule_request",
    "scheduler_role_policy",
    "scheduler_trust_policy",
    "set_schedule_enabled",
    "teardown",
]


# --- settings ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FunctionSettings:
    """The function's runtime and limits, and the job settings it is deployed with.

    The job's fields (interval to workload_seconds) are written down here unchecked; their
    defaults are JobConfig's and the handler's, and their one check is the handler's own
    reading of the environment (`handler_settings`), which `deploy` runs before it creates
    anything. So a setting the function would refuse at every invocation is refused at deploy
    time instead, with the same message.
    """

    runtime: str = "python3.12"
    timeout_seconds: int = 60
    memory_mb: int = 128
    interval_seconds: int = JobConfig.interval_seconds
    cooldown_slack_seconds: int = JobConfig.cooldown_slack_seconds
    lease_margin_seconds: int = JobConfig.lease_margin_seconds
    run_history_days: int = JobConfig.run_history_days
    workload: str = Settings.workload
    workload_seconds: float = Settings.workload_seconds
    log_retention_days: int = 14
    # Both retry layers are off (rule 8): retries come from state, not from infrastructure.
    async_max_retries: int = 0
    async_max_event_age_seconds: int = 3600

    def __post_init__(self) -> None:
        # The lease is the remaining time minus the margin, so the timeout must leave room
        # for the workload after the margin: otherwise every lease would already be over.
        if self.timeout_seconds <= self.lease_margin_seconds + self.workload_seconds:
            raise ConfigError(
                f"timeout_seconds={self.timeout_seconds} must be more than "
                f"lease_margin_seconds ({self.lease_margin_seconds}) plus workload_seconds "
                f"({self.workload_seconds}): raise the timeout or lower the margin"
            )
        if not 1 <= self.timeout_seconds <= 900:
            raise ConfigError("timeout_seconds must be 1-900 (Lambda's limit is 15 minutes)")

    def environment(self, names: Names) -> dict[str, str]:
        """The function's environment variables (all strings, as Lambda stores them)."""
        return environment(
            table=names.table,
            job=names.job,
            workload=self.workload,
            workload_seconds=self.workload_seconds,
            **{name: getattr(self, name) for name in JOB_CONFIG_VARIABLES},
        )

    def handler_settings(self, names: Names) -> Settings:
        """What the deployed handler will read from its environment.

        Raises the handler's own ConfigError, message and all, if it would refuse it.
        """
        return settings_from_env(self.environment(names))


# --- helpers -----------------------------------------------------------------------------


_POLICY_NAME = "jobcontroller"


def _ensure_role(
    target: Target, name: str, names: Names, trust: dict, policy: dict, description: str
) -> str:
    iam = target.client("iam")
    tags = [{"Key": k, "Value": v} for k, v in names.tags.items()]
    try:
        arn = iam.create_role(
            RoleName=name,
            Path=names.iam_path,
            AssumeRolePolicyDocument=json.dumps(trust),
            Description=description,
            Tags=tags,
        )["Role"]["Arn"]
    except ClientError as exc:
        if error_code(exc) != "EntityAlreadyExists":
            raise
        iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))
        iam.tag_role(RoleName=name, Tags=tags)
        arn = iam.get_role(RoleName=name)["Role"]["Arn"]
    # An inline policy: it lives and dies with the role, and putting it again replaces it.
    iam.put_role_policy(RoleName=name, PolicyName=_POLICY_NAME, PolicyDocument=json.dumps(policy))
    return arn


# --- the steps ---------------------------------------------------------------------------


def ensure_table(target: Target, names: Names) -> str:
    """The control table: PK/SK strings, on demand, TTL on `expires_at`. Returns its ARN."""
    store = ControlStore(names.table, client=target.client("dynamodb"))
    # The store owns the table's schema; this only adds the tags (again, if it existed).
    store.create_table(tags=names.tags)
    arn = target.client("dynamodb").describe_table(TableName=names.table)["Table"]["TableArn"]
    target.client("dynamodb").tag_resource(
        ResourceArn=arn, Tags=[{"Key": k, "Value": v} for k, v in names.tags.items()]
    )
    return arn


def init_job(target: Target, names: Names, *, clock: Clock | None = None) -> bool:
    """Write the job's IDLE control item if it is missing; False if it already existed."""
    store = ControlStore(names.table, client=target.client("dynamodb"))
    return store.init_job(names.job, now=(clock or SystemClock()).now())


def ensure_log_group(target: Target, names: Names, settings: FunctionSettings | None = None):
    """The function's log group, created ahead of Lambda so it has a retention and tags."""
    settings = settings or FunctionSettings()
    logs = target.client("logs")
    if not ignore_codes(
        ["ResourceAlreadyExistsException"],
        lambda: logs.create_log_group(logGroupName=names.log_group, tags=names.tags),
    ):
        logs.tag_resource(
            resourceArn=target.arn("logs", f"log-group:{names.log_group}"), tags=names.tags
        )
    logs.put_retention_policy(
        logGroupName=names.log_group, retentionInDays=settings.log_retention_days
    )
    return target.arn("logs", f"log-group:{names.log_group}")


def ensure_function_role(target: Target, names: Names) -> str:
    """The function's execution role (least privilege, see `function_role_policy`)."""
    policy = function_role_policy(
        names, account=target.account, region=target.region, partition=target.partition
    )
    return _ensure_role(
        target,
        names.function_role,
        names,
        lambda_trust_policy(),
        policy,
        f"jobcontroller function {names.function}",
    )


def ensure_scheduler_role(target: Target, names: Names) -> str:
    """The role EventBridge Scheduler assumes to invoke the function."""
    policy = scheduler_role_policy(
        names, account=target.account, region=target.region, partition=target.partition
    )
    return _ensure_role(
        target,
        names.scheduler_role,
        names,
        scheduler_trust_policy(target.account),
        policy,
        f"jobcontroller schedule {names.schedule}",
    )


def function_config(names: Names, settings: FunctionSettings, role_arn: str) -> dict[str, Any]:
    """The function's configuration, as create_function takes it (without the code).

    Raises the handler's ConfigError if the handler would refuse `settings`.
    """
    settings.handler_settings(names)
    return {
        "FunctionName": names.function,
        "Runtime": settings.runtime,
        "Role": role_arn,
        "Handler": HANDLER,
        "Timeout": settings.timeout_seconds,
        "MemorySize": settings.memory_mb,
        "Environment": {"Variables": settings.environment(names)},
        "Description": f"jobcontroller: job {names.job} (prefix {names.prefix})",
    }


def ensure_function(
    target: Target,
    names: Names,
    *,
    zip_path: str | os.PathLike[str],
    role_arn: str | None = None,
    settings: FunctionSettings | None = None,
    say: Callable[[str], None] | None = None,
) -> str:
    """Create the function from the zip, or bring an existing one up to date. Returns its ARN.

    A role made seconds ago may not yet be assumable by Lambda, and an earlier update may still
    be in progress: both are waited out (`until_consistent`).
    """
    settings = settings or FunctionSettings()
    lam = target.client("lambda")
    role_arn = (
        role_arn or target.client("iam").get_role(RoleName=names.function_role)["Role"]["Arn"]
    )
    config = function_config(names, settings, role_arn)
    report = inspect_zip(zip_path)
    code = Path(zip_path).read_bytes()

    def create() -> str | None:
        try:
            created = lam.create_function(
                **config, Code={"ZipFile": code}, Publish=False, Tags=names.tags
            )
        except ClientError as exc:
            if error_code(exc) == "ResourceConflictException" and "exist" in str(exc):
                return None
            raise
        return str(created["FunctionArn"])

    arn = until_consistent(
        target,
        create,
        waits_for=[ROLE_NOT_ASSUMABLE_BY_LAMBDA],
        what=f"function {names.function}",
        say=say,
    )
    if arn is None:
        arn = _update_function(target, names, config, code, report.code_sha256, say=say)
    wait_until(target, "lambda", "function_active_v2", FunctionName=names.function)
    return arn


def _update_function(
    target: Target,
    names: Names,
    config: dict[str, Any],
    code: bytes,
    sha: str,
    *,
    say: Callable[[str], None] | None = None,
) -> str:
    lam = target.client("lambda")
    name = config["FunctionName"]
    # An earlier update (perhaps of an interrupted deploy) may still be InProgress, and
    # Lambda refuses another meanwhile (ResourceConflictException):
    # https://docs.aws.amazon.com/lambda/latest/dg/functions-states.html
    wait_until(target, "lambda", "function_updated_v2", FunctionName=name)
    current = lam.get_function_configuration(FunctionName=name)
    waits = [UPDATE_IN_PROGRESS, ROLE_NOT_ASSUMABLE_BY_LAMBDA]
    if current.get("CodeSha256") != sha:
        until_consistent(
            target,
            partial(lam.update_function_code, FunctionName=name, ZipFile=code),
            waits_for=waits,
            what=f"function {name} (code)",
            say=say,
        )
        wait_until(target, "lambda", "function_updated_v2", FunctionName=name)
        current = lam.get_function_configuration(FunctionName=name)
    wanted = {k: v for k, v in config.items() if k != "FunctionName"}
    have = {k: current.get(k) for k in wanted}
    if have != wanted:
        until_consistent(
            target,
            partial(lam.update_function_configuration, **config),
            waits_for=waits,
            what=f"function {name} (configuration)",
            say=say,
        )
        wait_until(target, "lambda", "function_updated_v2", FunctionName=name)
    lam.tag_resource(Resource=current["FunctionArn"], Tags=names.tags)
    return str(current["FunctionArn"])


def async_invoke_config(settings: FunctionSettings, failure_queue_arn: str) -> dict[str, Any]:
    """Asynchronous invocations: no Lambda retries, a failure goes to the queue (rule 8)."""
    return {
        "MaximumRetryAttempts": settings.async_max_retries,
        "MaximumEventAgeInSeconds": settings.async_max_event_age_seconds,
        "DestinationConfig": {"OnFailure": {"Destination": failure_queue_arn}},
    }


def ensure_async_config(
    target: Target,
    names: Names,
    *,
    failure_queue_arn: str | None = None,
    settings: FunctionSettings | None = None,
    say: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Set the function's asynchronous invoke configuration (`async_invoke_config`).

    Lambda checks that the function's role may send to the queue, and a policy put seconds
    ago may not have reached that check yet: waited out (`until_consistent`).
    """
    settings = settings or FunctionSettings()
    failure_queue_arn = failure_queue_arn or target.arn("sqs", names.failure_queue)
    config = async_invoke_config(settings, failure_queue_arn)
    # put_* replaces the whole configuration, so running it again is harmless. moto appends
    # instead and keeps answering with the first one, so on the embedded backend the old
    # configuration is deleted first (real Lambda needs no such step).
    lam = target.client("lambda")
    if target.embedded:
        with contextlib.suppress(lam.exceptions.ResourceNotFoundException):
            lam.delete_function_event_invoke_config(FunctionName=names.function)
    until_consistent(
        target,
        partial(lam.put_function_event_invoke_config, FunctionName=names.function, **config),
        waits_for=[DESTINATION_NOT_PERMITTED],
        what=f"function {names.function} (on-failure destination)",
        say=say,
    )
    return config


# --- everything --------------------------------------------------------------------------


@dataclass(frozen=True)
class Deployment:
    """What `deploy` made: the ARNs a notebook shows and the zip it uploaded."""

    names: Names
    table_arn: str
    log_group_arn: str
    failure_queue_arn: str
    schedule_dlq_arn: str
    function_role_arn: str
    function_arn: str
    scheduler_role_arn: str
    schedule_arn: str
    code_sha256: str
    zip_bytes: int


def deploy(
    target: Target,
    names: Names,
    *,
    zip_path: str | os.PathLike[str] | None = None,
    function: FunctionSettings | None = None,
    schedule: ScheduleSettings | None = None,
    clock: Clock | None = None,
    say: Callable[[str], None] | None = None,
) -> Deployment:
    """Run every step in order; running it again brings the stack back to this definition."""
    function = function or FunctionSettings()
    # The handler's own check, before anything exists: a function it would refuse at every
    # invocation is not deployed.
    function.handler_settings(names)
    say = say or (lambda _message: None)
    with tempfile.TemporaryDirectory(prefix="jobcontroller-zip-") as scratch:
        if zip_path is None:
            zip_path = build_zip(out_dir=scratch)
        report = inspect_zip(zip_path)
        say(f"zip: {report}")
        table_arn = ensure_table(target, names)
        say(f"table: {names.table}")
        init_job(target, names, clock=clock)
        say(f"control item: JOB#{names.job}")
        log_group_arn = ensure_log_group(target, names, function)
        say(f"log group: {names.log_group} ({function.log_retention_days} days)")
        queues = ensure_queues(target, names, say=say)
        say(f"queues: {names.failure_queue}, {names.schedule_dlq}")
        fn_role = ensure_function_role(target, names)
        say(f"function role: {names.function_role}")
        fn_arn = ensure_function(
            target, names, zip_path=zip_path, role_arn=fn_role, settings=function, say=say
        )
        say(f"function: {names.function} ({function.runtime}, {function.timeout_seconds} s)")
        ensure_async_config(
            target, names, failure_queue_arn=queues.failure_queue_arn, settings=function, say=say
        )
        say("async invoke config: 0 retries, failures to the queue")
        sched_role = ensure_scheduler_role(target, names)
        say(f"scheduler role: {names.scheduler_role}")
        schedule_arn = ensure_schedule(
            target, names, settings=schedule, role_arn=sched_role, say=say
        )
        say(f"schedule: {names.schedule_group}/{names.schedule}")
    return Deployment(
        names=names,
        table_arn=table_arn,
        log_group_arn=log_group_arn,
        failure_queue_arn=queues.failure_queue_arn,
        schedule_dlq_arn=queues.schedule_dlq_arn,
        function_role_arn=fn_role,
        function_arn=fn_arn,
        scheduler_role_arn=sched_role,
        schedule_arn=schedule_arn,
        code_sha256=report.code_sha256,
        zip_bytes=report.size_bytes,
    )
