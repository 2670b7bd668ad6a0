"""The designs that break, kept so the course can prove that they break.

Nothing in the controller uses this module. Each function reproduces one of the design
card's "common errors" faithfully enough to fail the way production would, and no further.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from jobcontroller.clock import ManualClock
from jobcontroller.course.display import Table, cell
from jobcontroller.gate import decide, next_allowed_run_after
from jobcontroller.model import Action, Decision, JobConfig, JobState, Status, Trigger
from jobcontroller.store import ControlStore

__all__ = [
    "ScheduleStep",
    "compare_cooldowns",
    "naive_acquire",
    "naive_release",
    "seed_invoke",
    "simulate_schedule",
]


def naive_acquire(
    store: object,
    job: str,
    *,
    run_id: str,
    now: datetime,
    between_read_and_write: Callable[[], None] | None = None,
) -> bool:
    """Read-then-write "locking": read, check IDLE in Python, then write RUNNING blindly.

    `between_read_and_write` runs after the read and before the write. The course passes a
    barrier there so that every contender reads before anyone writes: the interleaving that
    happens by chance in production, forced so the output is the same on every run.
    Returns True when this caller believes it holds the lock.
    """
    state = store.read(job)  # type: ignore[attr-defined]
    if state.status is not Status.IDLE:
        return False
    if between_read_and_write is not None:
        between_read_and_write()
    store.write_unconditionally(  # type: ignore[attr-defined]
        replace(
            state,
            status=Status.RUNNING,
            version=state.version + 1,
            run_id=run_id,
            last_run_ts=now,
            # The seed's design has no lease; this one only fills the field so the item
            # stays readable. Nothing ever checks it.
            lease_expires_at=now + timedelta(days=365 * 100),
        )
    )
    return True


def naive_release(store: object, job: str, *, now: datetime) -> JobState:
    """The naive commit: read, bump counters in Python, write back with no condition."""
    state = store.read(job)  # type: ignore[attr-defined]
    done = replace(
        state,
        status=Status.IDLE,
        version=state.version + 1,
        run_count=state.run_count + 1,
        last_success_ts=now,
        last_run_id=state.run_id,
        run_id=None,
        lease_expires_at=None,
    )
    store.write_unconditionally(done)  # type: ignore[attr-defined]
    return done


@dataclass(frozen=True)
class ScheduleStep:
    """One trigger of a simulated schedule: when it was due, when it arrived, what happened."""

    slot: datetime
    arrived: datetime
    decision: Decision
    next_allowed_run: datetime | None


def simulate_schedule(
    slots: Iterable[datetime],
    *,
    delays: Iterable[float],
    workload_seconds: float,
    config: JobConfig,
    cooldown_from: Literal["slot", "completion"],
    job: str = "hourly_processor",
) -> list[ScheduleStep]:
    """Replay a schedule through the real gate with one cooldown rule or the other.

    Pure and in memory: each trigger arrives `delay` seconds after its slot; a run takes
    `workload_seconds` and then sets `next_allowed_run` either from its slot (the
    package's rule) or from when it finished (the tempting, wrong rule).
    """
    state = JobState.new(job)
    steps: list[ScheduleStep] = []
    for slot, delay in zip(slots, delays, strict=True):
        arrived = slot + timedelta(seconds=delay)
        trigger = Trigger(job, slot=slot, source="scheduler")
        decision = decide(state, trigger, arrived, config=config)
        if decision.action is Action.RUN:
            finished = arrived + timedelta(seconds=workload_seconds)
            if cooldown_from == "slot":
                next_allowed = next_allowed_run_after(slot, arrived, config=config)
            else:
                next_allowed = finished + config.interval
            state = replace(
                state,
                run_count=state.run_count + 1,
                last_slot=slot,
                last_success_ts=finished,
                next_allowed_run=next_allowed,
            )
        steps.append(ScheduleStep(slot, arrived, decision, state.next_allowed_run))
    return steps


def compare_cooldowns(
    first: datetime,
    *,
    config: JobConfig,
    job: str,
    hours: int = 24,
    workload_seconds: float = 90,
    delays: Sequence[float] | None = None,
) -> Table:
    """A simulated day of hourly slots from `first`, under both cooldown rules, side by side."""
    slots = [first + config.interval * h for h in range(hours)]
    # Deliveries land 0-59 s late, in a fixed pattern (EventBridge delivers "within a
    # minute" of the scheduled time; the exact delay varies).
    late = list(delays) if delays is not None else [(17 * h + 5) % 60 for h in range(hours)]
    runs = {}
    for anchor in ("completion", "slot"):
        runs[anchor] = simulate_schedule(
            slots,
            delays=late,
            workload_seconds=workload_seconds,
            config=config,
            cooldown_from=anchor,
            job=job,
        )

    def verdict(step: ScheduleStep) -> str:
        if step.decision.runs:
            return "ran"
        return f"SKIP {cell(step.decision.reason)}"

    rows = tuple(
        (
            cell(slot, time="hh:mm"),
            f"+{int(delay)}s",
            verdict(a),
            verdict(b),
        )
        for slot, delay, a, b in zip(slots, late, runs["completion"], runs["slot"], strict=True)
    )
    ran_c = sum(1 for s in runs["completion"] if s.decision.runs)
    ran_s = sum(1 for s in runs["slot"] if s.decision.runs)
    notes = (
        f"cooldown from completion: ran {ran_c} of {hours} slots",
        f"cooldown from the slot:   ran {ran_s} of {hours} slots",
    )
    header = ("slot", "late by", "from completion", "from slot")
    title = f"a day of hourly triggers, each run taking {workload_seconds:g}s"
    return Table(header, rows, title, notes)


def seed_invoke(
    store: ControlStore,
    job: str,
    *,
    clock: ManualClock,
    run_id: str,
    seconds: float,
    crash: bool = False,
) -> str:
    """One invocation with a lock that has no lease: read, check IDLE, write RUNNING, work,
    write IDLE (the naive lock, no condition on the writes). What happened, as one line.

    Like the design card's lock it has no lease, so a crash wedges it the same way; unlike
    the card's item it stores the holder's run id, only so a notebook can show who holds
    the lock. With `crash=True` the process dies after taking the lock, as a Lambda killed
    by its timeout would.
    """
    now = clock.now()
    if not naive_acquire(store, job, run_id=run_id, now=now):
        state = store.read(job)
        held = f"{state.status.value} (held by {state.run_id})"
        return f"{cell(now)}  exit: status is {held}"
    if crash:
        return f"{cell(now)}  {run_id} took the lock and crashed before releasing it"
    clock.sleep(seconds)
    naive_release(store, job, now=clock.now())
    return f"{cell(now)}  {run_id} ran"
