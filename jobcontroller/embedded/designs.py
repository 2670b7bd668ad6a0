"""The designs the fault simulation drives: the package's controller and the broken ones.

Each design decides, for one delivered trigger, whether to run, and runs the workload the
simulation hands it. The counter-examples are the course's: the design card's lock as written,
a read-then-write lock, and a cooldown counted from completion. The simulation's checker must
catch each of them, or it proves nothing about the controller.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Protocol

from botocore.exceptions import ClientError

from jobcontroller.clock import Clock
from jobcontroller.controller import InvocationResult, JobController, Outcome
from jobcontroller.gate import decide, next_allowed_run_after
from jobcontroller.model import Action, JobConfig, Reason, Status, Trigger, format_ts
from jobcontroller.store import ControlStore
from jobcontroller.workload import WorkloadContext

__all__ = ["DESIGNS", "JOB", "LAMBDA_TIMEOUT_MS", "START", "TABLE", "Design", "Env"]

JOB = "hourly_processor"
TABLE = "job_control"
START = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
LAMBDA_TIMEOUT_MS = 180_000


class Env(Protocol):
    """What one simulated invocation gets from the simulation."""

    @property
    def store(self) -> ControlStore: ...

    @property
    def client(self) -> Any: ...

    @property
    def config(self) -> JobConfig: ...

    @property
    def clock(self) -> Clock: ...

    def new_run_id(self) -> str: ...

    def workload(self) -> Callable[[WorkloadContext], Any]: ...


class Design:
    """A way of deciding whether to run; the simulation drives each one the same way."""

    name = "controller"
    keeps_history = True
    supports_pause = True

    def setup(self, client: Any) -> None:
        store = ControlStore(TABLE, client=client)
        store.create_table()
        store.init_job(JOB, now=START - timedelta(days=1))

    def peek(self, client: Any) -> dict[str, Any]:
        """The control item as plain values, without validation (a counter-example's item
        may not be one the package would accept)."""
        item = client.get_item(
            TableName=TABLE, Key={"PK": {"S": f"JOB#{JOB}"}, "SK": {"S": "STATE"}}
        ).get("Item", {})
        return {k: None if "NULL" in v else next(iter(v.values())) for k, v in item.items()}

    def invoke(self, env: Env, trigger: Trigger) -> InvocationResult:
        controller = JobController(
            env.store, JOB, config=env.config, clock=env.clock, new_run_id=env.new_run_id
        )
        return controller.invoke(trigger, env.workload(), remaining_ms=LAMBDA_TIMEOUT_MS)


def _skipped(trigger: Trigger, reason: Reason, detail: str) -> InvocationResult:
    return InvocationResult(
        job=JOB,
        outcome=Outcome.SKIPPED,
        keyed_by=trigger.keyed_by,
        reason=reason,
        detail=detail,
        slot=trigger.slot,
    )


def _ran(trigger: Trigger, run_id: str, outcome: Outcome, error: str | None) -> InvocationResult:
    return InvocationResult(
        job=JOB,
        outcome=outcome,
        keyed_by=trigger.keyed_by,
        run_id=run_id,
        slot=trigger.slot,
        error=error,
    )


class CardDesign(Design):
    """The design card as written: read, gate, conditional lock, work, unconditional commit.

    No lease (a crash leaves the job RUNNING for good), no once-per-slot key, and the
    cooldown is counted from when the run finished.
    """

    name = "card"
    keeps_history = False
    supports_pause = False
    _KEY: ClassVar[dict[str, Any]] = {"PK": {"S": f"JOB#{JOB}"}, "SK": {"S": "STATE"}}

    def invoke(self, env: Env, trigger: Trigger) -> InvocationResult:
        client, now = env.client, env.clock.now()
        item = client.get_item(TableName=TABLE, Key=self._KEY, ConsistentRead=True)["Item"]
        if item["status"]["S"] == "RUNNING":
            return _skipped(trigger, Reason.RUNNING, "status is RUNNING")
        allowed = item.get("next_allowed_run", {}).get("S")
        if allowed and format_ts(now) < allowed:
            return _skipped(trigger, Reason.COOLDOWN, f"next run allowed from {allowed}")
        run_id = env.new_run_id()
        try:
            client.update_item(
                TableName=TABLE,
                Key=self._KEY,
                UpdateExpression="SET #s = :r, last_run_ts = :now",
                ConditionExpression="#s = :i AND version = :v",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":r": {"S": "RUNNING"},
                    ":i": {"S": "IDLE"},
                    ":now": {"S": format_ts(now)},
                    ":v": item["version"],
                },
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return _skipped(trigger, Reason.LOST_RACE, "the conditional write was refused")
        lease = now + timedelta(milliseconds=LAMBDA_TIMEOUT_MS)
        ctx = WorkloadContext(JOB, run_id, trigger.slot, lease, env.clock)
        error = None
        try:
            env.workload()(ctx)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        done = env.clock.now()
        sets = (
            "SET #s = :idle, last_success_ts = :now, next_allowed_run = :next, "
            "run_count = run_count + :one"
        )
        values: dict[str, Any] = {
            ":idle": {"S": "IDLE"},
            ":now": {"S": format_ts(done)},
            ":next": {"S": format_ts(done + env.config.interval)},
            ":one": {"N": "1"},
        }
        if error is not None:
            sets = "SET #s = :idle, last_error = :error"
            values = {":idle": {"S": "IDLE"}, ":error": {"S": error}}
        client.update_item(
            TableName=TABLE,
            Key=self._KEY,
            UpdateExpression=sets,
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=values,
        )
        return _ran(trigger, run_id, Outcome.SUCCEEDED if error is None else Outcome.FAILED, error)


class ReadThenWriteDesign(Design):
    """The package's gate, but the lock is read, check in Python, then write unconditionally."""

    name = "read-then-write"
    keeps_history = False
    supports_pause = False

    def invoke(self, env: Env, trigger: Trigger) -> InvocationResult:
        store, now = env.store, env.clock.now()
        state = store.read(JOB)
        decision = decide(state, trigger, now, config=env.config)
        if decision.action is Action.SKIP:
            return _skipped(trigger, decision.reason or Reason.RUNNING, decision.detail)
        run_id = env.new_run_id()
        lease = now + timedelta(
            milliseconds=LAMBDA_TIMEOUT_MS, seconds=-env.config.lease_margin_seconds
        )
        store.write_unconditionally(
            replace(
                state,
                status=Status.RUNNING,
                version=state.version + 1,
                run_id=run_id,
                lease_expires_at=lease,
                run_slot=trigger.slot,
                last_run_ts=now,
            )
        )
        ctx = WorkloadContext(JOB, run_id, trigger.slot, lease, env.clock)
        env.workload()(ctx)
        done = store.read(JOB)
        store.write_unconditionally(
            replace(
                done,
                status=Status.IDLE,
                version=done.version + 1,
                run_id=None,
                lease_expires_at=None,
                run_slot=None,
                run_count=done.run_count + 1,
                last_slot=trigger.slot,
                last_run_id=run_id,
                next_allowed_run=next_allowed_run_after(trigger.slot, now, config=env.config),
            )
        )
        return _ran(trigger, run_id, Outcome.SUCCEEDED, None)


class CompletionCooldownDesign(Design):
    """The package's controller, except that the cooldown counts from when a run finished."""

    name = "completion-cooldown"

    def invoke(self, env: Env, trigger: Trigger) -> InvocationResult:
        result = super().invoke(env, trigger)
        if result.outcome is Outcome.SUCCEEDED and result.state is not None:
            # The tempting rule: the next run one interval after this one *finished*.
            finished = result.state.last_success_ts or env.clock.now()
            env.store.client.update_item(
                TableName=TABLE,
                Key={"PK": {"S": f"JOB#{JOB}"}, "SK": {"S": "STATE"}},
                UpdateExpression="SET next_allowed_run = :next",
                ExpressionAttributeValues={
                    ":next": {"S": format_ts(finished + env.config.interval)}
                },
            )
        return result


DESIGNS: dict[str, type[Design]] = {
    d.name: d for d in (Design, CardDesign, ReadThenWriteDesign, CompletionCooldownDesign)
}
