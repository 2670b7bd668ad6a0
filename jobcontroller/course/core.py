"""The notebooks' one-call set-up, and the `Course` handle every cell uses.

`setup()` connects to the backend JOBCONTROLLER_BACKEND chooses (`course.backend`), makes
sure the table and the job exist, and returns a `Course`: the store, a `ManualClock`, fixed
run ids, a request counter and helpers that print the control item the same way on every
run. Everything a notebook does lives here or in the core modules, so a notebook cell stays
a line or two and no later notebook depends on code typed into an earlier one. The displays
themselves are `display`'s (re-exported here); the forced race is `forced`'s, the free-running
races `races`', the seed's lock and the wrong cooldown `counterexamples`'.

Course tooling only: the Lambda never imports this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from jobcontroller.clock import Clock, ManualClock, SequentialIds, SystemClock
from jobcontroller.controller import InvocationResult, JobController
from jobcontroller.course import counterexamples, forced, races
from jobcontroller.course.backend import DEFAULT_PREFIX, NEVER_EXPIRES, connect, prefixed_table
from jobcontroller.course.display import (
    LOCK_FIELDS,
    SEED_FIELDS,
    STATE_FIELDS,
    RequestCounter,
    Table,
    cell,
    show_costs,
    show_environment,
    show_outcome,
    show_raw_item,
    show_requests,
    show_result,
    show_runs,
    show_state,
)
from jobcontroller.course.forced import ContenderRecord, RaceReport
from jobcontroller.model import Drill, JobConfig, JobState, Trigger, format_ts, job_key
from jobcontroller.ops.backend import (
    AWS,
    BACKEND_ENV,
    EMBEDDED,
    REAL_AWS_ENV,
    Backend,
    chosen_backend,
)
from jobcontroller.ops.naming import Names
from jobcontroller.store import ControlStore, RunRecord, seed_card_lock
from jobcontroller.workload import Workload, WorkloadContext, placeholder

__all__ = [
    "BACKEND_VARIABLE",
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

BACKEND_VARIABLE = BACKEND_ENV
REAL_AWS_VARIABLE = REAL_AWS_ENV


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
        workload_seconds: float = 1.0,
        kind: Backend = EMBEDDED,
        tags: dict[str, str] | None = None,
    ) -> None:
        job_key(job)
        self.store = store
        self.job = job
        self.table = store.table
        self.start = start
        self.config = config
        self.backend = backend
        self.kind, self.tags = kind, tags
        self.workload_seconds = workload_seconds
        self.requests = RequestCounter(store.client)
        self.clock = ManualClock(start)
        self.ids = SequentialIds()

    def __repr__(self) -> str:
        return (
            f"Course(job={self.job!r}, table={self.table!r}, backend={self.backend!r}, "
            f"clock={cell(self.clock.now())})"
        )

    def create(self) -> tuple[bool, bool]:
        """Create the table and the job's IDLE item if missing: (table created, job created)."""
        table_created = self.store.create_table(tags=self.tags)
        job_created = self.store.init_job(self.job, now=self.start)
        return table_created, job_created

    def reset(self) -> JobState:
        """Start the job again from IDLE: delete its items, rewind the clock and the ids.

        After this a notebook prints exactly what it printed the first time.
        """
        self.store.delete_job(self.job)
        self.clock = ManualClock(self.start)
        self.ids = SequentialIds()
        self.store.init_job(self.job, now=self.start)
        return self.state()

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
        """What stamps run history's TTL: the course's clock where items never expire."""
        return self.clock if self.kind in NEVER_EXPIRES else SystemClock()

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
        return show_raw_item(self.store.raw_item(self.job), table=self.table, fields=fields)

    def show_table(self) -> Table:
        """The table's key schema and billing mode, as DescribeTable reports them."""
        table = self.store.describe_table()
        rows = tuple(table["keys"])
        notes = (f"status {table['status']}, billing {table['billing']}",)
        return Table(("key attribute", "key type", "type"), rows, f"table {self.table}", notes)

    def environment(self) -> Table:
        """What the course needs, checked, without versions or ports (stable output)."""
        where = (("backend", self.backend), ("table", self.table), ("job", self.job))
        return show_environment((*where, ("course clock", cell(self.clock.now()))))

    def race(
        self,
        contenders: int = 8,
        *,
        design: Literal["naive", "conditional"] = "conditional",
        slot: str | datetime | None = None,
    ) -> RaceReport:
        """`contenders` triggers for one slot at once, in the worst interleaving (`forced`)."""
        return forced.race(self, contenders, design=design, slot=slot)

    def race_rounds(self, *, rounds: int = 10, contenders: int = 8) -> Table:
        """Free-running threads (no forced order), one slot per round: runs per round."""
        return races.rounds_table(self, rounds=rounds, contenders=contenders)

    def race_processes(self, *, processes: int = 4, rounds: int = 3) -> Table:
        """Separate OS processes (each its own boto3 client) fire the same slots together."""
        return races.processes_table(self, processes=processes, rounds=rounds)

    # --- the seed's design and the wrong cooldown, for contrast (counterexamples) ----------

    def seed_invoke(self, *, crash: bool = False) -> str:
        """One invocation with the naive lock: read, check IDLE, write RUNNING, work, write IDLE
        (no lease, no condition), as `counterexamples.seed_invoke` describes."""
        return counterexamples.seed_invoke(
            self.store,
            self.job,
            clock=self.clock,
            run_id=self.ids(),
            seconds=self.workload_seconds,
            crash=crash,
        )

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

    def compare_cooldowns(
        self,
        *,
        hours: int = 24,
        workload_seconds: float = 90,
        delays: Sequence[float] | None = None,
    ) -> Table:
        """A simulated day of hourly slots under both cooldown rules, side by side."""
        return counterexamples.compare_cooldowns(
            self.slot_now(),
            config=self.config,
            job=self.job,
            hours=hours,
            workload_seconds=workload_seconds,
            delays=delays,
        )


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
    confirm_account: str | None = None,
    prefix: str = DEFAULT_PREFIX,
) -> Course:
    """Connect, make sure the table and job exist, and return the notebook's `Course`.

    - `create=False` only connects: it creates nothing and deletes nothing.
    - `drop_table=True` first deletes the table on a local backend, so a notebook that
      creates the table itself (01) starts from nothing on every run. It never deletes a
      table in an AWS account: there it is ignored.
    - `fresh=True` (the default) resets the job to IDLE and rewinds the clock and ids.

    JOBCONTROLLER_BACKEND chooses the backend (`course.backend`): the embedded one by
    default, Amazon's DynamoDB Local with `dynamodb-local`, an AWS account with `aws` (or
    the older JOBCONTROLLER_REAL_AWS=1). On AWS, as in notebooks 06-08, the account, region
    and identity are shown first and nothing is done until `confirm_account` names that
    account (`RealAWSNotConfirmed` otherwise), and the table is `<prefix>-<table>`, tagged
    with the prefix, so that a shared account's participants never share a table and 08's
    cleanup finds it.
    """
    kind = chosen_backend()
    tags = None
    if kind == AWS:
        # Checked before connecting: a bad prefix is refused before any account is touched.
        table = prefixed_table(table, prefix=prefix, job=job)
        tags = Names(prefix, job).tags
    connection = connect(confirm_account=confirm_account)
    if connection.local is None:
        store = ControlStore(table, session=connection.session)  # the store's own retries
    else:
        store = ControlStore(table, client=connection.client("dynamodb"))
    when = ManualClock(start).now() if isinstance(start, str) else start
    course = Course(
        store,
        job=job,
        start=when,
        config=config or JobConfig(),
        backend=connection.label,
        workload_seconds=workload_seconds,
        kind=kind,
        tags=tags,
    )
    if drop_table and connection.local is not None:
        store.delete_table()
    if not create:
        return course
    course.create()
    if fresh:
        course.reset()
    return course
