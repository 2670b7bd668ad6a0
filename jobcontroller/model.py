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

from .errors import ControlItemCorrupt, UnknownJob

__all__ = [
    "Action",
    "Decision",
    "Drill",
    "JobConfig",
    "JobState",
    "Reason",
    "Status",
    "Trigger",
    "format_ts",
    "job_key",
    "parse_ts",
]

# Fixed width and always UTC, so that comparing two stored strings inside a DynamoDB
# condition expression (`lease_expires_at < :now`) compares the two instants.
_TS_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_TS_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
_JOB_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
STATE_SK = "STATE"


def format_ts(when: datetime) -> str:
    """A UTC-aware datetime as the stored string (seconds precision, `Z` suffix)."""
    if when.tzinfo is None:
        raise ValueError("naive datetime: pass a UTC-aware datetime (e.g. datetime.now(UTC))")
    return when.astimezone(UTC).strftime(_TS_FORMAT)


def parse_ts(text: str) -> datetime:
    """The stored string back to a UTC-aware datetime; ValueError if it is not one."""
    if not isinstance(text, str) or not _TS_PATTERN.match(text):
        raise ValueError(f"{text!r} is not a timestamp like 2026-01-05T09:00:00Z")
    return datetime.strptime(text, _TS_FORMAT).replace(tzinfo=UTC)


def job_key(job: str) -> dict[str, str]:
    """The primary key of a job's control item."""
    if not isinstance(job, str) or not _JOB_PATTERN.match(job):
        raise UnknownJob(
            f"{job!r} is not a valid job name: use 1-64 letters, digits, '_', '-' or '.'"
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
            raise corrupt("PK/SK", f"is {item.get('PK')!r}/{item.get('SK')!r}, not {expected_key}")
        known = {"PK", "SK", "job", "status", "paused", "drill", "expires_at"}
        known.update(_TIMESTAMP_FIELDS, _COUNTER_FIELDS, _TEXT_FIELDS)
        values: dict[str, Any] = {"job": job}

        raw_status = item.get("status")
        try:
            values["status"] = Status(raw_status)
        except ValueError:
            raise corrupt("status", f"is {raw_status!r}, expected IDLE or RUNNING") from None

        for name in _COUNTER_FIELDS:
            raw = item.get(name, 0)
            if isinstance(raw, bool) or not isinstance(raw, int | Decimal) or raw != int(raw):
                raise corrupt(name, f"is {raw!r}, expected a whole number")
            if raw < 0:
                raise corrupt(name, f"is {raw!r}, expected a number >= 0")
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
                raise corrupt(name, f"is {raw!r}, expected text or NULL")
            values[name] = raw

        paused = item.get("paused", False)
        if not isinstance(paused, bool):
            raise corrupt("paused", f"is {paused!r}, expected true or false")
        values["paused"] = paused

        raw_drill = item.get("drill")
        try:
            values["drill"] = None if raw_drill is None else Drill(raw_drill)
        except ValueError:
            raise corrupt("drill", f"is {raw_drill!r}, expected FAIL, CRASH or NULL") from None

        if values["status"] is Status.RUNNING and (
            values["run_id"] is None or values["lease_expires_at"] is None
        ):
            raise corrupt("run_id/lease_expires_at", "must both be set while status is RUNNING")

        values["extra"] = {k: v for k, v in item.items() if k not in known}
        return cls(**values)
