"""Fire the deployed schedule by hand, where moto never fires it; wait for real AWS's.

`ScheduleDriver` reads the schedule back from the Scheduler API (expression, input template,
retry policy, flexible window, dead-letter queue), computes the slots it fires in a window,
renders the `<aws.scheduler.*>` context attributes and delivers them through a runner
(ops.runner or ops.remote), for chosen slots, late or more than once, as the real Scheduler
may. On real AWS the real schedule fires; `wait_for_state` polls the table until it has.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from jobcontroller.errors import ConfigError, ControlItemMissing, TableMissing
from jobcontroller.model import JobState
from jobcontroller.ops.deploy import Names, Target
from jobcontroller.ops.invocation import AsyncResult, FunctionRunner, Invocation, as_utc
from jobcontroller.ops.parallel import run_together
from jobcontroller.ops.runner import send_to_queue
from jobcontroller.ops.schedules import ScheduleSpec, fire_times, render_event
from jobcontroller.store import ControlStore

__all__ = ["Delivery", "LostAnswers", "ScheduleDriver", "wait_for_state"]


@dataclass(frozen=True)
class Delivery:
    """One delivery of a schedule's event to its target, and what came of it."""

    slot: datetime
    delivered_at: datetime
    attempt: int
    execution_id: str
    event: dict[str, Any]
    result: AsyncResult | None = None
    dead_lettered: str | None = None  # the schedule DLQ's ARN if the event went there
    # The attempts before `attempt` that failed to deliver (what each raised), in order.
    failed: tuple[str, ...] = ()

    @property
    def invocation(self) -> Invocation | None:
        return None if self.result is None else self.result.last

    def summary(self) -> str:
        if self.dead_lettered:
            return "dead-lettered (too old to deliver)"
        invocation = self.invocation
        return "-" if invocation is None else invocation.summary()


@dataclass
class ScheduleDriver:
    """Fire a deployed schedule by hand: for chosen slots, late, or more than once.

    Everything is read back from the Scheduler API at each call: the expression, the input
    template, the retry policy, the flexible window, the dead-letter queue. The driver counts
    the deliveries it has made of each slot (`delivered`), so that each gets its own
    execution id and run id; only `fire` (and `run`) count, never `render`.
    """

    target: Target
    names: Names
    runner: FunctionRunner
    schedule_name: str | None = None
    # Fixed run ids for a replay (e.g. `slot_run_id`): called with the slot and the
    # delivery's number for that slot. None: the function picks its own (random) ids, as
    # on AWS, where this is ignored.
    run_ids: Callable[[datetime, int], str] | None = None
    _deliveries: dict[datetime, int] = field(default_factory=dict, init=False, repr=False)

    def spec(self) -> ScheduleSpec:
        """The schedule as the Scheduler API holds it now."""
        schedule = self.target.client("scheduler").get_schedule(
            Name=self.schedule_name or self.names.schedule, GroupName=self.names.schedule_group
        )
        return ScheduleSpec.from_api(schedule)

    def slots(
        self, start: datetime, end: datetime, *, anchor: datetime | None = None
    ) -> list[datetime]:
        """The slots the schedule fires in [start, end), inside its start and end dates."""
        spec = self.spec()
        if spec.state != "ENABLED":
            return []
        times = fire_times(
            spec.expression,
            start,
            end,
            timezone=spec.timezone,
            anchor=anchor or spec.start_date or spec.created,
        )
        return [
            t
            for t in times
            if (spec.start_date is None or t >= spec.start_date)
            and (spec.end_date is None or t < spec.end_date)
        ]

    def delivered(self, slot: datetime) -> int:
        """How many times this driver has delivered `slot` (fired or dead-lettered) so far."""
        return self._deliveries.get(as_utc(slot), 0)

    def render(self, slot: datetime, *, delivery: int = 1, attempt: int = 1) -> dict[str, Any]:
        """The event the Scheduler would deliver for `slot`'s `delivery`-th delivery.

        Nothing is counted: rendering the same slot and number twice gives the same event.
        To show the event `fire` would send next, pass `delivery=driver.delivered(slot) + 1`.
        """
        return render_event(self.spec(), slot, delivery=delivery, attempt=attempt)

    def fire(
        self,
        slot: datetime,
        *,
        delay_seconds: float = 0,
        copies: int = 1,
        concurrent: bool = False,
    ) -> list[Delivery]:
        """Deliver `slot`'s event `copies` times, `delay_seconds` after the slot (and after
        the point in the schedule's flexible time window the realism layer picked, if any).

        `copies > 1` is the Scheduler's at-least-once delivery; `concurrent=True` makes the
        copies arrive at once (racing for the lock) instead of one after another. An event
        older than the retry policy's MaximumEventAgeInSeconds goes to the schedule's
        dead-letter queue instead of the function, as the Scheduler does. If a delivery
        raises, its error is raised here (after the other copies have finished).
        """
        spec = self.spec()
        if spec.target_arn != self.target.arn("lambda", f"function:{self.names.function}"):
            raise ConfigError(
                f"schedule {spec.name} targets {spec.target_arn}, not function "
                f"{self.names.function}: redeploy the schedule (deploy.ensure_schedule)"
            )
        if copies < 1:
            raise ConfigError("copies must be at least 1")
        slot = as_utc(slot)
        # With a FLEXIBLE window the Scheduler itself delivers late, somewhere in the window
        # (the realism layer picks where); `delay_seconds` is lateness on top of that.
        flexible = (
            0
            if self.target.realism is None
            else self.target.realism.delivery_delay(spec.arn, slot, spec.flexible_window)
        )
        delay_seconds += flexible
        delivered_at = slot + timedelta(seconds=delay_seconds)
        # Everything a copy needs is fixed here, before any copy is delivered, so racing
        # copies get the same execution ids and run ids on every run.
        first = self.delivered(slot) + 1
        numbers = range(first, first + copies)
        self._deliveries[slot] = first + copies - 1
        events = [render_event(spec, slot, delivery=number) for number in numbers]
        max_age = spec.retry_policy.get("MaximumEventAgeInSeconds", 86400)
        if delay_seconds > max_age:
            return [self._dead_letter(spec, slot, event, delivered_at) for event in events]

        def deliver(event: dict[str, Any], number: int) -> Delivery:
            return self._deliver(spec, slot, delivered_at, event, number)

        calls = [partial(deliver, e, n) for e, n in zip(events, numbers, strict=True)]
        if concurrent:
            return run_together(calls)
        return [call() for call in calls]

    def _deliver(
        self,
        spec: ScheduleSpec,
        slot: datetime,
        delivered_at: datetime,
        event: dict[str, Any],
        number: int,
    ) -> Delivery:
        """Deliver one event; when the delivery itself fails (the invoke raised: throttled,
        connection lost), try again as the schedule's RetryPolicy says: up to
        MaximumRetryAttempts more times while the event is younger than
        MaximumEventAgeInSeconds. The Scheduler's back-off is its own (exponential, with
        jitter); here it is one minute, then doubling, on the replay's clock.
        https://docs.aws.amazon.com/scheduler/latest/UserGuide/configuring-schedule-retry-policy.html
        """
        retries = spec.retry_policy.get("MaximumRetryAttempts", 185)
        max_age = spec.retry_policy.get("MaximumEventAgeInSeconds", 86400)
        base_id = None if self.run_ids is None else self.run_ids(slot, number)
        failed: list[str] = []
        attempt, at = 1, delivered_at
        while True:
            options: dict[str, Any] = {}
            if self.runner.simulates_time:
                run_id = base_id if attempt == 1 or base_id is None else f"{base_id}-a{attempt}"
                options = {"now": at, "run_id": run_id}
            try:
                result = self.runner.invoke_async(event, **options)
            except Exception as exc:
                later = at + timedelta(minutes=2 ** (attempt - 1))
                if attempt > retries or (later - slot).total_seconds() > max_age:
                    raise
                failed.append(f"{type(exc).__name__}: {exc}")
                attempt, at = attempt + 1, later
                event = render_event(spec, slot, delivery=number, attempt=attempt)
                continue
            return Delivery(
                slot, at, attempt, event["execution_id"], event, result, failed=tuple(failed)
            )

    def _dead_letter(
        self, spec: ScheduleSpec, slot: datetime, event: dict[str, Any], when: datetime
    ) -> Delivery:
        if spec.dead_letter_arn:
            send_to_queue(self.target, spec.dead_letter_arn, event)
        return Delivery(
            slot, when, 1, event.get("execution_id", ""), event, None, spec.dead_letter_arn
        )

    def run(
        self,
        start: datetime,
        end: datetime,
        *,
        late: Mapping[datetime, float] | None = None,
        duplicates: Mapping[datetime, int] | None = None,
        before_each: Callable[[datetime], None] | None = None,
    ) -> list[Delivery]:
        """Fire every slot in [start, end) in order: `late` maps a slot to its delay in
        seconds, `duplicates` to extra copies. `before_each(slot)` runs first (a notebook
        sets a drill there)."""
        late = {as_utc(k): v for k, v in (late or {}).items()}
        duplicates = {as_utc(k): v for k, v in (duplicates or {}).items()}
        deliveries = []
        for slot in self.slots(start, end):
            if before_each is not None:
                before_each(slot)
            deliveries.extend(
                self.fire(slot, delay_seconds=late.get(slot, 0), copies=1 + duplicates.get(slot, 0))
            )
        return deliveries


class DeliveryFailed(ConnectionError):
    """The Scheduler saw its delivery fail (here: Lambda ran the event, the answer was lost)."""


@dataclass
class LostAnswers:
    """A runner whose first `lose` deliveries of each event reach Lambda and run, but whose
    answer never gets back to the Scheduler (a connection dropped after Lambda accepted it).

    The Scheduler counts such a delivery as failed, so with retries on it delivers the same
    event again: at-least-once delivery, made visible. Everything else is `runner`'s.
    """

    runner: FunctionRunner
    lose: int = 1
    simulates_time: bool = field(init=False)
    # Every asynchronous invocation that ran, answered or not.
    ran: list[AsyncResult] = field(default_factory=list, init=False, repr=False)
    _seen: dict[str, int] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.simulates_time = self.runner.simulates_time

    def now(self) -> datetime:
        return self.runner.now()

    def invoke(
        self, event: Any, *, now: datetime | None = None, run_id: str | None = None
    ) -> Invocation:
        return self.runner.invoke(event, now=now, run_id=run_id)

    def invoke_async(
        self, event: Any, *, now: datetime | None = None, run_id: str | None = None
    ) -> AsyncResult:
        options: dict[str, Any] = {} if now is None else {"now": now, "run_id": run_id}
        result = self.runner.invoke_async(event, **options)
        self.ran.append(result)
        key = str(event.get("execution_id")) if isinstance(event, dict) else repr(event)
        self._seen[key] = self._seen.get(key, 0) + 1
        if self._seen[key] <= self.lose:
            raise DeliveryFailed("Lambda ran the event, but its answer to the Scheduler was lost")
        return result


def wait_for_state(
    target: Target,
    names: Names,
    predicate: Callable[[JobState], bool],
    *,
    timeout: float = 600,
    every: float = 10,
    progress: Callable[[float, JobState | None], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> JobState:
    """Poll the job's control item until `predicate(state)` holds (real AWS: the schedule
    fires when it fires). `progress(elapsed_seconds, state)` is called after each read, so a
    notebook can show a progress bar. TimeoutError names what was awaited and the last state.
    """
    store = ControlStore(names.table, client=target.client("dynamodb"))
    started = monotonic()
    state: JobState | None = None
    while True:
        try:
            state = store.read(names.job)
        except (ControlItemMissing, TableMissing):
            state = None
        elapsed = monotonic() - started
        if progress is not None:
            progress(elapsed, state)
        if state is not None and predicate(state):
            return state
        if elapsed >= timeout:
            last = (
                "no control item"
                if state is None
                else (f"status {state.status.value}, run_count {state.run_count}")
            )
            raise TimeoutError(
                f"job {names.job!r} in {names.table!r} did not reach the awaited state within "
                f"{timeout:g} s (last seen: {last}); check the schedule fired (its "
                f"dead-letter queue {names.schedule_dlq}) and the function's log group "
                f"{names.log_group}, then wait again"
            )
        sleep(min(every, max(timeout - elapsed, 0)))
