"""The notebooks' one-call set-up, and the curated displays they show.

`setup()` connects to the backend (the embedded one unless real AWS is opted into), makes
sure the table and the job exist, and returns a `Course`: the store, a `ManualClock`, fixed
run ids, a request counter and helpers that print the control item the same way on every
run. Everything a notebook does lives here or in the core modules, so a notebook cell stays
a line or two and no later notebook depends on code typed into an earlier one.

Course tooling only: the Lambda never imports this module.
"""

from __future__ import annotations

import contextlib
import html
import os
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from jobcontroller.clock import Clock, ManualClock, SequentialIds, SystemClock
from jobcontroller.controller import InvocationResult, JobController
from jobcontroller.model import Drill, JobConfig, JobState, Outcome, Trigger, format_ts, job_key
from jobcontroller.store import Acquired, Committed, ControlStore, RunRecord, seed_card_lock
from jobcontroller.workload import Workload, WorkloadContext, placeholder

__all__ = [
    "LOCK_FIELDS",
    "REAL_AWS_VARIABLE",
    "SEED_FIELDS",
    "STATE_FIELDS",
    "ContenderRecord",
    "Course",
    "OvertakenWorkload",
    "RaceReport",
    "RequestCounter",
    "Table",
    "setup",
    "show_costs",
    "show_outcome",
    "show_requests",
    "show_result",
    "show_runs",
    "show_state",
]

REAL_AWS_VARIABLE = "JOBCONTROLLER_REAL_AWS"

# The control item's fields in the order the course always prints them: the seed's fields
# first, then what the lease, fencing and once-per-slot rules add.
STATE_FIELDS = (
    "status",
    "version",
    "run_count",
    "last_run_ts",
    "last_success_ts",
    "next_allowed_run",
    "last_error",
    "last_error_ts",
    "failure_count",
    "consecutive_failures",
    "last_slot",
    "run_id",
    "lease_expires_at",
    "run_slot",
    "last_run_id",
    "takeover_count",
    "last_takeover_from",
    "paused",
    "drill",
)
SEED_FIELDS = STATE_FIELDS[:7]
# What the lock, lease and fencing demos look at.
LOCK_FIELDS = (
    "status",
    "version",
    "run_id",
    "lease_expires_at",
    "run_count",
    "last_run_id",
    "last_slot",
    "takeover_count",
    "last_takeover_from",
)

# DynamoDB operations in the order the cost tables list them.
_OPERATIONS = ("GetItem", "UpdateItem", "PutItem", "TransactWriteItems", "Query", "DeleteItem")
_WRITES = {"UpdateItem", "PutItem", "TransactWriteItems", "DeleteItem", "BatchWriteItem"}
_TIMEOUT = 30.0


# --- displays --------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    """One value as the course prints it: stored timestamps, enums by value, '-' for empty."""
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return format_ts(value)
    if isinstance(value, timedelta):
        return _duration(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(getattr(value, "value", value))


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{sign}{minutes}m{secs:02d}s"
    return f"{sign}{secs}s"


@dataclass(frozen=True)
class Table:
    """A small table that prints the same text and HTML on every run (no pandas, no ids)."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    title: str = ""
    notes: tuple[str, ...] = ()
    # Rows to highlight (by index), e.g. the fields a step changed.
    marked: frozenset[int] = frozenset()

    def text(self) -> str:
        widths = [len(h) for h in self.header]
        for row in self.rows:
            widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
        lines = [self.title] if self.title else []
        header = "  ".join(h.ljust(w) for h, w in zip(self.header, widths, strict=True))
        lines.append(header.rstrip())
        lines.append("  ".join("-" * w for w in widths))
        for index, row in enumerate(self.rows):
            line = "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))
            if index in self.marked:
                line += "  <- changed"
            lines.append(line.rstrip())
        lines.extend(self.notes)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        parts = []
        if self.title:
            parts.append(f"<p><b>{html.escape(self.title)}</b></p>")
        parts.append('<table style="font-family: monospace">')
        head = "".join(f"<th style='text-align:left'>{html.escape(h)}</th>" for h in self.header)
        parts.append(f"<tr>{head}</tr>")
        for index, row in enumerate(self.rows):
            style = " style='background:#fff3b0'" if index in self.marked else ""
            cells = "".join(f"<td style='text-align:left'>{html.escape(c)}</td>" for c in row)
            parts.append(f"<tr{style}>{cells}</tr>")
        parts.append("</table>")
        parts.extend(f"<p>{html.escape(n)}</p>" for n in self.notes)
        return "\n".join(parts)


def show_state(
    state: JobState,
    *,
    before: JobState | None = None,
    fields: Sequence[str] = STATE_FIELDS,
    title: str | None = None,
) -> Table:
    """The control item's fields in a fixed order; with `before`, the changed ones are marked."""
    rows = []
    marked = set()
    for index, name in enumerate(fields):
        value = _cell(getattr(state, name))
        if before is None:
            rows.append((name, value))
            continue
        old = _cell(getattr(before, name))
        rows.append((name, old, value))
        if old != value:
            marked.add(index)
    header = ("field", "value") if before is None else ("field", "before", "after")
    heading = title if title is not None else f"control item JOB#{state.job} / STATE"
    notes = ("(no field changed)",) if before is not None and not marked else ()
    return Table(header, tuple(rows), heading, notes, frozenset(marked))


def show_runs(runs: Iterable[RunRecord], *, title: str = "run history (newest first)") -> Table:
    """Run-history items (SK = RUN#...), one row each, in the order given."""
    rows = tuple(
        (
            r.run_id,
            r.outcome,
            _cell(r.slot),
            _cell(r.started_at),
            _cell(r.finished_at),
            _cell(r.took_over_from),
            _cell(r.error),
        )
        for r in runs
    )
    header = ("run_id", "outcome", "slot", "started_at", "finished_at", "took_over_from", "error")
    notes = () if rows else ("(no runs yet)",)
    return Table(header, rows, title, notes)


def show_result(result: InvocationResult, *, title: str = "what the invocation did") -> Table:
    """One invocation's result, field by field (what the Lambda would return)."""
    rows = (
        ("outcome", _cell(result.outcome)),
        ("reason", _cell(result.reason)),
        ("detail", result.detail or "-"),
        ("run_id", _cell(result.run_id)),
        ("slot", _cell(result.slot)),
        ("keyed_by", result.keyed_by),
        ("took_over_from", _cell(result.took_over_from)),
        ("error", _cell(result.error)),
    )
    return Table(("field", "value"), rows, title)


def show_outcome(outcome: Any, *, title: str | None = None) -> Table:
    """A store outcome (Acquired, Blocked, Committed, Fenced) and the item it carries."""
    kind = type(outcome).__name__
    meaning = {
        "Acquired": "the condition held: this run now holds the lock",
        "Blocked": "the condition failed: nothing was written; here is the item that refused it",
        "Committed": "the outcome was recorded and the lock released",
        "Fenced": "this run no longer held the lock: its outcome was refused, nothing written",
    }.get(kind, "")
    state = getattr(outcome, "state", None)
    rows = [("outcome", kind), ("meaning", meaning)]
    if state is not None:
        for name in ("status", "version", "run_id", "lease_expires_at", "last_run_id"):
            rows.append((f"item.{name}", _cell(getattr(state, name))))
    return Table(("field", "value"), tuple(rows), title or f"store outcome: {kind}")


def show_requests(counts: Counter[str], *, title: str = "DynamoDB requests") -> Table:
    """Request counts by operation, reads and writes totalled."""
    names = [op for op in _OPERATIONS if counts.get(op)]
    names += sorted(op for op in counts if op not in _OPERATIONS and counts[op])
    rows = tuple((op, str(counts[op]), "write" if op in _WRITES else "read") for op in names)
    writes = sum(counts[op] for op in counts if op in _WRITES)
    total = sum(counts.values())
    note = f"total {total} request(s), of which {writes} write(s)"
    return Table(("operation", "count", "kind"), rows, title, (note,))


def show_costs(paths: dict[str, Counter[str]], *, title: str = "cost of each path") -> Table:
    """DynamoDB requests per invocation path, one row per path, reads and writes split."""
    ops = [op for op in _OPERATIONS if any(c.get(op) for c in paths.values())]
    rows = []
    for name, counts in paths.items():
        reads = sum(n for op, n in counts.items() if op not in _WRITES)
        writes = sum(n for op, n in counts.items() if op in _WRITES)
        rows.append((name, *(str(counts.get(op, 0)) for op in ops), str(reads), str(writes)))
    return Table(("path", *ops, "reads", "writes"), tuple(rows), title)


# --- counting requests -----------------------------------------------------------------------


class RequestCounter:
    """Counts the DynamoDB API calls a boto3 client makes, by operation and by thread.

    It listens to botocore's `before-call` event, which fires once per API call (botocore's
    own retries of that call are not counted again).
    """

    def __init__(self, client: Any) -> None:
        self._lock = threading.Lock()
        self._calls: list[tuple[int, str]] = []
        client.meta.events.register("before-call.dynamodb", self._record)

    def _record(self, model: Any = None, **_: Any) -> None:
        with self._lock:
            self._calls.append((threading.get_ident(), model.name))

    def mark(self) -> int:
        """A position to count from."""
        with self._lock:
            return len(self._calls)

    def since(self, mark: int, *, threads: Iterable[int] | None = None) -> Counter[str]:
        """Calls made after `mark` (only those from `threads`, when given)."""
        with self._lock:
            calls = self._calls[mark:]
        wanted = None if threads is None else set(threads)
        return Counter(op for ident, op in calls if wanted is None or ident in wanted)

    @contextlib.contextmanager
    def measure(self) -> Iterator[Counter[str]]:
        """`with counter.measure() as counts:` fills `counts` when the block ends."""
        counts: Counter[str] = Counter()
        start = self.mark()
        try:
            yield counts
        finally:
            counts.update(self.since(start))


# --- forced races ----------------------------------------------------------------------------


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
            f"{len(self.contenders)} triggers for slot {format_ts(self.slot)}, "
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


# --- the course ------------------------------------------------------------------------------


def _parse_when(text: str | datetime, *, day: datetime) -> datetime:
    """A datetime, a full ISO time, or 'HH:MM[:SS]' on the course's first day."""
    if isinstance(text, datetime):
        if text.tzinfo is None:
            raise ValueError("pass a timezone-aware datetime (UTC)")
        return text.astimezone(UTC)
    if "T" in text:
        return ManualClock(text).now()
    parts = [int(p) for p in text.split(":")]
    if len(parts) not in (2, 3):
        raise ValueError(f"{text!r}: use 'HH:MM', 'HH:MM:SS' or a full time like ...T09:00:00Z")
    hour, minute, second = (*parts, 0)[:3]
    return day.replace(hour=hour, minute=minute, second=second, microsecond=0)


class Course:
    """One notebook's handle on the job: store, clock, ids, request counter and displays."""

    def __init__(
        self,
        store: ControlStore,
        *,
        job: str,
        start: datetime,
        config: JobConfig,
        backend: str,
        aws: Any = None,
        workload_seconds: float = 1.0,
    ) -> None:
        job_key(job)
        self.store = store
        self.job = job
        self.table = store.table
        self.start = start
        self.config = config
        self.backend = backend
        self.aws = aws
        self.workload_seconds = workload_seconds
        self.requests = RequestCounter(store.client)
        self.clock = ManualClock(start)
        self.ids = SequentialIds()

    def __repr__(self) -> str:
        return (
            f"Course(job={self.job!r}, table={self.table!r}, backend={self.backend!r}, "
            f"clock={format_ts(self.clock.now())})"
        )

    # --- set-up ----------------------------------------------------------------------------

    def create(self) -> tuple[bool, bool]:
        """Create the table and the job's IDLE item if missing: (table created, job created)."""
        table_created = self.store.create_table()
        job_created = self.store.init_job(self.job, now=self.start)
        return table_created, job_created

    def reset(self) -> JobState:
        """Start the job again from IDLE: delete its items, rewind the clock and the ids.

        After this a notebook prints exactly what it printed the first time.
        """
        self._delete_job_items()
        self.clock = ManualClock(self.start)
        self.ids = SequentialIds()
        self.store.init_job(self.job, now=self.start)
        return self.state()

    def _delete_job_items(self) -> None:
        self.store.delete_job(self.job)

    # --- time and triggers -----------------------------------------------------------------

    def when(self, text: str | datetime) -> datetime:
        """'HH:MM[:SS]' (on the course's first day) or a full time, as a UTC datetime."""
        return _parse_when(text, day=self.start)

    def at(self, when: str | datetime) -> datetime:
        """Move the course clock forward to `when` and return it."""
        return self.clock.set(self.when(when))

    def slot_now(self) -> datetime:
        """The schedule slot the clock is in (the time floored to the interval)."""
        seconds = int(self.clock.now().timestamp())
        floored = seconds - seconds % self.config.interval_seconds
        return datetime.fromtimestamp(floored, UTC)

    def trigger(self, slot: str | datetime | None = None) -> Trigger:
        """A Scheduler delivery for `slot`, or a manual trigger when `slot` is None."""
        if slot is None:
            return Trigger(self.job, source="manual")
        return Trigger(self.job, slot=self.when(slot), source="scheduler")

    @property
    def history_clock(self) -> Clock:
        """The clock that stamps run history's TTL: the course's own on the embedded backend
        (moto never expires items, and outputs stay fixed), real time on real AWS."""
        return self.clock if self.aws is not None else SystemClock()

    def controller(self, **overrides: Any) -> JobController:
        """A JobController on this course's store, clock, config and run ids."""
        options: dict[str, Any] = {
            "config": self.config,
            "clock": self.clock,
            "wall_clock": self.history_clock,
            "new_run_id": self.ids,
        }
        options.update(overrides)
        return JobController(self.store, self.job, **options)

    def workload(self, *, fail: bool = False, crash: bool = False) -> Workload:
        """The placeholder workload (it obeys a FAIL/CRASH drill set in the control item)."""
        return placeholder(seconds=self.workload_seconds, fail=fail, crash=crash)

    def invoke(
        self,
        slot: str | datetime | None = None,
        *,
        workload: Workload | None = None,
        fail: bool = False,
        crash: bool = False,
    ) -> InvocationResult:
        """One Lambda invocation at the current clock time, for `slot` (None: manual)."""
        work = workload or self.workload(fail=fail, crash=crash)
        return self.controller().invoke(self.trigger(slot), work)

    def acquire(self, state: JobState, *, run_id: str, takeover: bool = False) -> Any:
        """The package's lock on its own: one conditional write based on `state` as read.

        Returns the store's outcome, `Acquired` (this run holds the lock) or `Blocked`
        (carrying the item that refused it); it never raises for a refused condition.
        """
        now = self.clock.now()
        return self.store.acquire(
            state,
            run_id=run_id,
            now=now,
            lease_until=now + timedelta(seconds=self.config.default_lease_seconds),
            slot=self.slot_now(),
            takeover=takeover,
        )

    def overtaken_workload(self, *, rival_slot: str | datetime) -> OvertakenWorkload:
        """A workload that overruns its lease while the `rival_slot` trigger takes over."""
        return OvertakenWorkload(self, self.when(rival_slot))

    # --- reading and operator actions ------------------------------------------------------

    def state(self) -> JobState:
        """The control item, read now."""
        return self.store.read(self.job)

    def runs(self, *, limit: int = 10) -> list[RunRecord]:
        """The run history, newest first."""
        return self.store.runs(self.job, limit=limit)

    def pause(self) -> JobState:
        return self.store.set_paused(self.job, True)

    def resume(self) -> JobState:
        return self.store.set_paused(self.job, False)

    def drill(self, drill: Drill | str | None) -> JobState:
        """Make the next run FAIL or CRASH (None clears it)."""
        return self.store.set_drill(self.job, drill)

    # --- displays --------------------------------------------------------------------------

    def show_state(
        self,
        state: JobState | None = None,
        *,
        before: JobState | None = None,
        fields: Sequence[str] = STATE_FIELDS,
        title: str | None = None,
    ) -> Table:
        """The control item (read now unless given), fields in a fixed order."""
        return show_state(state or self.state(), before=before, fields=fields, title=title)

    def show_runs(self, runs: Iterable[RunRecord] | None = None) -> Table:
        """The run history (read now unless given)."""
        return show_runs(self.runs() if runs is None else runs)

    show_result = staticmethod(show_result)
    show_requests = staticmethod(show_requests)
    show_costs = staticmethod(show_costs)
    show_outcome = staticmethod(show_outcome)

    def show_item(self, *, fields: Sequence[str] | None = None) -> Table:
        """The control item as DynamoDB stores it: attribute, DynamoDB type, value.

        This reads the raw item (not the typed JobState), so it also shows items the
        package would refuse as corrupt, such as the one the seed's lock leaves behind.
        """
        item = self.store.raw_item(self.job)
        if item is None:
            return Table(("attribute", "type", "value"), (), notes=("(no item)",))
        order = ["PK", "SK", "job", *STATE_FIELDS, "created_at"]
        names = [n for n in order if n in item] + sorted(n for n in item if n not in order)
        if fields is not None:
            names = [n for n in ("PK", "SK", *fields) if n in item]
        rows = []
        for name in names:
            ((kind, value),) = item[name].items()
            shown = "null" if kind == "NULL" else _cell(value)
            rows.append((name, kind, shown))
        title = f"GetItem {self.table} PK={item['PK']['S']} SK={item['SK']['S']}"
        return Table(("attribute", "type", "value"), tuple(rows), title)

    def show_table(self) -> Table:
        """The table's key schema and billing mode, as DescribeTable reports them."""
        table = self.store.describe_table()
        rows = tuple(table["keys"])
        notes = (f"status {table['status']}, billing {table['billing']}",)
        return Table(("key attribute", "key type", "type"), rows, f"table {self.table}", notes)

    def environment(self) -> Table:
        """What the course needs, checked, without versions or ports (stable output)."""
        import importlib.util
        import sys

        rows = [("python >= 3.11", "ok" if sys.version_info >= (3, 11) else "too old")]
        for module, use in (
            ("boto3", "AWS SDK"),
            ("moto", "embedded backend"),
            ("ipywidgets", "dashboard"),
            ("matplotlib", "timeline pictures"),
        ):
            found = importlib.util.find_spec(module) is not None
            rows.append((f"{module} ({use})", "ok" if found else "missing"))
        rows.append(("backend", self.backend))
        rows.append(("table", self.table))
        rows.append(("job", self.job))
        rows.append(("course clock", format_ts(self.clock.now())))
        return Table(("check", "result"), tuple(rows), "environment")

    def dashboard(self, **options: Any) -> Any:
        """The live dashboard (ipywidgets) for this course's job."""
        from jobcontroller.course.dashboard import Dashboard

        return Dashboard(self, **options)

    # --- races -----------------------------------------------------------------------------

    def race(
        self,
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
        slot_at = self.slot_now() if slot is None else self.when(slot)
        trigger = Trigger(self.job, slot=slot_at, source="scheduler")
        run_ids = [self.ids() for _ in range(contenders)]
        barrier = threading.Barrier(contenders)
        turns = _Turns()
        logs = [_Log() for _ in range(contenders)]
        outcomes: list[tuple[str, str | None] | BaseException | None] = [None] * contenders
        idents = [0] * contenders
        before = self.state()
        mark = self.requests.mark()

        def contend(index: int) -> None:
            idents[index] = threading.get_ident()
            forced = _ForcedStore(self.store, index, contenders, barrier, turns, logs[index])
            try:
                if design == "naive":
                    outcomes[index] = self._naive_contender(
                        forced, index, run_ids, turns, logs[index]
                    )
                else:
                    outcomes[index] = self._conditional_contender(
                        forced, index, run_ids, trigger, logs[index]
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
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        if design == "naive":
            self._naive_workloads(outcomes, run_ids, slot_at, logs, contenders)
        records = tuple(
            ContenderRecord(
                label=f"#{index + 1}",
                run_id=run_ids[index],
                outcome=outcome[0],
                reason=outcome[1],
                events=tuple(sorted(logs[index].events)),
                requests=self.requests.since(mark, threads=[idents[index]]),
            )
            for index, outcome in enumerate(outcomes)  # type: ignore[misc]
        )
        return RaceReport(design, slot_at, records, before, self.state())

    def _conditional_contender(
        self,
        forced: _ForcedStore,
        index: int,
        run_ids: list[str],
        trigger: Trigger,
        log: _Log,
    ) -> tuple[str, str | None]:
        inner = self.workload()
        contenders = len(run_ids)

        def work(ctx: WorkloadContext) -> Any:
            log.add(contenders + 1, "work", "runs the workload")
            return inner(ctx)

        controller = JobController(
            forced,  # type: ignore[arg-type]
            self.job,
            config=self.config,
            clock=self.clock,
            wall_clock=self.history_clock,
            new_run_id=lambda: run_ids[index],
        )
        result = controller.invoke(trigger, work)
        reason = None if result.reason is None else result.reason.value
        # A lost race already shows as the refused write; a gate skip never wrote.
        if result.outcome is Outcome.SKIPPED and reason != "LOST_RACE":
            log.add(1 + index, "skipped", f"gate: SKIP {reason}")
        return result.outcome.value, reason

    def _naive_contender(
        self,
        forced: _ForcedStore,
        index: int,
        run_ids: list[str],
        turns: _Turns,
        log: _Log,
    ) -> tuple[str, str | None]:
        from jobcontroller.course.counterexamples import naive_acquire

        def between() -> None:
            # Every contender has read already (the barrier in _ForcedStore.read); now the
            # writes land in contender order.
            turns.wait_for(index)

        now = self.clock.now()
        try:
            won = naive_acquire(
                forced, self.job, run_id=run_ids[index], now=now, between_read_and_write=between
            )
        finally:
            turns.done(index)
        if not won:
            log.add(1 + index, "skipped", "status was not IDLE: exit")
            return "SKIPPED", "RUNNING"
        return "RAN", None

    def _naive_workloads(
        self,
        outcomes: list[Any],
        run_ids: list[str],
        slot: datetime,
        logs: list[_Log],
        contenders: int,
    ) -> None:
        """Every contender that believes it holds the lock runs and commits, in order."""
        from jobcontroller.course.counterexamples import naive_release

        for index, (outcome, _) in enumerate(outcomes):
            if outcome != "RAN":
                continue
            ctx = WorkloadContext(
                job=self.job,
                run_id=run_ids[index],
                slot=slot,
                deadline=self.clock.now() + timedelta(seconds=self.config.default_lease_seconds),
                clock=self.clock,
            )
            self.workload()(ctx)
            logs[index].add(contenders + 1, "work", "runs the workload")
            done = naive_release(self.store, self.job, now=self.clock.now())
            text = f"wrote IDLE v{done.version}, run_count+1, no condition"
            logs[index].add(contenders + 2, "committed", text)

    def race_rounds(self, *, rounds: int = 10, contenders: int = 8) -> Table:
        """Free-running threads (no forced order), one slot per round: runs per round.

        Which contender wins, and whether a loser was stopped by the gate or by the
        conditional write, changes from run to run; so this reports only the counts.
        """
        from jobcontroller.course.races import race_threads

        first = self.slot_now()
        before = self.state().run_count
        per_round = []
        for round_no in range(rounds):
            slot = first + self.config.interval * round_no
            self.clock.set(max(self.clock.now(), slot + timedelta(seconds=5)))

            def make(index: int, round_no: int = round_no) -> JobController:
                ids = SequentialIds(prefix=f"free-r{round_no:02d}-c{index:02d}-")
                return self.controller(new_run_id=ids)

            trigger = Trigger(self.job, slot=slot, source="scheduler")
            results = race_threads(make, trigger, contenders=contenders, round_no=round_no)
            per_round.append(sum(1 for r in results if r.outcome == Outcome.SUCCEEDED))
        after = self.state().run_count
        rows = (
            ("rounds", str(rounds)),
            ("threads per round", str(contenders)),
            ("rounds with exactly one run", str(per_round.count(1))),
            ("rounds with more than one run", str(sum(1 for n in per_round if n > 1))),
            ("run_count before -> after", f"{before} -> {after}"),
        )
        return Table(("free-running threads", "result"), rows)

    def race_processes(self, *, processes: int = 4, rounds: int = 3) -> Table:
        """Separate OS processes (each its own boto3 client) fire the same slots together."""
        from jobcontroller.course.races import race_processes

        first = self.slot_now()
        before = self.state().run_count
        results = race_processes(
            self.table,
            self.job,
            first_slot=first,
            processes=processes,
            rounds=rounds,
            config=self.config,
        )
        # The processes' clocks stand after the last slot; catch ours up with them.
        last = first + self.config.interval * rounds
        self.clock.set(max(self.clock.now(), last))
        rows = []
        for round_no in range(rounds):
            outcomes = Counter(r.outcome for r in results if r.round == round_no)
            slot = first + self.config.interval * round_no
            summary = ", ".join(f"{k} x{outcomes[k]}" for k in sorted(outcomes))
            rows.append((format_ts(slot), summary))
        after = self.state().run_count
        note = f"{processes} processes per slot; run_count {before} -> {after}"
        return Table(("slot", "outcomes"), tuple(rows), "separate processes", (note,))

    # --- the seed's design, for contrast ---------------------------------------------------

    def seed_invoke(self, *, crash: bool = False) -> str:
        """One invocation with a lock that has no lease: read, check IDLE, write RUNNING, work,
        write IDLE (the naive lock, no condition on the writes).

        Like the design card's lock it has no lease, so a crash wedges it the same way; unlike
        the card's item it stores the holder's run id, only so a notebook can show who holds
        the lock. With `crash=True` the process dies after taking the lock, as a Lambda killed
        by its timeout would.
        """
        from jobcontroller.course.counterexamples import naive_acquire, naive_release

        now = self.clock.now()
        run_id = self.ids()
        if not naive_acquire(self.store, self.job, run_id=run_id, now=now):
            state = self.state()
            held = f"{state.status.value} (held by {state.run_id})"
            return f"{format_ts(now)}  exit: status is {held}"
        if crash:
            return f"{format_ts(now)}  {run_id} took the lock and crashed before releasing it"
        self.clock.sleep(self.workload_seconds)
        naive_release(self.store, self.job, now=self.clock.now())
        return f"{format_ts(now)}  {run_id} ran"

    def seed_lock(self, *, expected_version: int) -> Table:
        """The seed's lock exactly as the design card writes it: one conditional UpdateItem.

        `SET status = RUNNING, last_run_ts = :now` only if `status = IDLE AND version = :v`.
        A refused condition raises botocore's ClientError with the code
        ConditionalCheckFailedException, as it does for any boto3 caller. It writes no run
        id, no lease and does not bump the version; the package's lock does all three.
        Returns the stored item's seed fields.
        """
        seed_card_lock(
            self.store, self.job, expected_version=expected_version, now=self.clock.now()
        )
        return self.show_item(fields=SEED_FIELDS)

    # --- cooldown anchors ------------------------------------------------------------------

    def compare_cooldowns(
        self,
        *,
        hours: int = 24,
        workload_seconds: float = 90,
        delays: Sequence[float] | None = None,
    ) -> Table:
        """A simulated day of hourly slots under both cooldown rules, side by side."""
        from jobcontroller.course.counterexamples import simulate_schedule

        first = self.slot_now()
        slots = [first + self.config.interval * h for h in range(hours)]
        # Deliveries land 0-59 s late, in a fixed pattern (EventBridge delivers "within a
        # minute" of the scheduled time; the exact delay varies).
        late = list(delays) if delays is not None else [(17 * h + 5) % 60 for h in range(hours)]
        runs = {}
        for anchor in ("completion", "slot"):
            runs[anchor] = simulate_schedule(
                slots,
                delays=late,
                workload_seconds=workload_seconds,
                config=self.config,
                cooldown_from=anchor,  # type: ignore[arg-type]
                job=self.job,
            )

        def verdict(step: Any) -> str:
            if step.decision.runs:
                return "ran"
            return f"SKIP {step.decision.reason.value}"

        rows = tuple(
            (
                slot.strftime("%H:%M"),
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


class OvertakenWorkload:
    """A workload that overruns its lease, during which a later trigger takes the job over.

    It moves the course clock past its own deadline, then lets the rival trigger run (as a
    second Lambda would, meanwhile), then returns as if its work had finished. The rival's
    result is kept in `rival_result`.
    """

    def __init__(self, course: Course, rival_slot: datetime) -> None:
        self.course = course
        self.rival_slot = rival_slot
        self.rival_result: InvocationResult | None = None

    def __call__(self, ctx: WorkloadContext) -> dict[str, Any]:
        arrives = max(ctx.deadline + timedelta(minutes=1), self.rival_slot + timedelta(seconds=5))
        self.course.clock.set(arrives)
        self.rival_result = self.course.invoke(self.rival_slot)
        return {"processed": True, "slot": None if ctx.slot is None else format_ts(ctx.slot)}


# --- set-up ----------------------------------------------------------------------------------


def setup(
    *,
    job: str = "hourly_processor",
    table: str = "job_control",
    start: str | datetime = "2026-01-05T09:00:00Z",
    config: JobConfig | None = None,
    create: bool = True,
    fresh: bool = True,
    drop_table: bool = False,
    workload_seconds: float = 1.0,
) -> Course:
    """Connect, make sure the table and job exist, and return the notebook's `Course`.

    - `create=False` only connects: it creates nothing and deletes nothing.
    - `drop_table=True` first deletes the table on the embedded backend, so a notebook that
      creates the table itself (01) starts from nothing on every run. It never deletes a
      table in an AWS account: there it is ignored.
    - `fresh=True` (the default) resets the job to IDLE and rewinds the clock and ids.

    The embedded backend is used unless the environment sets JOBCONTROLLER_REAL_AWS=1.
    """
    if os.environ.get(REAL_AWS_VARIABLE) == "1":
        store = ControlStore(table)
        backend, aws = "real AWS", None
    else:
        from jobcontroller.embedded.server import start_embedded

        aws = start_embedded()
        store = ControlStore(table, client=aws.client("dynamodb"))
        backend = "embedded (moto on loopback)"
    when = ManualClock(start).now() if isinstance(start, str) else start
    course = Course(
        store,
        job=job,
        start=when,
        config=config or JobConfig(),
        backend=backend,
        aws=aws,
        workload_seconds=workload_seconds,
    )
    if drop_table and aws is not None:
        store.delete_table()
    if not create:
        return course
    course.create()
    if fresh:
        course.reset()
    return course
