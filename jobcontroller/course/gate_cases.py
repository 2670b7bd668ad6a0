"""The gate exercise's reference cases: a state, a trigger arriving at a time, the right answer.

Stage 1 (notebook 02) holds the status and cooldown cases; stage 2 (notebook 04) adds pause,
lease, takeover, once-per-slot and slot-versus-arrival. Every expected answer is what the
package's own gate decides (tests/test_exercises.py holds them to it).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from jobcontroller.course.display import cell
from jobcontroller.model import Action, JobState, Reason, Status, Trigger

__all__ = ["GATE_CASES", "GateCase", "gate_cases"]

_JOB = "hourly_processor"
_DAY = datetime.fromisoformat("2026-01-05T00:00:00+00:00")


def _t(hhmmss: str) -> datetime:
    """'HH:MM[:SS]' on the course's first day."""
    parts = [int(p) for p in hhmmss.split(":")]
    hour, minute, second = (*parts, 0)[:3]
    return _DAY + timedelta(hours=hour, minutes=minute, seconds=second)


def _state(**changes: Any) -> JobState:
    return JobState.new(_JOB, **changes)


def _running(
    run_id: str, lease_until: str, run_slot: str | None = None, **changes: Any
) -> JobState:
    return _state(
        status=Status.RUNNING,
        run_id=run_id,
        lease_expires_at=_t(lease_until),
        run_slot=None if run_slot is None else _t(run_slot),
        **changes,
    )


def _slot(hhmm: str) -> Trigger:
    return Trigger(_JOB, slot=_t(hhmm), source="scheduler")


_MANUAL = Trigger(_JOB, source="manual")


@dataclass(frozen=True)
class GateCase:
    """One reference case: a state, a trigger arriving at `now`, and the right answer."""

    name: str
    state: JobState
    trigger: Trigger
    now: datetime
    action: Action
    reason: Reason | None
    why: str
    # 1: status and cooldown (notebook 02); 2: pause, lease, takeover and slots (notebook 04).
    stage: int = 2

    def describe(self) -> list[str]:
        """The case in words: only the fields that differ from a fresh IDLE item."""
        fresh = JobState.new(self.state.job)
        changed = []
        for f in fields(JobState):
            if f.name in ("job", "extra"):
                continue
            value = getattr(self.state, f.name)
            if value != getattr(fresh, f.name):
                shown = cell(value) if isinstance(value, datetime) else value
                shown = getattr(shown, "value", shown)
                changed.append(f"{f.name}={shown}")
        if self.trigger.slot is None:
            trigger = "manual trigger (no slot)"
        else:
            trigger = f"Scheduler delivery of slot {cell(self.trigger.slot)}"
        return [
            f"  state:    {', '.join(changed) or 'a fresh IDLE item (nothing has run yet)'}",
            f"  trigger:  {trigger}, arriving at {cell(self.now)}",
        ]


def _expect(decision: tuple[Action, Reason | None]) -> dict[str, Any]:
    return {"action": decision[0], "reason": decision[1]}


RUN = (Action.RUN, None)
TAKEOVER = (Action.TAKEOVER, None)


def _skip(reason: Reason) -> tuple[Action, Reason]:
    return (Action.SKIP, reason)


_AFTER_NINE = {"last_slot": _t("09:00"), "next_allowed_run": _t("10:00")}
# The job's only run so far was started by hand at 09:10: no slot, cooldown until 10:10.
_MANUAL_AT_0910 = {
    "run_count": 1,
    "last_run_ts": _t("09:10"),
    "last_success_ts": _t("09:10:01"),
    "next_allowed_run": _t("10:10"),
}

GATE_CASES: tuple[GateCase, ...] = (
    GateCase(
        "a fresh job, first slot",
        _state(),
        _slot("09:00"),
        _t("09:00:05"),
        **_expect(RUN),
        why="Nothing stops it: idle, not paused, no slot has run, no cooldown set yet.",
        stage=1,
    ),
    GateCase(
        "a paused job",
        _state(paused=True),
        _slot("09:00"),
        _t("09:00:05"),
        **_expect(_skip(Reason.PAUSED)),
        why="An operator paused the job: nothing runs until it is resumed, whatever else "
        "the item says.",
    ),
    GateCase(
        "paused while a run holds the lock",
        _running("run-0007", "09:15:05", "09:00", paused=True),
        _slot("09:00"),
        _t("09:05"),
        **_expect(_skip(Reason.PAUSED)),
        why="Pause is checked first: it is the operator's word, and the answer needs no "
        "other field.",
    ),
    GateCase(
        "another run holds a live lease",
        _running("run-0007", "09:15:05", "09:00"),
        _slot("09:00"),
        _t("09:00:30"),
        **_expect(_skip(Reason.RUNNING)),
        why="run-0007 holds the lock and its lease runs until 09:15:05: exit at once, "
        "write nothing.",
        stage=1,
    ),
    GateCase(
        "a live lease, and a new slot arrives",
        _running("run-0007", "10:10:00", "09:00", last_slot=_t("08:00")),
        _slot("10:00"),
        _t("10:00:05"),
        **_expect(_skip(Reason.RUNNING)),
        why="While a lease is live the lock is held, whichever slot asks.",
        stage=1,
    ),
    GateCase(
        "the holder's lease has expired",
        _running("run-0007", "09:15:05", "09:00", last_slot=_t("08:00")),
        _slot("10:00"),
        _t("10:00:05"),
        **_expect(TAKEOVER),
        why="status is still RUNNING but the lease ended at 09:15:05: the holder is presumed "
        "dead. Take the lock over (and record it) instead of waiting forever.",
    ),
    GateCase(
        "the same slot delivered again",
        _state(**_AFTER_NINE),
        _slot("09:00"),
        _t("09:05"),
        **_expect(_skip(Reason.SLOT_DONE)),
        why="The scheduled time is the idempotency key: slot 09:00 already ran successfully. "
        "SLOT_DONE is checked before COOLDOWN because it says more.",
    ),
    GateCase(
        "an older slot arrives late",
        _state(last_slot=_t("10:00"), next_allowed_run=_t("11:00")),
        _slot("09:00"),
        _t("10:20"),
        **_expect(_skip(Reason.SLOT_DONE)),
        why="A slot that is not after the last successful slot is done too: compare with <=, "
        "not ==.",
    ),
    GateCase(
        "an expired lease, but this slot already succeeded",
        _running("run-0009", "10:20:00", None, last_slot=_t("10:00"), next_allowed_run=_t("11:00")),
        _slot("10:00"),
        _t("10:30"),
        **_expect(_skip(Reason.SLOT_DONE)),
        why="An expired lease is only taken over by a trigger that may run anyway, and slot "
        "10:00 has already run.",
    ),
    GateCase(
        "the next slot, delivered late after a slow run",
        _state(**_AFTER_NINE, last_run_ts=_t("09:00:05"), last_success_ts=_t("09:01:30")),
        _slot("10:00"),
        _t("10:00:20"),
        **_expect(RUN),
        why="Use next_allowed_run (10:00, one interval after the 09:00 *slot*) and compare the "
        "slot with it. When the previous run finished (09:01:30) or when this trigger arrived "
        "must not push the schedule back.",
        stage=1,
    ),
    GateCase(
        "a slot delivered on time, inside the cooldown",
        _state(**_MANUAL_AT_0910),
        _slot("10:00"),
        _t("10:00:03"),
        **_expect(_skip(Reason.COOLDOWN)),
        why="A manual run at 09:10 set next_allowed_run to 10:10. Slot 10:00 is more than the "
        "60 s slack before it: still cooling down, so the 11:00 slot is the next to run.",
        stage=1,
    ),
    GateCase(
        "the same slot delivered late, inside the cooldown",
        _state(**_MANUAL_AT_0910),
        _slot("10:00"),
        _t("10:12"),
        **_expect(_skip(Reason.COOLDOWN)),
        why="Compare the trigger's slot (10:00), not its arrival time (10:12), with "
        "next_allowed_run (10:10). Delivered on time, slot 10:00 was refused; a delivery that "
        "happens to be late must get the same answer, or the schedule depends on luck.",
    ),
    GateCase(
        "a manual trigger half-way through the hour",
        _state(**_AFTER_NINE),
        _MANUAL,
        _t("09:30"),
        **_expect(_skip(Reason.COOLDOWN)),
        why="A manual trigger has no slot, so its arrival time (09:30) is compared with "
        "next_allowed_run (10:00): still cooling down.",
        stage=1,
    ),
    GateCase(
        "a manual trigger 30 s before next_allowed_run",
        _state(**_AFTER_NINE),
        _MANUAL,
        _t("09:59:30"),
        **_expect(RUN),
        why="The cooldown slack (60 s by default) lets a trigger that is a little early run: "
        "09:59:30 is not before 10:00 minus 60 s.",
        stage=1,
    ),
    GateCase(
        "a manual trigger 61 s before next_allowed_run",
        _state(**_AFTER_NINE),
        _MANUAL,
        _t("09:58:59"),
        **_expect(_skip(Reason.COOLDOWN)),
        why="09:58:59 is before 10:00 minus the 60 s slack: too early.",
        stage=1,
    ),
    GateCase(
        "an expired lease and a manual trigger during the cooldown",
        _running("run-0009", "09:20:00", None, **_AFTER_NINE),
        _MANUAL,
        _t("09:40"),
        **_expect(_skip(Reason.COOLDOWN)),
        why="An expired lease does not skip the cooldown: only a trigger allowed to run may "
        "take over.",
    ),
    GateCase(
        "an expired lease and a manual trigger after the cooldown",
        _running("run-0009", "09:20:00", None, **_AFTER_NINE),
        _MANUAL,
        _t("10:30"),
        **_expect(TAKEOVER),
        why="The cooldown is over and run-0009's lease ended at 09:20: take over.",
    ),
)


def gate_cases(stage: int = 2) -> tuple[GateCase, ...]:
    """The reference cases of a stage: 1 is status and cooldown only, 2 is every case."""
    if stage not in (1, 2):
        raise ValueError(f"stage must be 1 (status and cooldown) or 2 (every case), not {stage!r}")
    return tuple(case for case in GATE_CASES if case.stage <= stage)
