"""One day of duplicate triggers, planned from a seed, delivered to a design, and billed.

The plan: a day of hourly slots; each slot is delivered 1-3 times, up to 59 s late (as
EventBridge Scheduler may be); a slot delivered more than once is either a race (all copies
at once, on threads, held after their first request until every copy has sent it) or a
string of duplicates minutes apart. Racers are interleaved the same way on every run (see
`benchmarks.meter`): all send their first request, then they finish one after another.
One slot's first delivery crashes while it holds the lock (the workload raises
`WorkloadCrash`, which no design catches, as if the process died); that slot is delivered
again 5 minutes later, after every design's lease has passed.

Every invocation is classified by what it did (`PATHS`) and billed by `MeteredClient`.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from benchmarks.contenders import Contender
from benchmarks.meter import MeteredClient, Tape
from jobcontroller.clock import ManualClock, SequentialIds
from jobcontroller.controller import Outcome
from jobcontroller.embedded.designs import JOB, START, TABLE
from jobcontroller.embedded.memory import MemoryDynamoDB
from jobcontroller.errors import WorkloadCrash
from jobcontroller.model import JobConfig, Trigger
from jobcontroller.store import ControlStore
from jobcontroller.workload import WorkloadContext

__all__ = [
    "PATHS",
    "DayResult",
    "Delivery",
    "Invocation",
    "deliver_wave",
    "make_env_factory",
    "new_backend",
    "plan_day",
    "run_day",
]

PATHS = ("skip", "lost race", "run", "crash", "crash-retry")
RETRY_AFTER = timedelta(minutes=5)


@dataclass(frozen=True)
class Delivery:
    """One trigger: which slot, when it lands, and whether its run crashes."""

    slot: int
    at: datetime
    crash: bool = False


def plan_day(*, seed: int, slots: int = 24) -> list[list[Delivery]]:
    """The day's waves of deliveries in time order; a wave of several is a race."""
    if slots < 2:
        raise ValueError(f"slots must be >= 2 (one of them crashes), got {slots}")
    rng = random.Random(seed)
    crash_slot = rng.randrange(slots // 4, max(slots // 4 + 1, 3 * slots // 4))
    waves: list[list[Delivery]] = []
    for index in range(slots):
        at = START + timedelta(hours=index, seconds=rng.randint(0, 59))
        if index == crash_slot:
            waves.append([Delivery(index, at, crash=True)])
            waves.append([Delivery(index, at + RETRY_AFTER)])
            continue
        copies = rng.randint(1, 3)
        if copies > 1 and rng.random() < 0.5:
            waves.append([Delivery(index, at)] * copies)
            continue
        for _ in range(copies):
            waves.append([Delivery(index, at)])
            at += timedelta(seconds=rng.randint(5, 300))
    return waves


@dataclass
class PathCost:
    """The invocations that took one path, and what they were billed together."""

    count: int = 0
    requests: int = 0
    read_units: float = 0.0
    write_units: float = 0.0
    operations: Counter[str] = field(default_factory=Counter)

    def add(self, tape: Tape) -> None:
        self.count += 1
        self.requests += len(tape.requests)
        self.read_units += tape.read_units
        self.write_units += tape.write_units
        self.operations.update(
            r.operation + ("" if r.applied else " (refused)") for r in tape.requests
        )


@dataclass
class DayResult:
    """What one design did with the day: cost per path, and what it guaranteed."""

    design: str
    slots: int
    paths: dict[str, PathCost]
    double_runs: int
    missed: int
    wedged: int
    item_sizes: dict[str, int]

    @property
    def invocations(self) -> int:
        return sum(p.count for p in self.paths.values())

    @property
    def read_units(self) -> float:
        return sum(p.read_units for p in self.paths.values())

    @property
    def write_units(self) -> float:
        return sum(p.write_units for p in self.paths.values())

    @property
    def requests(self) -> int:
        return sum(p.requests for p in self.paths.values())


@dataclass
class _Env:
    """What one invocation gets (`jobcontroller.embedded.designs.Env`)."""

    store: ControlStore
    client: Any
    config: JobConfig
    clock: ManualClock
    new_run_id: Callable[[], str]
    crash: bool
    worked: list[str] = field(default_factory=list)

    def workload(self) -> Callable[[WorkloadContext], Any]:
        def work(ctx: WorkloadContext) -> dict[str, Any]:
            self.worked.append(ctx.run_id)
            if self.crash:
                raise WorkloadCrash(f"run {ctx.run_id} died while holding the lock")
            return {"processed": True}

        return work


def new_backend(design: Contender) -> MeteredClient:
    """A fresh in-memory DynamoDB with the design's tables, behind a meter."""
    inner = MemoryDynamoDB()
    design.setup(inner)
    return MeteredClient(inner)


@dataclass(frozen=True)
class Invocation:
    """What one delivery did: its requests, whether it ran the workload, whether it died."""

    delivery: Delivery
    tape: Tape
    worked: bool
    died: bool


def deliver_wave(
    design: Contender,
    wave: list[Delivery],
    make_env: Callable[[Delivery], _Env],
    client: MeteredClient,
    *,
    lockstep: bool = True,
    released: Callable[[], None] | None = None,
) -> list[Invocation]:
    """Run the wave's invocations, racers on threads, and say what each one did.

    `lockstep` interleaves racers the same way every time (see `benchmarks.meter`);
    otherwise they are released together and the threads decide, and `released` is called
    at that moment.
    """
    start = None if lockstep else threading.Barrier(len(wave), action=released)
    barrier = threading.Barrier(len(wave)) if lockstep and len(wave) > 1 else None
    finished = [threading.Event() for _ in wave]
    outcomes: list[Invocation] = []
    errors: list[BaseException] = []

    def deliver(index: int, delivery: Delivery) -> None:
        env = make_env(delivery)
        turn = finished[index - 1] if index and lockstep else None
        died = False
        if start is not None:
            start.wait(timeout=30)
        tape = client.start(barrier=barrier, turn=turn)
        try:
            result = design.invoke(env, Trigger(JOB, slot=START + timedelta(hours=delivery.slot)))
            if result.outcome not in (Outcome.SKIPPED, Outcome.SUCCEEDED):
                raise AssertionError(f"{design.name}: unexpected {result.outcome}")
        except WorkloadCrash:
            died = True
        except BaseException as exc:  # re-raised in the driver's thread below
            errors.append(exc)
            if barrier is not None:
                barrier.abort()
            return
        finally:
            client.stop()
            finished[index].set()
        outcomes.append(Invocation(delivery, tape, bool(env.worked), died))

    threads = [threading.Thread(target=deliver, args=(i, d)) for i, d in enumerate(wave)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return outcomes


def make_env_factory(client: MeteredClient, clock: ManualClock) -> Callable[[Delivery], _Env]:
    """Each delivery's Env: one store, config, clock and run-id sequence for the whole day."""
    store = ControlStore(TABLE, client=client, clock=clock)
    config = JobConfig()
    new_run_id = SequentialIds()

    def make_env(delivery: Delivery) -> _Env:
        return _Env(store, client, config, clock, new_run_id, delivery.crash)

    return make_env


def run_day(design: Contender, waves: list[list[Delivery]]) -> DayResult:
    """Deliver every wave to `design` on a fresh backend and account for each invocation."""
    client = new_backend(design)
    clock = ManualClock(START - timedelta(minutes=1))
    make_env = make_env_factory(client, clock)
    paths = {name: PathCost() for name in PATHS}
    succeeded: Counter[int] = Counter()
    crashed: set[int] = set()
    slots = 1 + max(d.slot for wave in waves for d in wave)
    ran_at: list[tuple[int, bool]] = []  # (slot, succeeded) of every run, in order

    with design.clocked(clock):
        for wave in waves:
            clock.set(max(clock.now(), wave[0].at))
            outcomes = deliver_wave(design, wave, make_env, client)
            someone_ran = any(o.worked for o in outcomes)
            for o in outcomes:
                if o.died:
                    path = "crash"
                    crashed.add(o.delivery.slot)
                elif o.worked:
                    path = "crash-retry" if o.delivery.slot in crashed else "run"
                    succeeded[o.delivery.slot] += 1
                else:
                    path = "lost race" if len(wave) > 1 and someone_ran else "skip"
                if o.worked:
                    ran_at.append((o.delivery.slot, not o.died))
                paths[path].add(o.tape)
    return DayResult(
        design=design.name,
        slots=slots,
        paths=paths,
        double_runs=sum(n - 1 for n in succeeded.values() if n > 1),
        missed=sum(1 for s in range(slots) if succeeded[s] == 0),
        wedged=_wedged(ran_at, slots, succeeded),
        item_sizes=dict(client.largest),
    )


def _wedged(ran_at: list[tuple[int, bool]], slots: int, succeeded: Counter[int]) -> int:
    """Missed slots after a crash that no later run ever got past: the lock stayed held."""
    last_crash = max((s for s, ok in ran_at if not ok), default=None)
    if last_crash is None or any(ok for s, ok in ran_at if s >= last_crash):
        return 0
    return sum(1 for s in range(last_crash, slots) if succeeded[s] == 0)
