"""A day of the deployed job's schedule: planned, driven, and what each delivery did.

Notebook 07 drives one day. On the embedded backend `replay` fires every slot of a `DayPlan`
through the deployed schedule (`ops.driver`) and the built zip, with duplicates, late and
racing deliveries and drilled failures and crashes, at the course's fixed times; on real AWS
`watch` delivers the same kinds of trouble by hand and lets the real scheduler deliver one
slot. Either way the result is a `Day`: each delivery, its outcome and the control item
right after it.

Course tooling only: the Lambda never imports this module.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from jobcontroller.clock import Clock, SystemClock
from jobcontroller.course.display import Table, cell
from jobcontroller.errors import ConfigError
from jobcontroller.model import Drill, JobState, Outcome, Status, format_ts
from jobcontroller.ops import deploy as _deploy
from jobcontroller.ops.driver import ScheduleDriver, wait_for_state
from jobcontroller.ops.invocation import FunctionRunner
from jobcontroller.ops.queues import failure_records
from jobcontroller.store import ControlStore

__all__ = ["COURSE_DAY", "Day", "DayLab", "DayPlan", "Step", "replay", "watch"]

# The replayed day starts at the course's usual first slot; the stack is deployed just before.
COURSE_DAY = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


class DayLab(Protocol):
    """What driving a day needs of the notebook's `Lab`."""

    target: _deploy.Target
    names: _deploy.Names
    store: ControlStore
    embedded: bool
    clock: Clock

    @property
    def runner(self) -> FunctionRunner: ...

    @property
    def driver(self) -> ScheduleDriver: ...


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
        if cell(slot, time="hh:mm") in self.fail:
            return Drill.FAIL
        if cell(slot, time="hh:mm") in self.crash:
            return Drill.CRASH
        return None

    def table(self) -> Table:
        """The plan, one row per slot that is not an ordinary on-time delivery."""
        start, end = self.window()
        rows = []
        for hour in range(self.slots):
            slot = start + timedelta(hours=hour)
            key = cell(slot, time="hh:mm")
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
        title = f"the day: {self.slots} hourly slots, {cell(start)} to {cell(end)}"
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
    environment: str | None = None  # the execution environment that served it, if known
    cold: bool | None = None  # whether that environment was started for it

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

    def slot_of(self, moment: str) -> str:
        """The "HH:MM" slot of a named moment of the day: "failure" (the run drilled to
        fail), "crash" (drilled to crash) or "takeover" (the run that took a dead run's lock
        over); an "HH:MM" is returned as it is. The names work on either backend: real AWS
        (`watch`) delivers other slots than the replay's 14:00, 17:00 and 18:00."""
        finds = {
            "failure": lambda s: s.drill is Drill.FAIL,
            "crash": lambda s: s.drill is Drill.CRASH,
            "takeover": lambda s: bool((s.result or {}).get("took_over_from")),
        }
        if moment not in finds:
            return moment
        step = next((s for s in self.steps if finds[moment](s)), None)
        if step is None:
            raise ConfigError(f"this day has no {moment}: its plan had none, or it did not happen")
        return cell(step.slot, time="hh:mm")

    def moment(self, slot: str) -> tuple[JobState, JobState]:
        """The control item before and after the deliveries of `slot` ("HH:MM", or a named
        moment: see `slot_of`); for a drilled slot, "before" is right after the drill flag
        was written."""
        slot = self.slot_of(slot)
        before = self.initial
        drilled = dict(self.drilled)
        for index, step in enumerate(self.steps):
            if cell(step.slot, time="hh:mm") == slot:
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
                cell(s.slot, time="hh:mm"),
                cell(s.arrived, time="hh:mm:ss"),
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


def replay(lab: DayLab, plan: DayPlan) -> Day:
    """Fire every slot of the plan through the deployed schedule and the built zip."""
    if not lab.embedded:
        raise ConfigError("a day can only be replayed on the embedded backend; use watch()")
    start, end = plan.window()
    initial = lab.store.read(lab.names.job)
    steps: list[Step] = []
    drilled: list[tuple[datetime, JobState]] = []
    for slot in lab.driver.slots(start, end):
        key = cell(slot, time="hh:mm")
        drill = plan.drill_for(slot)
        if drill is not None:
            drilled.append((slot, lab.store.set_drill(lab.names.job, drill)))
        delay = float(plan.late.get(key, 0))
        first = "on time" if not delay else f"{delay:g} s late"
        if key in plan.racing:
            copies, racing, others = 1 + plan.racing[key], True, "at the same moment"
        else:
            copies, racing, others = 1 + plan.duplicates.get(key, 0), False, "again"
        deliveries = lab.driver.fire(slot, delay_seconds=delay, copies=copies, concurrent=racing)
        state = lab.store.read(lab.names.job)
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
                    environment=None if invocation is None else invocation.environment,
                    cold=None if invocation is None else invocation.cold,
                )
            )
    # The day ends when its last run has finished, not when its last delivery arrived:
    # the dashboard's clock must not read earlier than the last success it shows.
    times = [s.arrived for s in steps if s.arrived is not None]
    times += [r.finished_at for r in lab.store.runs(lab.names.job, limit=1)]
    return Day(plan, initial, tuple(steps), max(times, default=end), tuple(drilled))


def _elapsed(clock: Clock) -> Callable[[], float]:
    """Seconds on `clock` for the waits: the machine's monotonic clock on real AWS."""
    if isinstance(clock, SystemClock):
        return time.monotonic
    return lambda: clock.now().timestamp()


def watch(
    lab: DayLab,
    plan: DayPlan,
    *,
    minutes_ahead: float = 3,
    timeout: float = 900,
    lease_timeout: float = 180,
) -> Day:
    """Real AWS: deliver the plan's kinds of trouble by hand through Lambda, then let the real
    scheduler deliver one slot.

    1. The slot three hours ago with a FAIL drill, synchronously, so the answer comes back.
    2. The slot two hours ago with a CRASH drill, *asynchronously*, as the Scheduler invokes:
       Lambda's on-failure destination applies only to asynchronous invocations, so only
       then does the crash reach the on-failure queue. Lambda answers nothing; the crash is
       awaited in the table (the lock held) and read back from the queue.
       https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html
    3. Once the crashed run's lease has passed (polled), the slot an hour ago takes over.
    4. A one-off `at()` schedule a few minutes ahead (the Scheduler deletes it once it
       has fired); the table is polled until its run is recorded.
    5. The same slot again (a duplicate delivery).

    The hourly schedule is disabled meanwhile, so its deliveries do not mix with these,
    and enabled again at the end. The slots delivered by hand lie in the past: the
    function refuses a slot more than a few minutes ahead of its clock, because one
    would mark the real slots before it as done. Every wait is on `lab.clock` (the real
    clock on AWS; a stood-in account's virtual one in the tests).
    """
    if lab.embedded:
        raise ConfigError("watch() is for real AWS; on the embedded backend use replay()")
    clock = lab.clock
    elapsed = _elapsed(clock)

    def wait_until(
        holds: Callable[[JobState], bool], what: str, timeout: float, every: float
    ) -> JobState:
        """Every wait of the day: on `clock`, with a progress line saying `what`."""
        return wait_for_state(
            lab.target,
            lab.names,
            holds,
            timeout=timeout,
            every=every,
            progress=_progress(what, timeout),
            sleep=clock.sleep,
            monotonic=elapsed,
        )

    _deploy.set_schedule_enabled(lab.target, lab.names, False)
    initial = lab.store.read(lab.names.job)
    steps: list[Step] = []
    drilled: list[tuple[datetime, JobState]] = []

    def by_hand(slot: datetime, how: str, drill: Drill | None, delivery: int = 1) -> None:
        if drill is not None:
            drilled.append((slot, lab.store.set_drill(lab.names.job, drill)))
        arrived = clock.now()
        invocation = lab.runner.invoke(lab.driver.render(slot, delivery=delivery))
        error = None if invocation.error is None else invocation.error.get("errorType")
        after = lab.store.read(lab.names.job)
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

    def crash_asynchronously(slot: datetime) -> None:
        before = lab.store.set_drill(lab.names.job, Drill.CRASH)
        drilled.append((slot, before))
        arrived = clock.now()
        lab.runner.invoke_async(lab.driver.render(slot))
        held = wait_until(
            lambda s: s.status is Status.RUNNING and s.version > before.version,
            "waiting for the asynchronous run to take the lock",
            lease_timeout,
            every=5,
        )
        record = _await_failure_record(lab, slot, timeout=lease_timeout, clock=clock)
        error = (record.get("responsePayload") or {}).get("errorType")
        status = "crashed" if error == "Runtime.ExitError" else "error"
        how = "by hand, asynchronously"
        steps.append(Step(slot, arrived, how, Drill.CRASH, status, None, error, held))

    try:
        hour = timedelta(hours=1)
        # The function's clock, not this laptop's: the gate compares with Lambda's time.
        start = lab.runner.now().replace(microsecond=0)
        by_hand(start - 3 * hour, "by hand", Drill.FAIL)
        crash_asynchronously(start - 2 * hour)
        wait_until(
            lambda s: s.lease_expires_at is None or s.lease_expires_at < lab.runner.now(),
            "waiting for the crashed run's lease to pass",
            lease_timeout,
            every=5,
        )
        by_hand(start - hour, "by hand, after the lease", None)
        before = lab.store.read(lab.names.job)
        _, when = _deploy.schedule_once(
            lab.target, lab.names, minutes_ahead=minutes_ahead, clock=clock
        )
        print(f"one-off schedule at({when:%Y-%m-%dT%H:%M:%S}) UTC created; waiting for it")
        state = wait_until(
            # Its run has written the item (whatever it decided) and let go of it.
            lambda s: s.status is Status.IDLE and s.version > before.version,
            "waiting for the real scheduler",
            timeout,
            every=10,
        )
        steps.append(Step(when, None, "one-off at() schedule", None, "seen", None, None, state))
        by_hand(when, "again, by hand", None, delivery=2)  # the scheduler made the first
    finally:
        _deploy.set_schedule_enabled(lab.target, lab.names, True)
    return Day(plan, initial, tuple(steps), clock.now(), tuple(drilled))


def _await_failure_record(
    lab: DayLab, slot: datetime, *, timeout: float, clock: Clock
) -> dict[str, Any]:
    """The on-failure queue's record of `slot`'s invocation, polled (long polling) until
    Lambda has sent it; TimeoutError says where else to look."""
    elapsed = _elapsed(clock)
    started = elapsed()
    while True:
        for record in failure_records(lab.target, lab.names):
            if (record.get("requestPayload") or {}).get("scheduled_time") == format_ts(slot):
                return record
        if elapsed() - started >= timeout:
            raise TimeoutError(
                f"no record of the {format_ts(slot)} slot's failed invocation reached the "
                f"on-failure queue {lab.names.failure_queue} within {timeout:g} s; check the "
                f"function's async configuration (show_async_config) and its log group "
                f"{lab.names.log_group}"
            )
        clock.sleep(5)
