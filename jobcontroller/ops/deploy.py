"""Deploy, and tear down, one participant's stack: table, roles, log group, queues, function,
schedule. Every step is idempotent and callable on its own (notebook 05 runs them one by one).

Everything is named from one prefix (`Names`) and tagged `jobcontroller:prefix=<prefix>`, so
`leftovers(target, prefix)` can prove a teardown complete. No step runs without a `Target`,
and `connect` only returns one for real AWS after the explicit opt-in (the environment
variable JOBCONTROLLER_REAL_AWS=1 *and* the account id passed back as `confirm`), having shown
the account and region first.

`infra/template.yaml` declares the same stack for CloudFormation; tests/test_infra.py holds
the two to the same settings, so change both together.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from jobcontroller.clock import Clock, SystemClock
from jobcontroller.embedded.server import is_loopback
from jobcontroller.errors import (
    ConfigError,
    JobControllerError,
    RealAWSNotConfirmed,
    TeardownIncomplete,
)
from jobcontroller.events import schedule_input
from jobcontroller.handler import JOB_CONFIG_VARIABLES, Settings, environment, settings_from_env
from jobcontroller.model import JobConfig, job_key
from jobcontroller.ops.packaging import HANDLER, build_zip, inspect_zip
from jobcontroller.store import ControlStore

__all__ = [
    "DEFAULT_JOB",
    "DEFAULT_SCHEDULE",
    "REAL_AWS_ENV",
    "TAG_KEY",
    "Deployment",
    "FunctionSettings",
    "Names",
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
    "teardown",
]

REAL_AWS_ENV = "JOBCONTROLLER_REAL_AWS"
TAG_KEY = "jobcontroller:prefix"
DEFAULT_JOB = "hourly_processor"
# On the hour, every hour, in UTC: the slots are predictable (09:00, 10:00, ...), where
# `rate(1 hour)` would fire relative to whenever the schedule was created.
DEFAULT_SCHEDULE = "cron(0 * * * ? *)"

# A prefix is a lowercase letter and up to 15 lowercase letters or digits. No hyphen, so
# "<prefix>-" can never be the start of another participant's names (with hyphens allowed,
# "ann-" would also match "ann-b-...") and listing by name prefix finds only our resources.
_PREFIX = re.compile(r"^[a-z][a-z0-9]{0,15}$")


# --- names and settings ------------------------------------------------------------------


@dataclass(frozen=True)
class Names:
    """Every resource name of one participant's job, derived from `prefix` and `job`."""

    prefix: str
    job: str = DEFAULT_JOB

    def __post_init__(self) -> None:
        if not isinstance(self.prefix, str) or not _PREFIX.match(self.prefix):
            raise ConfigError(
                f"prefix {self.prefix!r} is not usable: give a lowercase letter followed by up "
                "to 15 lowercase letters or digits, e.g. 'ann' or 'p07' (it starts every "
                "resource name, so it must not be empty and must not contain '-')"
            )
        try:
            job_key(self.job)
        except JobControllerError as exc:
            raise ConfigError(f"job name: {exc}") from None
        too_long = [
            (what, name, limit)
            for what, name, limit in (
                ("function", self.function, 64),
                ("function role", self.function_role, 64),
                ("scheduler role", self.scheduler_role, 64),
                ("schedule", self.schedule, 64),
                ("queue", self.schedule_dlq, 80),
            )
            if len(name) > limit
        ]
        if too_long:
            what, name, limit = too_long[0]
            raise ConfigError(
                f"the {what} name {name!r} would be longer than AWS allows ({limit}): "
                "use a shorter prefix or job name"
            )

    @property
    def tags(self) -> dict[str, str]:
        return {TAG_KEY: self.prefix}

    @property
    def table(self) -> str:
        return f"{self.prefix}-job_control"

    @property
    def function(self) -> str:
        return f"{self.prefix}-{self.job}"

    @property
    def log_group(self) -> str:
        return f"/aws/lambda/{self.function}"

    @property
    def iam_path(self) -> str:
        # Roles live under their own path, so `list_roles(PathPrefix=...)` finds exactly ours.
        return f"/jobcontroller/{self.prefix}/"

    @property
    def function_role(self) -> str:
        return f"{self.prefix}-{self.job}-fn"

    @property
    def scheduler_role(self) -> str:
        return f"{self.prefix}-{self.job}-scheduler"

    @property
    def failure_queue(self) -> str:
        """Where Lambda sends a failed asynchronous invocation (its on-failure destination)."""
        return f"{self.prefix}-{self.job}-failures"

    @property
    def schedule_dlq(self) -> str:
        """Where the Scheduler sends an event it could not deliver to the function."""
        return f"{self.prefix}-{self.job}-schedule-dlq"

    @property
    def schedule_group(self) -> str:
        # Schedules cannot carry tags; schedule groups can, so ours live in a tagged group.
        # https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-schedule-group.html
        return f"{self.prefix}-jobcontroller"

    @property
    def schedule(self) -> str:
        return f"{self.prefix}-{self.job}"

    def once_schedule(self, when: datetime) -> str:
        return f"{self.schedule}-once-{when.astimezone(UTC):%Y%m%dT%H%M%S}"


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


@dataclass(frozen=True)
class ScheduleSettings:
    """The schedule: when it fires and what it does when a delivery fails."""

    expression: str = DEFAULT_SCHEDULE
    timezone: str = "UTC"
    # Retries off, failures to the dead-letter queue (rule 8). An event older than one
    # interval is dropped to the queue rather than delivered on top of the next slot.
    max_retries: int = 0
    max_event_age_seconds: int = 3600
    enabled: bool = True


# --- where we deploy ---------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A checked place to deploy: a boto3 session, its account and region, embedded or real.

    Build it with `connect`, which applies the real-AWS opt-in.
    """

    session: boto3.session.Session
    account: str
    region: str
    embedded: bool
    partition: str = "aws"
    _clients: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service, region_name=self.region)
        return self._clients[service]

    def arn(self, service: str, resource: str, *, region: bool = True) -> str:
        where = self.region if region else ""
        return f"arn:{self.partition}:{service}:{where}:{self.account}:{resource}"

    def describe(self) -> str:
        where = "embedded backend (moto)" if self.embedded else "REAL AWS"
        return f"{where}: account {self.account}, region {self.region}"


def connect(
    session: boto3.session.Session | None = None,
    *,
    confirm: str | None = None,
    env: Mapping[str, str] | None = None,
    say: Callable[[str], None] | None = print,
) -> Target:
    """Check where `session` points and return a Target; real AWS needs the explicit opt-in.

    The embedded backend (an endpoint on loopback) needs nothing. Real AWS needs
    JOBCONTROLLER_REAL_AWS=1 in the environment and `confirm` equal to the account id,
    which this function shows (with the region) before it returns, so nothing is changed
    in an account nobody looked at.
    """
    session = session or boto3.session.Session()
    env = os.environ if env is None else env
    region = session.region_name
    if not region:
        raise ConfigError(
            "no AWS region is configured: set AWS_DEFAULT_REGION (e.g. eu-west-1) or pass a "
            "boto3 Session with region_name"
        )
    sts = session.client("sts", region_name=region)
    embedded = is_loopback(sts.meta.endpoint_url)
    if not embedded and env.get(REAL_AWS_ENV) != "1":
        raise RealAWSNotConfirmed(
            f"this would use real AWS (region {region}), and {REAL_AWS_ENV} is not set: "
            f"export {REAL_AWS_ENV}=1 to opt in, or start the embedded backend "
            "(jobcontroller.embedded.server.start_embedded()) to stay on this machine"
        )
    identity = sts.get_caller_identity()
    account = identity["Account"]
    partition = session.get_partition_for_region(region)
    target = Target(session, account, region, embedded, partition)
    if say is not None:
        say(f"Target: {target.describe()}" + ("" if embedded else f" as {identity['Arn']}"))
    if not embedded and confirm != account:
        raise RealAWSNotConfirmed(
            f"this would change resources in AWS account {account}, region {region}; "
            f"if that is right, pass confirm={account!r} (CLI: --confirm-account {account})"
        )
    return target


# --- policies (pure: the parity and IAM tests read them) ---------------------------------


def _statement(sid: str, actions: list[str], resources: list[str], **extra: Any) -> dict:
    return {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources, **extra}


def lambda_trust_policy() -> dict[str, Any]:
    """Who may assume the function's role: the Lambda service."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }


def scheduler_trust_policy(account: str) -> dict[str, Any]:
    """Who may assume the scheduler's role: EventBridge Scheduler, for this account only.

    The SourceAccount condition stops another account's schedule from using the role
    (the confused-deputy case): https://docs.aws.amazon.com/scheduler/latest/UserGuide/cross-service-confused-deputy-prevention.html
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "scheduler.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": account}},
            }
        ],
    }


# The DynamoDB actions the handler performs (docs/architecture.md). TransactWriteItems has
# no IAM action of its own: each item in it is authorised as its UpdateItem or PutItem.
# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html
FUNCTION_DYNAMODB_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem")
FUNCTION_LOG_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents")


def function_role_policy(names: Names, *, account: str, region: str, partition: str = "aws"):
    """The function's only permissions: its job's items in its table, its log group, its
    failure queue."""
    table_arn = f"arn:{partition}:dynamodb:{region}:{account}:table/{names.table}"
    log_group_arn = f"arn:{partition}:logs:{region}:{account}:log-group:{names.log_group}"
    queue_arn = f"arn:{partition}:sqs:{region}:{account}:{names.failure_queue}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            _statement(
                "OwnJobItemsOnly",
                list(FUNCTION_DYNAMODB_ACTIONS),
                [table_arn],
                # Every key the function touches must have this partition key, so a bug (or
                # an attacker with the function's credentials) cannot touch another job.
                # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/specifying-conditions.html
                Condition={
                    "ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [f"JOB#{names.job}"]}
                },
            ),
            # Written by the Lambda runtime, not the handler. Stream names are chosen by
            # Lambda at run time, so this is the one wildcard, and only inside our own group.
            _statement("OwnLogGroup", list(FUNCTION_LOG_ACTIONS), [f"{log_group_arn}:*"]),
            # Lambda delivers a failed asynchronous invocation to the on-failure destination
            # with the function's own role.
            _statement("AsyncFailureDestination", ["sqs:SendMessage"], [queue_arn]),
        ],
    }


def scheduler_role_policy(names: Names, *, account: str, region: str, partition: str = "aws"):
    """The scheduler's only permissions: invoke this function, dead-letter to its queue."""
    function_arn = f"arn:{partition}:lambda:{region}:{account}:function:{names.function}"
    dlq_arn = f"arn:{partition}:sqs:{region}:{account}:{names.schedule_dlq}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            _statement("InvokeThisFunctionOnly", ["lambda:InvokeFunction"], [function_arn]),
            _statement("DeadLetterToOwnQueue", ["sqs:SendMessage"], [dlq_arn]),
        ],
    }


# --- helpers -----------------------------------------------------------------------------


def _code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def _ignore(codes: Iterable[str], call: Callable[[], Any]) -> bool:
    """Run `call`; True if it ran, False if it failed with one of `codes` (already done)."""
    try:
        call()
    except ClientError as exc:
        if _code(exc) in set(codes):
            return False
        raise
    return True


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
        if _code(exc) != "EntityAlreadyExists":
            raise
        iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))
        iam.tag_role(RoleName=name, Tags=tags)
        arn = iam.get_role(RoleName=name)["Role"]["Arn"]
    # An inline policy: it lives and dies with the role, and putting it again replaces it.
    iam.put_role_policy(RoleName=name, PolicyName=_POLICY_NAME, PolicyDocument=json.dumps(policy))
    return arn


def _queue_arn(target: Target, url: str) -> str:
    attributes = target.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["QueueArn"]
    )
    return attributes["Attributes"]["QueueArn"]


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
    if not _ignore(
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


@dataclass(frozen=True)
class Queues:
    """The two dead-letter queues' ARNs."""

    failure_queue_arn: str
    schedule_dlq_arn: str


def ensure_queues(
    target: Target, names: Names, *, sleep: Callable[[float], None] = time.sleep
) -> Queues:
    """The function's on-failure queue and the schedule's dead-letter queue."""
    sqs = target.client("sqs")
    arns = []
    for queue in (names.failure_queue, names.schedule_dlq):
        for attempt in range(8):
            try:
                url = sqs.create_queue(
                    QueueName=queue,
                    # Keep failed events the longest SQS allows (14 days), to inspect them.
                    Attributes={"MessageRetentionPeriod": "1209600"},
                    tags=names.tags,
                )["QueueUrl"]
                break
            except ClientError as exc:
                # SQS refuses a name for 60 s after a queue of that name was deleted.
                if _code(exc) != "AWS.SimpleQueueService.QueueDeletedRecently" or attempt == 7:
                    raise
                sleep(10)
        sqs.tag_queue(QueueUrl=url, Tags=names.tags)
        arns.append(_queue_arn(target, url))
    return Queues(*arns)


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
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Create the function from the zip, or bring an existing one up to date. Returns its ARN."""
    settings = settings or FunctionSettings()
    lam = target.client("lambda")
    role_arn = (
        role_arn or target.client("iam").get_role(RoleName=names.function_role)["Role"]["Arn"]
    )
    config = function_config(names, settings, role_arn)
    report = inspect_zip(zip_path)
    code = Path(zip_path).read_bytes()
    for attempt in range(10):
        try:
            arn = lam.create_function(
                **config, Code={"ZipFile": code}, Publish=False, Tags=names.tags
            )["FunctionArn"]
            break
        except ClientError as exc:
            if _code(exc) == "ResourceConflictException":
                arn = _update_function(target, names, config, code, report.code_sha256)
                break
            # A new role takes a few seconds to reach Lambda (IAM is eventually consistent).
            if (
                _code(exc) == "InvalidParameterValueException"
                and "assumed" in str(exc)
                and attempt < 9
            ):
                sleep(3)
                continue
            raise
    lam.get_waiter("function_active_v2").wait(FunctionName=names.function)
    return arn


def _update_function(
    target: Target, names: Names, config: dict[str, Any], code: bytes, sha: str
) -> str:
    lam = target.client("lambda")
    name = config["FunctionName"]
    current = lam.get_function_configuration(FunctionName=name)
    if current.get("CodeSha256") != sha:
        lam.update_function_code(FunctionName=name, ZipFile=code)
        lam.get_waiter("function_updated_v2").wait(FunctionName=name)
        current = lam.get_function_configuration(FunctionName=name)
    wanted = {k: v for k, v in config.items() if k != "FunctionName"}
    have = {k: current.get(k) for k in wanted}
    if have != wanted:
        lam.update_function_configuration(**config)
        lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    lam.tag_resource(Resource=current["FunctionArn"], Tags=names.tags)
    return current["FunctionArn"]


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
) -> dict[str, Any]:
    """Set the function's asynchronous invoke configuration (`async_invoke_config`)."""
    settings = settings or FunctionSettings()
    failure_queue_arn = failure_queue_arn or target.arn("sqs", names.failure_queue)
    config = async_invoke_config(settings, failure_queue_arn)
    # put_* replaces the whole configuration, so running it again is harmless.
    target.client("lambda").put_function_event_invoke_config(FunctionName=names.function, **config)
    return config


def _ensure_schedule_group(target: Target, names: Names) -> str:
    scheduler = target.client("scheduler")
    tags = [{"Key": k, "Value": v} for k, v in names.tags.items()]
    # Look before creating: moto's create_schedule_group silently replaces an existing group
    # (and so drops its schedules) where AWS answers ConflictException.
    arn = _schedule_group_arn(scheduler, names.schedule_group)
    if arn is None:
        try:
            return scheduler.create_schedule_group(Name=names.schedule_group, Tags=tags)[
                "ScheduleGroupArn"
            ]
        except ClientError as exc:
            if _code(exc) != "ConflictException":
                raise
            arn = scheduler.get_schedule_group(Name=names.schedule_group)["Arn"]
    scheduler.tag_resource(ResourceArn=arn, Tags=tags)
    return arn


def _schedule_group_arn(scheduler: Any, name: str) -> str | None:
    try:
        return scheduler.get_schedule_group(Name=name)["Arn"]
    except ClientError as exc:
        if _code(exc) != "ResourceNotFoundException":
            raise
        return None


def _scheduler_role_arn(target: Target, names: Names, role_arn: str | None) -> str:
    if role_arn:
        return role_arn
    return target.client("iam").get_role(RoleName=names.scheduler_role)["Role"]["Arn"]


def schedule_request(
    names: Names,
    settings: ScheduleSettings,
    *,
    function_arn: str,
    role_arn: str,
    dead_letter_arn: str,
) -> dict[str, Any]:
    """The recurring schedule, as create_schedule takes it."""
    return {
        "Name": names.schedule,
        "GroupName": names.schedule_group,
        "ScheduleExpression": settings.expression,
        "ScheduleExpressionTimezone": settings.timezone,
        # OFF: deliver at the slot, not somewhere in a window after it.
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "Target": {
            "Arn": function_arn,
            "RoleArn": role_arn,
            # The Scheduler fills in the <aws.scheduler.*> placeholders at each delivery; the
            # scheduled time is the handler's once-per-slot key (rule 4).
            "Input": json.dumps(schedule_input(names.job)),
            "RetryPolicy": {
                "MaximumRetryAttempts": settings.max_retries,
                "MaximumEventAgeInSeconds": settings.max_event_age_seconds,
            },
            "DeadLetterConfig": {"Arn": dead_letter_arn},
        },
        "State": "ENABLED" if settings.enabled else "DISABLED",
        "ActionAfterCompletion": "NONE",
        "Description": f"jobcontroller: {names.job} for {names.prefix}",
    }


def _schedule_request(
    target: Target, names: Names, settings: ScheduleSettings, role_arn: str | None
) -> dict[str, Any]:
    return schedule_request(
        names,
        settings,
        function_arn=target.arn("lambda", f"function:{names.function}"),
        role_arn=_scheduler_role_arn(target, names, role_arn),
        dead_letter_arn=target.arn("sqs", names.schedule_dlq),
    )


def _put_schedule(target: Target, request: dict[str, Any]) -> str:
    scheduler = target.client("scheduler")
    try:
        return scheduler.create_schedule(**request)["ScheduleArn"]
    except ClientError as exc:
        if _code(exc) != "ConflictException":
            raise
    # update_schedule replaces every field, so the result is the same as a fresh create.
    return scheduler.update_schedule(**request)["ScheduleArn"]


def ensure_schedule(
    target: Target,
    names: Names,
    *,
    settings: ScheduleSettings | None = None,
    role_arn: str | None = None,
) -> str:
    """The recurring schedule (in its tagged group) that invokes the function. Returns its ARN."""
    settings = settings or ScheduleSettings()
    _ensure_schedule_group(target, names)
    return _put_schedule(target, _schedule_request(target, names, settings, role_arn))


def schedule_once(
    target: Target,
    names: Names,
    *,
    at: datetime | None = None,
    minutes_ahead: float = 3,
    clock: Clock | None = None,
    role_arn: str | None = None,
) -> tuple[str, datetime]:
    """A one-off `at(...)` schedule, deleted by the Scheduler once it has fired.

    It lets a learner on real AWS watch a scheduled delivery within minutes instead of
    waiting for the top of the hour. Returns the schedule's ARN and when it fires.
    """
    now = (clock or SystemClock()).now()
    when = at or now + timedelta(minutes=minutes_ahead)
    if when.tzinfo is None:
        raise ConfigError("`at` needs a timezone-aware time, e.g. datetime(..., tzinfo=UTC)")
    when = when.astimezone(UTC).replace(microsecond=0)
    if when <= now + timedelta(seconds=30):
        raise ConfigError(
            f"`at` ({when:%Y-%m-%dT%H:%M:%SZ}) must be at least 30 s after now "
            f"({now:%Y-%m-%dT%H:%M:%SZ}): pick a later time"
        )
    _ensure_schedule_group(target, names)
    request = _schedule_request(target, names, ScheduleSettings(), role_arn)
    request.update(
        Name=names.once_schedule(when),
        ScheduleExpression=f"at({when:%Y-%m-%dT%H:%M:%S})",
        ScheduleExpressionTimezone="UTC",
        State="ENABLED",
        # The Scheduler deletes a one-off schedule after it fired, so it leaves nothing.
        ActionAfterCompletion="DELETE",
        Description=f"jobcontroller: one-off run of {names.job} for {names.prefix}",
    )
    return _put_schedule(target, request), when


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
    sleep: Callable[[float], None] = time.sleep,
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
        queues = ensure_queues(target, names, sleep=sleep)
        say(f"queues: {names.failure_queue}, {names.schedule_dlq}")
        fn_role = ensure_function_role(target, names)
        say(f"function role: {names.function_role}")
        fn_arn = ensure_function(
            target, names, zip_path=zip_path, role_arn=fn_role, settings=function, sleep=sleep
        )
        say(f"function: {names.function} ({function.runtime}, {function.timeout_seconds} s)")
        ensure_async_config(
            target, names, failure_queue_arn=queues.failure_queue_arn, settings=function
        )
        say("async invoke config: 0 retries, failures to the queue")
        sched_role = ensure_scheduler_role(target, names)
        say(f"scheduler role: {names.scheduler_role}")
        schedule_arn = ensure_schedule(target, names, settings=schedule, role_arn=sched_role)
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


# --- teardown ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TeardownReport:
    """What teardown deleted (in order) and what, tagged with the prefix, is left (nothing)."""

    deleted: tuple[str, ...]
    leftovers: tuple[str, ...]


def _delete_role(iam: Any, name: str) -> bool:
    try:
        for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
            iam.delete_role_policy(RoleName=name, PolicyName=policy)
        for attached in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
            iam.detach_role_policy(RoleName=name, PolicyArn=attached["PolicyArn"])
        iam.delete_role(RoleName=name)
    except ClientError as exc:
        if _code(exc) == "NoSuchEntity":
            return False
        raise
    return True


def _delete_queue(sqs: Any, name: str) -> bool:
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError as exc:
        if _code(exc) in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
            return False
        raise
    sqs.delete_queue(QueueUrl=url)
    return True


def _delete_schedules(scheduler: Any, names: Names) -> list[str]:
    deleted = []
    try:
        pages = scheduler.get_paginator("list_schedules").paginate(GroupName=names.schedule_group)
        schedules = [s["Name"] for page in pages for s in page["Schedules"]]
    except ClientError as exc:
        if _code(exc) != "ResourceNotFoundException":
            raise
        schedules = []
    for name in sorted(schedules):
        if _ignore(
            ["ResourceNotFoundException"],
            lambda n=name: scheduler.delete_schedule(Name=n, GroupName=names.schedule_group),
        ):
            deleted.append(f"schedule {names.schedule_group}/{name}")
    return deleted


def teardown(
    target: Target,
    names: Names,
    *,
    keep_table: bool = False,
    settle_seconds: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    say: Callable[[str], None] | None = None,
) -> TeardownReport:
    """Delete the stack in dependency order; safe to repeat. Raises TeardownIncomplete if
    anything tagged with the prefix is still there afterwards.

    Order: the schedules first (nothing new starts), then what invokes the function, the
    function, what it uses, and the table last (it holds the state a learner inspects).
    `settle_seconds` (default: 0 embedded, 180 on real AWS) is how long to keep checking
    while real AWS finishes asynchronous deletions (tables, schedule groups, the tagging
    index).
    """
    say = say or (lambda _message: None)
    if settle_seconds is None:
        settle_seconds = 0 if target.embedded else 180
    deleted: list[str] = []

    def note(done: bool, what: str) -> None:
        if done:
            deleted.append(what)
            say(f"deleted {what}")

    scheduler, iam = target.client("scheduler"), target.client("iam")
    for what in _delete_schedules(scheduler, names):
        note(True, what)
    # Look first: moto answers a missing group with a 500 instead of ResourceNotFoundException.
    if _schedule_group_arn(scheduler, names.schedule_group) is not None:
        note(
            _ignore(
                ["ResourceNotFoundException"],
                lambda: scheduler.delete_schedule_group(Name=names.schedule_group),
            ),
            f"schedule group {names.schedule_group}",
        )
    note(_delete_role(iam, names.scheduler_role), f"role {names.scheduler_role}")
    # Deleting the function deletes its asynchronous invoke configuration with it.
    note(
        _ignore(
            ["ResourceNotFoundException"],
            lambda: target.client("lambda").delete_function(FunctionName=names.function),
        ),
        f"function {names.function}",
    )
    note(_delete_role(iam, names.function_role), f"role {names.function_role}")
    note(
        _ignore(
            ["ResourceNotFoundException"],
            lambda: target.client("logs").delete_log_group(logGroupName=names.log_group),
        ),
        f"log group {names.log_group}",
    )
    sqs = target.client("sqs")
    note(_delete_queue(sqs, names.failure_queue), f"queue {names.failure_queue}")
    note(_delete_queue(sqs, names.schedule_dlq), f"queue {names.schedule_dlq}")
    if not keep_table:
        store = ControlStore(names.table, client=target.client("dynamodb"))
        if store.delete_table():
            note(True, f"table {names.table}")
            target.client("dynamodb").get_waiter("table_not_exists").wait(
                TableName=names.table, WaiterConfig={"Delay": 2, "MaxAttempts": 60}
            )
    left = leftovers(target, names.prefix)
    waited = 0.0
    while left and waited < settle_seconds:
        sleep(5)
        waited += 5
        left = leftovers(target, names.prefix)
    if keep_table:
        table_arn = target.arn("dynamodb", f"table/{names.table}")
        left = [arn for arn in left if arn != table_arn]
    if left:
        raise TeardownIncomplete(
            f"after teardown of prefix {names.prefix!r} these are still there: "
            f"{', '.join(left)}; run teardown again (real AWS may need a minute), or delete "
            "them by hand"
        )
    return TeardownReport(tuple(deleted), tuple(left))


def leftovers(target: Target, prefix: str) -> list[str]:
    """ARNs of everything that still belongs to `prefix`; empty after a complete teardown.

    Tables, functions, log groups and queues are found by their tag through the Resource
    Groups Tagging API (moto serves it for these four; verified in tests/test_deploy.py).
    IAM roles and schedules it does not list in moto (and schedules cannot carry tags at
    all), so those are listed by name: roles under the prefix's IAM path, schedule groups
    and schedules by the name prefix `<prefix>-`.
    """
    names = Names(prefix)  # validates the prefix
    found: set[str] = set()
    tagging = target.client("resourcegroupstaggingapi")
    for page in tagging.get_paginator("get_resources").paginate(
        TagFilters=[{"Key": TAG_KEY, "Values": [prefix]}]
    ):
        found.update(r["ResourceARN"] for r in page["ResourceTagMappingList"])
    iam = target.client("iam")
    for page in iam.get_paginator("list_roles").paginate(PathPrefix=names.iam_path):
        found.update(r["Arn"] for r in page["Roles"])
    scheduler = target.client("scheduler")
    for page in scheduler.get_paginator("list_schedule_groups").paginate(NamePrefix=f"{prefix}-"):
        found.update(g["Arn"] for g in page["ScheduleGroups"])
    for page in scheduler.get_paginator("list_schedules").paginate(NamePrefix=f"{prefix}-"):
        found.update(s["Arn"] for s in page["Schedules"])
    return sorted(found)
