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

import contextlib
import heapq
import itertools
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from botocore.exceptions import ClientError

from jobcontroller.clock import SequentialIds
from jobcontroller.controller import InvocationResult, JobController, Outcome
from jobcontroller.errors import JobControllerError, WorkloadCrash
from jobcontroller.gate import decide, next_allowed_run_after
from jobcontroller.model import Action, JobConfig, Reason, Status, Trigger, format_ts
from jobcontroller.store import MAX_ATTEMPTS, ControlStore
from jobcontroller.workload import WorkloadContext, placeholder

__all__ = ["FaultRates", "Report", "Violation", "simulate"]

JOB = "hourly_processor"
TABLE = "job_control"
START = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
LAMBDA_TIMEOUT_MS = 120_000


@dataclass(frozen=True)
class FaultRates:
    """How often each fault is drawn: per slot, per invocation or per request."""

    late: float = 0.10  # per slot: the delivery lands 1-15 minutes late
    duplicate: float = 0.10  # per slot: the slot is delivered again 1-90 minutes later
    race: float = 0.05  # per slot: 2-8 copies arrive at the same instant
    crash: float = 0.03  # per invocation: the process dies right after taking the lock
    overrun: float = 0.03  # per invocation: the work needs longer than the lease
    late_commit: float = 0.03  # per invocation: the process stalls past its lease, then commits
    async_retry: float = 0.5  # per failed invocation: Lambda delivers the event again
    pause: float = 0.01  # per slot: an operator pauses the job for 1-3 slots
    throttle: float = 0.01  # per request: throttled; botocore retries (rarely in vain)
    lost_answer: float = 0.01  # per write: applied, the answer lost, botocore retries it
    conflict: float = 0.005  # per write: DynamoDB reports a transaction conflict
    skew_seconds: float = 30.0  # each invoker's clock is off by up to this, either way


@dataclass(frozen=True)
class Violation:
    """One broken invariant, with what is needed to replay it."""

    invariant: str
    slot: int
    detail: str


@dataclass
class Report:
    """What a simulation did, found and cost."""

    design: str
    seed: int
    slots: int
    faults: Counter[str] = field(default_factory=Counter)
    checks: Counter[str] = field(default_factory=Counter)
    violations: list[Violation] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    stories: dict[int, list[str]] = field(default_factory=dict)
    seconds: float = 0.0

    def rows(self) -> list[tuple[str, int, int]]:
        """(invariant, times checked, violations), in the checker's order."""
        found = Counter(v.invariant for v in self.violations)
        return [(name, self.checks[name], found[name]) for name in INVARIANTS]

    @property
    def slots_per_second(self) -> float:
        return self.slots / self.seconds if self.seconds else 0.0

    def text(self) -> str:
        """The closing table, as plain text."""
        lines = [f"design {self.design}, seed {self.seed}, {self.slots} slots"]
        lines.append("faults injected: " + _counts(self.faults))
        lines.append("outcomes: " + _counts(self.outcomes))
        by_invariant = Counter(v.invariant for v in self.violations)
        lines.append(f"{'invariant':<34} {'checks':>8} {'violations':>10}")
        for name in INVARIANTS:
            lines.append(f"{name:<34} {self.checks[name]:>8} {by_invariant[name]:>10}")
        for v in self.violations[:5]:
            lines.append(
                f"VIOLATION {v.invariant} at slot {v.slot}: {v.detail} "
                f"(replay: --design {self.design} --seed {self.seed} --slots {v.slot + 1})"
            )
            lines.extend("    " + line for line in self.stories.get(v.slot, []))
        if len(self.violations) > 5:
            lines.append(f"... and {len(self.violations) - 5} more violations")
        if self.seconds:
            lines.append(f"{self.seconds:.1f} s, {self.slots_per_second:.0f} slots/s")
        return "\n".join(lines)


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counter.items())) or "none"


INVARIANTS = (
    "one workload at a time",
    "at most one success per slot",
    "never RUNNING past lease + interval",
    "counters equal the run history",
    "every skip has a reason",
    "only the package's own exceptions",
    "cooldown never loses a slot",
)


# --- the scheduler: one thread at a time, on virtual time --------------------------------


class _Task:
    def __init__(self, scheduler: _Scheduler, name: str, body: Callable[[], Any]) -> None:
        self.name = name
        self.body = body
        self.go = threading.Event()
        self.started = False
        self.result: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, args=(scheduler,), daemon=True)

    def _main(self, scheduler: _Scheduler) -> None:
        scheduler.local.task = self
        self.go.wait()
        try:
            self.result = self.body()
        except BaseException as exc:  # recorded and judged by the checker
            self.error = exc
        finally:
            scheduler.switch.set()


class _Scheduler:
    """Runs tasks one at a time in virtual time; ties are broken by the seeded generator."""

    def __init__(self, start: datetime, rng: random.Random) -> None:
        self.now = start
        self.rng = rng
        self.switch = threading.Event()
        self.local = threading.local()
        self._queue: list[tuple[datetime, float, int, _Task]] = []
        self._count = itertools.count()

    def spawn(self, at: datetime, name: str, body: Callable[[], Any]) -> _Task:
        task = _Task(self, name, body)
        self._push(at, task)
        return task

    def _push(self, at: datetime, task: _Task) -> None:
        heapq.heappush(self._queue, (at, self.rng.random(), next(self._count), task))

    def pause(self, seconds: float) -> None:
        """Called from a task: let `seconds` of virtual time pass, and others run meanwhile."""
        task: _Task = self.local.task
        self._push(self.now + timedelta(seconds=max(seconds, 0)), task)
        task.go.clear()
        self.switch.set()
        task.go.wait()

    def run_until(self, end: datetime) -> None:
        while self._queue and self._queue[0][0] <= end:
            at, _, _, task = heapq.heappop(self._queue)
            self.now = max(self.now, at)
            self.switch.clear()
            if not task.started:
                task.started = True
                task.thread.start()
            task.go.set()
            self.switch.wait()
        self.now = max(self.now, end)


class _TaskClock:
    """An invoker's clock: virtual time plus this invoker's skew; sleeping yields."""

    def __init__(self, scheduler: _Scheduler, skew: float) -> None:
        self._scheduler = scheduler
        self._skew = timedelta(seconds=skew)

    def now(self) -> datetime:
        return self._scheduler.now + self._skew

    def sleep(self, seconds: float) -> None:
        self._scheduler.pause(seconds)


# --- faults on the wire -------------------------------------------------------------------

_WRITES = {"update_item", "put_item", "transact_write_items", "delete_item"}


class _FaultyClient:
    """A DynamoDB client whose requests yield to the scheduler and sometimes fail.

    The faults are the ones botocore and DynamoDB produce: a throttled request is retried
    (standard mode, MAX_ATTEMPTS in all) and only fails when every attempt was throttled; a
    write whose answer is lost is sent again, as botocore does, and the caller gets the
    answer to the second attempt; a conflict is raised as DynamoDB raises it.
    """

    def __init__(self, inner: Any, sim: _Simulation) -> None:
        self._inner = inner
        self._sim = sim
        self.meta = inner.meta

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._inner, name)
        if name not in _WRITES and name not in ("get_item", "query"):
            return method  # type: ignore[no-any-return]

        def call(**params: Any) -> Any:
            sim = self._sim
            sim.scheduler.pause(sim.rng.uniform(0.002, 0.02))
            rates = sim.rates
            if sim.rng.random() < rates.throttle:
                throttled = sim.rng.choice([1, 1, 1, 2, 2, 3, MAX_ATTEMPTS])
                sim.report.faults["throttle"] += 1
                sim.scheduler.pause(0.05 * (2**throttled))
                if throttled >= MAX_ATTEMPTS:
                    raise ClientError(
                        {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}},
                        "".join(part.title() for part in name.split("_")),
                    )
            if name in _WRITES and sim.rng.random() < rates.conflict:
                sim.report.faults["transaction conflict"] += 1
                raise _conflict(name, params)
            if name in _WRITES and sim.rng.random() < rates.lost_answer:
                sim.report.faults["lost answer"] += 1
                with contextlib.suppress(ClientError):  # the first answer is lost either way
                    method(**params)
                sim.scheduler.pause(sim.rng.uniform(0.05, 0.5))
            return method(**params)

        return call


def _conflict(operation: str, params: dict[str, Any]) -> ClientError:
    if operation == "transact_write_items":
        reasons = [{"Code": "TransactionConflict", "Message": "Transaction is ongoing"}] + [
            {"Code": "None"} for _ in params["TransactItems"][1:]
        ]
        return ClientError(
            {
                "Error": {
                    "Code": "TransactionCanceledException",
                    "Message": "Transaction cancelled [TransactionConflict]",
                },
                "CancellationReasons": reasons,
            },
            "TransactWriteItems",
        )
    return ClientError(
        {
            "Error": {
                "Code": "TransactionConflictException",
                "Message": "Transaction is ongoing for the item",
            }
        },
        "UpdateItem",
    )


# --- the run ----------------------------------------------------------------------------


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
    task: _Task
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
        self.scheduler = _Scheduler(START, self.rng)
        self.raw = client
        self.client = _FaultyClient(client, self)
        self.store = ControlStore(TABLE, client=self.client)
        self.report = Report(design=design.name, seed=seed, slots=slots)
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
        holder: dict[str, _Task] = {}

        def body() -> Any:
            env = _Env(self, index, _TaskClock(self.scheduler, skew), plan)
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
                if not isinstance(task.error, JobControllerError | WorkloadCrash):
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
    clock: _TaskClock
    faults: frozenset[str]

    @property
    def store(self) -> ControlStore:
        return self.sim.store

    @property
    def config(self) -> JobConfig:
        return self.sim.config

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

    def invoke(self, env: _Env, trigger: Trigger) -> InvocationResult:
        controller = JobController(
            env.store, JOB, config=env.config, clock=env.clock, new_run_id=env.sim.new_run_id
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

    def invoke(self, env: _Env, trigger: Trigger) -> InvocationResult:
        client, now = env.sim.client, env.clock.now()
        item = client.get_item(TableName=TABLE, Key=self._KEY, ConsistentRead=True)["Item"]
        if item["status"]["S"] == "RUNNING":
            return _skipped(trigger, Reason.RUNNING, "status is RUNNING")
        allowed = item.get("next_allowed_run", {}).get("S")
        if allowed and format_ts(now) < allowed:
            return _skipped(trigger, Reason.COOLDOWN, f"next run allowed from {allowed}")
        run_id = env.sim.new_run_id()
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

    def invoke(self, env: _Env, trigger: Trigger) -> InvocationResult:
        store, now = env.store, env.clock.now()
        state = store.read(JOB)
        decision = decide(state, trigger, now, config=env.config)
        if decision.action is Action.SKIP:
            return _skipped(trigger, decision.reason or Reason.RUNNING, decision.detail)
        run_id = env.sim.new_run_id()
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

    def invoke(self, env: _Env, trigger: Trigger) -> InvocationResult:
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
    sim = _Simulation(
        design=design or Design(),
        client=client,
        seed=seed,
        slots=slots,
        rates=rates or FaultRates(),
        config=config or JobConfig(),
    )
    sim.watch.update(watch)
    virtual.append(sim)
    started = time.perf_counter()
    report = sim.run()
    report.seconds = time.perf_counter() - started
    return report


def main(argv: list[str] | None = None) -> int:
    """`python -m jobcontroller.embedded.chaos --slots N --seed S`: print the closing table."""
    import argparse

    parser = argparse.ArgumentParser(prog="jobcontroller simulate", description=main.__doc__)
    parser.add_argument("--slots", type=int, default=1000, help="hourly slots to simulate")
    parser.add_argument("--seed", type=int, default=1, help="the same seed replays the same run")
    parser.add_argument("--design", choices=sorted(DESIGNS), default="controller")
    parser.add_argument(
        "--backend",
        choices=["memory", "embedded"],
        default="memory",
        help="memory: DynamoDB in memory (fast); embedded: moto served on loopback",
    )
    args = parser.parse_args(argv)
    if args.slots < 1:
        parser.error("--slots must be 1 or more")
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


if __name__ == "__main__":
    raise SystemExit(main())
