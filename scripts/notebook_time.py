"""Estimate how long a learner reads each notebook, from its stored cells.

    .venv/bin/python scripts/notebook_time.py [notebooks/NN_name.ipynb ...]

Prose (markdown) is counted at 150 words a minute, a usual pace for technical text read to be
understood; code and stored outputs at 300 words a minute, as they are skimmed and compared
rather than read word by word. Add the execution time (scripts/execute_notebooks.py prints
it) and the time the exercises take to get the notebook's time; this script only measures
the reading.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
PROSE_WPM = 150
SKIM_WPM = 300


def _words(text: str) -> int:
    return len(re.findall(r"[A-Za-z0-9_]+", text))


def _output_text(cell: nbformat.NotebookNode) -> str:
    parts = []
    for output in cell.get("outputs", []):
        if "text" in output:
            parts.append(output["text"])
        elif "data" in output:
            parts.append(output["data"].get("text/plain", ""))
        elif output.get("output_type") == "error":
            parts.append(output.get("evalue", ""))
    return "\n".join(parts)


def measure(path: Path) -> tuple[int, int, float]:
    """(prose words, code and output words, reading minutes) of one notebook."""
    notebook = nbformat.read(path, as_version=4)
    prose = sum(_words(c.source) for c in notebook.cells if c.cell_type == "markdown")
    skim = sum(
        _words(c.source) + _words(_output_text(c)) for c in notebook.cells if c.cell_type == "code"
    )
    return prose, skim, prose / PROSE_WPM + skim / SKIM_WPM


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv] or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    print(f"{'notebook':40} {'prose':>6} {'code+out':>8} {'reading':>8}")
    for path in paths:
        prose, skim, minutes = measure(path)
        print(f"{path.name:40} {prose:6d} {skim:8d} {minutes:6.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
