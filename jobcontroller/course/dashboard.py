"""A live dashboard of one job's control item, with buttons that drive it (ipywidgets).

Every button's callback is a plain method (`trigger_once`, `fire_concurrent`, `advance`,
`toggle_pause`, `fail_next`, `crash_next`), so tests can call it directly or click the
button. What the dashboard shows comes from `render_text()` / `render_html()`, which read
only the control item, the run history and the course clock: the same presses give the
same picture on every run.

In a notebook the dashboard displays as the live widget; its plain-text form (the one nbval
compares; the widget's own view carries a random model id that nbval ignores) is
`render_text()`, so stored outputs stay identical from run to run.

`fresh_dashboard(course)` gives the dashboard a job, clock and run ids of its own (a second
control item in the same table), reset when it is created: what the notebook's other cells do
to the course's job, or to its clock, cannot change what the dashboard's instructions find,
even after "Run All".
"""

from __future__ import annotations

import html
from typing import Any

from jobcontroller.course.core import Course
from jobcontroller.course.display import cell
from jobcontroller.errors import JobControllerError, WorkloadCrash
from jobcontroller.model import Drill, JobState
from jobcontroller.store import RunRecord

__all__ = ["DASHBOARD_JOB", "Dashboard", "Snapshot", "fresh_dashboard"]

_STEPS = (("1 minute", 60), ("15 minutes", 900), ("1 hour", 3600))
DASHBOARD_JOB = "dashboard_job"
# JupyterLab right-aligns table cells by default; every other course table is left-aligned.
_LEFT = "text-align:left; padding-right:1.5em"


class Dashboard:
    """The control item live, plus buttons: trigger, fire N at once, advance, pause, drills."""

    def __init__(self, course: Course, *, contenders: int = 8, recent: int = 3) -> None:
        import ipywidgets as w

        self.course = course
        self.recent = recent
        self.message = "ready: press a button"
        self.presses = 0  # shown with each action, so a press that changed nothing still shows
        self.pressed_at: Any = None
        self.view = w.HTML()
        button = {"layout": w.Layout(width="auto")}
        self.trigger_button = w.Button(description="trigger once", **button)
        self.fire_button = w.Button(description="fire N at once", **button)
        self.contenders = w.BoundedIntText(value=contenders, min=2, max=32, description="N")
        self.advance_button = w.Button(description="advance clock", **button)
        self.step = w.Dropdown(options=_STEPS, value=3600, description="by")
        self.pause_button = w.Button(description="pause", **button)
        self.fail_button = w.Button(description="next run fails", **button)
        self.crash_button = w.Button(description="next run crashes", **button)
        self.trigger_button.on_click(self.trigger_once)
        self.fire_button.on_click(self.fire_concurrent)
        self.advance_button.on_click(self.advance)
        self.pause_button.on_click(self.toggle_pause)
        self.fail_button.on_click(self.fail_next)
        self.crash_button.on_click(self.crash_next)
        # Buttons first: the panel below them changes height, the buttons never move.
        self.widget = w.VBox(
            [
                w.HBox([self.trigger_button, self.fire_button, self.contenders]),
                w.HBox([self.advance_button, self.step, self.pause_button]),
                w.HBox([self.fail_button, self.crash_button]),
                self.view,
            ]
        )
        self.refresh()

    # --- button callbacks (each takes the button, or nothing) ------------------------------

    def trigger_once(self, _button: Any = None) -> None:
        """The Scheduler delivers the current slot once."""
        slot = self.course.slot_now()
        label = f"trigger for slot {cell(slot, time='hh:mm')}"
        try:
            result = self.course.invoke(slot)
        except WorkloadCrash as crash:
            self._say(f"{label} -> crashed: {crash} (the lock stays held until its lease ends)")
            return
        except JobControllerError as exc:
            self._say(f"{label} -> error: {exc}")
            return
        said = f"{label} -> {result.outcome.value}"
        if result.reason is not None:
            said += f" {result.reason.value}"
        if result.run_id is not None:
            said += f" ({result.run_id}"
            if result.took_over_from:
                said += f", took over from {result.took_over_from}"
            said += ")"
        if result.error:
            said += f": {result.error}"
        self._say(said)

    def fire_concurrent(self, _button: Any = None) -> None:
        """N deliveries of the current slot at once (every one reads before any writes)."""
        n = int(self.contenders.value)
        slot = self.course.slot_now()
        label = f"{n} triggers at once for slot {cell(slot, time='hh:mm')}"
        try:
            report = self.course.race(n, slot=slot)
        except WorkloadCrash as crash:
            self._say(f"{label} -> the winner crashed: {crash}")
            return
        except JobControllerError as exc:
            self._say(f"{label} -> error: {exc}")
            return
        outcomes: dict[str, int] = {}
        for c in report.contenders:
            key = c.outcome if c.reason is None else f"{c.outcome} {c.reason}"
            outcomes[key] = outcomes.get(key, 0) + 1
        summary = ", ".join(f"{k} x{v}" for k, v in sorted(outcomes.items()))
        self._say(f"{label} -> the workload ran {report.runs} time(s): {summary}")

    def advance(self, _button: Any = None) -> None:
        """Move the course clock forward by the chosen step."""
        seconds = int(self.step.value)
        now = self.course.clock.advance(seconds)
        self._say(f"clock advanced by {dict((v, k) for k, v in _STEPS)[seconds]} to {cell(now)}")

    def toggle_pause(self, _button: Any = None) -> None:
        """Pause the job, or resume it if it is paused."""
        if self.course.state().paused:
            self.course.resume()
            self._say("resumed: triggers may run again")
        else:
            self.course.pause()
            self._say("paused: every trigger now skips with PAUSED")

    def fail_next(self, _button: Any = None) -> None:
        """Set a FAIL drill: the next run's workload raises."""
        state = self.course.drill(Drill.FAIL)
        self._say(f"drill set: the next run will fail (setting it wrote the item: {_bump(state)})")

    def crash_next(self, _button: Any = None) -> None:
        """Set a CRASH drill: the next run dies holding the lock."""
        state = self.course.drill(Drill.CRASH)
        self._say(
            "drill set: the next run will crash holding the lock "
            f"(setting it wrote the item: {_bump(state)})"
        )

    # --- rendering -------------------------------------------------------------------------

    def refresh(self) -> None:
        """Re-read the item and redraw (the callbacks do this themselves)."""
        state = self.course.state()
        self.pause_button.description = "resume" if state.paused else "pause"
        self.view.value = self.render_html()

    def _say(self, message: str) -> None:
        self.message = message
        self.presses += 1
        self.pressed_at = self.course.clock.now()
        self.refresh()

    def _last_action(self) -> str:
        if not self.presses:
            return self.message
        return f"press {self.presses} (clock {cell(self.pressed_at)}): {self.message}"

    def _lines(self) -> tuple[list[tuple[str, str]], list[RunRecord]]:
        course = self.course
        state = course.state()
        now = course.clock.now()
        left = state.lease_remaining(now)
        if left is None:
            lease = "-"
        else:
            expired = ""
            if left.total_seconds() <= 0:
                expired = " (expired: the next trigger may take over)"
            lease = f"{cell(left)} (until {cell(state.lease_expires_at)}){expired}"
        holder = "-" if state.run_id is None else state.run_id
        rows = [
            ("clock", f"{cell(now)} (slot {cell(course.slot_now(), time='hh:mm')})"),
            ("status", f"{state.status.value} (holder {holder})"),
            ("version", str(state.version)),
            (
                "counters",
                f"runs {state.run_count}, failures {state.failure_count} "
                f"({state.consecutive_failures} in a row), takeovers {state.takeover_count}",
            ),
            ("lease remaining", lease),
            ("next allowed run", cell(state.next_allowed_run)),
            ("last success", cell(state.last_success_ts)),
            ("last error", "-" if state.last_error is None else state.last_error),
            ("paused / drill", f"{str(state.paused).lower()} / {state.drill or '-'}"),
        ]
        return rows, course.runs(limit=self.recent)

    @staticmethod
    def _run_line(run: RunRecord) -> str:
        slot = cell(run.slot, time="hh:mm")
        line = f"{run.run_id} {run.outcome} slot {slot} finished {cell(run.finished_at)}"
        if run.took_over_from:
            line += f", took over from {run.took_over_from}"
        return line

    def render_text(self) -> str:
        """The dashboard as plain text: the same on every run for the same presses."""
        rows, runs = self._lines()
        width = max(len(k) for k, _ in rows)
        lines = [f"dashboard: {self.course.job} in {self.course.table}"]
        lines += [f"  {k.ljust(width)}  {v}" for k, v in rows]
        lines.append("  recent runs:")
        lines += [f"    {self._run_line(r)}" for r in runs] or ["    (none yet)"]
        lines.append(f"  last action: {self._last_action()}")
        return "\n".join(lines)

    def render_html(self) -> str:
        """The dashboard's state panel as HTML (what the live widget shows above its buttons)."""
        rows, runs = self._lines()
        cells = "".join(
            f"<tr><td style='{_LEFT}'><b>{html.escape(k)}</b></td>"
            f"<td style='{_LEFT}'>{html.escape(v)}</td></tr>"
            for k, v in rows
        )
        items = "".join(f"<li>{html.escape(self._run_line(r))}</li>" for r in runs)
        return (
            f'<div style="font-family: monospace">'
            f"<p><b>dashboard: {html.escape(self.course.job)} in "
            f"{html.escape(self.course.table)}</b></p>"
            f"<table>{cells}</table>"
            f"<p>recent runs:</p><ul>{items or '<li>(none yet)</li>'}</ul>"
            f"<p>last action: {html.escape(self._last_action())}</p></div>"
        )

    def snapshot(self) -> Snapshot:
        """A still picture of the dashboard (text and HTML), for stored notebook output."""
        return Snapshot(self.render_text(), self.render_html())

    # --- display ---------------------------------------------------------------------------

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        # The live widget for JupyterLab; the stable text for everything that compares
        # outputs (nbval ignores the widget view, whose model id is random).
        bundle = dict(self.widget._repr_mimebundle_(**kwargs) or {})
        bundle["text/plain"] = self.render_text()
        return bundle

    def __repr__(self) -> str:
        return self.render_text()


def _bump(state: JobState) -> str:
    return f"version {state.version - 1} -> {state.version}"


def fresh_dashboard(
    course: Course, *, job: str = DASHBOARD_JOB, at: str = "09:00:05", **options: Any
) -> Dashboard:
    """A dashboard on a job of its own, reset to IDLE with its own clock at `at` (slot 09:00).

    Nothing else in a notebook touches that job or that clock, so the dashboard's buttons
    find what its instructions say, whichever cells ran before or after it.
    """
    own = Course(
        course.store,
        job=job,
        start=course.start,
        config=course.config,
        backend=course.backend,
        workload_seconds=course.workload_seconds,
        kind=course.kind,
        tags=course.tags,
    )
    own.create()
    own.reset()
    own.at(at)
    return Dashboard(own, **options)


class Snapshot:
    """Text and HTML of the dashboard at one moment."""

    def __init__(self, text: str, markup: str) -> None:
        self.text = text
        self.markup = markup

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        return self.markup
