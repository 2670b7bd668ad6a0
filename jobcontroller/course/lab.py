"""Notebooks 06-08 in a few calls: one participant's stack, shown step by step, driven
through a day of its schedule, verified from the stored state, and deleted.

`start()` connects to the embedded backend, or to real AWS when JOBCONTROLLER_REAL_AWS=1
is set *and* the account id shown is passed back as `confirm` (deploy.connect applies the
opt-in), and returns a `Lab`. Every display is built from what the AWS APIs report back,
never from what the deploy module meant to create, and leaves out request ids and creation
dates, so stored notebook outputs match on every run of the embedded backend.

The deploying itself is `jobcontroller.ops.deploy` (the notebooks call its steps one by one);
running the function is `jobcontroller.ops.runner`, firing the schedule `jobcontroller.ops.driver`.
Course tooling only: the Lambda never imports this module.
"""

from __future__ import annotations

import html
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from jobcontroller.clock import Clock, ManualClock, SequentialIds, SystemClock
from jobcontroller.course.core import SEED_FIELDS, Table, show_state
from jobcontroller.course.lablogs import (
    ShippingLocalRunner,
    cloudwatch_lines,
    decisions,
    show_lines,
)
from jobcontroller.errors import ConfigError
from jobcontroller.handler import settings_from_env
from jobcontroller.model import Drill, JobConfig, JobState, Outcome, Status, format_ts
from jobcontroller.ops import deploy as _deploy
from jobcontroller.ops.driver import ScheduleDriver, wait_for_state
from jobcontroller.ops.invocation import FunctionRunner, Invocation
from jobcontroller.ops.packaging import build_zip, inspect_zip
from jobcontroller.ops.remote import RemoteLambdaRunner
from jobcontroller.ops.runner import LocalLambdaRunner
from jobcontroller.ops.schedules import render_event, slot_run_id
from jobcontroller.store import TTL_ATTRIBUTE, ControlStore, RunRecord

__all__ = [
    "COURSE_DAY",
    "DEFAULT_PREFIX",
    "Day",
    "DayPlan",
    "Document",
    "Lab",
    "Proof",
    "Step",
    "start",
]

DEFAULT_PREFIX = "learner"
# The replayed day starts at the course's usual first slot; the stack is deployed just before.
COURSE_DAY = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
_DEPLOYED_AT = COURSE_DAY - timedelta(minutes=5)


# --- displays ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Document:
    """JSON documents (a policy, an event) under headings, shown as text and as HTML."""

    title: str
    sections: tuple[tuple[str, Any], ...]

    def text(self) -> str:
        lines = [self.title]
        for heading, body in self.sections:
            lines += ["", f"{heading}:", json.dumps(body, indent=2)]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        parts = [f"<p><b>{html.escape(self.title)}</b></p>"]
        for heading, body in self.sections:
            parts.append(f"<p>{html.escape(heading)}:</p>")
            parts.append(f"<pre>{html.escape(json.dumps(body, indent=2))}</pre>")
        return "\n".join(parts)


class _Line:
    """One line of text that displays without quotes (progress messages)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _progress(what: str, timeout: float) -> Callable[[float, JobState | None], None]:
    """A progress callback for wait_for_state: one line, updated in place in a notebook."""
    try:
        from IPython.display import display

        handle = display(_Line(f"{what}: starting"), display_id=True)
    except ImportError:  # pragma: no cover - IPython comes with the course extras
        handle = None

    def report(elapsed: float, state: JobState | None) -> None:
        seen = "no control item" if state is None else f"status {state.status.value}"
        if state is not None:
            seen += f", run_count {state.run_count}"
        line = _Line(f"{what}: {elapsed:.0f} s of at most {timeout:.0f} s ({seen})")
        if handle is None:
            print(line.text)
        else:
            handle.update(line)

    return report


def _ts(value: datetime | None) -> str:
    return "-" if value is None else format_ts(value)


def _hhmm(value: datetime | None) -> str:
    return "-" if value is None else value.astimezone(UTC).strftime("%H:%M")


def _tags(tags: Mapping[str, str] | Iterable[Mapping[str, str]]) -> str:
    # As a dict: moto lists a DynamoDB tag twice once it has been set twice; AWS does not.
    pairs = dict(tags) if isinstance(tags, Mapping) else {t["Key"]: t["Value"] for t in tags}
    return ", ".join(f"{k}={v}" for k, v in sorted(pairs.items())) or "(none)"


def _arn_name(arn: str) -> str:
    """The last part of an ARN: a role's or function's or queue's name."""
    return arn.rsplit("/", 1)[-1].rsplit(":", 1)[-1]


def _resource_kind(arn: str) -> tuple[str, str]:
    """('dynamodb table', 'learner-job_control') from an ARN, for the leftovers table."""
    service, rest = arn.split(":", 5)[2], arn.split(":", 5)[5]
    if service == "sqs":
        return "sqs queue", rest
    if service == "logs":
        return "logs log-group", rest.removeprefix("log-group:")
    kind, _, name = rest.partition("/") if "/" in rest else rest.partition(":")
    if service == "iam":
        name = name.rsplit("/", 1)[-1]
    return f"{service} {kind}", name


# --- the plan of a replayed day, and what happened --------------------------------------


@dataclass(frozen=True)
class DayPlan:
    """What happens on the replayed day. Times are "HH:MM" slots inside the day's window.

    - `duplicates`: extra copies of a slot, delivered one after another (at-least-once).
    - `racing`: extra copies delivered at the same moment, racing for the lock.
    - `late`: seconds after the slot that its delivery arrives.
    - `fail` / `crash`: slots whose run is told (by a drill in the control item) to fail or
      to crash holding the lock.
    """

    start: datetime = COURSE_DAY
    slots: int = 24
    duplicates: Mapping[str, int] = field(default_factory=lambda: {"10:00": 1})
    racing: Mapping[str, int] = field(default_factory=dict)
    late: Mapping[str, float] = field(default_factory=lambda: {"12:00": 59})
    fail: tuple[str, ...] = ("14:00",)
    crash: tuple[str, ...] = ("17:00",)

    def window(self) -> tuple[datetime, datetime]:
        return self.start, self.start + timedelta(hours=self.slots)

    def drill_for(self, slot: datetime) -> Drill | None:
        if _hhmm(slot) in self.fail:
            return Drill.FAIL
        if _hhmm(slot) in self.crash:
            return Drill.CRASH
        return None

    def table(self) -> Table:
        """The plan, one row per slot that is not an ordinary on-time delivery."""
        start, end = self.window()
        rows = []
        for hour in range(self.slots):
            slot = start + timedelta(hours=hour)
            key = _hhmm(slot)
            what = []
            if key in self.duplicates:
                what.append(f"delivered {1 + self.duplicates[key]} times, one after another")
            if key in self.racing:
                what.append(f"{1 + self.racing[key]} copies delivered at the same moment")
            if key in self.late:
                what.append(f"arrives {self.late[key]:g} s late")
            drill = self.drill_for(slot)
            if drill is Drill.FAIL:
                what.append("its run fails (drill FAIL)")
            if drill is Drill.CRASH:
                what.append("its run crashes holding the lock (drill CRASH)")
            if what:
                rows.append((key, "; ".join(what)))
        title = f"the day: {self.slots} hourly slots, {_ts(start)} to {_ts(end)}"
        return Table(
            ("slot", "what happens"), tuple(rows), title, ("every other slot: once, on time",)
        )


@dataclass(frozen=True)
class Step:
    """One delivery of the day and what came of it (with the control item right after)."""

    slot: datetime
    arrived: datetime | None  # None on real AWS when the real scheduler delivered it
    how: str
    drill: Drill | None
    status: str  # the invocation's: ok, error, crashed, timeout; "seen" when read from state
    result: Mapping[str, Any] | None
    error_type: str | None
    state_after: JobState
    log: str = ""  # what the function printed (the local runner's capture; Lambda's log tail)

    @property
    def outcome(self) -> str:
        if self.result is not None:
            reason = self.result.get("reason")
            return str(self.result.get("outcome")) + (f" ({reason})" if reason else "")
        if self.status == "seen":
            return "ran (seen in the table)"
        return f"{self.status} ({self.error_type})"

    @property
    def run_id(self) -> str | None:
        if self.result is not None:
            return self.result.get("run_id")
        return self.state_after.run_id if self.status != "seen" else self.state_after.last_run_id

    @property
    def succeeded(self) -> bool:
        if self.status == "seen":
            return self.state_after.last_slot == self.slot
        return self.result is not None and self.result.get("outcome") == Outcome.SUCCEEDED


@dataclass(frozen=True)
class Day:
    """The steps of a driven day, in the order they happened."""

    plan: DayPlan
    initial: JobState
    steps: tuple[Step, ...]
    ended_at: datetime
    # The control item right after the course wrote a drill flag, before that slot's delivery
    # (writing the flag is an UpdateItem too, so it takes a version number of its own).
    drilled: tuple[tuple[datetime, JobState], ...] = ()

    def moment(self, slot: str) -> tuple[JobState, JobState]:
        """The control item before and after the deliveries of `slot` ("HH:MM"); for a
        drilled slot, "before" is right after the drill flag was written."""
        before = self.initial
        drilled = dict(self.drilled)
        for index, step in enumerate(self.steps):
            if _hhmm(step.slot) == slot:
                before = drilled.get(step.slot, before)
                last = index
                while last + 1 < len(self.steps) and self.steps[last + 1].slot == step.slot:
                    last += 1
                return before, self.steps[last].state_after
            before = step.state_after
        raise ConfigError(f"no delivery for slot {slot!r} on this day")

    def table(self) -> Table:
        rows = tuple(
            (
                _hhmm(s.slot),
                "-" if s.arrived is None else s.arrived.strftime("%H:%M:%S"),
                s.how,
                "-" if s.drill is None else s.drill.value,
                s.outcome,
                s.run_id or "-",
                (s.result or {}).get("took_over_from") or "-",
            )
            for s in self.steps
        )
        header = ("slot", "arrived", "delivery", "drill", "outcome", "run_id", "took_over_from")
        runs = sum(s.succeeded for s in self.steps)
        note = f"{len(self.steps)} deliveries of {len({s.slot for s in self.steps})} slots, "
        note += f"{runs} successful runs"
        return Table(header, rows, "what each delivery did", (note,))


@dataclass(frozen=True)
class Proof:
    """The seed's proof checks, each with what was expected and what the table holds."""

    rows: tuple[tuple[str, str, str, bool], ...]

    @property
    def passed(self) -> bool:
        return all(ok for *_, ok in self.rows)

    def table(self) -> Table:
        rows = tuple((c, e, f, "ok" if ok else "WRONG") for c, e, f, ok in self.rows)
        verdict = "all checks pass" if self.passed else "SOME CHECKS FAIL: see WRONG above"
        return Table(("check", "expected", "found", "verdict"), rows, "proof checks", (verdict,))

    def __repr__(self) -> str:
        return self.table().text()

    def _repr_html_(self) -> str:
        return self.table()._repr_html_()


# --- the lab -----------------------------------------------------------------------------


class Lab:
    """One participant's stack on one backend, and the notebooks' displays of it."""

    def __init__(self, target: _deploy.Target, names: _deploy.Names) -> None:
        self.target = target
        self.names = names
        self.embedded = target.embedded
        # On the embedded backend time is the course's (fixed); on AWS it is the real one.
        self.clock: Clock = ManualClock(_DEPLOYED_AT) if self.embedded else SystemClock()
        self.store = ControlStore(names.table, client=target.client("dynamodb"))
        self.zip_path: Path | None = None
        self._scratch = tempfile.TemporaryDirectory(prefix="jobcontroller-lab-")
        self._runner: FunctionRunner | None = None
        self._driver: ScheduleDriver | None = None

    def __repr__(self) -> str:
        return f"Lab(prefix={self.names.prefix!r}, {self.target.describe()})"

    # --- where -----------------------------------------------------------------------------

    def describe(self) -> Table:
        """Where this notebook works and the names every resource gets from the prefix."""
        n = self.names
        rows = (
            ("backend", "embedded (moto on loopback)" if self.embedded else "REAL AWS"),
            ("account", self.target.account),
            ("region", self.target.region),
            ("prefix", n.prefix),
            ("job", n.job),
            ("table", n.table),
            ("function", n.function),
            ("log group", n.log_group),
            ("function role", n.function_role),
            ("scheduler role", n.scheduler_role),
            ("on-failure queue", n.failure_queue),
            ("schedule dead-letter queue", n.schedule_dlq),
            ("schedule", f"{n.schedule_group}/{n.schedule}"),
            ("tag on everything", f"{_deploy.TAG_KEY}={n.prefix}"),
        )
        return Table(("what", "name"), rows, "where this notebook works")

    # --- the zip ---------------------------------------------------------------------------

    def build(self) -> Path:
        """Build the deployment zip (into a scratch directory) and remember where it is."""
        self.zip_path = build_zip(out_dir=Path(self._scratch.name) / "build")
        return self.zip_path

    def show_zip(self) -> Table:
        """What the zip holds, and that building it again gives the same bytes."""
        path = self.zip_path or self.build()
        report = inspect_zip(path)
        again = inspect_zip(build_zip(out_dir=Path(self._scratch.name) / "again"))
        top = sorted({e.split("/", 1)[0] for e in report.entries})
        rows = tuple((entry, "the handler's own code") for entry in report.entries)
        notes = (
            f"top-level packages in the zip: {', '.join(top)} (no third-party package: "
            "boto3 is already in the Lambda runtime)",
            "built twice, same bytes: " + ("yes" if again.sha256 == report.sha256 else "NO"),
        )
        return Table(("file", "why"), rows, f"{report.path.name}: {len(rows)} files", notes)

    # --- what the APIs report back ---------------------------------------------------------

    def show_table(self) -> Table:
        """The table as DynamoDB describes it: keys, billing, TTL, tags."""
        described = self.store.describe_table()
        # TTL and tags are deployment settings, read back here the way deploy.py sets them.
        ddb = self.target.client("dynamodb")
        ttl = ddb.describe_time_to_live(TableName=self.names.table)["TimeToLiveDescription"]
        arn = self.target.arn("dynamodb", f"table/{self.names.table}")
        tags = ddb.list_tags_of_resource(ResourceArn=arn).get("Tags", [])
        keys = ", ".join(f"{name} ({kind}, {type_})" for name, kind, type_ in described["keys"])
        rows = (
            ("name", self.names.table),
            ("keys", keys),
            ("billing", described["billing"]),
            ("TTL", f"{ttl.get('AttributeName', '-')} ({ttl.get('TimeToLiveStatus')})"),
            ("tags", _tags(tags)),
        )
        return Table(("property", "value"), rows, "table (DescribeTable)")

    def show_item(self) -> Table:
        """The job's control item: the seed's fields."""
        return show_state(self.store.read(self.names.job), fields=SEED_FIELDS)

    def show_log_group(self) -> Table:
        """The function's log group: retention and tags."""
        logs = self.target.client("logs")
        (group,) = [
            g
            for g in logs.describe_log_groups(logGroupNamePrefix=self.names.log_group)["logGroups"]
            if g["logGroupName"] == self.names.log_group
        ]
        arn = self.target.arn("logs", f"log-group:{self.names.log_group}")
        tags = logs.list_tags_for_resource(resourceArn=arn).get("tags", {})
        rows = (
            ("name", group["logGroupName"]),
            ("retention", f"{group.get('retentionInDays', 'never expires')} days"),
            ("tags", _tags(tags)),
        )
        return Table(("property", "value"), rows, "log group (DescribeLogGroups)")

    def show_queues(self) -> Table:
        """The two dead-letter queues: who sends to them, retention, messages, tags."""
        sqs = self.target.client("sqs")
        rows = []
        for name, sender in (
            (self.names.failure_queue, "Lambda: an async invocation that failed"),
            (self.names.schedule_dlq, "Scheduler: an event it could not deliver"),
        ):
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
            attrs = attributes["Attributes"]
            tags = sqs.list_queue_tags(QueueUrl=url).get("Tags", {})
            days = int(attrs["MessageRetentionPeriod"]) // 86400
            rows.append(
                (name, sender, f"{days} days", attrs["ApproximateNumberOfMessages"], _tags(tags))
            )
        header = ("queue", "receives", "keeps messages", "messages", "tags")
        return Table(header, tuple(rows), "dead-letter queues (GetQueueAttributes)")

    def show_role(self, role: str) -> Document:
        """A role's trust policy and its only (inline) policy, read back from IAM."""
        iam = self.target.client("iam")
        trust = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
        sections: list[tuple[str, Any]] = [("who may assume it (trust policy)", _json(trust))]
        for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
            document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
            sections.append((f"what it may do (inline policy {name!r})", _json(document)))
        attached = iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
        sections.append(("managed policies attached", [p["PolicyName"] for p in attached]))
        return Document(f"role {role} (GetRole, GetRolePolicy)", tuple(sections))

    def show_function(self) -> Table:
        """The function's configuration as Lambda reports it, environment included."""
        lam = self.target.client("lambda")
        config = lam.get_function_configuration(FunctionName=self.names.function)
        tags = lam.list_tags(Resource=config["FunctionArn"]).get("Tags", {})
        rows = [
            ("name", config["FunctionName"]),
            ("runtime", config["Runtime"]),
            ("handler", config["Handler"]),
            ("timeout", f"{config['Timeout']} s"),
            ("memory", f"{config['MemorySize']} MB"),
            ("role", _arn_name(config["Role"])),
            ("tags", _tags(tags)),
        ]
        variables = config.get("Environment", {}).get("Variables", {})
        rows += [(f"env {k}", v) for k, v in sorted(variables.items())]
        return Table(("setting", "value"), tuple(rows), "function (GetFunctionConfiguration)")

    def show_async_config(self) -> Table:
        """What Lambda does with an asynchronous invocation that fails."""
        lam = self.target.client("lambda")
        config = lam.get_function_event_invoke_config(FunctionName=self.names.function)
        destination = config.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        rows = (
            ("MaximumRetryAttempts", str(config.get("MaximumRetryAttempts"))),
            ("MaximumEventAgeInSeconds", str(config.get("MaximumEventAgeInSeconds"))),
            ("on failure, send to", "-" if destination is None else _arn_name(destination)),
        )
        return Table(
            ("setting", "value"), rows, "asynchronous invocation (GetFunctionEventInvokeConfig)"
        )

    def show_schedule(self) -> Table:
        """The schedule as EventBridge Scheduler reports it."""
        s = self.target.client("scheduler").get_schedule(
            Name=self.names.schedule, GroupName=self.names.schedule_group
        )
        target = s["Target"]
        retry = target.get("RetryPolicy", {})
        dlq = target.get("DeadLetterConfig", {}).get("Arn")
        rows = (
            ("name", f"{s['GroupName']}/{s['Name']}"),
            ("expression", f"{s['ScheduleExpression']} ({s.get('ScheduleExpressionTimezone')})"),
            ("state", s["State"]),
            ("flexible time window", s["FlexibleTimeWindow"]["Mode"]),
            ("target", _arn_name(target["Arn"])),
            ("role", _arn_name(target["RoleArn"])),
            ("retry: MaximumRetryAttempts", str(retry.get("MaximumRetryAttempts"))),
            ("retry: MaximumEventAgeInSeconds", str(retry.get("MaximumEventAgeInSeconds"))),
            ("dead-letter queue", "-" if dlq is None else _arn_name(dlq)),
        )
        return Table(("setting", "value"), rows, "schedule (GetSchedule)")

    def show_event(self, slot: datetime | None = None) -> Document:
        """The schedule's input template as stored, and the event it becomes for `slot`."""
        slot = slot or COURSE_DAY
        spec = self.driver.spec()
        rendered = render_event(spec, slot)
        return Document(
            "the schedule's input",
            (
                ("template, as stored in the schedule", json.loads(spec.input_template)),
                (f"what the Scheduler delivers for the {_ts(slot)} slot", rendered),
            ),
        )

    def show_resources(self) -> Table:
        """Everything that belongs to the prefix (by tag, IAM path or name), found now."""
        arns = _deploy.leftovers(self.target, self.names.prefix)
        rows = tuple(_resource_kind(arn) for arn in arns)
        notes = () if rows else (f"(nothing is left for prefix {self.names.prefix!r})",)
        return Table(("kind", "name"), rows, f"resources of prefix {self.names.prefix!r}", notes)

    # --- deploying and tearing down --------------------------------------------------------

    def deployed(self) -> bool:
        """Whether the function and its schedule exist (the last steps of a deploy)."""
        from botocore.exceptions import ClientError

        try:
            self.target.client("lambda").get_function_configuration(
                FunctionName=self.names.function
            )
            self.target.client("scheduler").get_schedule(
                Name=self.names.schedule, GroupName=self.names.schedule_group
            )
        except ClientError as exc:
            # Only "not there" means "not deployed"; anything else (no permission, throttling)
            # is a real problem and must not send the notebook off to deploy again.
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
            return False
        return True

    def deploy(self, *, say: Callable[[str], None] | None = None) -> _deploy.Deployment:
        """Every deploy step in order (idempotent), with the lab's clock for the control item."""
        return _deploy.deploy(
            self.target, self.names, zip_path=self.zip_path, clock=self.clock, say=say
        )

    def teardown(self, *, say: Callable[[str], None] | None = print) -> _deploy.TeardownReport:
        """Delete the stack in dependency order; raises TeardownIncomplete if anything is left."""
        self._runner = self._driver = None
        return _deploy.teardown(self.target, self.names, say=say)

    def reset_job(self) -> JobState:
        """Start the job again from IDLE: delete its control item and run history, init it."""
        self.store.delete_job(self.names.job)
        self.store.init_job(self.names.job, now=self.clock.now())
        return self.store.read(self.names.job)

    # --- running it --------------------------------------------------------------------------

    @property
    def runner(self) -> FunctionRunner:
        """The local runner of the built zip (embedded), or Lambda's Invoke API (real AWS)."""
        if self._runner is None:
            if self.embedded:
                # The local runner, writing each run's output to the function's log group
                # in the embedded CloudWatch Logs, as Lambda does (see lablogs).
                self._runner = ShippingLocalRunner(
                    self.target,
                    self.names.function,
                    code=self.zip_path,
                    work_dir=Path(self._scratch.name) / "run",
                    request_ids=SequentialIds("request-"),
                )
            else:
                self._runner = RemoteLambdaRunner(self.target, self.names.function)
        return self._runner

    @property
    def driver(self) -> ScheduleDriver:
        """The schedule driver: fixed run ids on the embedded backend."""
        if self._driver is None:
            self._driver = ScheduleDriver(
                self.target,
                self.names,
                self.runner,
                run_ids=slot_run_id if self.embedded else None,
            )
        return self._driver

    def try_once(self) -> Table:
        """Deliver one slot and show what the function did.

        Embedded: the 09:00 slot, at 09:00, through the schedule driver. Real AWS: the
        current hour's slot, invoked synchronously through Lambda so the answer comes back.
        """
        if self.embedded:
            (delivery,) = self.driver.fire(COURSE_DAY)
            invocation = delivery.invocation
            assert invocation is not None
            slot = COURSE_DAY
        else:
            now = datetime.now(UTC)
            slot = now.replace(minute=0, second=0, microsecond=0)
            invocation = self.runner.invoke(self.driver.render(slot))
        return show_invocation(invocation, title=f"the function, for the {_ts(slot)} slot")

    def drive(self, plan: DayPlan | None = None) -> Day:
        """The day: replayed slot by slot (embedded), or watched on real AWS (`watch`)."""
        plan = plan or DayPlan()
        return self.replay(plan) if self.embedded else self.watch(plan)

    def replay(self, plan: DayPlan) -> Day:
        """Fire every slot of the plan through the deployed schedule and the built zip."""
        if not self.embedded:
            raise ConfigError("a day can only be replayed on the embedded backend; use watch()")
        start, end = plan.window()
        initial = self.store.read(self.names.job)
        steps: list[Step] = []
        drilled: list[tuple[datetime, JobState]] = []
        for slot in self.driver.slots(start, end):
            key = _hhmm(slot)
            drill = plan.drill_for(slot)
            if drill is not None:
                drilled.append((slot, self.store.set_drill(self.names.job, drill)))
            delay = float(plan.late.get(key, 0))
            first = "on time" if not delay else f"{delay:g} s late"
            if key in plan.racing:
                copies, racing, others = 1 + plan.racing[key], True, "at the same moment"
            else:
                copies, racing, others = 1 + plan.duplicates.get(key, 0), False, "again"
            deliveries = self.driver.fire(
                slot, delay_seconds=delay, copies=copies, concurrent=racing
            )
            state = self.store.read(self.names.job)
            for number, delivery in enumerate(deliveries, start=1):
                invocation = delivery.invocation
                error = None if invocation is None else invocation.error
                steps.append(
                    Step(
                        slot=slot,
                        arrived=delivery.delivered_at,
                        how=first if number == 1 and not racing else others,
                        drill=drill if number == 1 else None,
                        status="dead-lettered" if invocation is None else invocation.status,
                        result=None if invocation is None else invocation.result,
                        error_type=None if error is None else error.get("errorType"),
                        state_after=state,
                        log="" if invocation is None else invocation.log,
                    )
                )
        # The day ends when its last run has finished, not when its last delivery arrived:
        # the dashboard's clock must not read earlier than the last success it shows.
        times = [s.arrived for s in steps if s.arrived is not None]
        times += [r.finished_at for r in self.history(limit=1)]
        return Day(plan, initial, tuple(steps), max(times, default=end), tuple(drilled))

    def watch(
        self,
        plan: DayPlan,
        *,
        minutes_ahead: float = 3,
        timeout: float = 900,
        lease_timeout: float = 180,
    ) -> Day:
        """Real AWS: deliver the plan's kinds of trouble by hand, synchronously through
        Lambda so the answers come back, then let the real scheduler deliver one slot.

        1. The slot three hours ago with a FAIL drill, then two hours ago with a CRASH drill.
        2. Once the crashed run's lease has passed (polled), the slot an hour ago takes over.
        3. A one-off `at()` schedule a few minutes ahead (the Scheduler deletes it once it
           has fired); the table is polled until its run is recorded.
        4. The same slot again (a duplicate delivery).

        The hourly schedule is disabled meanwhile, so its deliveries do not mix with these,
        and enabled again at the end. The slots delivered by hand lie in the past: the
        function refuses a slot more than a few minutes ahead of its clock, because one
        would mark the real slots before it as done.
        """
        if self.embedded:
            raise ConfigError("watch() is for real AWS; on the embedded backend use replay()")
        _deploy.set_schedule_enabled(self.target, self.names, False)
        initial = self.store.read(self.names.job)
        steps: list[Step] = []

        def by_hand(slot: datetime, how: str, drill: Drill | None, delivery: int = 1) -> None:
            if drill is not None:
                self.store.set_drill(self.names.job, drill)
            arrived = datetime.now(UTC)
            invocation = self.runner.invoke(self.driver.render(slot, delivery=delivery))
            error = None if invocation.error is None else invocation.error.get("errorType")
            after = self.store.read(self.names.job)
            steps.append(
                Step(
                    slot,
                    arrived,
                    how,
                    drill,
                    invocation.status,
                    invocation.result,
                    error,
                    after,
                    invocation.log,
                )
            )

        try:
            hour = timedelta(hours=1)
            # The function's clock, not this laptop's: the gate compares with Lambda's time.
            start = self.runner.now().replace(microsecond=0)
            by_hand(start - 3 * hour, "by hand", Drill.FAIL)
            by_hand(start - 2 * hour, "by hand", Drill.CRASH)
            wait_for_state(
                self.target,
                self.names,
                lambda s: s.lease_expires_at is None or s.lease_expires_at < self.runner.now(),
                timeout=lease_timeout,
                every=5,
                progress=_progress("waiting for the crashed run's lease to pass", lease_timeout),
            )
            by_hand(start - hour, "by hand, after the lease", None)
            before = self.store.read(self.names.job)
            _, when = _deploy.schedule_once(self.target, self.names, minutes_ahead=minutes_ahead)
            print(f"one-off schedule at({when:%Y-%m-%dT%H:%M:%S}) UTC created; waiting for it")
            state = wait_for_state(
                self.target,
                self.names,
                # Its run has written the item (whatever it decided) and let go of it.
                lambda s: s.status is Status.IDLE and s.version > before.version,
                timeout=timeout,
                every=10,
                progress=_progress("waiting for the real scheduler", timeout),
            )
            steps.append(Step(when, None, "one-off at() schedule", None, "seen", None, None, state))
            by_hand(when, "again, by hand", None, delivery=2)  # the scheduler made the first
        finally:
            _deploy.set_schedule_enabled(self.target, self.names, True)
        return Day(plan, initial, tuple(steps), datetime.now(UTC))

    # --- verifying ---------------------------------------------------------------------------

    def history(self, *, limit: int = 100) -> list[RunRecord]:
        """The run history, newest first."""
        return self.store.runs(self.names.job, limit=limit)

    def show_history(self, runs: Sequence[RunRecord] | None = None) -> Table:
        """Run history items (SK = RUN#...), with the TTL each will expire at."""
        runs = self.history() if runs is None else runs
        rows = tuple(
            (
                r.run_id,
                r.outcome,
                _hhmm(r.slot),
                _ts(r.started_at),
                _ts(r.finished_at),
                r.took_over_from or "-",
                _ts(datetime.fromtimestamp(r.expires_at, UTC)),
            )
            for r in runs
        )
        header = ("run_id", "outcome", "slot", "started_at", "finished_at", "took_over_from")
        header += (f"{TTL_ATTRIBUTE} (TTL)",)
        return Table(header, rows, "run history (newest first)", () if rows else ("(no runs)",))

    def show_moment(self, day: Day, slot: str) -> Table:
        """The control item before and after `slot`'s deliveries, changed fields marked."""
        before, after = day.moment(slot)
        return show_state(after, before=before, title=f"control item around the {slot} slot")

    def proof(self, day: Day) -> Proof:
        """The seed's proof checks on the stored state, against what the day's steps did."""
        state = self.store.read(self.names.job)
        runs = self.history()
        ok_steps = [s for s in day.steps if s.succeeded]
        successes = [r for r in runs if r.outcome is Outcome.SUCCEEDED]
        failures = [r for r in runs if r.outcome is Outcome.FAILED]
        rows: list[tuple[str, str, str, bool]] = []

        def check(what: str, expected: Any, found: Any, ok: bool | None = None) -> None:
            e, f = str(expected), str(found)
            rows.append((what, e, f, e == f if ok is None else ok))

        check("run_count = successful runs", len(ok_steps), state.run_count)
        newest = successes[0] if successes else None
        check(
            "last_success_ts = when the last successful run finished",
            _ts(None if newest is None else newest.finished_at),
            _ts(state.last_success_ts),
        )
        last_slot = max((s.slot for s in ok_steps), default=None)
        interval = self._interval()
        check(
            "next_allowed_run = last successful slot + interval",
            _ts(None if last_slot is None else last_slot + interval),
            _ts(state.next_allowed_run),
        )
        for step in day.steps:
            if step.drill is Drill.FAIL:
                after = step.state_after
                check(
                    f"after the failing {_hhmm(step.slot)} run: status", "IDLE", after.status.value
                )
                check(
                    f"after the failing {_hhmm(step.slot)} run: last_error",
                    "set",
                    after.last_error or "-",
                    ok=bool(after.last_error),
                )
        crashed = [s for s in day.steps if s.drill is Drill.CRASH]
        for step in crashed:
            check(
                f"after the {_hhmm(step.slot)} crash: the lock is held",
                "RUNNING",
                step.state_after.status.value,
            )
        check("takeover recorded: takeover_count", len(crashed), state.takeover_count)
        if crashed:
            check(
                "takeover recorded: last_takeover_from = the crashed run",
                crashed[-1].state_after.run_id,
                state.last_takeover_from or "-",
            )
        slots = [r.slot for r in successes]
        check("no slot succeeded twice", "yes", "yes" if len(slots) == len(set(slots)) else "no")
        failed_steps = [s for s in day.steps if (s.result or {}).get("outcome") == Outcome.FAILED]
        check(
            "run history: one item per finished run",
            f"{len(ok_steps)} SUCCEEDED, {len(failed_steps)} FAILED",
            f"{len(successes)} SUCCEEDED, {len(failures)} FAILED",
        )
        days = self._history_days()
        expiring = sum(
            r.expires_at == int((r.finished_at + timedelta(days=days)).timestamp()) for r in runs
        )
        check(f"run history items expire {days} days after they finished", len(runs), expiring)
        ttl = self.target.client("dynamodb").describe_time_to_live(TableName=self.names.table)
        description = ttl["TimeToLiveDescription"]
        found = f"{description.get('AttributeName', '-')} {description.get('TimeToLiveStatus')}"
        # AWS takes up to an hour to switch TTL on and says ENABLING meanwhile:
        # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/time-to-live-ttl-how-to.html
        on = found in (f"{TTL_ATTRIBUTE} ENABLED", f"{TTL_ATTRIBUTE} ENABLING")
        check("the table's TTL attribute", f"{TTL_ATTRIBUTE} ENABLED (or ENABLING)", found, on)
        check(
            "finally: status IDLE, nobody holds the lock",
            "IDLE, -",
            f"{state.status.value}, {state.run_id or '-'}",
        )
        return Proof(tuple(rows))

    def _function_env(self) -> dict[str, str]:
        config = self.target.client("lambda").get_function_configuration(
            FunctionName=self.names.function
        )
        return dict(config.get("Environment", {}).get("Variables", {}))

    def _job_config(self) -> JobConfig:
        # The deployed function's settings, read the way its handler reads them.
        return settings_from_env(self._function_env()).config

    def _interval(self) -> timedelta:
        return self._job_config().interval

    def _history_days(self) -> int:
        return self._job_config().run_history_days

    def show_failures(self) -> Table:
        """The records in the on-failure queue (what Lambda sent after a failed async run)."""
        sqs = self.target.client("sqs")
        url = sqs.get_queue_url(QueueName=self.names.failure_queue)["QueueUrl"]
        # VisibilityTimeout 0: reading leaves the messages where they are, for the next look.
        messages = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0
        ).get("Messages", [])
        rows = []
        for message in messages:
            record = json.loads(message["Body"])
            context = record.get("requestContext", {})
            payload = record.get("requestPayload") or {}
            response = record.get("responsePayload") or {}
            rows.append(
                (
                    _hhmm_text(payload.get("scheduled_time")),
                    context.get("condition", "-"),
                    str(context.get("approximateInvokeCount", "-")),
                    response.get("errorType", "-"),
                )
            )
        header = ("slot", "condition", "invocations", "errorType")
        notes = () if rows else ("(empty)",)
        return Table(header, tuple(rows), f"queue {self.names.failure_queue}", notes)

    def log_lines(self, day: Day | None = None) -> Table:
        """The handler's JSON log lines read back: from the local runner's captured output
        when a day is given (embedded: what each process printed), otherwise from the
        function's log group in CloudWatch Logs (FilterLogEvents), on either backend."""
        if day is not None:
            lines = [line for step in day.steps for line in step.log.splitlines()]
            return show_lines(decisions(lines), source="the local runner's captured output")
        lines = cloudwatch_lines(self.target, self.names.log_group)
        return show_lines(decisions(lines), source=f"CloudWatch Logs {self.names.log_group}")

    def dashboard_snapshot(self, *, at: datetime | None = None) -> Any:
        """A still picture of the dashboard: for stored output, so it asks for no press."""
        board = self.dashboard(at=at)
        board.message = "(a still picture: run lab.dashboard() for the live widget)"
        return board.snapshot()

    def dashboard(self, *, at: datetime | None = None) -> Any:
        """The course dashboard (notebook 04's), pointed at the deployed table, its clock at
        `at` (default: the lab's clock)."""
        from jobcontroller.course.core import Course
        from jobcontroller.course.dashboard import Dashboard
        from jobcontroller.model import JobConfig

        now = at or self.clock.now()
        course = Course(
            self.store,
            job=self.names.job,
            start=now,
            config=JobConfig(interval_seconds=int(self._interval().total_seconds())),
            backend="embedded (moto on loopback)" if self.embedded else "real AWS",
        )
        return Dashboard(course)

    def close(self) -> None:
        runner = self._runner
        if isinstance(runner, LocalLambdaRunner):
            runner.close()
        self._runner = self._driver = None
        self._scratch.cleanup()


def _hhmm_text(text: str | None) -> str:
    if not text:
        return "-"
    return _hhmm(datetime.fromisoformat(text.replace("Z", "+00:00")))


def _json(document: Any) -> Any:
    # IAM documents arrive decoded by boto3; older paths hand back the URL-encoded string.
    if isinstance(document, str):
        import urllib.parse

        return json.loads(urllib.parse.unquote(document))
    return document


def show_invocation(invocation: Invocation, *, title: str = "the invocation") -> Table:
    """How one invocation ended: its status and what the handler returned (or raised)."""
    rows = [("status", invocation.status)]
    if isinstance(invocation.result, dict):
        for key in ("outcome", "reason", "run_id", "slot", "keyed_by", "took_over_from", "error"):
            value = invocation.result.get(key)
            rows.append((key, "-" if value is None else str(value)))
    if invocation.error:
        rows.append(("errorType", str(invocation.error.get("errorType"))))
        rows.append(("errorMessage", str(invocation.error.get("errorMessage"))))
    return Table(("field", "value"), tuple(rows), title)


# --- set-up --------------------------------------------------------------------------------


def start(
    *,
    prefix: str = DEFAULT_PREFIX,
    confirm: str | None = None,
    job: str = _deploy.DEFAULT_JOB,
    stack: Literal["empty", "deployed"] = "deployed",
    say: Callable[[str], None] | None = print,
) -> Lab:
    """Connect and return the notebook's Lab, with the stack as the notebook needs it.

    The embedded backend is used unless the environment sets JOBCONTROLLER_REAL_AWS=1; then
    the account and region are shown and nothing is changed unless `confirm` is that
    account id. `stack="empty"` (notebook 06) starts with nothing deployed on the embedded
    backend; `"deployed"` (07, 08) deploys whatever is missing and starts the job from IDLE.
    On the embedded backend every start is fresh, so a notebook prints the same every time.
    """
    if os.environ.get(_deploy.REAL_AWS_ENV) == "1":
        target = _deploy.connect(confirm=confirm, say=say)
    else:
        from jobcontroller.embedded.server import start_embedded

        target = _deploy.connect(start_embedded().session(), say=None)
    lab = Lab(target, _deploy.Names(prefix, job))
    if lab.embedded and _deploy.leftovers(target, prefix):
        lab.teardown(say=None)
    if stack == "deployed":
        if lab.deployed():
            lab.reset_job()
        else:
            lab.deploy(say=None if lab.embedded else say)
    return lab
