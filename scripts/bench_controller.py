"""Benchmark: DynamoDB requests per invocation path, and the handler's cold import cost.

Prints figures; asserts nothing (tests/ holds the assertions). Run it with
`.venv/bin/python scripts/bench_controller.py` (it starts the embedded backend itself).

- Requests are counted at the botocore layer (`before-send`), so retries would show up as
  extra attempts; "applied writes" counts write requests that returned success.
- Run history is written in the same TransactWriteItems as the fenced commit, so a run
  costs GetItem + UpdateItem (acquire) + TransactWriteItems (commit + history) = 3 requests.
- Import cost: the median over fresh interpreters of the time to import the handler module
  (which imports boto3 itself), divided by the median time of a bare `import boto3` measured
  in the same run.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
from collections import Counter
from datetime import timedelta

import boto3

from jobcontroller import (
    ControlStore,
    JobController,
    ManualClock,
    SequentialIds,
    Trigger,
    WorkloadCrash,
    placeholder,
)
from jobcontroller.embedded.server import start_embedded

JOB = "hourly_processor"
WRITES = {"UpdateItem", "PutItem", "TransactWriteItems", "DeleteItem"}


class RequestCounter:
    """Counts DynamoDB requests by operation on one client."""

    def __init__(self, client) -> None:
        self.sent: Counter[str] = Counter()
        self.applied_writes = 0
        client.meta.events.register("before-send.dynamodb", self._sent)
        client.meta.events.register("after-call.dynamodb", self._answered)

    def _sent(self, request, **_):
        self.sent[request.headers["X-Amz-Target"].decode().split(".")[-1]] += 1

    def _answered(self, http_response, model, **_):
        if model.name in WRITES and http_response.status_code == 200:
            self.applied_writes += 1

    def take(self) -> tuple[Counter[str], int]:
        sent, applied = self.sent, self.applied_writes
        self.sent, self.applied_writes = Counter(), 0
        return sent, applied


def measure_paths() -> list[tuple[str, str, Counter[str], int]]:
    store = ControlStore("job_control", client=boto3.client("dynamodb"))
    clock = ManualClock("2026-01-05T09:00:00Z")
    store.create_table()
    store.init_job(JOB, now=clock.now())
    counter = RequestCounter(store.client)
    controller = JobController(store, JOB, clock=clock, new_run_id=SequentialIds())
    slot = clock.now()
    rows = []

    def record(path, result):
        sent, applied = counter.take()
        label = result.outcome.value + (f"/{result.reason.value}" if result.reason else "")
        rows.append((path, label, sent, applied))

    record("run", controller.invoke(Trigger(JOB, slot=slot, source="scheduler"), placeholder()))
    record(
        "gated skip (duplicate slot)",
        controller.invoke(Trigger(JOB, slot=slot, source="scheduler"), placeholder()),
    )

    # Lost race: a rival acquires between this invocation's read and its write.
    rival_store = ControlStore("job_control", client=boto3.client("dynamodb"))
    rival = JobController(rival_store, JOB, clock=clock, new_run_id=SequentialIds("rival-"))
    slot2 = slot + timedelta(hours=1)
    clock.set(slot2)
    armed = [True]

    def rival_acquires(**_):
        if armed.pop() if armed else False:
            state = rival_store.read(JOB)
            rival_store.acquire(
                state, run_id="rival-0001", now=clock.now(), lease_until=clock.now(), slot=slot2
            )

    store.client.meta.events.register("after-call.dynamodb.GetItem", rival_acquires)
    record(
        "lost race", controller.invoke(Trigger(JOB, slot=slot2, source="scheduler"), placeholder())
    )
    store.client.meta.events.unregister("after-call.dynamodb.GetItem", rival_acquires)
    del rival

    # Takeover: the rival never finished (its lease ended at acquire time).
    clock.advance(1)
    record(
        "takeover", controller.invoke(Trigger(JOB, slot=slot2, source="scheduler"), placeholder())
    )

    # A crash leaves a live lease: the next trigger is gated with RUNNING.
    slot3 = slot + timedelta(hours=2)
    clock.set(slot3)
    try:
        controller.invoke(Trigger(JOB, slot=slot3, source="scheduler"), placeholder(crash=True))
    except WorkloadCrash:
        counter.take()
    record(
        "gated skip (lease held)",
        controller.invoke(Trigger(JOB, slot=slot3, source="scheduler"), placeholder()),
    )
    return rows


def _import_seconds(statement: str) -> float:
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout)


def measure_import(repeats: int = 15) -> tuple[float, float]:
    bare, handler = [], []
    for _ in range(repeats):  # interleaved, so machine noise hits both alike
        bare.append(_import_seconds("import boto3"))
        handler.append(_import_seconds("import jobcontroller.handler"))
    return statistics.median(bare), statistics.median(handler)


def main() -> None:
    start_embedded()
    print("DynamoDB requests per invocation (counted at the botocore layer)")
    print(f"{'path':30} {'outcome':22} {'requests':>8} {'applied writes':>14}  by operation")
    for path, label, sent, applied in measure_paths():
        ops = ", ".join(f"{op}={n}" for op, n in sorted(sent.items()))
        print(f"{path:30} {label:22} {sum(sent.values()):>8} {applied:>14}  {ops}")
    bare, handler = measure_import()
    print()
    print("Cold import, median of 15 fresh interpreters each")
    print(f"  import boto3                  {bare * 1000:7.1f} ms")
    print(f"  import jobcontroller.handler  {handler * 1000:7.1f} ms")
    print(f"  ratio                         {handler / bare:7.3f}x  (target <= 1.15x)")
    try:
        from jobcontroller.ops.packaging import build_zip
    except ImportError:
        return
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(build_zip(out_dir=Path(tmp)))
        print(f"\nLambda deployment zip: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
