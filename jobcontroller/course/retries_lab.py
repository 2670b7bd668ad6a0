"""Notebook 05's failure-first replays: the deployed function with its retry layers left on.

Both replays run the built zip through the local runner and the schedule driver on the
embedded backend (moto neither runs functions nor fires schedules), which honour the same
settings AWS would read: the function's event invoke config (`MaximumRetryAttempts`, Lambda's
retries of a failed asynchronous run, about 1 min and then 2 min apart) and the schedule's
`RetryPolicy` (the Scheduler's retries of a delivery it saw fail). Time is the replay's own, so
minutes pass without waiting and every output is the same on every run.

- `lambda_retries(lab, retries=...)`: the 09:00 run crashes holding the lock; what Lambda's
  retries then do;
- `scheduler_retries(lab, retries=...)`: the 09:00 run succeeds but its answer to the
  Scheduler is lost (`ops.driver.LostAnswers`); what the Scheduler's retries then do.

Course tooling only: the Lambda never imports this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from jobcontroller.course.display import Table, cell
from jobcontroller.course.lab import Lab
from jobcontroller.course.lab_day import COURSE_DAY
from jobcontroller.errors import ConfigError
from jobcontroller.model import JobState
from jobcontroller.ops import deploy
from jobcontroller.ops.driver import DeliveryFailed, LostAnswers, ScheduleDriver
from jobcontroller.ops.invocation import AsyncResult, Invocation
from jobcontroller.ops.schedules import slot_run_id

__all__ = ["Replay", "lambda_retries", "scheduler_retries"]


@dataclass(frozen=True)
class Row:
    """One invocation of the function: who started it, when, and what it did."""

    by: str
    started: datetime
    invocation: Invocation
    run_id: str | None = None  # the run id it was given, where it started a run


@dataclass(frozen=True)
class Replay:
    """The invocations one delivery of the 09:00 slot caused, and the job's state after."""

    title: str
    rows: tuple[Row, ...]
    state: JobState
    note: str

    @property
    def invocations(self) -> int:
        return len(self.rows)

    def table(self) -> Table:
        rows = tuple(
            (
                str(n),
                row.by,
                cell(row.started, time="hh:mm:ss"),
                row.run_id or _run_id(row.invocation),
                _did(row.invocation),
            )
            for n, row in enumerate(self.rows, start=1)
        )
        state = self.state
        after = (
            f"after: status {state.status.value}, holder {cell(state.run_id)}, "
            f"run_count {state.run_count}, takeover_count {state.takeover_count}, "
            f"last_slot {cell(state.last_slot, time='hh:mm')}"
        )
        return Table(
            ("#", "started by", "at", "run id (- : no run)", "what it did"),
            rows,
            title=f"{self.title}: {self.invocations} invocation(s)",
            notes=(after, self.note),
        )

    def _repr_html_(self) -> str:
        return self.table()._repr_html_()

    def __repr__(self) -> str:
        return self.table().text()


def _run_id(invocation: Invocation) -> str:
    result = invocation.result if isinstance(invocation.result, dict) else {}
    return str(result.get("run_id") or "-")


def _did(invocation: Invocation) -> str:
    result = invocation.result
    if not invocation.ok or not isinstance(result, dict):
        kind = (invocation.error or {}).get("errorType", "?")
        return f"{invocation.status} ({kind}): the lock stays held"
    outcome, reason = result.get("outcome"), result.get("reason")
    if result.get("took_over_from"):
        return f"took over from {result['took_over_from']}, ran the slot: {outcome}"
    return f"{outcome} ({reason})" if reason else f"ran the slot: {outcome}"


def _require_embedded(lab: Lab) -> None:
    if not lab.embedded:
        raise ConfigError(
            "these replays change the stack's retry settings and run on the replay's clock: "
            "run them on the embedded backend (start Jupyter without JOBCONTROLLER_BACKEND=aws "
            "or JOBCONTROLLER_REAL_AWS)"
        )


def _attempt_rows(result: AsyncResult, first_by: str, run_id: str) -> list[Row]:
    count = len(result.attempts)
    labels = [first_by] + [f"Lambda retry {n}" for n in range(1, count)]
    # The ids the runner gave each attempt (ops.runner: `<run_id>-retry<n>`).
    ids = [run_id] + [f"{run_id}-retry{n}" for n in range(1, count)]
    return [
        Row(label, started, invocation, given)
        for label, started, invocation, given in zip(
            labels, result.started, result.attempts, ids, strict=True
        )
    ]


def lambda_retries(lab: Lab, *, retries: int) -> Replay:
    """Set the function's MaximumRetryAttempts to `retries`, start the job from IDLE with a
    CRASH drill, deliver the 09:00 slot once, and show every invocation that followed."""
    _require_embedded(lab)
    deploy.ensure_async_config(
        lab.target, lab.names, settings=deploy.FunctionSettings(async_max_retries=retries)
    )
    lab.reset_job()
    lab.store.set_drill(lab.names.job, "CRASH")
    driver = ScheduleDriver(lab.target, lab.names, lab.runner, run_ids=slot_run_id)
    (delivery,) = driver.fire(COURSE_DAY)
    assert delivery.result is not None
    rows = _attempt_rows(delivery.result, "the Scheduler, 09:00 slot", slot_run_id(COURSE_DAY, 1))
    sent = delivery.result.sent_to
    note = (
        f"failure record sent to {sent.rsplit(':', 1)[-1]}"
        if sent
        else "no failure record: the last attempt succeeded"
    )
    return Replay(
        f"Lambda MaximumRetryAttempts {retries}",
        tuple(rows),
        lab.store.read(lab.names.job),
        note,
    )


def scheduler_retries(lab: Lab, *, retries: int) -> Replay:
    """Set the schedule's MaximumRetryAttempts to `retries`, start the job from IDLE, and
    deliver the 09:00 slot once with its answer to the Scheduler lost; show what ran."""
    _require_embedded(lab)
    deploy.ensure_schedule(
        lab.target, lab.names, settings=deploy.ScheduleSettings(max_retries=retries)
    )
    lab.reset_job()
    lossy = LostAnswers(lab.runner)
    driver = ScheduleDriver(lab.target, lab.names, lossy, run_ids=slot_run_id)
    try:
        (delivery,) = driver.fire(COURSE_DAY)
        note = f"the Scheduler saw attempt {delivery.attempt} succeed and stopped"
    except DeliveryFailed:
        note = (
            "the Scheduler saw the delivery fail and did not retry (on AWS it then sends the "
            "event to the schedule's dead-letter queue; this replay stops there)"
        )
    rows = [
        Row(f"the Scheduler, attempt {n}", result.started[0], result.attempts[0])
        for n, result in enumerate(lossy.ran, start=1)
    ]
    return Replay(
        f"Scheduler MaximumRetryAttempts {retries}",
        tuple(rows),
        lab.store.read(lab.names.job),
        note,
    )
