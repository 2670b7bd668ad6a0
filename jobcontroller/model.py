"""Typed records: the control item, triggers, decisions and configuration.

Nothing here does I/O. `JobState.from_item` is the one place a stored item becomes a typed
record, and it refuses anything it does not understand (rule 9: bad input changes nothing).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from .errors import ControlItemCorrupt, UnknownJob, preview

__all__ = [
    "TTL_ATTRIBUTE",
    "Action",
    "Decision",
    "Drill",
    "JobConfig",
    "JobState",
    "Outcome",
    "Reason",
    "RunRecord",
    "Status",
    "Trigger",
    "finish_transition",
    "format_ts",
    "job_key",
    "parse_ts",
    "whole_seconds",
]

# Stored timestamps are exactly 20 characters, `YYYY-MM-DDTHH:MM:SSZ`, always UTC, with a
# four-digit year (strftime's %Y is not zero-padded on Linux, so years before 1000 would
# come out shorter). Fixed width is what makes comparing two stored strings inside a
# DynamoDB condition expression (`lease_expires_at <= :now`) compare the two instants.
_TS_PATTERN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_JOB_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,64}")
STATE_SK = "STATE"
TTL_ATTRIBUTE = "expires_at"


def format_ts(when: datetime) -> str:
    """A UTC-aware datetime as the stored string (whole seconds, cut down, `Z` suffix)."""
    if when.tzinfo is None:
        raise ValueError("naive datetime: pass a UTC-aware datetime (e.g. datetime.now(UTC))")
    t = when.astimezone(UTC)
    return f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}Z"


def parse_ts(text: str) -> datetime:
    """The stored string back to a UTC-aware datetime; ValueError if it is not one."""
    if not isinstance(text, str) or not _TS_PATTERN.fullmatch(text):
        raise ValueError(f"{preview(text)} is not a timestamp like 2026-01-05T09:00:00Z")
    try:
        return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(f"{preview(text)} is not a real date and time") from None


def whole_seconds(when: datetime) -> datetime:
    """`when` cut down to the stored precision, so it equals what `format_ts` stores."""
    return when.replace(microsecond=0)


def job_key(job: str) -> dict[str, str]:
    """The primary key of a job's control item."""
    if not isinstance(job, str) or not _JOB_PATTERN.fullmatch(job):
        raise UnknownJob(
            f"{preview(job)} is not a valid job name: use 1-64 letters, digits, '_', '-' or '.'"
        )
    return {"PK": f"JOB#{job}", "SK": STATE_SK}


class Status(enum.StrEnum):
    """Whether a run holds the job's lock."""

    IDLE = "IDLE"
    RUNNING = "RUNNING"


class Action(enum.StrEnum):
    """What the gate lets an invocation do."""

    RUN = "RUN"
    TAKEOVER = "TAKEOVER"
    SKIP = "SKIP"


class Reason(enum.StrEnum):
    """Why an invocation did not run (rule 6: every skip says why)."""

    PAUSED = "PAUSED"
    RUNNING = "RUNNING"
    SLOT_DONE = "SLOT_DONE"
    COOLDOWN = "COOLDOWN"
    LOST_RACE = "LOST_RACE"


class Outcome(enum.StrEnum):
    """How one invocation ended (a run record holds SUCCEEDED or FAILED)."""

    SUCCEEDED = "SUCCEEDED"  # the workload ran and its success was committed
    FAILED = "FAILED"  # the workload raised; the failure was recorded and the lock released
    SKIPPED = "SKIPPED"  # the gate or the lock said no; `reason` says why; nothing was written
    FENCED = "FENCED"  # the workload ran but had lost the lock, so its outcome was refused


class Drill(enum.StrEnum):
    """Course only: make the next run fail or crash, set in state so it works on real AWS too."""

    FAIL = "FAIL"
    CRASH = "CRASH"


@dataclass(frozen=True)
class JobConfig:
    """How one job is scheduled and protected. All durations in seconds."""

    interval_seconds: int = 3600
    cooldown_slack_seconds: int = 60
    lease_margin_seconds: int = 10
    # Used when there is no Lambda context to ask for the remaining time (local calls).
    default_lease_seconds: int = 900
    run_history_days: int = 7
    # The largest difference between two invokers' clocks to tolerate. A lease is compared
    # with the *next* invoker's clock, so a holder whose clock runs behind could still be
    # working when a successor whose clock runs ahead sees the lease as passed: the workload
    # therefore stops twice this long before its lease. Lambda's clocks follow the Amazon
    # Time Sync Service (well under a second apart), hence 0; the fault simulation uses 30.
    # https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/set-time.html
    clock_skew_seconds: int = 0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"JobConfig.{f.name} must be a whole number >= 0, got {value!r}")
        if self.interval_seconds == 0:
            raise ValueError("JobConfig.interval_seconds must be > 0")
        if self.cooldown_slack_seconds >= self.interval_seconds:
            raise ValueError("JobConfig.cooldown_slack_seconds must be smaller than the interval")

    @property
    def interval(self) -> timedelta:
        return timedelta(seconds=self.interval_seconds)

    @property
    def cooldown_slack(self) -> timedelta:
        return timedelta(seconds=self.cooldown_slack_seconds)


@dataclass(frozen=True)
class Trigger:
    """One delivery of "maybe run now": from the schedule (with its slot) or by hand."""

    job: str
    slot: datetime | None = None
    source: str = "manual"
    execution_id: str | None = None
    attempt: int | None = None

    @property
    def keyed_by(self) -> str:
        """How this trigger is made idempotent, in words for the result and the logs."""
        if self.slot is None:
            return "arrival time (manual trigger: no scheduled time, so no once-per-slot check)"
        return f"scheduled slot {format_ts(self.slot)}"


@dataclass(frozen=True)
class Decision:
    """The gate's answer. `reason` is set exactly when `action` is SKIP."""

    action: Action
    reason: Reason | None = None
    detail: str = ""

    @property
    def runs(self) -> bool:
        return self.action is not Action.SKIP


_TIMESTAMP_FIELDS = (
    "last_run_ts",
    "last_success_ts",
    "last_error_ts",
    "next_allowed_run",
    "last_slot",
    "lease_expires_at",
    "run_slot",
    "created_at",
)
_COUNTER_FIELDS = (
    "version",
    "run_count",
    "failure_count",
    "consecutive_failures",
    "takeover_count",
)
# Counters are whole numbers far below this; a bigger one is corruption (and converting a
# number like 1E+125, which DynamoDB can store, to an int would be wasted work).
_COUNTER_LIMIT = 10**18
_TEXT_FIELDS = ("last_error", "run_id", "last_run_id", "last_takeover_from")


@dataclass(frozen=True)
class JobState:
    """A job's control item, typed. Build one with `JobState.new(job)` or `from_item`."""

    job: str
    status: Status = Status.IDLE
    version: int = 0
    run_count: int = 0
    failure_count: int = 0
    consecutive_failures: int = 0
    takeover_count: int = 0
    last_run_ts: datetime | None = None
    last_success_ts: datetime | None = None
    last_error: str | None = None
    last_error_ts: datetime | None = None
    next_allowed_run: datetime | None = None
    last_slot: datetime | None = None
    run_id: str | None = None
    lease_expires_at: datetime | None = None
    run_slot: datetime | None = None
    last_run_id: str | None = None
    last_takeover_from: str | None = None
    paused: bool = False
    drill: Drill | None = None
    created_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def new(cls, job: str, *, now: datetime | None = None, **changes: Any) -> JobState:
        """A fresh IDLE state (the seed's initial item), optionally with some fields set."""
        job_key(job)
        return replace(cls(job=job, created_at=now), **changes)

    def lease_remaining(self, now: datetime) -> timedelta | None:
        """How long the current holder's lease still runs (None when IDLE)."""
        if self.status is not Status.RUNNING or self.lease_expires_at is None:
            return None
        return self.lease_expires_at - now

    # --- conversion to and from the stored item ------------------------------------------

    def to_item(self) -> dict[str, Any]:
        """The item as stored (plain Python values; the store serialises them).

        Every seed attribute is always present, as NULL when empty, so a learner inspecting
        the table sees the whole shape of the item from the start.
        """
        item: dict[str, Any] = dict(self.extra)
        item.update(job_key(self.job))
        item["job"] = self.job
        item["status"] = self.status.value
        for name in _COUNTER_FIELDS:
            item[name] = getattr(self, name)
        for name in _TIMESTAMP_FIELDS:
            value = getattr(self, name)
            item[name] = None if value is None else format_ts(value)
        for name in _TEXT_FIELDS:
            item[name] = getattr(self, name)
        item["paused"] = self.paused
        item["drill"] = None if self.drill is None else self.drill.value
        return item

    @classmethod
    def from_item(cls, item: dict[str, Any], *, job: str) -> JobState:
        """Validate a stored item and type it; ControlItemCorrupt names the first bad attribute."""

        def corrupt(name: str, problem: str) -> ControlItemCorrupt:
            return ControlItemCorrupt(
                f"control item of job {job!r}: attribute {name!r} {problem}. Nothing was "
                f"changed. Fix that attribute in the table, or delete the item and run "
                f"init_job({job!r}) to start again from IDLE."
            )

        expected_key = job_key(job)
        if item.get("PK") != expected_key["PK"] or item.get("SK") != expected_key["SK"]:
            found = f"{preview(item.get('PK'))}/{preview(item.get('SK'))}"
            raise corrupt("PK/SK", f"is {found}, not {expected_key}")
        known = {"PK", "SK", "job", "status", "paused", "drill", "expires_at"}
        known.update(_TIMESTAMP_FIELDS, _COUNTER_FIELDS, _TEXT_FIELDS)
        values: dict[str, Any] = {"job": job}

        raw_status = item.get("status")
        try:
            if not isinstance(raw_status, str):
                raise ValueError(raw_status)
            values["status"] = Status(raw_status)
        except ValueError:
            raise corrupt("status", f"is {preview(raw_status)}, expected IDLE or RUNNING") from None

        # The lock's condition is `version = :v`, which a missing attribute never meets: read
        # as 0 it would make every trigger lose a race that nobody is running. So it must be
        # there; the other counters only count, and an older item without them reads as 0.
        if "version" not in item:
            raise ControlItemCorrupt(
                f"control item of job {job!r}: attribute 'version' is missing, so the lock's "
                f"condition `version = :v` can never hold. Nothing was changed. Fix: set it to "
                f"a number (e.g. 0, or any value above what it was), or delete the item and run "
                f"init_job({job!r}) to start again from IDLE."
            )
        for name in _COUNTER_FIELDS:
            raw = item.get(name, 0)
            if (
                isinstance(raw, bool)
                or not isinstance(raw, int | Decimal)
                or (isinstance(raw, Decimal) and not raw.is_finite())
                or not -_COUNTER_LIMIT < raw < _COUNTER_LIMIT
                or raw != int(raw)
            ):
                raise corrupt(name, f"is {preview(raw)}, expected a whole number")
            if raw < 0:
                raise corrupt(name, f"is {preview(raw)}, expected a number >= 0")
            values[name] = int(raw)

        for name in _TIMESTAMP_FIELDS:
            raw = item.get(name)
            if raw is None:
                values[name] = None
                continue
            try:
                values[name] = parse_ts(raw)
            except ValueError as exc:
                raise corrupt(name, str(exc)) from None

        for name in _TEXT_FIELDS:
            raw = item.get(name)
            if raw is not None and not isinstance(raw, str):
                raise corrupt(name, f"is {preview(raw)}, expected text or NULL")
            values[name] = raw

        paused = item.get("paused", False)
        if not isinstance(paused, bool):
            raise corrupt("paused", f"is {preview(paused)}, expected true or false")
        values["paused"] = paused

        raw_drill = item.get("drill")
        try:
            values["drill"] = None if raw_drill is None else Drill(raw_drill)
        except ValueError:
            found = preview(raw_drill)
            raise corrupt("drill", f"is {found}, expected FAIL, CRASH or NULL") from None

        if values["status"] is Status.RUNNING and (
            values["run_id"] is None or values["lease_expires_at"] is None
        ):
            raise corrupt("run_id/lease_expires_at", "must both be set while status is RUNNING")

        values["extra"] = {k: v for k, v in item.items() if k not in known}
        return cls(**values)


@dataclass(frozen=True)
class RunRecord:
    """One finished run, kept under the job's partition until its TTL expires."""

    job: str
    run_id: str
    started_at: datetime
    finished_at: datetime
    outcome: Outcome  # SUCCEEDED or FAILED
    slot: datetime | None = None
    source: str = "manual"
    error: str | None = None
    took_over_from: str | None = None
    expires_at: int = 0  # epoch seconds, by the wall clock (DynamoDB's TTL runs on real time)

    @property
    def sort_key(self) -> str:
        return f"RUN#{format_ts(self.started_at)}#{self.run_id}"

    def to_item(self) -> dict[str, Any]:
        return {
            "PK": job_key(self.job)["PK"],
            "SK": self.sort_key,
            "job": self.job,
            "run_id": self.run_id,
            "started_at": format_ts(self.started_at),
            "finished_at": format_ts(self.finished_at),
            "outcome": Outcome(self.outcome).value,
            "slot": None if self.slot is None else format_ts(self.slot),
            "source": self.source,
            "error": self.error,
            "took_over_from": self.took_over_from,
            TTL_ATTRIBUTE: self.expires_at,
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> RunRecord:
        return cls(
            job=item["job"],
            run_id=item["run_id"],
            started_at=parse_ts(item["started_at"]),
            finished_at=parse_ts(item["finished_at"]),
            outcome=Outcome(item["outcome"]),
            slot=None if item.get("slot") is None else parse_ts(item["slot"]),
            source=item.get("source", "manual"),
            error=item.get("error"),
            took_over_from=item.get("took_over_from"),
            expires_at=int(item.get(TTL_ATTRIBUTE, 0)),
        )


def finish_transition(
    held: JobState, record: RunRecord, *, next_allowed_run: datetime | None
) -> JobState:
    """The control item after `record`'s run commits: the one definition of the commit.

    Pure: the store writes exactly the attributes this changes (conditional on the item
    still being `held`) and returns this state as the result, so nothing is re-derived.
    A success counts the run, ends the failure streak and marks its slot done (rule 4) and
    the next allowed run (rule 5); a failure records the error (rule 8). Either way the lock
    is released and the version moves on.
    """
    if record.outcome not in (Outcome.SUCCEEDED, Outcome.FAILED):
        raise ValueError(f"only SUCCEEDED or FAILED runs commit, not {record.outcome}")
    if held.status is not Status.RUNNING or held.run_id != record.run_id:
        raise ValueError(
            f"run {record.run_id} cannot commit: in the state given, {held.run_id!r} holds "
            f"the lock (status {held.status})"
        )
    changes: dict[str, Any] = {
        "status": Status.IDLE,
        "version": held.version + 1,
        "last_run_id": record.run_id,
        "run_id": None,
        "lease_expires_at": None,
        "run_slot": None,
    }
    if record.outcome is Outcome.SUCCEEDED:
        changes["run_count"] = held.run_count + 1
        changes["consecutive_failures"] = 0
        changes["last_success_ts"] = whole_seconds(record.finished_at)
        if next_allowed_run is not None:
            changes["next_allowed_run"] = whole_seconds(next_allowed_run)
        if record.slot is not None:
            changes["last_slot"] = whole_seconds(record.slot)
    else:
        changes["failure_count"] = held.failure_count + 1
        changes["consecutive_failures"] = held.consecutive_failures + 1
        changes["last_error"] = record.error
        changes["last_error_ts"] = whole_seconds(record.finished_at)
    return replace(held, **changes)
