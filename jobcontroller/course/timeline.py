"""A timeline of a race: who read, who wrote, who ran, who skipped and why (matplotlib).

The x axis is logical time, not the wall clock: every contender's read comes first, then the
writes in the order the backend served them, then the workload and the commit. So the
picture, like the race it draws, is the same on every run. The PNG is written with a fixed
size and dpi and without the "Software" metadata entry, so its bytes are stable too.

In a notebook a timeline shows as two outputs, the picture and then the same story in
words, because JupyterLab shows only the richest form of one output (the picture) and the
text must be visible too. Every label is at least 10 pt, and the PNG is written at 96 dpi, the
resolution at which a browser at 100 % zoom draws a point as a point: labels read at
JupyterLab's default zoom as 10 pt text would.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

from jobcontroller.course.forced import RaceReport

__all__ = ["Timeline", "draw_race"]

# kind -> (marker, colour, legend label)
_STYLE = {
    "read": ("o", "#7f7f7f", "read the item"),
    "acquired": ("s", "#2ca02c", "conditional write accepted"),
    "refused": ("X", "#d62728", "conditional write refused"),
    "wrote": ("s", "#ff7f0e", "unconditional write"),
    "skipped": ("_", "#9467bd", "exit (skip)"),
    "work": ("D", "#1f77b4", "ran the workload"),
    "committed": ("^", "#2ca02c", "committed"),
    "fenced": ("v", "#d62728", "commit refused (fenced)"),
}
_DPI = 96
_FONT = 10  # points, every label


class Timeline:
    """The drawn figure (`figure`), its PNG (`png()`) and the same story in text."""

    def __init__(self, figure: Any, reports: Sequence[RaceReport]) -> None:
        self.figure = figure
        self.reports = tuple(reports)

    def png(self) -> bytes:
        """The picture as PNG bytes, identical on every run."""
        buffer = io.BytesIO()
        # No "Software" entry: the bytes must not change with the matplotlib version string.
        self.figure.savefig(buffer, format="png", dpi=_DPI, metadata={"Software": None})
        return buffer.getvalue()

    def _repr_png_(self) -> bytes:
        return self.png()

    def text(self) -> str:
        """The timeline in words (what a screen reader, or nbval, sees)."""
        lines = []
        for report in self.reports:
            lines.append(f"{report.design} lock: the workload ran {report.runs} time(s)")
            for c in report.contenders:
                steps = "; ".join(f"{step}: {text}" for step, _, text in c.events)
                lines.append(f"  {c.label} {c.run_id}: {steps}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.text()

    def caption(self) -> str:
        """One line for the picture's own text form (the full story follows it in words)."""
        runs = "; ".join(f"{r.design} lock ran {r.runs} time(s)" for r in self.reports)
        return f"timeline picture: {runs} (the same in words below)"

    def _ipython_display_(self) -> None:
        # Two outputs: JupyterLab renders only the richest form of each, so the words get
        # an output of their own, under the picture.
        from IPython.display import display

        picture = base64.b64encode(self.png()).decode("ascii")
        display({"image/png": picture, "text/plain": self.caption()}, raw=True)
        display({"text/plain": self.text()}, raw=True)


def _step_labels(contenders: int) -> list[str]:
    return ["read", *(f"write {i + 1}" for i in range(contenders)), "work", "commit"]


def draw_race(*reports: RaceReport) -> Timeline:
    """One panel per race report, contenders top to bottom, logical steps left to right."""
    if not reports:
        raise ValueError("pass at least one RaceReport (from course.race(...))")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = max(len(r.contenders) for r in reports)
    height = 0.42 * rows + 2.6
    figure = Figure(figsize=(5.6 * len(reports), height))
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(reports), squeeze=False)[0]
    seen: dict[str, Any] = {}
    for ax, report in zip(axes, reports, strict=True):
        n = len(report.contenders)
        for y, contender in enumerate(report.contenders):
            ax.axhline(y, color="#eeeeee", linewidth=0.8, zorder=0)
            for step, kind, _ in contender.events:
                marker, colour, label = _STYLE[kind]
                handle = ax.scatter(
                    [step], [y], marker=marker, color=colour, s=70, zorder=3, linewidths=2
                )
                seen.setdefault(label, handle)
            outcome = contender.outcome if contender.reason is None else contender.reason
            ax.annotate(
                outcome,
                (n + 2.7, y),
                va="center",
                fontsize=_FONT,
                annotation_clip=False,
            )
        ax.set_xlim(-0.6, n + 2.5)
        ax.set_ylim(n - 0.5, -0.5)
        labels = [f"{c.label} {c.run_id}" for c in report.contenders]
        ax.set_yticks(range(n), labels, fontsize=_FONT)
        ax.set_xticks(range(n + 3), _step_labels(n), rotation=60, fontsize=_FONT)
        ax.set_title(f"{report.design} lock: ran {report.runs} time(s)", fontsize=_FONT + 1)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    figure.legend(
        list(seen.values()),
        list(seen),
        loc="lower center",
        ncols=4,
        fontsize=_FONT,
        frameon=False,
    )
    # Margins in inches (tick labels below, title above), whatever the number of rows.
    figure.subplots_adjust(
        left=0.15, right=0.88, top=1 - 0.4 / height, bottom=1.8 / height, wspace=0.65
    )
    return Timeline(figure, reports)
