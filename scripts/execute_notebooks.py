"""Re-execute notebooks in place so their stored outputs are what nbval will compare.

    .venv/bin/python scripts/execute_notebooks.py [notebooks/NN_name.ipynb ...]

With no arguments, every notebook in notebooks/. Each runs in a fresh kernel, top to
bottom, from the notebooks folder (as JupyterLab and nbval run them). Per-cell timing
metadata and widget state are not stored: both change on every run and neither is output
a learner reads, so leaving them out keeps a re-executed notebook's file identical.
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
    nbformat.write(notebook, path)
    return elapsed


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv] or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    for path in paths:
        print(f"{path.name:40} {execute(path):6.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
