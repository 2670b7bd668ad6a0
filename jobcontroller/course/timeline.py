"""A timeline of a race: who read, who wrote, who ran, who skipped and why (matplotlib).

The x axis is logical time, not the wall clock: every contender's read comes first, then the
writes in the order the backend served them, then the workload and the commit. So the
picture, like the race it draws, is the same on every run. The PNG is written with a fixed
size and dpi and without the "Software" metadata entry, so its bytes are stable too.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from jobcontroller.course.core import RaceReport

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
_DPI = 80


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


def _step_labels(contenders: int) -> list[str]:
    return ["read", *(f"write {i + 1}" for i in range(contenders)), "work", "commit"]


def draw_race(*reports: RaceReport) -> Timeline:
    """One panel per race report, contenders top to bottom, logical steps left to right."""
    if not reports:
        raise ValueError("pass at least one RaceReport (from course.race(...))")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = max(len(r.contenders) for r in reports)
    height = 0.4 * rows + 2.0
    figure = Figure(figsize=(5.2 * len(reports), height))
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
                fontsize=8,
                annotation_clip=False,
            )
        ax.set_xlim(-0.6, n + 2.5)
        ax.set_ylim(n - 0.5, -0.5)
        ax.set_yticks(range(n), [f"{c.label} {c.run_id}" for c in report.contenders], fontsize=8)
        ax.set_xticks(range(n + 3), _step_labels(n), rotation=60, fontsize=7)
        ax.set_title(f"{report.design} lock: ran {report.runs} time(s)", fontsize=10)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    figure.legend(
        list(seen.values()),
        list(seen),
        loc="lower center",
        ncols=4,
        fontsize=7,
        frameon=False,
    )
    # Margins in inches (tick labels below, title above), whatever the number of rows.
    figure.subplots_adjust(
        left=0.14, right=0.9, top=1 - 0.35 / height, bottom=1.35 / height, wspace=0.55
    )
    return Timeline(figure, reports)
