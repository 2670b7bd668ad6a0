"""The proof that the deployed job did what the day asked (notebook 07): the seed's checks on
the stored state, the run history with its TTL, and the control item around one slot.

Course tooling only: the Lambda never imports this module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from jobcontroller.course.display import Table, cell, show_state
from jobcontroller.course.lab_day import Day
from jobcontroller.model import Drill, JobConfig, JobState, Outcome
from jobcontroller.store import TTL_ATTRIBUTE, RunRecord

__all__ = ["Proof", "proof", "show_history", "show_moment"]


@dataclass(frozen=True)
class Proof:
    """The seed's proof checks, each with what was expected and what the table holds."""

    rows: tuple[tuple[str, str, str, bool], ...]

    @property
    def passed(self) -> bool:
        return all(ok for *_, ok in self.rows)

    def table(self) -> Table:
        rows = tuple((c, e, f, "ok" if ok else "WRONG") for c, e, f, ok in self.rows)
        verdict = "all checks pass" if self.passed else "SOME CHECKS FAIL: see WRONG above"
        return Table(("check", "expected", "found", "verdict"), rows, "proof checks", (verdict,))

    def __repr__(self) -> str:
        return self.table().text()

    def _repr_html_(self) -> str:
        return self.table()._repr_html_()


def show_history(runs: Sequence[RunRecord]) -> Table:
    """Run history items (SK = RUN#...), with the TTL each will expire at."""
    rows = tuple(
        (
            r.run_id,
            r.outcome,
            cell(r.slot, time="hh:mm"),
            cell(r.started_at),
            cell(r.finished_at),
            r.took_over_from or "-",
            cell(datetime.fromtimestamp(r.expires_at, UTC)),
        )
        for r in runs
    )
    ttl = f"{TTL_ATTRIBUTE} (TTL)"
    header = ("run_id", "outcome", "slot", "started_at", "finished_at", "took_over_from", ttl)
    return Table(header, rows, "run history (newest first)", () if rows else ("(no runs)",))


def show_moment(day: Day, slot: str) -> Table:
    """The control item before and after `slot`'s deliveries ("HH:MM" or a named moment,
    `Day.slot_of`), changed fields marked."""
    before, after = day.moment(slot)
    title = f"control item around the {day.slot_of(slot)} slot"
    return show_state(after, before=before, title=title)


def proof(
    day: Day,
    *,
    state: JobState,
    runs: Sequence[RunRecord],
    config: JobConfig,
    ttl: Mapping[str, Any],
) -> Proof:
    """The seed's proof checks on the stored state (`state`, `runs`), against what the day's
    steps did; `config` is the deployed function's settings, `ttl` the table's
    DescribeTimeToLive answer."""
    ok_steps = [s for s in day.steps if s.succeeded]
    successes = [r for r in runs if r.outcome is Outcome.SUCCEEDED]
    failures = [r for r in runs if r.outcome is Outcome.FAILED]
    rows: list[tuple[str, str, str, bool]] = []

    def check(what: str, expected: Any, found: Any, ok: bool | None = None) -> None:
        e, f = str(expected), str(found)
        rows.append((what, e, f, e == f if ok is None else ok))

    check("run_count = successful runs", len(ok_steps), state.run_count)
    newest = successes[0] if successes else None
    check(
        "last_success_ts = when the last successful run finished",
        cell(None if newest is None else newest.finished_at),
        cell(state.last_success_ts),
    )
    last_slot = max((s.slot for s in ok_steps), default=None)
    interval = config.interval
    check(
        "next_allowed_run = last successful slot + interval",
        cell(None if last_slot is None else last_slot + interval),
        cell(state.next_allowed_run),
    )
    for step in day.steps:
        if step.drill is Drill.FAIL:
            after = step.state_after
            check(
                f"after the failing {cell(step.slot, time='hh:mm')} run: status",
                "IDLE",
                after.status.value,
            )
            check(
                f"after the failing {cell(step.slot, time='hh:mm')} run: last_error",
                "set",
                after.last_error or "-",
                ok=bool(after.last_error),
            )
    crashed = [s for s in day.steps if s.drill is Drill.CRASH]
    for step in crashed:
        check(
            f"after the {cell(step.slot, time='hh:mm')} crash: the lock is held",
            "RUNNING",
            step.state_after.status.value,
        )
    check("takeover recorded: takeover_count", len(crashed), state.takeover_count)
    if crashed:
        check(
            "takeover recorded: last_takeover_from = the crashed run",
            crashed[-1].state_after.run_id,
            state.last_takeover_from or "-",
        )
    slots = [r.slot for r in successes]
    check("no slot succeeded twice", "yes", "yes" if len(slots) == len(set(slots)) else "no")
    failed_steps = [s for s in day.steps if (s.result or {}).get("outcome") == Outcome.FAILED]
    check(
        "run history: one item per finished run",
        f"{len(ok_steps)} SUCCEEDED, {len(failed_steps)} FAILED",
        f"{len(successes)} SUCCEEDED, {len(failures)} FAILED",
    )
    days = config.run_history_days
    expiring = sum(
        r.expires_at == int((r.finished_at + timedelta(days=days)).timestamp()) for r in runs
    )
    check(f"run history items expire {days} days after they finished", len(runs), expiring)
    description = ttl["TimeToLiveDescription"]
    found = f"{description.get('AttributeName', '-')} {description.get('TimeToLiveStatus')}"
    # AWS takes up to an hour to switch TTL on and says ENABLING meanwhile:
    # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/time-to-live-ttl-how-to.html
    on = found in (f"{TTL_ATTRIBUTE} ENABLED", f"{TTL_ATTRIBUTE} ENABLING")
    check("the table's TTL attribute", f"{TTL_ATTRIBUTE} ENABLED (or ENABLING)", found, on)
    check(
        "finally: status IDLE, nobody holds the lock",
        "IDLE, -",
        f"{state.status.value}, {state.run_id or '-'}",
    )
    return Proof(tuple(rows))
