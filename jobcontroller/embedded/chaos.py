"""A randomized fault simulation: the real controller, on virtual time, against many faults.

Every slot of a simulated hourly schedule is delivered the way EventBridge Scheduler and
Lambda can deliver it on a bad day: late, twice, many copies racing, retried after a crash.
Runs crash after taking the lock, overrun their deadline, or stall past their lease and
commit late; requests are throttled, applied with their answer lost, or meet a transaction
conflict; every invoker's clock is off by up to `skew_seconds`. An invariant checker then
reads the whole history.

Invocations are real threads running the real `JobController` and `ControlStore`, but only
one runs at a time: each yields at every DynamoDB request and every sleep, and a seeded
scheduler picks who goes next on a virtual clock. So any interleaving DynamoDB allows can
happen, and the same seed replays the same history exactly.
"""

from __future__ import annotations

import argparse
import math
import random
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from jobcontroller.clock import SequentialIds
from jobcontroller.controller import InvocationResult, Outcome
from jobcontroller.embedded.designs import DESIGNS, JOB, START, TABLE, Design
from jobcontroller.embedded.findings import INVARIANTS, Report, Violation
from jobcontroller.embedded.interleave import FaultRates, FaultyClient, Scheduler, Task, TaskClock
from jobcontroller.errors import ConfigError, JobControllerError, WorkloadCrash
from jobcontroller.model import JobConfig, Reason, Trigger
from jobcontroller.store import ControlStore
from jobcontroller.workload import WorkloadContext, placeholder

__all__ = ["INVARIANTS", "FaultRates", "Report", "Violation", "simulate"]


@dataclass(frozen=True)
class _WorkRecord:
    run_id: str
    slot: int
    start: datetime
    end: datetime


@dataclass
class _Invocation:
    slot: int
    trigger: Trigger
    task: Task
    at: datetime
    skew: float
    faults: frozenset[str]

    def story(self) -> str:
        faults = ", ".join(sorted(self.faults)) or "none"
        head = (
            f"{self.at:%m-%d %H:%M:%S} delivery attempt {self.trigger.attempt} "
            f"(clock {self.skew:+.0f} s, faults: {faults}) -> "
        )
        if self.task.error is not None:
            return head + f"raised {type(self.task.error).__name__}"
        result: InvocationResult = self.task.result
        reason = f" {result.reason}" if result.reason is not None else ""
        run = f" as {result.run_id}" if result.run_id else ""
        return head + f"{result.outcome}{reason}{run}"


class _Simulation:
    def __init__(
        self,
        *,
        design: Design,
        client: Any,
        seed: int,
        slots: int,
        rates: FaultRates,
        config: JobConfig,
    ) -> None:
        self.design = design
        self.rng = random.Random(seed)
        self.rates = rates
        self.config = config
        self.slots = slots
        self.scheduler = Scheduler(START, self.rng)
        self.raw = client
        self.report = Report(design=design.name, seed=seed, slots=slots)
        self.client = FaultyClient(
            client, scheduler=self.scheduler, rng=self.rng, rates=rates, injected=self.report.faults
        )
        self.store = ControlStore(TABLE, client=self.client)
        self.new_run_id = SequentialIds()
        self.work: list[_WorkRecord] = []
        self.invocations: list[_Invocation] = []
        self.paused_slots: set[int] = set()
        self.watch: set[int] = set()

    def slot_time(self, index: int) -> datetime:
        return START + index * self.config.interval

    def deliver(self, index: int, at: datetime, *, attempt: int = 1) -> None:
        trigger = Trigger(JOB, slot=self.slot_time(index), source="scheduler", attempt=attempt)
        skew = self.rng.uniform(-self.rates.skew_seconds, self.rates.skew_seconds)
        plan = self._draw_run_faults()
        holder: dict[str, Task] = {}

        def body() -> Any:
            env = _Env(self, index, TaskClock(self.scheduler, skew), plan)
            try:
                return self.design.invoke(env, trigger)
            except BaseException:
                if self.rng.random() < self.rates.async_retry and attempt < 3:
                    self.report.faults["lambda async retry"] += 1
                    again = self.scheduler.now + timedelta(seconds=self.rng.uniform(60, 180))
                    self.deliver(index, again, attempt=attempt + 1)
                raise

        holder["task"] = self.scheduler.spawn(at, f"slot {index}", body)
        self.invocations.append(_Invocation(index, trigger, holder["task"], at, skew, plan))

    def _draw_run_faults(self) -> frozenset[str]:
        drawn = set()
        for fault in ("crash", "overrun", "late_commit"):
            if self.rng.random() < getattr(self.rates, fault):
                drawn.add(fault)
                self.report.faults[fault.replace("_", " ")] += 1
        return frozenset(drawn)

    def plan_slot(self, index: int) -> None:
        slot = self.slot_time(index)
        rng, rates = self.rng, self.rates
        on_time = slot + timedelta(seconds=rng.uniform(0, 2))
        if rng.random() < rates.late:
            self.report.faults["late delivery"] += 1
            on_time = slot + timedelta(seconds=rng.uniform(60, 900))
        copies = 1
        if rng.random() < rates.race:
            copies = rng.randint(2, 8)
            self.report.faults["racing copies"] += copies - 1
        for _ in range(copies):
            self.deliver(index, on_time)
        if rng.random() < rates.duplicate:
            self.report.faults["duplicate delivery"] += 1
            self.deliver(index, slot + timedelta(seconds=rng.uniform(60, 5400)))
        if self.design.supports_pause and rng.random() < rates.pause:
            self.report.faults["pause"] += 1
            length = rng.randint(1, 3)
            self.paused_slots.update(range(index, index + length + 1))
            pause_at = slot - timedelta(seconds=rng.uniform(60, 600))
            resume_at = slot + length * self.config.interval + timedelta(seconds=300)
            self.scheduler.spawn(pause_at, "pause", lambda: self.store.set_paused(JOB, True))
            self.scheduler.spawn(resume_at, "resume", lambda: self.store.set_paused(JOB, False))

    def run(self) -> Report:
        self.design.setup(self.raw)
        for index in range(self.slots):
            self.plan_slot(index)
            self.scheduler.run_until(self.slot_time(index + 1) - timedelta(seconds=1))
            self._check_not_wedged(index)
        self.scheduler.run_until(self.slot_time(self.slots) + timedelta(days=1))
        self._check_history()
        return self.report

    # --- the checker ---------------------------------------------------------------------

    def violation(self, invariant: str, slot: int, detail: str) -> None:
        self.report.violations.append(Violation(invariant, slot, detail))

    def _check_not_wedged(self, index: int) -> None:
        name = "never RUNNING past lease + interval"
        if index in self.paused_slots:
            return  # a paused job keeps a crashed run's lock on purpose until it is resumed
        answered = [
            inv for inv in self.invocations if inv.slot == index and inv.task.result is not None
        ]
        if not answered:
            # Every delivery of this slot died before reading the table (all throttled, or
            # crashed), so none could have taken the lock over: nothing to hold it to.
            return
        self.report.checks[name] += 1
        item = self.design.peek(self.raw)
        if item.get("status") != "RUNNING":
            return
        lease = item.get("lease_expires_at") or item.get("last_run_ts")
        if lease is None:
            return
        lease_at = datetime.fromisoformat(str(lease).replace("Z", "+00:00"))
        if self.scheduler.now > lease_at + self.config.interval:
            self.violation(name, index, f"RUNNING since {item.get('last_run_ts')}, lease {lease}")

    def _check_history(self) -> None:
        report = self.report
        for inv in self.invocations:
            task = inv.task
            report.checks["only the package's own exceptions"] += 1
            if task.error is not None:
                report.outcomes["raised " + type(task.error).__name__] += 1
                if not _ours(task.error):
                    self.violation(
                        "only the package's own exceptions",
                        inv.slot,
                        f"{type(task.error).__name__}: {str(task.error)[:120]}",
                    )
                continue
            result: InvocationResult = task.result
            report.outcomes[str(result.outcome)] += 1
            if result.outcome is Outcome.SKIPPED:
                report.checks["every skip has a reason"] += 1
                if not isinstance(result.reason, Reason):
                    self.violation("every skip has a reason", inv.slot, repr(result))
        self._check_successes()
        self._check_overlap()
        self._check_cooldown()
        if self.design.keeps_history:
            self._check_counters()
        for slot in sorted({v.slot for v in report.violations} | self.watch)[:20]:
            report.stories[slot] = self._story(slot)

    def _story(self, slot: int) -> list[str]:
        """What happened to one slot: each delivery, and each workload that ran for it."""
        lines = [inv.story() for inv in self.invocations if inv.slot == slot]
        for record in self.work:
            if record.slot == slot:
                lines.append(
                    f"{record.start:%m-%d %H:%M:%S} {record.run_id} worked until "
                    f"{record.end:%H:%M:%S}"
                )
        return sorted(lines)

    def _successes(self) -> Counter[int]:
        return Counter(
            inv.slot
            for inv in self.invocations
            if inv.task.error is None and inv.task.result.outcome is Outcome.SUCCEEDED
        )

    def _check_successes(self) -> None:
        name = "at most one success per slot"
        for slot, count in sorted(self._successes().items()):
            self.report.checks[name] += 1
            if count > 1:
                self.violation(name, slot, f"{count} successful runs")

    def _check_overlap(self) -> None:
        name = "one workload at a time"
        latest: _WorkRecord | None = None
        for record in sorted(self.work, key=lambda r: (r.start, r.end)):
            self.report.checks[name] += 1
            if latest is not None and record.start < latest.end:
                self.violation(
                    name,
                    record.slot,
                    f"{record.run_id} started at {record.start:%H:%M:%S} while "
                    f"{latest.run_id} ran until {latest.end:%H:%M:%S}",
                )
            if latest is None or record.end > latest.end:
                latest = record

    def _check_cooldown(self) -> None:
        name = "cooldown never loses a slot"
        succeeded = self._successes()
        for inv in self.invocations:
            if inv.task.error is not None or inv.task.result.reason is not Reason.COOLDOWN:
                continue
            self.report.checks[name] += 1
            if not succeeded[inv.slot] and inv.slot not in self.paused_slots:
                self.violation(name, inv.slot, "skipped for COOLDOWN and never ran")

    def _check_counters(self) -> None:
        name = "counters equal the run history"
        self.report.checks[name] += 1
        state = ControlStore(TABLE, client=self.raw).read(JOB)
        history: Counter[str] = Counter()
        for item in _history(self.raw):
            history[item["outcome"]["S"]] += 1
        counted = {"SUCCEEDED": state.run_count, "FAILED": state.failure_count}
        for outcome, count in counted.items():
            if history[outcome] != count:
                self.violation(
                    name,
                    self.slots - 1,
                    f"{outcome}: counter {count}, run history {history[outcome]}",
                )


def _ours(error: BaseException) -> bool:
    """The package's own error, the injected crash, or a workload's error that the controller
    re-raised because recording it met one of the package's errors (it keeps the workload's
    exception, with the package's as its cause)."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, JobControllerError | WorkloadCrash):
            return True
        seen = seen.__cause__
    return False


def _history(client: Any) -> Iterator[dict[str, Any]]:
    request: dict[str, Any] = {
        "TableName": TABLE,
        "KeyConditionExpression": "PK = :pk AND begins_with(SK, :run)",
        "ExpressionAttributeValues": {":pk": {"S": f"JOB#{JOB}"}, ":run": {"S": "RUN#"}},
    }
    while True:
        page = client.query(**request)
        yield from page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


@dataclass
class _Env:
    """What one simulated invocation gets: its store, clock, ids and drawn faults."""

    sim: _Simulation
    slot: int
    clock: TaskClock
    faults: frozenset[str]

    @property
    def store(self) -> ControlStore:
        return self.sim.store

    @property
    def config(self) -> JobConfig:
        return self.sim.config

    @property
    def client(self) -> Any:
        return self.sim.client

    def new_run_id(self) -> str:
        return self.sim.new_run_id()

    def workload(self) -> Callable[[WorkloadContext], Any]:
        """The placeholder, timed by the scheduler, with this invocation's faults."""
        rng = self.sim.rng
        seconds = rng.uniform(150, 400) if "overrun" in self.faults else rng.uniform(1, 60)
        inner = placeholder(seconds=seconds, crash="crash" in self.faults)
        sim = self.sim

        def run(ctx: WorkloadContext) -> Any:
            start = sim.scheduler.now
            try:
                return inner(ctx)
            finally:
                sim.work.append(_WorkRecord(ctx.run_id, self.slot, start, sim.scheduler.now))
                if "late_commit" in self.faults:
                    # The process stalls (a long GC pause, a frozen container) after the
                    # work and before the commit, until well past its lease.
                    ctx.clock.sleep(max(ctx.remaining().total_seconds(), 0) + 120)

        return run


def simulate(
    *,
    slots: int,
    seed: int,
    design: Design | None = None,
    client: Any | None = None,
    rates: FaultRates | None = None,
    config: JobConfig | None = None,
    watch: tuple[int, ...] = (),
) -> Report:
    """Run `slots` hourly slots through `design` (default: the package's controller).

    `client` is a DynamoDB client with an empty backend behind it (default: a fresh
    in-memory one); pass a boto3 client to run the same history on the embedded backend.
    """
    import time

    from jobcontroller.embedded.memory import MemoryDynamoDB

    virtual: list[_Simulation] = []
    if client is None:
        # Request tokens expire on the simulation's clock, not the machine's.
        client = MemoryDynamoDB(clock=lambda: (virtual[0].scheduler.now - START).total_seconds())
    fault_rates = rates or FaultRates()
    sim = _Simulation(
        design=design or Design(),
        client=client,
        seed=seed,
        slots=slots,
        rates=fault_rates,
        config=config or JobConfig(clock_skew_seconds=math.ceil(fault_rates.skew_seconds)),
    )
    sim.watch.update(watch)
    virtual.append(sim)
    started = time.perf_counter()
    report = sim.run()
    report.seconds = time.perf_counter() - started
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The simulation's options, shared by this module's `main` and `jobcontroller simulate`."""
    parser.add_argument("--slots", type=int, default=1000, help="hourly slots to simulate")
    parser.add_argument("--seed", type=int, default=1, help="the same seed replays the same run")
    parser.add_argument("--design", choices=sorted(DESIGNS), default="controller")
    parser.add_argument(
        "--backend",
        choices=["memory", "embedded"],
        default="memory",
        help="memory: DynamoDB in memory (fast); embedded: moto served on loopback",
    )


def run(args: argparse.Namespace) -> int:
    """Simulate as `args` say, print the closing table; 1 when an invariant was broken."""
    if args.slots < 1:
        raise ConfigError(f"--slots must be 1 or more, got {args.slots}")
    client = None
    backend = None
    if args.backend == "embedded":
        import boto3

        from jobcontroller.embedded.server import start_embedded

        backend = start_embedded()
        client = boto3.client("dynamodb")
    try:
        report = simulate(
            slots=args.slots, seed=args.seed, design=DESIGNS[args.design](), client=client
        )
    finally:
        if backend is not None:
            backend.stop()
    print(report.text())
    return 1 if report.violations else 0


def main(argv: list[str] | None = None) -> int:
    """`python -m jobcontroller.embedded.chaos --slots N --seed S`: print the closing table."""
    parser = argparse.ArgumentParser(prog="jobcontroller simulate", description=main.__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.slots < 1:
        parser.error("--slots must be 1 or more")
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
