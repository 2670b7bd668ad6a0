"""The README's terminal recipe: start the embedded backend, paste its exports, use the AWS CLI."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from jobcontroller import ControlStore, ManualClock

ROOT = Path(__file__).resolve().parent.parent
TABLE = "room-job_control"
JOB = "hourly_processor"


def _aws_cli() -> str | None:
    # The dev extra installs the CLI into the venv, whose bin/ need not be on PATH.
    beside = Path(sys.executable).with_name("aws")
    return str(beside) if beside.exists() else shutil.which("aws")


AWS = _aws_cli()
pytestmark = pytest.mark.skipif(
    AWS is None or shutil.which("bash") is None,
    reason="the AWS CLI (pip install awscli, in the dev extra) or bash is not installed",
)


@pytest.fixture
def printed() -> Iterator[list[str]]:
    """`python -m jobcontroller.embedded` as a terminal runs it: the lines it printed before
    it said it was serving (read from its output, so no waiting by the clock)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    server = subprocess.Popen(
        [sys.executable, "-m", "jobcontroller.embedded"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert server.stdout is not None
        for line in server.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    seen: list[str] = []
    try:
        # A bound on a hang, not a wait for readiness: readiness is the "Serving" line.
        while (line := lines.get(timeout=120)) is not None:
            seen.append(line)
            if line.startswith("# Serving"):
                break
        else:
            pytest.fail(f"the embedded backend exited before serving: {seen}")
        yield seen
    finally:
        # Ctrl-C, as the README says, so it removes its temporary config files.
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _exports(lines: list[str]) -> dict[str, str]:
    return dict(
        line.removeprefix("export ").split("=", 1) for line in lines if line.startswith("export ")
    )


def test_the_aws_cli_reads_a_control_item_through_the_pasted_exports(printed):
    """Pasting the printed lines into bash lets `aws dynamodb get-item` read a control item."""
    exports = _exports(printed)
    assert exports["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    session = boto3.session.Session(
        aws_access_key_id=exports["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=exports["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=exports["AWS_SESSION_TOKEN"],
        region_name=exports["AWS_DEFAULT_REGION"],
    )
    client = session.client("dynamodb", endpoint_url=exports["AWS_ENDPOINT_URL"])
    store = ControlStore(TABLE, client=client)
    store.create_table()
    store.init_job(JOB, now=ManualClock("2026-01-05T09:00:00Z").now())

    key = json.dumps({"PK": {"S": f"JOB#{JOB}"}, "SK": {"S": "STATE"}})
    script = "\n".join(
        [
            *printed,  # pasted as printed, comments and all
            f"exec {AWS} dynamodb get-item --table-name {TABLE} --consistent-read "
            f"--key '{key}' --output json",
        ]
    )
    # A shell with no AWS_* variables of its own: only the pasted ones point it anywhere.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    done = subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    item = json.loads(done.stdout)["Item"]
    assert item["PK"] == {"S": f"JOB#{JOB}"}
    assert item["status"] == {"S": "IDLE"}
    assert item["created_at"] == {"S": "2026-01-05T09:00:00Z"}
