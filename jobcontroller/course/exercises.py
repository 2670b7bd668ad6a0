"""The course's exercises: reference cases, checkers that explain, solutions on demand.

- Notebook 02: write the gate. `check_gate(fn)` runs `fn(state, trigger, now, config=...)`
  over `GATE_CASES` and explains the first case it gets wrong.
- Notebook 04: choose the cooldown anchor. `check_cooldown(fn)` replays a day of hourly
  slots (and an extra manual trigger) with `fn(slot, arrived, finished, config)` as the
  rule for `next_allowed_run`, and explains the first trigger it handles wrongly.

`show_solution("gate")` / `show_solution("cooldown")` print a reference solution.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from typing import Any

from jobcontroller.gate import decide
from jobcontroller.model import (
    Action,
    Decision,
    JobConfig,
    JobState,
    Reason,
    Status,
    Trigger,
    format_ts,
)

__all__ = [
    "COOLDOWN_WORKLOAD_SECONDS",
    "GATE_CASES",
    "CheckReport",
    "GateCase",
    "check_cooldown",
    "check_gate",
    "gate_cases_table",
    "show_solution",
    "solution_cooldown",
    "solution_gate",
]

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


# --- exercise 1: the gate --------------------------------------------------------------------


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

    def describe(self) -> list[str]:
        """The case in words: only the fields that differ from a fresh IDLE item."""
        fresh = JobState.new(self.state.job)
        changed = []
        for f in fields(JobState):
            if f.name in ("job", "extra"):
                continue
            value = getattr(self.state, f.name)
            if value != getattr(fresh, f.name):
                shown = format_ts(value) if isinstance(value, datetime) else value
                shown = getattr(shown, "value", shown)
                changed.append(f"{f.name}={shown}")
        if self.trigger.slot is None:
            trigger = "manual trigger (no slot)"
        else:
            trigger = f"Scheduler delivery of slot {format_ts(self.trigger.slot)}"
        return [
            f"  state:    {', '.join(changed) or 'a fresh IDLE item (nothing has run yet)'}",
            f"  trigger:  {trigger}, arriving at {format_ts(self.now)}",
        ]


def _expect(decision: tuple[Action, Reason | None]) -> dict[str, Any]:
    return {"action": decision[0], "reason": decision[1]}


RUN = (Action.RUN, None)
TAKEOVER = (Action.TAKEOVER, None)


def _skip(reason: Reason) -> tuple[Action, Reason]:
    return (Action.SKIP, reason)


_AFTER_NINE = {"last_slot": _t("09:00"), "next_allowed_run": _t("10:00")}

GATE_CASES: tuple[GateCase, ...] = (
    GateCase(
        "a fresh job, first slot",
        _state(),
        _slot("09:00"),
        _t("09:00:05"),
        **_expect(RUN),
        why="Nothing stops it: idle, not paused, no slot has run, no cooldown set yet.",
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
    ),
    GateCase(
        "a live lease, and a new slot arrives",
        _running("run-0007", "10:10:00", "09:00", last_slot=_t("08:00")),
        _slot("10:00"),
        _t("10:00:05"),
        **_expect(_skip(Reason.RUNNING)),
        why="While a lease is live the lock is held, whichever slot asks.",
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
    ),
    GateCase(
        "a manual trigger half-way through the hour",
        _state(**_AFTER_NINE),
        _MANUAL,
        _t("09:30"),
        **_expect(_skip(Reason.COOLDOWN)),
        why="A manual trigger has no slot, so its arrival time (09:30) is compared with "
        "next_allowed_run (10:00): still cooling down.",
    ),
    GateCase(
        "a manual trigger 30 s before next_allowed_run",
        _state(**_AFTER_NINE),
        _MANUAL,
        _t("09:59:30"),
        **_expect(RUN),
        why="The cooldown slack (60 s by default) lets a trigger that is a little early run: "
        "09:59:30 is not before 10:00 minus 60 s.",
    ),
    GateCase(
        "a manual trigger 61 s before next_allowed_run",
        _state(**_AFTER_NINE),
        _MANUAL,
        _t("09:58:59"),
        **_expect(_skip(Reason.COOLDOWN)),
        why="09:58:59 is before 10:00 minus the 60 s slack: too early.",
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


def gate_cases_table(gate: Callable[..., Any] = decide, *, config: JobConfig | None = None) -> Any:
    """Every reference case with what `gate` decides for it (the package's gate by default)."""
    from jobcontroller.course.core import Table

    config = config or JobConfig()
    rows = []
    for number, case in enumerate(GATE_CASES, start=1):
        got = gate(case.state, case.trigger, case.now, config=config)
        rows.append((str(number), case.name, _shown(got)))
    return Table(("#", "case", "decision"), tuple(rows), "the gate on the reference cases")


@dataclass(frozen=True)
class CheckReport:
    """What a checker found: how many cases were right, and the first wrong one explained."""

    exercise: str
    right: int
    total: int
    explanation: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return self.right == self.total

    def text(self) -> str:
        head = f"{self.exercise}: {self.right} of {self.total} cases right"
        if self.passed:
            return head + ". All correct: well done."
        return "\n".join([head + ".", *self.explanation])

    def __repr__(self) -> str:
        return self.text()

    def __bool__(self) -> bool:
        return self.passed


def _shown(decision: Any) -> str:
    if not isinstance(decision, Decision):
        return repr(decision)
    if decision.action is Action.SKIP:
        return f"SKIP ({'no reason' if decision.reason is None else decision.reason.value})"
    if decision.reason is not None:
        return f"{decision.action.value} (with reason {decision.reason.value})"
    return decision.action.value


def check_gate(fn: Callable[..., Any], *, config: JobConfig | None = None) -> CheckReport:
    """Run `fn(state, trigger, now, config=...)` on every reference case; explain the first miss."""
    config = config or JobConfig()
    right = 0
    first: tuple[str, ...] = ()
    total = len(GATE_CASES)
    for number, case in enumerate(GATE_CASES, start=1):
        expected = Decision(case.action, case.reason)
        try:
            got = fn(case.state, case.trigger, case.now, config=config)
        except Exception as exc:
            problem = f"your gate raised {type(exc).__name__}: {exc}"
            ok = False
        else:
            ok = (
                isinstance(got, Decision)
                and got.action is case.action
                and got.reason is case.reason
            )
            if not isinstance(got, Decision):
                problem = (
                    f"your gate returned {got!r}; return a Decision, e.g. "
                    "Decision(Action.SKIP, Reason.RUNNING) or Decision(Action.RUN)"
                )
            else:
                problem = f"your gate said {_shown(got)}"
        if ok:
            right += 1
        elif not first:
            first = (
                f'First wrong answer: case {number} of {total}, "{case.name}"',
                *case.describe(),
                f"  expected: {_shown(expected)}",
                f"  but:      {problem}",
                f"  why:      {case.why}",
            )
    return CheckReport("gate", right, total, first)


def solution_gate(
    state: JobState, trigger: Trigger, now: datetime, *, config: JobConfig
) -> Decision:
    """One answer to exercise 1: the checks in order, the first that applies wins."""
    # 1. An operator's pause beats everything.
    if state.paused:
        return Decision(Action.SKIP, Reason.PAUSED)

    # 2. A live lease means another run holds the lock.
    lease_live = state.status is Status.RUNNING and state.lease_expires_at is not None
    if lease_live and state.lease_expires_at > now:
        return Decision(Action.SKIP, Reason.RUNNING)

    # 3. Once per slot: a slot not after the last successful one is done.
    slot_done = trigger.slot is not None and state.last_slot is not None
    if slot_done and trigger.slot <= state.last_slot:
        return Decision(Action.SKIP, Reason.SLOT_DONE)

    # 4. Cooldown, measured with the slot (or the arrival time of a manual trigger).
    if state.next_allowed_run is not None:
        when = trigger.slot if trigger.slot is not None else now
        if when < state.next_allowed_run - config.cooldown_slack:
            return Decision(Action.SKIP, Reason.COOLDOWN)

    # 5. Allowed to run: take the lock over if its holder's lease has passed.
    if state.status is Status.RUNNING:
        return Decision(Action.TAKEOVER)
    return Decision(Action.RUN)


# --- exercise 2: the cooldown anchor ---------------------------------------------------------

COOLDOWN_WORKLOAD_SECONDS = 90


def _cooldown_day() -> list[tuple[Trigger, datetime]]:
    """24 hourly deliveries, 0-59 s late, one of them 150 s late (a throttled invoke)."""
    deliveries = []
    for hour in range(24):
        slot = _t("09:00") + timedelta(hours=hour)
        late = 150 if hour == 5 else (17 * hour + 5) % 60
        trigger = Trigger(_JOB, slot=slot, source="scheduler")
        deliveries.append((trigger, slot + timedelta(seconds=late)))
    return deliveries


def check_cooldown(fn: Callable[..., datetime], *, config: JobConfig | None = None) -> CheckReport:
    """Replay triggers with `fn(slot, arrived, finished, config)` as the rule for next_allowed_run.

    Case 1: a manual trigger 20 minutes after the 09:00 run must be refused (COOLDOWN).
    Cases 2-25: each of a day's 24 hourly deliveries must run (deliveries land 0-59 s
    late, one of them 150 s late; every run takes 90 s).
    """
    config = config or JobConfig()
    work = timedelta(seconds=COOLDOWN_WORKLOAD_SECONDS)
    deliveries = _cooldown_day()
    extra = (_MANUAL, _t("09:20"))
    plan = [(deliveries[0], "run"), (extra, "refuse"), *((d, "run") for d in deliveries[1:])]
    state = JobState.new(_JOB)
    right, total = 0, len(plan)
    first: tuple[str, ...] = ()
    for number, ((trigger, arrived), wanted) in enumerate(plan, start=1):
        what = "a manual trigger" if trigger.slot is None else f"slot {format_ts(trigger.slot)}"
        where = f"case {number} of {total}, {what} arriving at {format_ts(arrived)}"
        previous = state
        decision = decide(state, trigger, arrived, config=config)
        if decision.runs:
            problem = None
            try:
                nxt = fn(trigger.slot, arrived, arrived + work, config)
            except Exception as exc:
                problem = f"your rule raised {type(exc).__name__}: {exc}"
            else:
                if not isinstance(nxt, datetime) or nxt.tzinfo is None:
                    problem = (
                        f"your rule returned {nxt!r}; return a UTC-aware datetime, "
                        "e.g. slot + config.interval"
                    )
            if problem is not None:
                first = first or (
                    f"First wrong answer: {where}",
                    f"  {problem}",
                    "  (it is called as fn(slot, arrived, finished, config); slot is None for "
                    "a manual trigger)",
                )
                continue
            state = replace(
                state,
                last_slot=trigger.slot if trigger.slot is not None else state.last_slot,
                next_allowed_run=nxt,
                run_count=state.run_count + 1,
            )
        if decision.runs == (wanted == "run"):
            right += 1
            continue
        if first:
            continue
        rule = (
            f"  next_allowed_run was {format_ts(previous.next_allowed_run)}, set by your rule "
            f"after the run for slot {format_ts(previous.last_slot)}."
        )
        if wanted == "run":
            reason = decision.reason.value if decision.reason else "-"
            first = (
                f"First wrong answer: {where}, was skipped ({reason}).",
                rule,
                "  why: every hourly slot must run. A rule that counts from when the previous "
                "run arrived or finished drifts later whenever a delivery is late or a run is "
                "slow, until a whole slot falls inside the cooldown.",
            )
        else:
            first = (
                f"First wrong answer: {where}, was allowed to run.",
                rule,
                "  why: the job runs at most once an hour; a trigger 20 minutes after the last "
                "run must wait for the cooldown.",
            )
    return CheckReport("cooldown", right, total, first)


def solution_cooldown(
    slot: datetime | None, arrived: datetime, finished: datetime, config: JobConfig
) -> datetime:
    """One answer to exercise 2: one interval after the slot this run served."""
    # The slot is fixed by the schedule; arrival and finish times drift. A manual run has
    # no slot, so its arrival time stands in.
    return (slot if slot is not None else arrived) + config.interval


_SOLUTIONS: dict[str, Callable[..., Any]] = {"gate": solution_gate, "cooldown": solution_cooldown}


def show_solution(name: str, *, reveal: bool = True) -> None:
    """Print a reference solution: 'gate' (notebook 02) or 'cooldown' (notebook 04).

    With `reveal=False` it only says how to reveal it, so a notebook can carry the cell
    without giving the answer away.
    """
    if name not in _SOLUTIONS:
        raise KeyError(f"no exercise {name!r}: choose one of {sorted(_SOLUTIONS)}")
    if not reveal:
        print(
            f"The solution to the {name!r} exercise is hidden. Change reveal=False to "
            "reveal=True in this cell and run it again to see it."
        )
        return
    print(inspect.getsource(_SOLUTIONS[name]))
