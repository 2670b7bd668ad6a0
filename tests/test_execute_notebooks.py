"""scripts/execute_notebooks.py stores what a cell printed the same way however stdout was
flushed, so a re-executed notebook's file does not depend on the machine's load."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "execute_notebooks.py"


def _script():
    spec = importlib.util.spec_from_file_location("execute_notebooks", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _stream(name: str, text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_output("stream", name=name, text=text)


def test_consecutive_prints_to_one_stream_are_stored_as_one_output():
    """Runs of stdout (or stderr) outputs are joined in order; other outputs split the runs."""
    result = nbformat.v4.new_output("execute_result", data={"text/plain": "1"})
    outputs = [
        _stream("stdout", "a\n"),
        _stream("stdout", "b\n"),
        _stream("stderr", "warn\n"),
        _stream("stdout", "c\n"),
        result,
        _stream("stdout", "d\n"),
    ]
    joined = _script().coalesce_streams(outputs)
    assert [(o.output_type, o.get("name"), o.get("text")) for o in joined] == [
        ("stream", "stdout", "a\nb\n"),
        ("stream", "stderr", "warn\n"),
        ("stream", "stdout", "c\n"),
        ("execute_result", None, None),
        ("stream", "stdout", "d\n"),
    ]
