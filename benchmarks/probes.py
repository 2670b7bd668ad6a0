"""The measurements beside the day's bill: contention, cold imports and the zip's size.

These are timings of this machine (wall clock, medians of repeats), so they are printed,
never asserted, and never shown in a notebook.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from benchmarks import import_time
from benchmarks.contenders import Contender
from benchmarks.day import Delivery, deliver_wave, make_env_factory, new_backend
from jobcontroller.clock import ManualClock
from jobcontroller.embedded.designs import START

__all__ = ["Contention", "cold_imports", "contention", "zip_size"]

ROOT = Path(__file__).resolve().parents[1]

IMPORTS = {
    "boto3": "import boto3",
    "handler": "import jobcontroller.handler",
    "powertools": (
        "from aws_lambda_powertools.utilities.idempotency import "
        "DynamoDBPersistenceLayer, idempotent_function"
    ),
}


@dataclass(frozen=True)
class Contention:
    """Many triggers for one slot at once: who ran, what each loser cost, how long it took."""

    triggers: int
    runs: float  # median over repeats of how many invocations ran the workload
    requests_per_loser: float
    read_units_per_loser: float
    write_units_per_loser: float
    resolve_ms: float  # median wall time from release until every invocation returned


def contention(design: Contender, *, triggers: int = 64, repeats: int = 5) -> Contention:
    """`triggers` invocations for one slot released together, on threads; medians of repeats."""
    runs: list[int] = []
    requests: list[float] = []
    reads: list[float] = []
    writes: list[float] = []
    took: list[float] = []
    for _ in range(repeats):
        client = new_backend(design)
        clock = ManualClock(START + timedelta(seconds=5))
        wave = [Delivery(0, clock.now())] * triggers
        began: list[float] = []

        def released(began: list[float] = began) -> None:
            began.append(time.perf_counter())

        with design.clocked(clock):
            done = deliver_wave(
                design,
                wave,
                make_env_factory(client, clock),
                client,
                lockstep=False,
                released=released,
            )
        took.append((time.perf_counter() - began[0]) * 1000)
        losers = [i for i in done if not i.worked]
        runs.append(len(done) - len(losers))
        requests.append(statistics.fmean(len(i.tape.requests) for i in losers))
        reads.append(statistics.fmean(i.tape.read_units for i in losers))
        writes.append(statistics.fmean(i.tape.write_units for i in losers))
    return Contention(
        triggers=triggers,
        runs=statistics.median(runs),
        requests_per_loser=statistics.median(requests),
        read_units_per_loser=statistics.median(reads),
        write_units_per_loser=statistics.median(writes),
        resolve_ms=statistics.median(took),
    )


def _import_seconds(statement: str, task_dir: Path) -> float:
    # CPU time, not wall time: on a shared machine the wall clock also counts the wait for a
    # core (measured here: a bare `import boto3` took 443-825 ms of wall time at a load of 10
    # on 2 cores, and 135-143 ms of CPU time).
    code = f"import time; t = time.process_time(); {statement}; print(time.process_time() - t)"
    # Run in the extracted zip (`-c` puts it first on sys.path, as /var/task is on Lambda):
    # the handler's modules are compiled from their sources on every cold start, as on Lambda,
    # whatever bytecode a test run left in this checkout; nothing is written.
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=task_dir,
        capture_output=True,
        text=True,
        check=True,
        env=import_time.environment(),
    )
    return float(out.stdout)


def cold_imports(*, repeats: int = 15) -> dict[str, float]:
    """Median CPU seconds to import each of IMPORTS in a fresh interpreter started in the
    extracted deployment zip, interleaved so that the machine's noise falls on all alike."""
    times: dict[str, list[float]] = {name: [] for name in IMPORTS}
    with import_time.extracted_zip(prefix="cold-imports-") as task_dir:
        for _ in range(repeats):
            for name, statement in IMPORTS.items():
                times[name].append(_import_seconds(statement, task_dir))
    return {name: statistics.median(values) for name, values in times.items()}


def zip_size() -> int:
    """Bytes of the Lambda deployment zip as `ops.packaging.build_zip` writes it."""
    from jobcontroller.ops.packaging import build_zip

    with tempfile.TemporaryDirectory() as tmp:
        return Path(build_zip(out_dir=tmp)).stat().st_size
