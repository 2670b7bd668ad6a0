"""Notebooks 06-08 in a few calls: one participant's stack, shown step by step, driven
through a day of its schedule, verified from the stored state, and deleted.

`start()` connects to the embedded backend, or to real AWS when JOBCONTROLLER_BACKEND=aws
(or JOBCONTROLLER_REAL_AWS=1) is set *and* the account id shown is passed back as `confirm`
(deploy.connect applies the opt-in), and returns a `Lab`; with
JOBCONTROLLER_BACKEND=dynamodb-local it uses the embedded backend and says so (DynamoDB Local
serves no Lambda). Every display is built from what the AWS APIs report back, never from what
the deploy module meant to create, and leaves out request ids and creation dates, so stored
notebook outputs match on every run of the embedded backend.

`Lab` is the notebooks' one handle; the work is done by its parts, one module per job:
`lab_views` (what the AWS APIs report back), `lab_day` (driving a day of the schedule),
`lab_proof` (the proof checks on the stored state). The deploying itself is
`jobcontroller.ops.deploy` (the notebooks call its steps one by one); running the function is
`jobcontroller.ops.runner`, firing the schedule `jobcontroller.ops.driver`.
Course tooling only: the Lambda never imports this module.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from jobcontroller.clock import Clock, ManualClock, SequentialIds, SystemClock
from jobcontroller.course import lab_day, lab_proof
from jobcontroller.course.backend import DEFAULT_PREFIX, LABELS, lab_backend
from jobcontroller.course.core import Course
from jobcontroller.course.dashboard import Dashboard, Snapshot
from jobcontroller.course.display import SEED_FIELDS, Table, cell, show_state
from jobcontroller.course.lab_day import COURSE_DAY, Day, DayPlan, Step
from jobcontroller.course.lab_proof import Proof
from jobcontroller.course.lab_views import (
    Deployed,
    Document,
    show_event,
    show_invocation,
    show_zip,
)
from jobcontroller.course.lablogs import (
    ShippingLocalRunner,
    cloudwatch_lines,
    decisions,
    show_lines,
)
from jobcontroller.model import JobConfig, JobState
from jobcontroller.ops import deploy as _deploy
from jobcontroller.ops.backend import AWS, EMBEDDED
from jobcontroller.ops.driver import ScheduleDriver
from jobcontroller.ops.invocation import FunctionRunner
from jobcontroller.ops.packaging import build_zip
from jobcontroller.ops.remote import RemoteLambdaRunner
from jobcontroller.ops.runner import LocalLambdaRunner
from jobcontroller.ops.schedules import slot_run_id
from jobcontroller.store import ControlStore, RunRecord

__all__ = [
    "COURSE_DAY",
    "DEFAULT_PREFIX",
    "Day",
    "DayPlan",
    "Document",
    "Lab",
    "Proof",
    "Step",
    "open_lab",
    "start",
]

_DEPLOYED_AT = COURSE_DAY - timedelta(minutes=5)


class Lab:
    """One participant's stack on one backend, and the notebooks' displays of it.

    A facade: the read-back displays are `self.deployed_stack`'s (`lab_views.Deployed`),
    driving a day is `lab_day`'s, the proof checks `lab_proof`'s.
    """

    def __init__(
        self,
        target: _deploy.Target,
        names: _deploy.Names,
        *,
        clock: Clock | None = None,
        runner: FunctionRunner | None = None,
    ) -> None:
        self.target = target
        self.names = names
        self.embedded = target.embedded
        # Embedded: the course's fixed time; AWS: the real one (or a stand-in's, ops.standin).
        self.clock: Clock = clock or (ManualClock(_DEPLOYED_AT) if self.embedded else SystemClock())
        self.store = ControlStore(names.table, client=target.client("dynamodb"))
        self.deployed_stack = Deployed(target, names, self.store)
        self.zip_path: Path | None = None
        self._scratch = tempfile.TemporaryDirectory(prefix="jobcontroller-lab-")
        self._runner: FunctionRunner | None = runner
        self._driver: ScheduleDriver | None = None

    def __repr__(self) -> str:
        return f"Lab(prefix={self.names.prefix!r}, {self.target.describe()})"

    # --- what the APIs report back (lab_views) ---------------------------------------------

    def describe(self) -> Table:
        """Where this notebook works and the names every resource gets from the prefix."""
        return self.deployed_stack.describe()

    def show_table(self) -> Table:
        """The table as DynamoDB describes it: keys, billing, TTL, tags."""
        return self.deployed_stack.show_table()

    def show_item(self) -> Table:
        """The job's control item: the seed's fields."""
        return show_state(self.store.read(self.names.job), fields=SEED_FIELDS)

    def show_log_group(self) -> Table:
        """The function's log group: retention and tags."""
        return self.deployed_stack.show_log_group()

    def show_queues(self) -> Table:
        """The two dead-letter queues: who sends to them, retention, messages, tags."""
        return self.deployed_stack.show_queues()

    def show_role(self, role: str) -> Document:
        """A role's trust policy and its only (inline) policy, read back from IAM."""
        return self.deployed_stack.show_role(role)

    def show_function(self) -> Table:
        """The function's configuration as Lambda reports it, environment included."""
        return self.deployed_stack.show_function()

    def show_async_config(self) -> Table:
        """What Lambda does with an asynchronous invocation that fails."""
        return self.deployed_stack.show_async_config()

    def show_schedule(self) -> Table:
        """The schedule as EventBridge Scheduler reports it."""
        return self.deployed_stack.show_schedule()

    def show_event(self, slot: datetime | None = None) -> Document:
        """The schedule's input template as stored, and the event it becomes for `slot`."""
        return show_event(self.driver.spec(), slot or COURSE_DAY)

    def show_resources(self) -> Table:
        """Everything that belongs to the prefix (by tag, IAM path or name), found now."""
        return self.deployed_stack.show_resources()

    def show_failures(self) -> Table:
        """The records in the on-failure queue (what Lambda sent after a failed async run)."""
        return self.deployed_stack.show_failures()

    # --- the zip ---------------------------------------------------------------------------

    def build(self) -> Path:
        """Build the deployment zip (into a scratch directory) and remember where it is."""
        self.zip_path = build_zip(out_dir=Path(self._scratch.name) / "build")
        return self.zip_path

    def show_zip(self) -> Table:
        """What the zip holds, and that building it again gives the same bytes."""
        path = self.zip_path or self.build()
        return show_zip(path, again_dir=Path(self._scratch.name) / "again")

    # --- deploying and tearing down --------------------------------------------------------

    def deployed(self) -> bool:
        """Whether the function and its schedule exist (the last steps of a deploy)."""
        return self.deployed_stack.exists()

    def deploy(self, *, say: Callable[[str], None] | None = None) -> _deploy.Deployment:
        """Every deploy step in order (idempotent), with the lab's clock for the control item."""
        return _deploy.deploy(
            self.target, self.names, zip_path=self.zip_path, clock=self.clock, say=say
        )

    def teardown(self, *, say: Callable[[str], None] | None = print) -> _deploy.TeardownReport:
        """Delete the stack in dependency order; raises TeardownIncomplete if anything is left."""
        self._runner = self._driver = None
        return _deploy.teardown(self.target, self.names, say=say)

    def reset_job(self) -> JobState:
        """Start the job again from IDLE: delete its control item and run history, init it."""
        self.store.delete_job(self.names.job)
        self.store.init_job(self.names.job, now=self.clock.now())
        return self.store.read(self.names.job)

    # --- running it --------------------------------------------------------------------------

    @property
    def runner(self) -> FunctionRunner:
        """The local runner of the built zip (embedded), or Lambda's Invoke API (real AWS)."""
        if self._runner is None:
            if self.embedded:
                # Each run's output goes to the function's log group, as on Lambda (lablogs).
                self._runner = ShippingLocalRunner(
                    self.target,
                    self.names.function,
                    code=self.zip_path,
                    work_dir=Path(self._scratch.name) / "run",
                    request_ids=SequentialIds("request-"),
                    record_calls=True,  # for 06's least-privilege check (iam_lab)
                )
            else:
                self._runner = RemoteLambdaRunner(self.target, self.names.function)
        return self._runner

    @property
    def driver(self) -> ScheduleDriver:
        """The schedule driver: fixed run ids on the embedded backend."""
        if self._driver is None:
            self._driver = ScheduleDriver(
                self.target,
                self.names,
                self.runner,
                run_ids=slot_run_id if self.embedded else None,
            )
        return self._driver

    def try_once(self) -> Table:
        """Deliver one slot and show what the function did.

        Embedded: the 09:00 slot, at 09:00, through the schedule driver. Real AWS: the
        current hour's slot, invoked synchronously through Lambda so the answer comes back.
        """
        if self.embedded:
            (delivery,) = self.driver.fire(COURSE_DAY)
            invocation = delivery.invocation
            assert invocation is not None
            slot = COURSE_DAY
        else:
            # The function's clock: the gate compares the slot with Lambda's time.
            now = self.runner.now()
            slot = now.replace(minute=0, second=0, microsecond=0)
            invocation = self.runner.invoke(self.driver.render(slot))
        return show_invocation(invocation, title=f"the function, for the {cell(slot)} slot")

    def drive(self, plan: DayPlan | None = None) -> Day:
        """The day: replayed slot by slot (embedded), or watched on real AWS (`watch`)."""
        plan = plan or DayPlan()
        return self.replay(plan) if self.embedded else self.watch(plan)

    def replay(self, plan: DayPlan) -> Day:
        """Fire every slot of the plan through the deployed schedule and the built zip."""
        return lab_day.replay(self, plan)

    def watch(
        self,
        plan: DayPlan,
        *,
        minutes_ahead: float = 3,
        timeout: float = 900,
        lease_timeout: float = 180,
    ) -> Day:
        """Real AWS: deliver the plan's kinds of trouble by hand, then let the real scheduler
        deliver one slot (see `lab_day.watch`)."""
        return lab_day.watch(
            self, plan, minutes_ahead=minutes_ahead, timeout=timeout, lease_timeout=lease_timeout
        )

    # --- verifying (lab_proof) -------------------------------------------------------------

    def history(self, *, limit: int = 100) -> list[RunRecord]:
        """The run history, newest first."""
        return self.store.runs(self.names.job, limit=limit)

    def show_history(self, runs: Sequence[RunRecord] | None = None) -> Table:
        """Run history items (SK = RUN#...), with the TTL each will expire at."""
        return lab_proof.show_history(self.history() if runs is None else runs)

    def show_moment(self, day: Day, slot: str) -> Table:
        """The control item before and after `slot`'s deliveries, changed fields marked."""
        return lab_proof.show_moment(day, slot)

    def proof(self, day: Day) -> Proof:
        """The seed's proof checks on the stored state, against what the day's steps did."""
        ddb = self.target.client("dynamodb")
        return lab_proof.proof(
            day,
            state=self.store.read(self.names.job),
            runs=self.history(),
            config=self.deployed_stack.job_config(),
            ttl=ddb.describe_time_to_live(TableName=self.names.table),
        )

    def log_lines(self, day: Day | None = None) -> Table:
        """The handler's JSON log lines read back: from the local runner's captured output
        when a day is given (embedded: what each process printed), otherwise from the
        function's log group in CloudWatch Logs (FilterLogEvents), on either backend."""
        if day is not None:
            lines = [line for step in day.steps for line in step.log.splitlines()]
            return show_lines(decisions(lines), source="the local runner's captured output")
        lines = cloudwatch_lines(self.target, self.names.log_group)
        return show_lines(decisions(lines), source=f"CloudWatch Logs {self.names.log_group}")

    def dashboard_snapshot(self, *, at: datetime | None = None) -> Snapshot:
        """A still picture of the dashboard: for stored output, so it asks for no press."""
        board = self.dashboard(at=at)
        board.message = "(a still picture: run lab.dashboard() for the live widget)"
        return board.snapshot()

    def dashboard(self, *, at: datetime | None = None) -> Dashboard:
        """The course dashboard (notebook 04's), pointed at the deployed table, its clock at
        `at` (default: the lab's clock)."""
        now = at or self.clock.now()
        course = Course(
            self.store,
            job=self.names.job,
            start=now,
            config=JobConfig(
                interval_seconds=int(self.deployed_stack.job_config().interval.total_seconds())
            ),
            backend=LABELS[EMBEDDED if self.embedded else AWS],
            kind=EMBEDDED if self.embedded else AWS,
        )
        return Dashboard(course)

    def close(self) -> None:
        if isinstance(self._runner, LocalLambdaRunner):
            self._runner.close()
        self._runner = self._driver = None
        self._scratch.cleanup()


# --- set-up --------------------------------------------------------------------------------


def start(
    *,
    prefix: str = DEFAULT_PREFIX,
    confirm: str | None = None,
    job: str = _deploy.DEFAULT_JOB,
    stack: Literal["empty", "deployed"] = "deployed",
    say: Callable[[str], None] | None = print,
) -> Lab:
    """Connect and return the notebook's Lab, with the stack as the notebook needs it.

    The embedded backend is used unless JOBCONTROLLER_BACKEND=aws (or the older
    JOBCONTROLLER_REAL_AWS=1) is set; then the account and region are shown and nothing is
    changed unless `confirm` is that account id. With `dynamodb-local` it is the embedded
    backend too, and `say` is told so (`course.backend.lab_backend`). `stack="empty"`
    (notebook 06) starts with nothing deployed on the embedded backend; `"deployed"` (07, 08)
    deploys whatever is missing and starts the job from IDLE. On the embedded backend every
    start is fresh, so a notebook prints the same every time.
    """
    if lab_backend(say=say) == AWS:
        target = _deploy.connect(confirm=confirm, say=say)
    else:
        from jobcontroller.embedded.server import start_embedded

        target = _deploy.connect(start_embedded().session(), say=None)
    return open_lab(Lab(target, _deploy.Names(prefix, job)), stack=stack, say=say)


def open_lab(
    lab: Lab,
    *,
    stack: Literal["empty", "deployed"] = "deployed",
    say: Callable[[str], None] | None = print,
) -> Lab:
    """`start()`'s second half: the stack as the notebook needs it (see `start`), on any
    Lab (a stood-in account's too, ops.standin)."""
    if lab.embedded and _deploy.leftovers(lab.target, lab.names.prefix):
        lab.teardown(say=None)
    if stack == "deployed":
        if lab.deployed():
            lab.reset_job()
        else:
            lab.deploy(say=None if lab.embedded else say)
    return lab
