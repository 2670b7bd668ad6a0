"""The handler's JSON log line, read back (notebook 07): one reader, two sources.

The handler prints one line per invocation, `{"jobcontroller": {...outcome...}}`; Lambda
sends a function's standard output to CloudWatch Logs. On real AWS the lines are read with
`FilterLogEvents`. On the embedded backend the local runner captures each process's output,
and `ShippingLocalRunner` also writes it to the function's log group in moto's CloudWatch Logs
the way Lambda does (a stream per execution environment, START / END / REPORT around the
function's own lines), so the CloudWatch path is exercised on the embedded backend too.

moto's FilterLogEvents understands quoted terms only (a JSON pattern like
`{ $.jobcontroller.outcome = "SKIPPED" }` matches every event there), so the server-side
filter is the term `"jobcontroller"`, which both accept, and the JSON is selected here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from jobcontroller.course.display import Table, cell
from jobcontroller.ops.runner import Invocation, LocalLambdaRunner

__all__ = ["FILTER_PATTERN", "ShippingLocalRunner", "cloudwatch_lines", "decisions", "show_lines"]

FILTER_PATTERN = '"jobcontroller"'


class ShippingLocalRunner(LocalLambdaRunner):
    """The local runner, plus what Lambda does with the output: write it to CloudWatch Logs."""

    def invoke(
        self, event: Any, *, now: datetime | None = None, run_id: str | None = None
    ) -> Invocation:
        invocation = super().invoke(event, now=now, run_id=run_id)
        self._ship(invocation)
        return invocation

    def _ship(self, invocation: Invocation) -> None:
        from botocore.exceptions import ClientError

        logs = self.target.client("logs")
        group = f"/aws/lambda/{self.function_name}"
        # Wall-clock timestamps, as Lambda's: CloudWatch Logs refuses events older than 14 days
        # (the course's replayed January), so the simulated time stays inside the lines.
        # https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutLogEvents.html
        stamp = int(time.time() * 1000)
        # One stream per execution environment, as Lambda writes them (named by day, version
        # and an id of the environment: here this runner's and the environment's name).
        stream = time.strftime("%Y/%m/%d", time.gmtime(stamp / 1000))
        stream += f"/[$LATEST]{id(self):x}-{invocation.environment or invocation.request_id}"
        request = invocation.request_id
        lines = [f"START RequestId: {request} Version: $LATEST"]
        lines += invocation.log.splitlines()
        report = f"REPORT RequestId: {request}\tDuration: {invocation.duration_ms} ms"
        if invocation.init_duration_ms is not None:
            report += f"\tInit Duration: {invocation.init_duration_ms} ms"  # cold starts only
        lines += [f"END RequestId: {request}", report]
        try:
            try:
                logs.create_log_stream(logGroupName=group, logStreamName=stream)
            except ClientError as exc:
                # A warm environment's stream is there already (unless the day changed).
                if exc.response["Error"]["Code"] != "ResourceAlreadyExistsException":
                    raise
            logs.put_log_events(
                logGroupName=group,
                logStreamName=stream,
                logEvents=[{"timestamp": stamp, "message": line} for line in lines],
            )
        except ClientError as exc:
            # No log group: the function's role may not create one (least privilege), so on
            # AWS the lines would be lost too. Anything else is a real problem.
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                raise


def cloudwatch_lines(target: Any, log_group: str, *, since: datetime | None = None) -> list[str]:
    """The log group's lines that mention the handler's key, oldest first (FilterLogEvents)."""
    options: dict[str, Any] = {"logGroupName": log_group, "filterPattern": FILTER_PATTERN}
    if since is not None:
        options["startTime"] = int(since.timestamp() * 1000)
    events = []
    paginator = target.client("logs").get_paginator("filter_log_events")
    for page in paginator.paginate(**options):
        events += page["events"]
    events.sort(key=lambda e: (e["timestamp"], e.get("ingestionTime", 0)))
    return [e["message"] for e in events]


def decisions(lines: Iterable[str]) -> list[dict[str, Any]]:
    """The handler's decisions in `lines`: each line that is a JSON object with its key."""
    found = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # START / END / REPORT, or another line of the function's output
        if isinstance(entry, dict) and isinstance(entry.get("jobcontroller"), dict):
            found.append(entry["jobcontroller"])
    return found


def show_lines(found: Sequence[dict[str, Any]], *, source: str) -> Table:
    """The decisions, one row each, as the log lines carry them."""
    rows = tuple(
        (
            cell(d.get("slot") or None, time="hh:mm"),
            str(d.get("outcome")),
            d.get("reason") or "-",
            d.get("run_id") or "-",
            d.get("took_over_from") or "-",
        )
        for d in found
    )
    header = ("slot", "outcome", "reason", "run_id", "took_over_from")
    note = f"{len(rows)} log lines with the key 'jobcontroller', from {source}"
    return Table(header, rows, "the handler's log lines, read back", (note,))
