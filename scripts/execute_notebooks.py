"""Re-execute notebooks in place so their stored outputs are what nbval will compare.

    .venv/bin/python scripts/execute_notebooks.py [notebooks/NN_name.ipynb ...]

With no arguments, every notebook in notebooks/. Each runs in a fresh kernel, top to
bottom, from the notebooks folder (as JupyterLab and nbval run them). Per-cell timing
metadata and widget state are not stored: both change on every run and neither is output
a learner reads, so leaving them out keeps a re-executed notebook's file identical. For the
same reason a cell's consecutive prints to one stream are stored as one output (nbval
compares them joined): how often the kernel happened to flush stdout depends on the
machine's load, not on what the cell printed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent


def execute(path: Path) -> float:
    notebook = nbformat.read(path, as_version=4)
    started = time.perf_counter()
    NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        record_timing=False,
        store_widget_state=False,
    ).execute()
    elapsed = time.perf_counter() - started
    notebook.metadata.pop("widgets", None)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = coalesce_streams(cell.outputs)
    nbformat.write(notebook, path)
    return elapsed


def coalesce_streams(outputs: list) -> list:
    """`outputs` with each run of stream outputs to the same stream joined into one."""
    joined: list = []
    for output in outputs:
        last = joined[-1] if joined else None
        if (
            output.output_type == "stream"
            and last is not None
            and last.output_type == "stream"
            and last.name == output.name
        ):
            last.text += output.text
        else:
            joined.append(output)
    return joined


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv] or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    for path in paths:
        print(f"{path.name:40} {execute(path):6.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
