"""The course's exercises: reference cases, checkers that explain, solutions on demand.

- The gate, in two stages. `check_gate(fn, stage=1)` (notebook 02) runs
  `fn(state, trigger, now, config=...)` over the status and cooldown cases only;
  `check_gate(fn, stage=2)` (notebook 04) over every case in `GATE_CASES`, adding pause,
  lease, takeover, once-per-slot and slot-versus-arrival. Each explains the first case it
  gets wrong.
- The cooldown anchor (notebook 05). `check_cooldown(fn)` replays a day of hourly slots and
  three manual triggers with `fn(slot, arrived, finished, config)` as the rule for
  `next_allowed_run`, and explains the first trigger it handles wrongly.
- The lock (notebook 02) is checked by `jobcontroller.course.check_lock`.

`show_solution(name)` prints a reference solution ("gate-1", "gate", "cooldown", "lock").
The notebooks never import a solution: a learner reveals one on request.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from jobcontroller.course.display import Table, cell
from jobcontroller.course.gate_cases import GATE_CASES, GateCase, gate_cases
from jobcontroller.gate import decide
from jobcontroller.model import (
    Action,
    Decision,
    JobConfig,
    JobState,
    Reason,
    Status,
    Trigger,
)

__all__ = [
    "COOLDOWN_WORKLOAD_SECONDS",
    "GATE_CASES",
    "CheckReport",
    "GateCase",
    "check_cooldown",
    "check_gate",
    "gate_cases",
    "gate_cases_table",
    "show_solution",
    "solution_cooldown",
    "solution_gate",
    "solution_gate_stage1",
]

_JOB = "hourly_processor"
_DAY = datetime.fromisoformat("2026-01-05T00:00:00+00:00")
_MANUAL = Trigger(_JOB, source="manual")


def _t(hhmmss: str) -> datetime:
    """'HH:MM[:SS]' on the course's first day."""
    parts = [int(p) for p in hhmmss.split(":")]
    hour, minute, second = (*parts, 0)[:3]
    return _DAY + timedelta(hours=hour, minutes=minute, seconds=second)


# --- exercise 1: the gate --------------------------------------------------------------------


def gate_cases_table(
    gate: Callable[..., Any] = decide, *, stage: int = 2, config: JobConfig | None = None
) -> Table:
    """A stage's reference cases, each with what `gate` decides (the package's gate by default)."""
    config = config or JobConfig()
    rows = []
    for number, case in enumerate(gate_cases(stage), start=1):
        got = gate(case.state, case.trigger, case.now, config=config)
        rows.append((str(number), case.name, _shown(got)))
    title = "the gate on the reference cases" + (" of stage 1" if stage == 1 else "")
    return Table(("#", "case", "decision"), tuple(rows), title)


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


def check_gate(
    fn: Callable[..., Any], *, stage: int = 2, config: JobConfig | None = None
) -> CheckReport:
    """Run `fn(state, trigger, now, config=...)` on a stage's cases; explain the first miss.

    Stage 1 (notebook 02): status and cooldown. Stage 2 (notebook 04): every case.
    """
    config = config or JobConfig()
    cases = gate_cases(stage)
    right = 0
    first: tuple[str, ...] = ()
    total = len(cases)
    for number, case in enumerate(cases, start=1):
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
    return CheckReport("gate" if stage == 2 else "gate, stage 1", right, total, first)


def solution_gate_stage1(
    state: JobState, trigger: Trigger, now: datetime, *, config: JobConfig
) -> Decision:
    """One answer to the gate's stage 1 (notebook 02): the design card's two checks."""
    # Somebody holds the lock: exit at once, write nothing.
    if state.status is Status.RUNNING:
        return Decision(Action.SKIP, Reason.RUNNING)

    # Cooling down: too early, less a small slack for a trigger that is a little early.
    earliest = state.next_allowed_run
    if earliest is not None and now < earliest - config.cooldown_slack:
        return Decision(Action.SKIP, Reason.COOLDOWN)
    return Decision(Action.RUN)


def solution_gate(
    state: JobState, trigger: Trigger, now: datetime, *, config: JobConfig
) -> Decision:
    """One answer to exercise 1: the checks in order, the first that applies wins."""
    # 1. An operator's pause beats everything.
    if state.paused:
        return Decision(Action.SKIP, Reason.PAUSED)

    # 2. A live lease means another run holds the lock.
    lease = state.lease_expires_at
    if state.status is Status.RUNNING and lease is not None and lease > now:
        return Decision(Action.SKIP, Reason.RUNNING)

    # 3. Once per slot: a slot not after the last successful one is done.
    slot, last = trigger.slot, state.last_slot
    if slot is not None and last is not None and slot <= last:
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

    Case 1: the 09:00 slot runs. Case 2: a manual trigger 20 minutes later must be refused
    (COOLDOWN). Cases 3-25: the rest of a day's 24 hourly deliveries must run (deliveries land
    0-59 s late, one of them 150 s late; every run takes 90 s). Case 26: a manual trigger
    after the last slot's cooldown runs, so the rule is called with `slot=None`. Case 27: a
    second manual trigger 15 minutes after it must be refused.
    """
    config = config or JobConfig()
    work = timedelta(seconds=COOLDOWN_WORKLOAD_SECONDS)
    deliveries = _cooldown_day()
    last_slot = deliveries[-1][0].slot
    assert last_slot is not None
    manual_run = last_slot + timedelta(minutes=90)
    plan = [
        (deliveries[0], "run"),
        ((_MANUAL, _t("09:20")), "refuse"),
        *((d, "run") for d in deliveries[1:]),
        ((_MANUAL, manual_run), "run"),
        ((_MANUAL, manual_run + timedelta(minutes=15)), "refuse"),
    ]
    state = JobState.new(_JOB)
    set_by = "-"
    right, total = 0, len(plan)
    first: tuple[str, ...] = ()
    for number, ((trigger, arrived), wanted) in enumerate(plan, start=1):
        what = "a manual trigger" if trigger.slot is None else f"slot {cell(trigger.slot)}"
        where = f"case {number} of {total}, {what} arriving at {cell(arrived)}"
        previous, previous_set_by = state, set_by
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
                    "a manual trigger, so use the arrival time instead)",
                )
                continue
            state = replace(
                state,
                last_slot=trigger.slot if trigger.slot is not None else state.last_slot,
                next_allowed_run=nxt,
                run_count=state.run_count + 1,
            )
            set_by = f"{what}, which ran at {cell(arrived)}"
        if decision.runs == (wanted == "run"):
            right += 1
            continue
        if first:
            continue
        rule = (
            f"  next_allowed_run was {cell(previous.next_allowed_run)}, set by your rule "
            f"after {previous_set_by}."
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
                "  why: the job runs at most once an hour, however it is triggered; a manual "
                "trigger soon after a run must wait for the cooldown. A manual run has no "
                "slot: count the interval from its arrival.",
            )
    return CheckReport("cooldown", right, total, first)


def solution_cooldown(
    slot: datetime | None, arrived: datetime, finished: datetime, config: JobConfig
) -> datetime:
    """One answer to exercise 2: one interval after the slot this run served."""
    # The slot is fixed by the schedule; arrival and finish times drift. A manual run has
    # no slot, so its arrival time stands in.
    return (slot if slot is not None else arrived) + config.interval


def _solutions() -> dict[str, tuple[Callable[..., Any], str]]:
    """Each exercise's reference solution, and the name the notebook's exercise cell uses."""
    # The lock's solution lives with its checker; imported only when a learner asks.
    from jobcontroller.course.check_init import solution_init
    from jobcontroller.course.check_lock import solution_acquire

    return {
        "init": (solution_init, "my_init"),
        "gate-1": (solution_gate_stage1, "my_gate"),
        "gate": (solution_gate, "my_gate"),
        "cooldown": (solution_cooldown, "my_next_allowed"),
        "lock": (solution_acquire, "my_acquire"),
    }


def _pasteable(fn: Callable[..., Any], name: str) -> str:
    """`fn`'s source as the exercise cell would hold it: the learner's name, no annotations.

    A notebook evaluates annotations when it runs a `def`, and it has not imported the
    package's types, so the typed header would fail there with a NameError.
    """
    source = inspect.getsource(fn)
    function = ast.parse(source).body[0]
    assert isinstance(function, ast.FunctionDef)
    arguments = function.args
    names = [a.arg for a in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs)]
    body = source.splitlines()[function.body[0].lineno - 1 :]
    return "\n".join([f"def {name}({', '.join(names)}):", *body])


def show_solution(name: str, *, reveal: bool = True) -> None:
    """Print a solution: 'init' (01), 'gate-1' and 'lock' (02), 'gate' (04), 'cooldown' (05).

    It is printed as the exercise cell would hold it (the learner's function name, no type
    annotations), so it can be pasted there and checked. With `reveal=False` it only says
    how to reveal it, so a notebook can carry the cell without giving the answer away.
    """
    solutions = _solutions()
    if name not in solutions:
        raise KeyError(f"no exercise {name!r}: choose one of {sorted(solutions)}")
    if not reveal:
        print(
            f"The solution to the {name!r} exercise is hidden. Change reveal=False to "
            "reveal=True in this cell and run it again to see it."
        )
        return
    print(_pasteable(*solutions[name]))
