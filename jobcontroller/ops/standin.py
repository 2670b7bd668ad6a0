"""An AWS account stood in for on this machine, to run the real-AWS path end to end.

The course's real-AWS code path (notebooks 06-08 with JOBCONTROLLER_BACKEND=aws: `watch()`, the
waits for AWS, the one-off `at()` schedule) must work on an account, and cannot be tried on
one in CI. `StandInAccount` runs it against the embedded backend with the realism layer, as
an account would answer it:

- the Target says `embedded=False`, so the course takes its real-AWS branches;
- Lambda's Invoke API is the local runner of the deployed zip (`LambdaStandIn`), on the
  account's clock;
- EventBridge Scheduler fires the deployed schedules by itself when the account's clock
  passes their times (`SchedulerStandIn`): each ENABLED schedule of the prefix's group, each
  slot once, late within a FLEXIBLE window as the realism layer picks (at the slot with
  `OFF`), invoked asynchronously (the Scheduler does not wait for the function, Lambda
  retries and sends to the on-failure destination per the event invoke config); a one-off
  `at()` schedule is deleted once fired (ActionAfterCompletion DELETE); a delivery Lambda
  refuses goes to the schedule's dead-letter queue;
- time is `AccountClock`: virtual AWS time that moves only when something waits on it
  (the course's polls, the waits for IAM), and the realism layer runs on it too (`time`).

Nothing here sleeps or reads the wall clock, so a test of the whole path gives the same
answer however busy the machine is. Course and test tooling; the Lambda never imports it.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from jobcontroller.errors import ConfigError
from jobcontroller.ops.driver import Delivery, ScheduleDriver
from jobcontroller.ops.invocation import AsyncResult, FunctionRunner, Invocation, as_utc
from jobcontroller.ops.naming import Names, Target, error_code
from jobcontroller.ops.runner import LocalLambdaRunner, send_to_queue
from jobcontroller.ops.schedules import render_event

__all__ = ["AccountClock", "LambdaStandIn", "SchedulerStandIn", "StandInAccount"]


class AccountClock:
    """The stood-in account's time: it moves only when something sleeps on it, and as it
    passes each alarm (the Scheduler's next delivery) it stops there and rings it."""

    def __init__(self, start: datetime) -> None:
        self._start = self._now = as_utc(start)
        self._lock = threading.RLock()
        self._ringing = False
        # Called with the time the clock moves to; returns the first time it must stop at
        # on the way (a delivery due), or None. Set by the Scheduler's stand-in.
        self.next_alarm: Callable[[datetime], datetime | None] | None = None
        self.ring: Callable[[datetime], None] | None = None

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        """Seconds since the account's clock started (for waits that count elapsed time)."""
        return (self.now() - self._start).total_seconds()

    def sleep(self, seconds: float) -> None:
        self.advance_to(self.now() + timedelta(seconds=max(0.0, seconds)))

    def advance_to(self, when: datetime) -> None:
        """Move to `when`, stopping at each delivery due on the way to deliver it."""
        with self._lock:
            if self._ringing:  # a delivery waiting (it should not): time moves, no new alarms
                self._now = max(self._now, when)
                return
            while self.next_alarm is not None and self.ring is not None:
                due = self.next_alarm(when)
                if due is None or due > when:
                    break
                self._now = max(self._now, due)
                self._ringing = True
                try:
                    self.ring(self._now)
                finally:
                    self._ringing = False
            self._now = max(self._now, when)


@dataclass
class RealismTime:
    """The realism layer's TimeSource on the account's clock (one virtual AWS time)."""

    clock: AccountClock
    scale: float

    def monotonic(self) -> float:
        return self.clock.monotonic() / self.scale

    def sleep(self, seconds: float) -> None:
        self.clock.sleep(seconds * self.scale)


class LambdaStandIn:
    """Lambda's Invoke API for the stood-in account: the local runner on the account's clock.

    Like real Lambda (ops.remote) it takes no `now` from its caller: the function runs at the
    account's time. Its clock stands still while a run starts, as a warm Lambda's would, so
    a busy machine cannot eat into a lease.
    """

    simulates_time = False

    def __init__(self, local: Callable[[], LocalLambdaRunner], clock: AccountClock) -> None:
        self.local = local  # looked up at each call: the function exists only after deploy
        self.clock = clock
        self.invocations: list[Invocation] = []

    def now(self) -> datetime:
        return self.clock.now()

    def invoke(self, event: Any, **_: Any) -> Invocation:
        invocation = self.local().invoke(event, now=self.clock.now())
        self.invocations.append(invocation)
        return invocation

    def invoke_async(self, event: Any, **_: Any) -> AsyncResult:
        result = self.local().invoke_async(event, now=self.clock.now())
        self.invocations.extend(result.attempts)
        return result


@dataclass
class SchedulerStandIn:
    """EventBridge Scheduler for the stood-in account (see the module docs)."""

    target: Target
    names: Names
    runner: FunctionRunner
    # Every delivery made, in order; what each schedule's slot came to.
    deliveries: list[tuple[str, Delivery | None, str]] = field(default_factory=list)
    _done: set[tuple[str, datetime]] = field(default_factory=set, repr=False)
    _since: datetime | None = field(default=None, repr=False)

    def _schedules(self) -> list[dict[str, Any]]:
        scheduler = self.target.client("scheduler")
        try:
            pages = scheduler.get_paginator("list_schedules").paginate(
                GroupName=self.names.schedule_group
            )
            return [s for page in pages for s in page["Schedules"]]
        except ClientError as exc:  # no group: nothing is scheduled
            if error_code(exc) == "ResourceNotFoundException":
                return []
            raise

    def _due(self, until: datetime) -> list[tuple[datetime, str, datetime]]:
        """(delivery time, schedule, slot) of every undelivered slot due by `until`."""
        since = self._since or until
        due = []
        for summary in self._schedules():
            name = summary["Name"]
            driver = ScheduleDriver(self.target, self.names, self.runner, schedule_name=name)
            spec = driver.spec()
            window = timedelta(minutes=int(spec.flexible_window.get("MaximumWindowInMinutes", 0)))
            for slot in driver.slots(since - window - timedelta(hours=1), until + timedelta(0, 1)):
                if (name, slot) in self._done or slot > until:
                    continue
                if spec.state != "ENABLED" or slot < since - window:
                    # A slot that passed while the schedule was off is never delivered.
                    self._done.add((name, slot))
                    continue
                layer = self.target.realism
                late = (
                    0
                    if layer is None
                    else layer.delivery_delay(spec.arn, slot, spec.flexible_window)
                )
                at = slot + timedelta(seconds=late)
                if at <= until:
                    due.append((at, name, slot))
        return sorted(due)

    def next_alarm(self, until: datetime) -> datetime | None:
        due = self._due(until)
        if not due:
            self._since = until
        return due[0][0] if due else None

    def ring(self, now: datetime) -> None:
        """Deliver every slot due at `now`."""
        for at, name, slot in self._due(now):
            if at > now:
                continue
            self._done.add((name, slot))
            self.deliveries.append((name, *self._deliver(name, slot)))
        self._since = now

    def _deliver(self, name: str, slot: datetime) -> tuple[Delivery | None, str]:
        driver = ScheduleDriver(self.target, self.names, self.runner, schedule_name=name)
        spec = driver.spec()
        try:
            # fire() adds the flexible delay again; the clock is already there, so deliver
            # through the runner at the account's time (it takes no `now`).
            (delivery,) = driver.fire(slot)
        except Exception as exc:  # Lambda refused the delivery: the schedule's DLQ gets it
            if spec.dead_letter_arn:
                send_to_queue(self.target, spec.dead_letter_arn, render_event(spec, slot))
            return None, f"{type(exc).__name__}: {exc}"
        if spec.expression.startswith("at(") and spec.action_after_completion == "DELETE":
            self.target.client("scheduler").delete_schedule(
                Name=name, GroupName=self.names.schedule_group
            )
        return delivery, delivery.summary()


@dataclass
class StandInAccount:
    """The embedded backend answering as an account (see the module docs).

    `embedded` is the Target on the embedded backend (with its realism layer); `target` is
    the same clients seen as real AWS. `start` is the account's time when it begins.
    """

    embedded: Target
    names: Names
    start: datetime = field(default_factory=lambda: datetime(2026, 1, 5, 8, 55, tzinfo=UTC))
    # Builds the local runner of the deployed function (e.g. one that also ships each run's
    # output to CloudWatch Logs, as Lambda does: course.lablogs).
    make_runner: Callable[[Target, str], LocalLambdaRunner] = LocalLambdaRunner
    clock: AccountClock = field(init=False)
    target: Target = field(init=False)
    runner: LambdaStandIn = field(init=False)
    scheduler: SchedulerStandIn = field(init=False)
    _local: LocalLambdaRunner | None = field(default=None, init=False, repr=False)
    _old_time: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.embedded.embedded or self.embedded.realism is None:
            raise ConfigError(
                "a stand-in account needs the embedded backend with its realism layer: "
                "connect(start_embedded().session()) without realism=False"
            )
        self.clock = AccountClock(self.start)
        layer = self.embedded.realism
        layer.time = RealismTime(self.clock, layer.scale)
        self.target = dataclasses.replace(self.embedded, embedded=False)
        self._old_time = layer.time
        self.runner = LambdaStandIn(self.local, self.clock)
        self.scheduler = SchedulerStandIn(self.target, self.names, self.runner)
        self.clock.next_alarm = self.scheduler.next_alarm
        self.clock.ring = self.scheduler.ring

    def local(self) -> LocalLambdaRunner:
        """The local runner of the deployed zip (built on first use, after the deploy)."""
        if self._local is None:
            self._local = self.make_runner(self.embedded, self.names.function)
        return self._local

    def close(self) -> None:
        """Stop the runner and give the realism layer its own time back."""
        if self._local is not None:
            self._local.close()
            self._local = None
        if self.embedded.realism is not None and self._old_time is not None:
            self.embedded.realism.time = self._old_time
            self._old_time = None
