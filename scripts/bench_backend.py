"""Measure whether a backend keeps a conditional write atomic, and how fast it answers.

A measurement, not a test: it prints figures. For each backend, K threads race one
conditional UpdateItem (`#s = :idle AND version = :v`, the lock's acquire) in each of N
rounds; on DynamoDB exactly one can win. It counts the rounds where more than one won, then
times single requests.

`--switch-interval 1e-6` makes CPython switch threads as often as it can, which exposes an
unprotected read-check-write that the default 5 ms interval mostly hides: moto's server
without the lock (`embedded-nolock`) looks atomic at the default and is not at 1 us.

    python scripts/bench_backend.py                 # 100 rounds of 16 threads, every backend
    python scripts/bench_backend.py --threads 64 --rounds 40 --switch-interval 1e-6
    python scripts/bench_backend.py --backend mock --until-double --json   # used by a test
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

from jobcontroller.model import JobState
from jobcontroller.store import Acquired, ControlStore

ROOT = Path(__file__).resolve().parents[1]
TABLE = "job_control"
KEY = {"PK": {"S": "JOB#hourly_processor"}, "SK": {"S": "STATE"}}


def _create_table(client: Any) -> None:
    ControlStore(TABLE, client=client).create_table(wait=False)


def _acquire(client: Any, version: int, run_id: str) -> bool:
    """The lock's acquire, the store's one conditional UpdateItem; True if this caller won."""
    now = datetime.now(UTC)
    state = JobState.new("hourly_processor", version=version)
    outcome = ControlStore(TABLE, client=client).acquire(
        state, run_id=run_id, now=now, lease_until=now, slot=None
    )
    return isinstance(outcome, Acquired)


def race(clients: list[Any], *, rounds: int, until_double: bool = False) -> list[tuple[int, int]]:
    """(winners, crashed requests) per round of len(clients) threads racing one acquire."""
    barrier = threading.Barrier(len(clients))
    results = []
    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        for version in range(rounds):
            clients[0].put_item(
                TableName=TABLE,
                Item={**KEY, "status": {"S": "IDLE"}, "version": {"N": str(version)}},
            )

            def attempt(i: int, version: int = version) -> bool | None:
                barrier.wait()
                try:
                    return _acquire(clients[i], version, f"run-{i}")
                except Exception:  # the in-process mock is not even thread-safe: count it
                    return None

            outcomes = list(pool.map(attempt, range(len(clients))))
            results.append((outcomes.count(True), outcomes.count(None)))
            if until_double and results[-1][0] > 1:
                break
    return results


def _median_ms(call: Callable[[], object], n: int) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def _measure(make_client: Callable[[], Any], args: argparse.Namespace) -> dict[str, Any]:
    first = make_client()
    _create_table(first)
    clients = [first, *(make_client() for _ in range(args.threads - 1))]
    results = race(clients, rounds=args.rounds, until_double=args.until_double)
    winners = [w for w, _ in results]
    version = iter(range(10**6, 2 * 10**6))

    def update() -> None:
        v = next(version)
        first.put_item(
            TableName=TABLE, Item={**KEY, "status": {"S": "IDLE"}, "version": {"N": str(v)}}
        )
        _acquire(first, v, "timed")

    return {
        "threads": args.threads,
        "rounds": len(winners),
        "rounds_with_more_than_one_winner": sum(w > 1 for w in winners),
        "most_winners_in_a_round": max(winners),
        "crashed_requests": sum(c for _, c in results),
        "median_get_item_ms": _median_ms(lambda: first.get_item(TableName=TABLE, Key=KEY), 200),
        "median_put_then_update_ms": _median_ms(update, 100),
    }


@contextlib.contextmanager
def _in_process_mock() -> Iterator[Callable[[], Any]]:
    from moto import mock_aws

    # An exported embedded endpoint would route these clients past the in-process mock.
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("AWS_ENDPOINT_URL")}
    try:
        with mock_aws():
            session = boto3.session.Session(region_name="us-east-1")
            yield lambda: session.client("dynamodb")
    finally:
        os.environ.update(saved)


@contextlib.contextmanager
def _embedded(*, threaded: bool = True, lock: bool = True) -> Iterator[Callable[[], Any]]:
    if str(ROOT) not in sys.path:  # run from a checkout without `pip install -e .`
        sys.path.append(str(ROOT))
    from jobcontroller.embedded import server as local

    saved_lock = local._ONE_AT_A_TIME
    if not lock:  # for the measurement only: what the lock buys
        local._ONE_AT_A_TIME = contextlib.nullcontext()
    try:
        with local.EmbeddedAWS(threaded=threaded) as aws:
            aws.reset()  # moto's state outlives a server in the same process
            session = aws.session()
            yield lambda: session.client("dynamodb", endpoint_url=aws.endpoint_url)
    finally:
        local._ONE_AT_A_TIME = saved_lock


BACKENDS = {
    "mock": ("moto mock_aws, in process", lambda: _in_process_mock()),
    "embedded": ("embedded server (threaded)", lambda: _embedded()),
    "embedded-single": ("embedded server (1 connection)", lambda: _embedded(threaded=False)),
    "embedded-nolock": ("moto server, lock removed", lambda: _embedded(lock=False)),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--backend", choices=[*BACKENDS, "all"], default="all")
    parser.add_argument(
        "--until-double", action="store_true", help="stop at the first round with >1 winner"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object per backend")
    parser.add_argument(
        "--switch-interval", type=float, help="seconds; see sys.setswitchinterval (default 0.005)"
    )
    args = parser.parse_args(argv)
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)

    # The in-process mock runs first: mock_aws wipes moto's process-wide state on exit.
    names = list(BACKENDS) if args.backend == "all" else [args.backend]
    rows = {}
    for name in names:
        label, backend = BACKENDS[name]
        with backend() as make_client:
            rows[label] = _measure(make_client, args)
        if args.json:
            print(json.dumps({"backend": name, **rows[label]}), flush=True)
    if not args.json:
        print(f"thread switch interval: {sys.getswitchinterval() * 1e6:g} us")
        _print_table(rows)
    return 0


def _print_table(rows: dict[str, dict[str, Any]]) -> None:
    header = (
        "backend",
        "threads",
        "rounds",
        ">1 winner",
        "max winners",
        "crashed",
        "GetItem ms",
        "Put+Update ms",
    )
    lines = [header]
    for label, r in rows.items():
        lines.append(
            (
                label,
                str(r["threads"]),
                str(r["rounds"]),
                str(r["rounds_with_more_than_one_winner"]),
                str(r["most_winners_in_a_round"]),
                str(r["crashed_requests"]),
                f"{r['median_get_item_ms']:.2f}",
                f"{r['median_put_then_update_ms']:.2f}",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print(
            "  ".join(
                cell.ljust(w) if i == 0 else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(line, widths, strict=True))
            )
        )
    print(
        "\n'>1 winner': rounds where the lock broke. 'crashed': requests that failed with an"
        " error\nother than ConditionalCheckFailed. Latencies: medians of sequential requests."
    )


if __name__ == "__main__":
    raise SystemExit(main())
