"""Notebooks 00-05 on Amazon's DynamoDB Local give the outputs stored from the embedded backend.

Each notebook runs under strict nbval in a pytest child process with
JOBCONTROLLER_BACKEND=dynamodb-local, so every kernel starts its own DynamoDB Local (as a
learner's does) and compares every cell's output with the stored one, after only the
replacements in tests/nbval-sanitize.cfg (the backend's own name). Marked `dynamodb_local`: left
out with one line when Java or the engine is missing, a failure when CI requires the engine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# Slow by design: it runs six notebooks a second time, each kernel starting its own engine
# (about 75 s); `tasks.py test --quick` leaves it out, CI and the README's command run it.
pytestmark = [pytest.mark.dynamodb_local, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
SANITIZE = ROOT / "tests" / "nbval-sanitize.cfg"
# 05's retry replays need Lambda and the Scheduler, so they run on the embedded backend in
# the same kernel; the rest of 05 runs on DynamoDB Local, and its outputs match as well.
ON_DYNAMODB_LOCAL = (
    "00_start_here.ipynb",
    "01_create_table.ipynb",
    "02_gate_and_lock.ipynb",
    "03_duplicate_triggers.ipynb",
    "04_crashes_and_leases.ipynb",
    "05_failures_and_retries.ipynb",
)


def nbval_on_dynamodb_local(*notebooks: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Strict nbval over `notebooks` in a child pytest, the backend chosen by the variable."""
    env = {
        key: value
        for key, value in os.environ.items()
        # Nothing this process exported for its own backends may leak into the kernels: each
        # notebook must find DynamoDB Local by itself, as a learner's kernel does.
        if not key.startswith("AWS_") and key != "JOBCONTROLLER_REAL_AWS"
    }
    env["JOBCONTROLLER_BACKEND"] = "dynamodb-local"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "--nbval",
        "--nbval-sanitize-with",
        str(SANITIZE),
        *map(str, notebooks),
    ]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def test_notebooks_00_to_05_match_their_stored_outputs_on_dynamodb_local():
    """Every cell of 00-05 gives, on DynamoDB Local, the output stored from the embedded one."""
    run = nbval_on_dynamodb_local(*(NOTEBOOKS / name for name in ON_DYNAMODB_LOCAL), cwd=ROOT)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "failed" not in run.stdout.splitlines()[-1]


def test_a_changed_output_fails_the_comparison(tmp_path):
    """The same run fails when one stored output differs, so the test above can fail."""
    notebook = json.loads((NOTEBOOKS / "00_start_here.ipynb").read_text())
    changed = 0
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            text = output.get("data", {}).get("text/plain")
            if text and any("hourly_processor" in line for line in text):
                output["data"]["text/plain"] = [
                    line.replace("hourly_processor", "another_job") for line in text
                ]
                changed += 1
    assert changed > 0, "00 no longer shows the job's name: pick another output to change"
    copy = tmp_path / "00_start_here.ipynb"
    copy.write_text(json.dumps(notebook))
    run = nbval_on_dynamodb_local(copy, cwd=tmp_path)
    assert run.returncode == 1, run.stdout[-3000:]
    assert "another_job" in run.stdout and "hourly_processor" in run.stdout
