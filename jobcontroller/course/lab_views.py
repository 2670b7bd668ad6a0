"""What the deployed stack's AWS APIs report back, as notebooks 06-08 show it.

Every display here is built from what the AWS APIs return (DescribeTable, GetRole,
GetFunctionConfiguration, GetSchedule, ...), never from what the deploy module meant to
create, and leaves out request ids and creation dates, so stored notebook outputs match on
every run of the embedded backend.

Course tooling only: the Lambda never imports this module.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from jobcontroller.course.display import Table, cell
from jobcontroller.handler import settings_from_env
from jobcontroller.model import JobConfig
from jobcontroller.ops import deploy as _deploy
from jobcontroller.ops.invocation import Invocation
from jobcontroller.ops.packaging import build_zip, inspect_zip
from jobcontroller.ops.queues import failure_records
from jobcontroller.ops.schedules import ScheduleSpec, render_event
from jobcontroller.store import ControlStore

__all__ = [
    "Deployed",
    "Document",
    "resource_kind",
    "show_event",
    "show_invocation",
    "show_zip",
]


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


class Deployed:
    """One prefix's deployed resources, read back through the AWS APIs."""

    def __init__(self, target: _deploy.Target, names: _deploy.Names, store: ControlStore) -> None:
        self.target = target
        self.names = names
        self.store = store

    def exists(self) -> bool:
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

    def describe(self) -> Table:
        """Where this notebook works and the names every resource gets from the prefix."""
        n = self.names
        rows = (
            ("backend", "embedded (moto on loopback)" if self.target.embedded else "REAL AWS"),
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

    def show_resources(self) -> Table:
        """Everything that belongs to the prefix (by tag, IAM path or name), found now."""
        arns = _deploy.leftovers(self.target, self.names.prefix)
        rows = tuple(resource_kind(arn) for arn in arns)
        notes = () if rows else (f"(nothing is left for prefix {self.names.prefix!r})",)
        return Table(("kind", "name"), rows, f"resources of prefix {self.names.prefix!r}", notes)

    def show_failures(self) -> Table:
        """The records in the on-failure queue (what Lambda sent after a failed async run)."""
        rows = []
        for record in failure_records(self.target, self.names):
            context = record.get("requestContext", {})
            payload = record.get("requestPayload") or {}
            response = record.get("responsePayload") or {}
            rows.append(
                (
                    cell(payload.get("scheduled_time") or None, time="hh:mm"),
                    context.get("condition", "-"),
                    str(context.get("approximateInvokeCount", "-")),
                    response.get("errorType", "-"),
                )
            )
        header = ("slot", "condition", "invocations", "errorType")
        notes = () if rows else ("(empty)",)
        return Table(header, tuple(rows), f"queue {self.names.failure_queue}", notes)

    def function_env(self) -> dict[str, str]:
        config = self.target.client("lambda").get_function_configuration(
            FunctionName=self.names.function
        )
        return dict(config.get("Environment", {}).get("Variables", {}))

    def job_config(self) -> JobConfig:
        # The deployed function's settings, read the way its handler reads them.
        return settings_from_env(self.function_env()).config


def show_zip(path: Path, *, again_dir: Path) -> Table:
    """What the zip at `path` holds, and that building it again (into `again_dir`) gives the
    same bytes."""
    report = inspect_zip(path)
    again = inspect_zip(build_zip(out_dir=again_dir))
    top = sorted({e.split("/", 1)[0] for e in report.entries})
    rows = tuple((entry, "the handler's own code") for entry in report.entries)
    notes = (
        f"top-level packages in the zip: {', '.join(top)} (no third-party package: "
        "boto3 is already in the Lambda runtime)",
        "built twice, same bytes: " + ("yes" if again.sha256 == report.sha256 else "NO"),
    )
    return Table(("file", "why"), rows, f"{report.path.name}: {len(rows)} files", notes)


def show_event(spec: ScheduleSpec, slot: datetime) -> Document:
    """The schedule's input template as stored, and the event it becomes for `slot`."""
    return Document(
        "the schedule's input",
        (
            ("template, as stored in the schedule", json.loads(spec.input_template)),
            (f"what the Scheduler delivers for the {cell(slot)} slot", render_event(spec, slot)),
        ),
    )


def _tags(tags: Mapping[str, str] | Iterable[Mapping[str, str]]) -> str:
    # As a dict: moto lists a DynamoDB tag twice once it has been set twice; AWS does not.
    pairs = dict(tags) if isinstance(tags, Mapping) else {t["Key"]: t["Value"] for t in tags}
    return ", ".join(f"{k}={v}" for k, v in sorted(pairs.items())) or "(none)"


def _arn_name(arn: str) -> str:
    """The last part of an ARN: a role's or function's or queue's name."""
    return arn.rsplit("/", 1)[-1].rsplit(":", 1)[-1]


def resource_kind(arn: str) -> tuple[str, str]:
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
