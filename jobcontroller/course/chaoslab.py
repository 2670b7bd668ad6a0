"""The appendix "chaos lab": the fault simulation's results as tables, a chart and stories.

`jobcontroller.embedded.chaos` runs the simulation; this module only shows what it found, in
the course's curated displays (no timings, so a notebook prints the same on every run).
"""

from __future__ import annotations

import base64
import dataclasses
import io
from collections.abc import Mapping
from typing import Any

from jobcontroller.course.core import Table
from jobcontroller.embedded.chaos import INVARIANTS, FaultRates, Report, Violation

__all__ = [
    "Chart",
    "draw",
    "first_violation",
    "judge_predictions",
    "show_faults",
    "show_invariants",
    "show_story",
]

# What each rate is drawn for, as the table prints it.
_PER = {
    "late": "slot",
    "duplicate": "slot",
    "race": "slot",
    "pause": "slot",
    "crash": "invocation",
    "overrun": "invocation",
    "late_commit": "invocation",
    "async_retry": "failed invocation",
    "throttle": "request",
    "lost_answer": "write",
    "conflict": "write",
}


def show_faults(rates: FaultRates) -> Table:
    """The fault model: each fault, how often it is drawn, and for what."""
    rows = []
    for f in dataclasses.fields(rates):
        value = getattr(rates, f.name)
        if f.name == "skew_seconds":
            rows.append((f.name, f"up to +-{value:g} s", "invoker"))
        else:
            rows.append((f.name, f"{value:.1%}", _PER[f.name]))
    return Table(("fault", "rate", "drawn per"), tuple(rows), "the faults the simulation injects")


def show_invariants(reports: Mapping[str, Report]) -> Table:
    """Violations per invariant and design (checks in brackets), one column per design."""
    names = tuple(reports)
    rows = []
    for invariant in INVARIANTS:
        cells = []
        for name in names:
            report = reports[name]
            found = sum(1 for v in report.violations if v.invariant == invariant)
            cells.append(f"{found} ({report.checks[invariant]})")
        rows.append((invariant, *cells))
    slots = {r.slots for r in reports.values()}
    seeds = {r.seed for r in reports.values()}
    title = (
        f"violations (checks) over {'/'.join(map(str, sorted(slots)))} slots, "
        f"seed {'/'.join(map(str, sorted(seeds)))}"
    )
    return Table(("invariant", *names), tuple(rows), title)


def first_violation(report: Report, invariant: str) -> Violation:
    """The first violation of `invariant` in `report`; ValueError naming what was found."""
    for violation in report.violations:
        if violation.invariant == invariant:
            return violation
    found = sorted({v.invariant for v in report.violations}) or ["nothing"]
    raise ValueError(f"design {report.design} broke no {invariant!r}; it broke: {found}")


def show_story(report: Report, violation: Violation) -> Table:
    """One violated slot, delivery by delivery: clocks, faults, outcomes and workloads."""
    rows = tuple((line,) for line in report.stories.get(violation.slot, []))
    return Table(
        ("what happened to the slot (month-day time, simulated)",),
        rows,
        f"{report.design}, slot {violation.slot}: {violation.invariant}",
        (violation.detail,),
    )


class Chart:
    """A bar chart of violations per invariant and design, with its text twin."""

    def __init__(self, figure: Any, table: Table) -> None:
        self.figure = figure
        self.table = table

    def png(self) -> bytes:
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png", dpi=96, metadata={"Software": None})
        return buffer.getvalue()

    def _repr_png_(self) -> bytes:
        return self.png()

    def _ipython_display_(self) -> None:
        # Two outputs, picture then words: JupyterLab shows only the richest form of one.
        from IPython.display import display

        display({"image/png": base64.b64encode(self.png()).decode()}, raw=True)
        display(self.table)

    def __repr__(self) -> str:
        return self.table.text()


def draw(reports: Mapping[str, Report]) -> Chart:
    """Violations per invariant, one group of bars per invariant, one bar per design."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = list(reports)
    figure = Figure(figsize=(9, 4.2))
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    width = 0.8 / len(names)
    for offset, name in enumerate(names):
        counts = [
            sum(1 for v in reports[name].violations if v.invariant == invariant)
            for invariant in INVARIANTS
        ]
        xs = [i + offset * width for i in range(len(INVARIANTS))]
        ax.bar(xs, counts, width=width, label=name)
    ax.set_xticks(
        [i + 0.4 - width / 2 for i in range(len(INVARIANTS))],
        [name.replace(" ", "\n", 2) for name in INVARIANTS],
        fontsize=10,
    )
    ax.set_ylabel("violations", fontsize=10)
    ax.legend(fontsize=10, frameon=False)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    figure.subplots_adjust(left=0.08, right=0.99, top=0.95, bottom=0.3)
    return Chart(figure, show_invariants(reports))


def judge_predictions(predicted: Mapping[str, Any], reports: Mapping[str, Report]) -> Table:
    """Each design's predicted invariant(s) next to what it broke; honest about a blank."""
    rows = []
    for design, guess in predicted.items():
        if design not in reports:
            raise ValueError(f"my_prediction names {design!r}; the designs are {list(reports)}")
        broke = sorted({v.invariant for v in reports[design].violations})
        if guess is None:
            verdict = "nothing predicted yet: replace None above"
        else:
            guesses = [guess] if isinstance(guess, str) else list(guess)
            unknown = [g for g in guesses if g not in INVARIANTS]
            if unknown:
                raise ValueError(f"{unknown} is not an invariant; choose from {list(INVARIANTS)}")
            verdict = "right" if guesses and set(guesses) <= set(broke) else "not this time"
        shown = "-" if guess is None else str(guess)
        rows.append((design, shown, "; ".join(broke) or "nothing", verdict))
    return Table(("design", "you predicted", "it broke", "verdict"), tuple(rows))
