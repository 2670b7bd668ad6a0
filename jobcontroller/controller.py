"""One invocation of the job: read, gate, acquire, run the workload, commit or record failure.

Nothing is kept in memory between invocations (rule 7): every decision comes from the item
just read, and every transition is written before the next step depends on it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from .clock import Clock, SystemClock, random_ids
from .errors import BadEvent, ConfigError
from .events import check_slot
from .gate import decide, next_allowed_run_after
from .model import (
    Action,
    Decision,
    JobConfig,
    JobState,
    Outcome,
    Reason,
    RunRecord,
    Trigger,
    format_ts,
    whole_seconds,
)
from .store import Acquired, Blocked, Committed, ControlStore, Fenced, history_expiry
from .workload import Workload, WorkloadContext

__all__ = ["InvocationResult", "JobController", "Outcome"]

log = logging.getLogger("jobcontroller")

# An acquire refused by a transaction conflict reads and decides again, this many times in all.
ACQUIRE_ATTEMPTS = 3
ACQUIRE_BACKOFF_SECONDS = 0.05


@dataclass(frozen=True)
class InvocationResult:
    """What one invocation did, and the control item as it left it."""

    job: str
    outcome: Outcome
    keyed_by: str
    reason: Reason | None = None
    detail: str = ""
    run_id: str | None = None
    slot: datetime | None = None
    took_over_from: str | None = None
    error: str | None = None
    result: Any = None
    state: JobState | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (the Lambda's return value)."""
        return {
            "job": self.job,
            "outcome": self.outcome.value,
            "reason": None if self.reason is None else self.reason.value,
            "detail": self.detail,
            "run_id": self.run_id,
            "slot": None if self.slot is None else format_ts(self.slot),
            "keyed_by": self.keyed_by,
            "took_over_from": self.took_over_from,
            "error": self.error,
        }


class JobController:
    """Decides whether `job` runs for a trigger, and runs it at most once per slot.

    The store, the clock and the run-id factory are passed in, so a notebook can drive time
    by hand and print the same ids on every run. `wall_clock` stamps only the run history's
    expiry: DynamoDB's TTL deletes by real time, whatever time the job is driven by.
    """

    def __init__(
        self,
        store: ControlStore,
        job: str,
        *,
        config: JobConfig | None = None,
        clock: Clock | None = None,
        wall_clock: Clock | None = None,
        new_run_id: Callable[[], str] = random_ids,
    ) -> None:
        self.store = store
        self.job = job
        self.config = config or JobConfig()
        self.clock = clock or SystemClock()
        self.wall_clock = wall_clock or SystemClock()
        self.new_run_id = new_run_id

    def lease_for(self, now: datetime, remaining_ms: int | None) -> datetime:
        """The lease end: the Lambda's remaining time minus a margin (rule 2).

        The lease must end before the Lambda can be killed, so that once the process is
        gone its lease has already passed and the next trigger may take over. It is cut
        down to whole seconds, the stored precision, and the workload's deadline is this
        same instant: a deadline that kept the fraction would still be running when the
        lease as stored had passed and another run had taken over.
        """
        seconds: float
        if remaining_ms is None:
            seconds = self.config.default_lease_seconds
        else:
            seconds = remaining_ms / 1000 - self.config.lease_margin_seconds
        if seconds <= 0:
            raise ConfigError(
                f"only {remaining_ms} ms left but the lease margin is "
                f"{self.config.lease_margin_seconds} s: raise the function's timeout above "
                f"the margin or lower JOB_LEASE_MARGIN_SECONDS"
            )
        lease_until = whole_seconds(now + timedelta(seconds=seconds))
        if self._deadline(lease_until) <= now:
            raise ConfigError(
                f"a lease of {seconds:g} s leaves no working time once twice the tolerated clock "
                f"skew ({self.config.clock_skew_seconds} s) is taken off: raise the function's "
                f"timeout or lower clock_skew_seconds"
            )
        return lease_until

    def _deadline(self, lease_until: datetime) -> datetime:
        """When the workload must stop: the lease as stored, less twice the tolerated skew
        between invokers' clocks (JobConfig.clock_skew_seconds), so no successor can see the
        lease as passed while this run still works."""
        return lease_until - 2 * timedelta(seconds=self.config.clock_skew_seconds)

    def invoke(
        self, trigger: Trigger, workload: Workload, *, remaining_ms: int | None = None
    ) -> InvocationResult:
        """Handle one trigger end to end and say what happened."""
        if trigger.job != self.job:
            raise ConfigError(f"trigger is for job {trigger.job!r}, controller for {self.job!r}")
        now = self.clock.now()
        if trigger.slot is not None:
            check_slot(trigger.slot, now=now)
            # The slot is the idempotency key at the stored precision (whole seconds).
            trigger = replace(trigger, slot=whole_seconds(trigger.slot.astimezone(UTC)))
        # Everything that could fail on the calendar's edge is computed before any write,
        # so that nothing between acquire and commit raises outside the workload's `try`.
        try:
            lease_until = self.lease_for(now, remaining_ms)
            next_allowed = next_allowed_run_after(trigger.slot, now, config=self.config)
            format_ts(next_allowed)
        except OverflowError:
            raise BadEvent(
                f"this invocation at {format_ts(now)} (slot "
                f"{'-' if trigger.slot is None else format_ts(trigger.slot)}) would set a lease "
                "or next allowed run after year 9999; nothing was written"
            ) from None
        run_id: str | None = None  # drawn once, when the gate first says yes
        for attempt in range(1, ACQUIRE_ATTEMPTS + 1):
            state = self.store.read(self.job)
            decision = decide(state, trigger, now, config=self.config)
            if decision.action is Action.SKIP:
                return self._skipped(trigger, decision, state)
            run_id = run_id or self.new_run_id()
            takeover = decision.action is Action.TAKEOVER
            acquired = self.store.acquire(
                state,
                run_id=run_id,
                now=now,
                lease_until=lease_until,
                slot=trigger.slot,
                takeover=takeover,
            )
            # A transaction conflict says nothing about who won: the transaction in flight
            # may be a fenced late commit that DynamoDB is about to cancel. Read again and
            # decide again, or the only delivery of a slot could give it up for nothing.
            # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-conflict-handling
            if not (isinstance(acquired, Blocked) and acquired.conflict):
                break
            if attempt < ACQUIRE_ATTEMPTS:
                self.clock.sleep(ACQUIRE_BACKOFF_SECONDS * 2 ** (attempt - 1))
        if not isinstance(acquired, Acquired):
            holder = acquired.state
            detail = "another invocation changed the item between our read and our write"
            if acquired.conflict:
                detail = "another invocation's transaction was writing the item as we wrote"
            if holder is not None and holder.run_id:
                detail += f"; run {holder.run_id} holds the lock"
            lost = Decision(Action.SKIP, Reason.LOST_RACE, detail)
            return self._skipped(trigger, lost, holder)
        assert run_id is not None  # drawn before the acquire that just succeeded

        took_over_from = state.run_id if takeover else None
        ctx = WorkloadContext(
            job=self.job,
            run_id=run_id,
            slot=trigger.slot,
            deadline=self._deadline(lease_until),
            clock=self.clock,
            drill=state.drill,
        )
        log.info("acquired", extra={"run_id": run_id, "took_over_from": took_over_from})
        try:
            result = workload(ctx)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            try:
                finished = self._finish(
                    acquired.state, trigger, run_id, now, took_over_from, error, next_allowed
                )
            except Exception as record_exc:
                # Keep the workload's exception: it is what the operator needs to see.
                exc.add_note(
                    f"jobcontroller: recording this failure also failed ({record_exc!r}); "
                    "the lease will run out and the next trigger will take over"
                )
                raise exc from record_exc
            return self._finished(trigger, run_id, took_over_from, finished, error=error)
        finished = self._finish(
            acquired.state, trigger, run_id, now, took_over_from, None, next_allowed
        )
        return self._finished(trigger, run_id, took_over_from, finished, result=result)

    # --- helpers -------------------------------------------------------------------------

    def _finish(
        self,
        held: JobState,
        trigger: Trigger,
        run_id: str,
        started: datetime,
        took_over_from: str | None,
        error: str | None,
        next_allowed: datetime,
    ) -> Committed | Fenced:
        finished_at = self.clock.now()
        # One reading when both clocks are the same, so the TTL is exactly finished_at + days.
        wall_now = finished_at if self.wall_clock is self.clock else self.wall_clock.now()
        record = RunRecord(
            job=self.job,
            run_id=run_id,
            started_at=started,
            finished_at=finished_at,
            outcome=Outcome.SUCCEEDED if error is None else Outcome.FAILED,
            slot=trigger.slot,
            source=trigger.source,
            error=error,
            took_over_from=took_over_from,
            expires_at=history_expiry(wall_now, self.config.run_history_days),
        )
        return self.store.finish(held, record, next_allowed_run=next_allowed)

    def _skipped(
        self, trigger: Trigger, decision: Decision, state: JobState | None
    ) -> InvocationResult:
        log.info("skipped", extra={"reason": str(decision.reason), "detail": decision.detail})
        return InvocationResult(
            job=self.job,
            outcome=Outcome.SKIPPED,
            keyed_by=trigger.keyed_by,
            reason=decision.reason,
            detail=decision.detail,
            slot=trigger.slot,
            state=state,
        )

    def _finished(
        self,
        trigger: Trigger,
        run_id: str,
        took_over_from: str | None,
        finished: Committed | Fenced,
        *,
        error: str | None = None,
        result: Any = None,
    ) -> InvocationResult:
        if isinstance(finished, Committed):
            outcome = Outcome.SUCCEEDED if error is None else Outcome.FAILED
            detail = "committed" if error is None else "failure recorded, lock released"
        else:
            outcome = Outcome.FENCED
            holder = finished.state
            detail = "this run lost its lease before it finished; its outcome was refused"
            if holder is not None and holder.run_id:
                detail += f" (run {holder.run_id} holds the lock now)"
            log.warning("fenced", extra={"run_id": run_id, "detail": detail})
        return InvocationResult(
            job=self.job,
            outcome=outcome,
            keyed_by=trigger.keyed_by,
            detail=detail,
            run_id=run_id,
            slot=trigger.slot,
            took_over_from=took_over_from,
            error=error,
            result=result,
            state=finished.state,
        )
