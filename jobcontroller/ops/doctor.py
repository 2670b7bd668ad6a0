"""Read a deployed stack back from the AWS APIs and check the settings the course insists on.

`doctor(target, names)` returns one `Check` per setting, `ok` or `WRONG` with the fix, in the
order a reader meets them in notebook 06: the function, its asynchronous retries, the schedule,
the job's settings, the role, the logs, then the control item. It only reads: the fix says what
to change (usually "deploy again", since every deploy step puts the whole setting back).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from jobcontroller.clock import Clock, SystemClock
from jobcontroller.errors import ConfigError, JobControllerError
from jobcontroller.handler import JOB_CONFIG_VARIABLES, Settings, settings_from_env
from jobcontroller.model import JobConfig, Status, format_ts
from jobcontroller.ops.iam import function_role_policy
from jobcontroller.ops.naming import Names, Target, error_code
from jobcontroller.store import ControlStore

__all__ = ["CHECKS", "Check", "doctor", "report"]

# The placeholder EventBridge Scheduler replaces with the slot's time at each delivery.
# https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-schedule-context-attributes.html
SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"

CHECKS = (
    "function timeout",
    "async retries",
    "schedule retries",
    "flexible time window",
    "schedule input",
    "cooldown slack",
    "job settings",
    "function role",
    "log retention",
    "control item",
    "not paused",
    "lease",
)

_COOLDOWN = JOB_CONFIG_VARIABLES["cooldown_slack_seconds"]
_INTERVAL = JOB_CONFIG_VARIABLES["interval_seconds"]
_MARGIN = JOB_CONFIG_VARIABLES["lease_margin_seconds"]


@dataclass(frozen=True)
class Check:
    """One checked setting: its name, whether it is right, and what was found or what to do."""

    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok   ' if self.ok else 'WRONG'}  {self.name}: {self.detail}"


class _Wrong(Exception):
    """A check found its setting wrong (the message says what to do)."""


def _redeploy(names: Names) -> str:
    return f"deploy again to put it back: jobcontroller deploy --prefix {names.prefix}"


class _Stack:
    """What the checks read, each fetched once; a missing resource is a _Wrong."""

    def __init__(self, target: Target, names: Names) -> None:
        self.target = target
        self.names = names
        self._cache: dict[str, Any] = {}

    def _get(self, key: str, what: str, fetch: Callable[[], Any]) -> Any:
        if key not in self._cache:
            try:
                self._cache[key] = fetch()
            except ClientError as exc:
                self._cache[key] = _Wrong(
                    f"cannot read the {what} ({error_code(exc) or exc}): {_redeploy(self.names)}"
                )
        value = self._cache[key]
        if isinstance(value, _Wrong):
            raise value
        return value

    def function(self) -> dict[str, Any]:
        lam = self.target.client("lambda")
        return self._get(
            "function",
            f"function {self.names.function}",
            lambda: lam.get_function_configuration(FunctionName=self.names.function),
        )

    def env(self) -> dict[str, str]:
        return dict(self.function().get("Environment", {}).get("Variables", {}))

    def schedule_target(self) -> dict[str, Any]:
        scheduler = self.target.client("scheduler")
        schedule = self._get(
            "schedule",
            f"schedule {self.names.schedule}",
            lambda: scheduler.get_schedule(
                Name=self.names.schedule, GroupName=self.names.schedule_group
            ),
        )
        return dict(schedule)

    def settings(self) -> Settings:
        """The handler's reading of the environment, the cooldown (checked apart) set to 0."""
        try:
            return settings_from_env({**self.env(), _COOLDOWN: "0"})
        except ConfigError as exc:
            raise _Wrong(
                f"the handler refuses its environment: {exc}; fix it in FunctionSettings and "
                f"{_redeploy(self.names)}"
            ) from None


def _number(env: Mapping[str, str], variable: str, field_name: str) -> int:
    raw = env.get(variable, "").strip()
    if not raw:
        return int(getattr(JobConfig(), field_name))
    try:
        return int(raw)
    except ValueError:
        raise _Wrong(f"{variable}={raw!r} is not a whole number: see 'job settings'") from None


# --- the checks, one function each ------------------------------------------------------


def _timeout(stack: _Stack) -> str:
    timeout = stack.function()["Timeout"]
    env = stack.env()
    margin = _number(env, _MARGIN, "lease_margin_seconds")
    raw = env.get("JOB_WORKLOAD_SECONDS", "").strip() or str(Settings.workload_seconds)
    try:
        workload = float(raw)
    except ValueError:
        raise _Wrong(f"JOB_WORKLOAD_SECONDS={raw!r} is not a number: see 'job settings'") from None
    if timeout <= margin + workload:
        raise _Wrong(
            f"timeout {timeout} s leaves no lease: it must be more than the lease margin "
            f"({margin} s) plus the workload ({workload:g} s); raise the timeout "
            f"(FunctionSettings(timeout_seconds=...)) and {_redeploy(stack.names)}"
        )
    return f"{timeout} s, more than lease margin + workload ({margin + workload:g} s)"


def _async_retries(stack: _Stack) -> str:
    lam = stack.target.client("lambda")
    config = stack._get(
        "async",
        "asynchronous invoke configuration",
        lambda: lam.get_function_event_invoke_config(FunctionName=stack.names.function),
    )
    retries = config.get("MaximumRetryAttempts")
    destination = config.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
    if retries != 0 or not destination:
        raise _Wrong(
            f"MaximumRetryAttempts={retries}, on-failure destination {destination or 'none'}: "
            f"retries must be 0 with a destination (rule 8); {_redeploy(stack.names)}"
        )
    return f"MaximumRetryAttempts=0, failures to {destination.rsplit(':', 1)[-1]}"


def _schedule_retries(stack: _Stack) -> str:
    target = stack.schedule_target()["Target"]
    retries = target.get("RetryPolicy", {}).get("MaximumRetryAttempts")
    dead_letter = target.get("DeadLetterConfig", {}).get("Arn")
    if retries != 0 or not dead_letter:
        raise _Wrong(
            f"MaximumRetryAttempts={retries}, dead-letter queue {dead_letter or 'none'}: "
            f"retries must be 0 with a dead-letter queue (rule 8); {_redeploy(stack.names)}"
        )
    return f"MaximumRetryAttempts=0, dead letters to {dead_letter.rsplit(':', 1)[-1]}"


def _flexible_window(stack: _Stack) -> str:
    mode = stack.schedule_target().get("FlexibleTimeWindow", {}).get("Mode")
    if mode != "OFF":
        raise _Wrong(
            f"FlexibleTimeWindow is {mode}: a delivery could land anywhere after its slot; "
            f"set it OFF ({_redeploy(stack.names)})"
        )
    return "OFF (delivered at the slot)"


def _schedule_input(stack: _Stack) -> str:
    raw = stack.schedule_target()["Target"].get("Input", "")
    if SCHEDULED_TIME not in raw:
        raise _Wrong(
            f"the input {raw!r} lacks {SCHEDULED_TIME}: without the slot the handler has no "
            f"once-per-slot key; {_redeploy(stack.names)}"
        )
    return f"carries {SCHEDULED_TIME}"


def _cooldown(stack: _Stack) -> str:
    env = stack.env()
    slack = _number(env, _COOLDOWN, "cooldown_slack_seconds")
    interval = _number(env, _INTERVAL, "interval_seconds")
    if not 0 <= slack < interval:
        raise _Wrong(
            f"{_COOLDOWN}={slack} is not below {_INTERVAL}={interval}: the cooldown would "
            f"skip the next slot; set it below the interval (e.g. 60) and "
            f"{_redeploy(stack.names)}"
        )
    return f"{slack} s, below the interval ({interval} s)"


def _job_settings(stack: _Stack) -> str:
    settings = stack.settings()
    names = stack.names
    if (settings.table, settings.job) != (names.table, names.job):
        raise _Wrong(
            f"JOB_TABLE={settings.table!r}, JOB_NAME={settings.job!r}: expected "
            f"{names.table!r} and {names.job!r}; {_redeploy(names)}"
        )
    return "the handler accepts its environment (JOB_TABLE, JOB_NAME, JOB_*)"


def _normalised(document: Any) -> Any:
    if isinstance(document, str):
        document = json.loads(document)
    return json.loads(json.dumps(document, sort_keys=True))


def _wildcards(document: Any) -> list[str]:
    found = []
    for statement in document.get("Statement", []):
        for key in ("Action", "Resource"):
            values = statement.get(key, [])
            for value in [values] if isinstance(values, str) else values:
                if value == "*" or (key == "Action" and value.endswith("*")):
                    found.append(f"{key} {value}")
    return found


def _function_role(stack: _Stack) -> str:
    names, target = stack.names, stack.target
    role = stack.function()["Role"].rsplit("/", 1)[-1]
    if role != names.function_role:
        raise _Wrong(
            f"the function runs as {role!r}, not {names.function_role!r}: {_redeploy(names)}"
        )
    iam = target.client("iam")
    try:
        inline = {
            name: _normalised(iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"])
            for name in iam.list_role_policies(RoleName=role)["PolicyNames"]
        }
        attached = [
            p["PolicyName"]
            for p in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
        ]
    except ClientError as exc:
        raise _Wrong(f"cannot read role {role} ({error_code(exc)}): {_redeploy(names)}") from None
    expected = _normalised(
        function_role_policy(
            names, account=target.account, region=target.region, partition=target.partition
        )
    )
    wildcards = [w for doc in inline.values() for w in _wildcards(doc)]
    if wildcards or attached or list(inline.values()) != [expected]:
        problems = [f"grants {', '.join(wildcards)}"] if wildcards else []
        problems += [f"has managed policies {', '.join(attached)}"] if attached else []
        problems += [] if problems else ["its inline policy differs from ops/iam.py's"]
        raise _Wrong(
            f"role {role} {'; '.join(problems)}: it must grant only GetItem/PutItem/UpdateItem "
            f"on its table and job key; detach the extras and {_redeploy(names)}"
        )
    return "grants only the handler's actions on its table and job key"


def _log_retention(stack: _Stack) -> str:
    names = stack.names
    logs = stack.target.client("logs")
    groups = stack._get(
        "logs",
        f"log group {names.log_group}",
        lambda: logs.describe_log_groups(logGroupNamePrefix=names.log_group)["logGroups"],
    )
    group = next((g for g in groups if g["logGroupName"] == names.log_group), None)
    if group is None:
        raise _Wrong(f"log group {names.log_group} is missing: {_redeploy(names)}")
    days = group.get("retentionInDays")
    if not days:
        raise _Wrong(f"log group {names.log_group} keeps logs forever: {_redeploy(names)}")
    return f"{days} days"


class _Item:
    """The control item, read once."""

    def __init__(self, stack: _Stack) -> None:
        self.store = ControlStore(stack.names.table, client=stack.target.client("dynamodb"))
        self.job = stack.names.job
        self.prefix = stack.names.prefix
        self._state: Any = None

    def state(self) -> Any:
        if self._state is None:
            try:
                self._state = self.store.read(self.job)
            except (JobControllerError, ClientError) as exc:
                self._state = _Wrong(
                    f"{exc}; if it is missing: jobcontroller init --prefix {self.prefix}"
                )
        if isinstance(self._state, _Wrong):
            raise self._state
        return self._state


def doctor(target: Target, names: Names, *, clock: Clock | None = None) -> list[Check]:
    """Check `names`' deployed stack; one Check per entry of CHECKS, in that order."""
    now = (clock or SystemClock()).now()
    stack = _Stack(target, names)
    item = _Item(stack)

    def control_item() -> str:
        state = item.state()
        runs = f"{state.run_count} run{'' if state.run_count == 1 else 's'}"
        return f"{state.status.value}, version {state.version}, {runs}"

    def not_paused() -> str:
        if item.state().paused:
            raise _Wrong(f"the job is paused: jobcontroller resume --prefix {names.prefix}")
        return "not paused"

    def lease() -> str:
        state = item.state()
        if state.status is not Status.RUNNING:
            return f"no run holds it ({state.status.value})"
        expires = state.lease_expires_at
        if expires is None or expires <= now:
            raise _Wrong(
                f"RUNNING ({state.run_id}) past its lease "
                f"({format_ts(expires) if expires else 'no lease'}, now {format_ts(now)}): the "
                f"run died; the next trigger takes it over "
                f"(jobcontroller trigger --prefix {names.prefix})"
            )
        return f"RUNNING ({state.run_id}), lease until {format_ts(expires)}"

    steps: dict[str, Callable[[], str]] = {
        "function timeout": lambda: _timeout(stack),
        "async retries": lambda: _async_retries(stack),
        "schedule retries": lambda: _schedule_retries(stack),
        "flexible time window": lambda: _flexible_window(stack),
        "schedule input": lambda: _schedule_input(stack),
        "cooldown slack": lambda: _cooldown(stack),
        "job settings": lambda: _job_settings(stack),
        "function role": lambda: _function_role(stack),
        "log retention": lambda: _log_retention(stack),
        "control item": control_item,
        "not paused": not_paused,
        "lease": lease,
    }
    checks = []
    for name in CHECKS:
        try:
            checks.append(Check(name, True, steps[name]()))
        except _Wrong as wrong:
            checks.append(Check(name, False, str(wrong)))
    return checks


def report(checks: list[Check]) -> str:
    """The checks as lines, and a last line counting the WRONG ones."""
    wrong = [c.name for c in checks if not c.ok]
    summary = f"{len(wrong)} WRONG: {', '.join(wrong)}" if wrong else f"all {len(checks)} ok"
    return "\n".join([*(c.line() for c in checks), summary])
