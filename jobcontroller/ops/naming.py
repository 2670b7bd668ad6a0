"""Where a stack goes and what its parts are called: the prefix rules, `Names`, `Target`.

One prefix per participant derives every resource name (`Names`), and every resource is tagged
`jobcontroller:prefix=<prefix>`, so teardown can prove that nothing is left. No step runs without
a `Target`, and `connect` only returns one for real AWS after the explicit opt-in (the environment
variable JOBCONTROLLER_BACKEND=aws, or the older JOBCONTROLLER_REAL_AWS=1, *and* the account id
passed back as `confirm`), having shown the account and region first. The small helpers at the
end read AWS's answers for the deploy and teardown modules.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.exceptions import ClientError

from jobcontroller.embedded import realism as _realism
from jobcontroller.embedded.server import is_loopback
from jobcontroller.errors import ConfigError, JobControllerError, RealAWSNotConfirmed
from jobcontroller.model import job_key
from jobcontroller.ops.backend import AWS, BACKEND_ENV, REAL_AWS_ENV, chosen_backend

__all__ = [
    "DEFAULT_JOB",
    "PREFIX_PATTERN",
    "REAL_AWS_ENV",
    "TAG_KEY",
    "Names",
    "Target",
    "connect",
    "error_code",
    "ignore_codes",
    "schedule_group_arn",
]

TAG_KEY = "jobcontroller:prefix"
DEFAULT_JOB = "hourly_processor"

# A prefix is a lowercase letter and up to 15 lowercase letters or digits. No hyphen, so
# "<prefix>-" can never be the start of another participant's names (with hyphens allowed,
# "ann-" would also match "ann-b-...") and listing by name prefix finds only our resources.
PREFIX_PATTERN = re.compile(r"^[a-z][a-z0-9]{0,15}$")
_DEPLOYABLE_JOB = re.compile(r"[A-Za-z0-9_-]{1,64}")


# --- names ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Names:
    """Every resource name of one participant's job, derived from `prefix` and `job`."""

    prefix: str
    job: str = DEFAULT_JOB

    def __post_init__(self) -> None:
        if not isinstance(self.prefix, str) or not PREFIX_PATTERN.match(self.prefix):
            raise ConfigError(
                f"prefix {self.prefix!r} is not usable: give a lowercase letter followed by up "
                "to 15 lowercase letters or digits, e.g. 'ann' or 'p07' (it starts every "
                "resource name, so it must not be empty and must not contain '-')"
            )
        try:
            job_key(self.job)
        except JobControllerError as exc:
            raise ConfigError(f"job name: {exc}") from None
        # The stored key allows '.', but Lambda function and SQS queue names take only
        # letters, digits, '-' and '_', so a deployed job's name must too; refused here,
        # before anything is created, rather than half-way through a deploy.
        # https://docs.aws.amazon.com/lambda/latest/api/API_CreateFunction.html#lambda-CreateFunction-request-FunctionName
        # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_CreateQueue.html#API_CreateQueue_RequestSyntax
        if not _DEPLOYABLE_JOB.fullmatch(self.job):
            fixed = re.sub(r"[^A-Za-z0-9_-]", "_", self.job)
            raise ConfigError(
                f"job name {self.job!r} cannot be deployed: Lambda and SQS names take only "
                f"letters, digits, '-' and '_'; use e.g. {fixed!r}"
            )
        once = self.once_schedule(datetime(2000, 1, 1, tzinfo=UTC))
        too_long = [
            (what, name, limit)
            for what, name, limit in (
                ("function", self.function, 64),
                ("function role", self.function_role, 64),
                ("scheduler role", self.scheduler_role, 64),
                ("schedule", self.schedule, 64),
                ("one-off schedule", once, 64),
                ("queue", self.schedule_dlq, 64),
                ("queue", self.failure_queue, 64),
            )
            if len(name) > limit
        ]
        if too_long:
            what, name, limit = too_long[0]
            raise ConfigError(
                f"the {what} name {name!r} would be longer than AWS allows ({limit}): "
                f"use a job name of at most {len(self.job) - len(name) + limit} characters "
                "or a shorter prefix"
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


# --- where we deploy ---------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A checked place to deploy: a boto3 session, its account and region, embedded or real.

    Build it with `connect`, which applies the real-AWS opt-in. On the embedded backend,
    `realism` (embedded.realism) makes its clients answer as AWS would while it catches up,
    and `sleep`/`monotonic` run on its scaled AWS time; on real AWS they are the real clock.
    """

    session: boto3.session.Session
    account: str
    region: str
    embedded: bool
    partition: str = "aws"
    realism: _realism.Realism | None = None
    _clients: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            client = self.session.client(service, region_name=self.region)
            if self.realism is not None:
                self.realism.attach(client)
            self._clients[service] = client
        return self._clients[service]

    def monotonic(self) -> float:
        """Seconds of AWS time (scaled on the embedded backend's realism layer)."""
        return time.monotonic() if self.realism is None else self.realism.aws_now()

    def sleep(self, seconds: float) -> None:
        """Wait `seconds` of AWS time while AWS catches up."""
        if self.realism is None:
            time.sleep(seconds)
        else:
            self.realism.sleep(seconds)

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
    realism: _realism.Realism | bool | None = True,
) -> Target:
    """Check where `session` points and return a Target; real AWS needs the explicit opt-in.

    The embedded backend (an endpoint on loopback) needs nothing. Real AWS needs
    JOBCONTROLLER_BACKEND=aws (or JOBCONTROLLER_REAL_AWS=1) in the environment
    (`ops.backend.chosen_backend`) and `confirm` equal to the account id,
    which this function shows (with the region) before it returns, so nothing is changed
    in an account nobody looked at. On the embedded backend `realism` (default: the
    process's layer, `embedded.realism.default_layer()`; False for moto's instant answers)
    makes the Target's clients behave like AWS while it catches up.
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
    if not embedded and chosen_backend(env) != AWS:
        raise RealAWSNotConfirmed(
            f"this would use real AWS (region {region}), and {BACKEND_ENV} is not {AWS}: "
            f"export {BACKEND_ENV}={AWS} (or the older {REAL_AWS_ENV}=1) to opt in, or start "
            "the embedded backend (jobcontroller.embedded.server.start_embedded()) to stay "
            "on this machine"
        )
    identity = sts.get_caller_identity()
    account = identity["Account"]
    partition = session.get_partition_for_region(region)
    layer = None
    if embedded and realism is not False:
        layer = _realism.default_layer() if realism is True else realism
    target = Target(session, account, region, embedded, partition, layer)
    if say is not None:
        say(f"Target: {target.describe()}" + ("" if embedded else f" as {identity['Arn']}"))
    if not embedded and confirm != account:
        raise RealAWSNotConfirmed(
            f"this would change resources in AWS account {account}, region {region}; "
            f"if that is right, pass confirm={account!r} (CLI: --confirm-account {account})"
        )
    return target


# --- reading AWS's answers ---------------------------------------------------------------


def error_code(exc: ClientError) -> str:
    """The AWS error code of a failed call (e.g. "ResourceNotFoundException")."""
    return exc.response.get("Error", {}).get("Code", "")


def ignore_codes(codes: Iterable[str], call: Callable[[], Any]) -> bool:
    """Run `call`; True if it ran, False if it failed with one of `codes` (already done)."""
    try:
        call()
    except ClientError as exc:
        if error_code(exc) in set(codes):
            return False
        raise
    return True


def schedule_group_arn(scheduler: Any, name: str) -> str | None:
    """The schedule group's ARN, or None if there is no group of that name."""
    try:
        arn: str = scheduler.get_schedule_group(Name=name)["Arn"]
    except ClientError as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise
        return None
    return arn
