"""Notebook 03's last step: a read-first gate against write-first idempotency, in dollars.

Both tables are computed from request counts and item sizes, by DynamoDB's billing rules
(`jobcontroller.embedded.capacity`), never from timings: they print the same on every run and
on every backend. The read-first figures use the requests the notebook measured and the items
in its table; the write-first figures use the requests Powertools' idempotency utility sends
(`PutItem` with a condition, then `UpdateItem` with the result; a duplicate is one refused
`PutItem`, answered with the stored record) and a record shaped as it writes one.
`benchmarks/run.py` measures the real utility beside this controller.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from jobcontroller.course.display import Table
from jobcontroller.embedded.capacity import (
    PRICES,
    item_size,
    plain_item_size,
    read_units,
    write_units,
)
from jobcontroller.model import format_ts

__all__ = ["compare_gates", "powertools_record"]

PATHS = ("duplicate of a done slot", "lost the race", "ran the workload")
DUPLICATES = (0, 1, 2, 3, 4, 5, 10)
MILLION = Decimal(1_000_000)


def powertools_record(slot: datetime, response: dict[str, Any], *, done: bool) -> dict[str, Any]:
    """An idempotency record as Powertools writes one for this slot (plain values).

    Its key is the function's name and the MD5 of the key's JSON; `in_progress_expiration` is
    in milliseconds. A COMPLETED record carries the function's response as JSON in `data`.
    """
    key = hashlib.md5(json.dumps(format_ts(slot)).encode(), usedforsecurity=False).hexdigest()
    record: dict[str, Any] = {
        "id": f"jobcontroller-hourly.app.hourly_job#{key}",
        "expiration": int((slot + timedelta(hours=1)).timestamp()),
        "in_progress_expiration": int(slot.timestamp() * 1000) + 900_000,
        "status": "COMPLETED" if done else "INPROGRESS",
    }
    if done:
        record["data"] = json.dumps(response, separators=(",", ":"))
    return record


def _dollars(reads: float, writes: float) -> Decimal:
    """Dollars per million invocations of `reads` read units and `writes` write units each."""
    return PRICES.dollars(reads=reads, writes=writes) * MILLION


def _read_first(counts: Counter[str], control: int, history: int) -> tuple[float, int]:
    reads = counts.get("GetItem", 0) * read_units(control, consistent=True)
    # An UpdateItem of the control item is billed on it, applied or refused (its size barely
    # moves); the commit transaction bills both of its items twice.
    writes = counts.get("UpdateItem", 0) * write_units(control, control, applied=True)
    commit = write_units(control, control, applied=True, transactional=True)
    commit += write_units(0, history, applied=True, transactional=True)
    writes += counts.get("TransactWriteItems", 0) * commit
    return reads, writes


def compare_gates(
    course: Any, *, measured: dict[str, Counter[str]], slot: datetime
) -> tuple[Table, Table]:
    """Per invocation by path, then per slot by how many duplicates it gets: which is cheaper.

    `measured` maps each of PATHS to the requests the notebook counted for it; the items'
    sizes are read from the course's table (the control item, and its newest history item).
    """
    missing = [path for path in PATHS if path not in measured]
    if missing:
        raise ValueError(f"measured has no requests for {missing}: run Step 6 first")
    control = item_size(course.store.raw_item(course.job))
    newest = course.runs(limit=1)
    if not newest:
        raise ValueError("the job has no run history yet: run Step 6 first")
    history = plain_item_size(newest[0].to_item())
    response = {"processed": True, "slot": format_ts(slot), "seconds": 1.0}
    done = plain_item_size(powertools_record(slot, response, done=True))
    running = plain_item_size(powertools_record(slot, response, done=False))
    write_first = {
        # One refused PutItem, billed on the record that refused it; no read.
        "duplicate of a done slot": (Counter(PutItem=1), 0.0, write_units(done, 0, applied=False)),
        "lost the race": (Counter(PutItem=1), 0.0, write_units(running, 0, applied=False)),
        # PutItem INPROGRESS, then UpdateItem with the saved result.
        "ran the workload": (
            Counter(PutItem=1, UpdateItem=1),
            0.0,
            write_units(0, running, applied=True) + write_units(running, done, applied=True),
        ),
    }
    rows = []
    cost: dict[tuple[str, str], Decimal] = {}
    for path in PATHS:
        reads, writes = _read_first(measured[path], control, history)
        cost["read", path] = _dollars(reads, writes)
        w_counts, w_reads, w_writes = write_first[path]
        cost["write", path] = _dollars(w_reads, w_writes)
        rows.append(
            (
                path,
                f"{sum(measured[path].values())} req, {reads:g} R + {writes:g} W",
                f"${cost['read', path]:.3f}",
                f"{sum(w_counts.values())} req, {w_reads:g} R + {w_writes:g} W",
                f"${cost['write', path]:.3f}",
            )
        )
    per_path = Table(
        (
            "path",
            "read-first (this controller)",
            "$/million",
            "write-first (Powertools)",
            "$/million",
        ),
        tuple(rows),
        "one invocation, by path (R = read units, W = write units)",
        notes=(
            f"item sizes: control item {control} B, history item {history} B, "
            f"idempotency record {done} B; prices: ${PRICES.read_per_million} per million R, "
            f"${PRICES.write_per_million} per million W ({PRICES.region} on-demand)",
        ),
    )
    slot_rows = []
    for extra in DUPLICATES:
        read = cost["read", "ran the workload"] + extra * cost["read", "duplicate of a done slot"]
        write = (
            cost["write", "ran the workload"] + extra * cost["write", "duplicate of a done slot"]
        )
        winner = "read-first" if read < write else "write-first" if write < read else "even"
        slot_rows.append((str(extra), f"${read:.3f}", f"${write:.3f}", winner))
    per_slot = Table(
        (
            "duplicates per slot",
            "read-first $/million slots",
            "write-first $/million slots",
            "cheaper",
        ),
        tuple(slot_rows),
        "one slot that runs once and is delivered again `duplicates` times",
    )
    return per_path, per_slot
