"""A race forced into its worst interleaving, reproducibly: notebook 03's `course.race()`.

N triggers for one slot: every contender reads the control item before any of them writes,
then the writes land in contender order. Threads take turns through `_Turns`, and each sees
the store through `_ForcedStore`, which holds it at the barrier and logs each step at a
logical time, so the report (and the timeline drawn from it) reads the same on every run.
Against the naive lock every contender runs; against the conditional write exactly one.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from jobcontroller.clock import Clock, ManualClock, SequentialIds
from jobcontroller.controller import JobController
from jobcontroller.course.counterexamples import naive_acquire, naive_release
from jobcontroller.course.display import RequestCounter, Table, cell
from jobcontroller.model import JobConfig, JobState, Outcome, Trigger
from jobcontroller.store import Acquired, Committed, ControlStore, RunRecord
from jobcontroller.workload import Workload, WorkloadContext

__all__ = ["ContenderRecord", "RaceCourse", "RaceReport", "race"]

_TIMEOUT = 30.0


class RaceCourse(Protocol):
    """What a race needs of the notebook's `Course` (its store, clock, ids and job)."""

    store: ControlStore
    job: str
    table: str
    config: JobConfig
    clock: ManualClock
    ids: SequentialIds
    requests: RequestCounter

    @property
    def history_clock(self) -> Clock: ...

    def workload(self, *, fail: bool = False, crash: bool = False) -> Workload: ...

    def slot_now(self) -> datetime: ...

    def when(self, text: str | datetime) -> datetime: ...

    def state(self) -> JobState: ...

    def controller(self, **overrides: Any) -> JobController: ...


class _Turns:
    """Lets contenders take turns in a fixed order: contender 0, then 1, then 2..."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._turn = 0

    def wait_for(self, index: int) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self._turn >= index, timeout=_TIMEOUT):
                raise TimeoutError(f"contender {index} waited {_TIMEOUT}s for its turn")

    def done(self, index: int) -> None:
        """Pass the turn on (a no-op if contender `index` already did)."""
        with self._cond:
            if self._turn == index:
                self._turn = index + 1
                self._cond.notify_all()

    def finish(self, index: int) -> None:
        """Wait for `index`'s turn, then pass it on: for contenders that never wrote."""
        self.wait_for(index)
        self.done(index)


@dataclass
class _Log:
    """One contender's events, as (step, kind, text); the step is a logical time."""

    events: list[tuple[int, str, str]] = field(default_factory=list)

    def add(self, step: int, kind: str, text: str) -> None:
        self.events.append((step, kind, text))


class _ForcedStore:
    """A contender's view of the store that forces the worst interleaving, reproducibly.

    Every contender reads before any contender writes (a barrier after the read), and the
    writes then land in contender order. Any other interleaving is a milder case of this one.
    """

    def __init__(
        self,
        store: ControlStore,
        index: int,
        contenders: int,
        barrier: threading.Barrier,
        turns: _Turns,
        log: _Log,
    ) -> None:
        self._store = store
        self._index = index
        self._contenders = contenders
        self._barrier = barrier
        self._turns = turns
        self._log = log

    def read(self, job: str) -> JobState:
        state = self._store.read(job)
        self._log.add(0, "read", f"read v{state.version} {state.status.value}")
        self._barrier.wait(timeout=_TIMEOUT)
        return state

    def acquire(self, state: JobState, **kwargs: Any) -> Any:
        self._turns.wait_for(self._index)
        try:
            outcome = self._store.acquire(state, **kwargs)
        finally:
            self._turns.done(self._index)
        step = 1 + self._index
        if isinstance(outcome, Acquired):
            self._log.add(step, "acquired", f"conditional write v{state.version}: accepted")
        else:
            self._log.add(step, "refused", f"conditional write v{state.version}: refused")
        return outcome

    def finish(self, held: JobState, record: RunRecord, **kwargs: Any) -> Any:
        # The winner commits only after every contender has tried to write, so what the
        # losers were refused by is always the same item.
        self._turns.wait_for(self._contenders)
        outcome = self._store.finish(held, record, **kwargs)
        kind = "committed" if isinstance(outcome, Committed) else "fenced"
        self._log.add(self._contenders + 2, kind, f"{kind} ({record.outcome})")
        return outcome

    def write_unconditionally(self, state: JobState) -> None:
        text = f"wrote RUNNING v{state.version}, no condition"
        self._log.add(1 + self._index, "wrote", text)
        self._store.write_unconditionally(state)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


@dataclass(frozen=True)
class ContenderRecord:
    """What one contender of a race did, step by step."""

    label: str
    run_id: str
    outcome: str
    reason: str | None
    events: tuple[tuple[int, str, str], ...]
    requests: Counter[str]


@dataclass(frozen=True)
class RaceReport:
    """N triggers for one slot at once, against one locking design."""

    design: Literal["naive", "conditional"]
    slot: datetime
    contenders: tuple[ContenderRecord, ...]
    before: JobState
    after: JobState

    @property
    def runs(self) -> int:
        """How many contenders ran the workload."""
        return sum(1 for c in self.contenders if c.outcome in (Outcome.SUCCEEDED, "RAN"))

    def table(self) -> Table:
        rows = tuple(
            (
                c.label,
                c.run_id,
                c.outcome,
                c.reason or "-",
                " -> ".join(text for _, _, text in c.events),
            )
            for c in self.contenders
        )
        title = (
            f"{len(self.contenders)} triggers for slot {cell(self.slot)}, "
            f"{self.design} lock: the workload ran {self.runs} time(s)"
        )
        notes = (
            f"run_count {self.before.run_count} -> {self.after.run_count}, "
            f"status {self.after.status.value}, version {self.before.version} -> "
            f"{self.after.version}",
        )
        return Table(("contender", "run_id", "outcome", "reason", "steps"), rows, title, notes)

    def __repr__(self) -> str:
        return self.table().text()

    def _repr_html_(self) -> str:
        return self.table()._repr_html_()


def race(
    course: RaceCourse,
    contenders: int = 8,
    *,
    design: Literal["naive", "conditional"] = "conditional",
    slot: str | datetime | None = None,
) -> RaceReport:
    """`contenders` triggers for one slot at once, in the worst interleaving, reproducibly.

    Every contender reads the item before any of them writes; the writes then land in
    contender order. Run ids are handed out in contender order before the race starts,
    so the report and the item read the same on every run.
    """
    if contenders < 2:
        raise ValueError("a race needs at least 2 contenders")
    if design not in ("naive", "conditional"):
        raise ValueError("design must be 'naive' or 'conditional'")
    slot_at = course.slot_now() if slot is None else course.when(slot)
    trigger = Trigger(course.job, slot=slot_at, source="scheduler")
    run_ids = [course.ids() for _ in range(contenders)]
    barrier = threading.Barrier(contenders)
    turns = _Turns()
    logs = [_Log() for _ in range(contenders)]
    outcomes: list[tuple[str, str | None] | BaseException | None] = [None] * contenders
    idents = [0] * contenders
    before = course.state()
    mark = course.requests.mark()

    def contend(index: int) -> None:
        idents[index] = threading.get_ident()
        forced = _ForcedStore(course.store, index, contenders, barrier, turns, logs[index])
        try:
            if design == "naive":
                outcomes[index] = _naive_contender(
                    course, forced, index, run_ids, turns, logs[index]
                )
            else:
                outcomes[index] = _conditional_contender(
                    course, forced, index, run_ids, trigger, logs[index]
                )
        except BaseException as exc:  # re-raised below, in the caller's thread
            barrier.abort()
            outcomes[index] = exc
        finally:
            with contextlib.suppress(TimeoutError):
                turns.finish(index)

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    finished: list[tuple[str, str | None]] = []
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
        if outcome is None:  # cannot happen: every contender returned or raised
            raise RuntimeError("a contender ended without an outcome")
        finished.append(outcome)
    if design == "naive":
        _naive_workloads(course, finished, run_ids, slot_at, logs, contenders)
    records = tuple(
        ContenderRecord(
            label=f"#{index + 1}",
            run_id=run_ids[index],
            outcome=outcome[0],
            reason=outcome[1],
            events=tuple(sorted(logs[index].events)),
            requests=course.requests.since(mark, threads=[idents[index]]),
        )
        for index, outcome in enumerate(finished)
    )
    return RaceReport(design, slot_at, records, before, course.state())


def _conditional_contender(
    course: RaceCourse,
    forced: _ForcedStore,
    index: int,
    run_ids: list[str],
    trigger: Trigger,
    log: _Log,
) -> tuple[str, str | None]:
    inner = course.workload()
    contenders = len(run_ids)

    def work(ctx: WorkloadContext) -> Any:
        log.add(contenders + 1, "work", "runs the workload")
        return inner(ctx)

    controller = JobController(
        forced,  # type: ignore[arg-type]  # a ControlStore stand-in, duck-typed
        course.job,
        config=course.config,
        clock=course.clock,
        wall_clock=course.history_clock,
        new_run_id=lambda: run_ids[index],
    )
    result = controller.invoke(trigger, work)
    reason = None if result.reason is None else result.reason.value
    # A lost race already shows as the refused write; a gate skip never wrote.
    if result.outcome is Outcome.SKIPPED and reason != "LOST_RACE":
        log.add(1 + index, "skipped", f"gate: SKIP {reason}")
    return result.outcome.value, reason


def _naive_contender(
    course: RaceCourse,
    forced: _ForcedStore,
    index: int,
    run_ids: list[str],
    turns: _Turns,
    log: _Log,
) -> tuple[str, str | None]:

    def between() -> None:
        # Every contender has read already (the barrier in _ForcedStore.read); now the
        # writes land in contender order.
        turns.wait_for(index)

    now = course.clock.now()
    try:
        won = naive_acquire(
            forced, course.job, run_id=run_ids[index], now=now, between_read_and_write=between
        )
    finally:
        turns.done(index)
    if not won:
        log.add(1 + index, "skipped", "status was not IDLE: exit")
        return "SKIPPED", "RUNNING"
    return "RAN", None


def _naive_workloads(
    course: RaceCourse,
    outcomes: list[tuple[str, str | None]],
    run_ids: list[str],
    slot: datetime,
    logs: list[_Log],
    contenders: int,
) -> None:
    """Every contender that believes it holds the lock runs and commits, in order."""

    for index, (outcome, _) in enumerate(outcomes):
        if outcome != "RAN":
            continue
        ctx = WorkloadContext(
            job=course.job,
            run_id=run_ids[index],
            slot=slot,
            deadline=course.clock.now() + timedelta(seconds=course.config.default_lease_seconds),
            clock=course.clock,
        )
        course.workload()(ctx)
        logs[index].add(contenders + 1, "work", "runs the workload")
        done = naive_release(course.store, course.job, now=course.clock.now())
        text = f"wrote IDLE v{done.version}, run_count+1, no condition"
        logs[index].add(contenders + 2, "committed", text)
