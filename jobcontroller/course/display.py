"""The course's displays: one formatter for every value shown, the `Table` every display
returns, the curated views of the control item, run history and request counts, and the
counter those request counts come from.

A leaf: it imports only the package root, so every course module (and the dashboard, the lab
and the exercises) can show things the same way without importing one another.
"""

from __future__ import annotations

import contextlib
import html
import importlib.util
import sys
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from jobcontroller.controller import InvocationResult
from jobcontroller.model import JobState, format_ts
from jobcontroller.store import RunRecord

__all__ = [
    "LOCK_FIELDS",
    "SEED_FIELDS",
    "STATE_FIELDS",
    "RequestCounter",
    "Table",
    "cell",
    "duration",
    "show_costs",
    "show_environment",
    "show_outcome",
    "show_raw_item",
    "show_requests",
    "show_result",
    "show_runs",
    "show_state",
]

# The control item's fields in the order the course always prints them: the seed's fields
# first, then what the lease, fencing and once-per-slot rules add.
STATE_FIELDS = (
    "status",
    "version",
    "run_count",
    "last_run_ts",
    "last_success_ts",
    "next_allowed_run",
    "last_error",
    "last_error_ts",
    "failure_count",
    "consecutive_failures",
    "last_slot",
    "run_id",
    "lease_expires_at",
    "run_slot",
    "last_run_id",
    "takeover_count",
    "last_takeover_from",
    "paused",
    "drill",
)
SEED_FIELDS = STATE_FIELDS[:7]
# What the lock, lease and fencing demos look at.
LOCK_FIELDS = (
    "status",
    "version",
    "run_id",
    "lease_expires_at",
    "run_count",
    "last_run_id",
    "last_slot",
    "takeover_count",
    "last_takeover_from",
)

# DynamoDB operations in the order the cost tables list them.
_OPERATIONS = ("GetItem", "UpdateItem", "PutItem", "TransactWriteItems", "Query", "DeleteItem")
_WRITES = {"UpdateItem", "PutItem", "TransactWriteItems", "DeleteItem", "BatchWriteItem"}


# How `cell` prints a datetime: the stored form, or only the time of day (UTC).
_TIMES = {"stamp": None, "hh:mm": "%H:%M", "hh:mm:ss": "%H:%M:%S"}


def cell(value: Any, *, time: Literal["stamp", "hh:mm", "hh:mm:ss"] = "stamp") -> str:
    """One value as the course prints it, in every table and message.

    '-' for None; a datetime as stored (`model.format_ts`), or with `time` only its UTC time
    of day (then an ISO timestamp given as text too); a timedelta as 1h02m03s; booleans as
    DynamoDB writes them; enums by value.
    """
    if value is None:
        return "-"
    if isinstance(value, str) and _TIMES[time] is not None:
        # A timestamp as text (a log line's, an event's): ISO 8601, 'Z' or an offset.
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, datetime):
        pattern = _TIMES[time]
        return format_ts(value) if pattern is None else value.astimezone(UTC).strftime(pattern)
    if isinstance(value, timedelta):
        return duration(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(getattr(value, "value", value))


def duration(delta: timedelta) -> str:
    """A timedelta in whole seconds as 45s, 2m05s or 1h02m03s (negative with a '-')."""
    seconds = int(delta.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{sign}{minutes}m{secs:02d}s"
    return f"{sign}{secs}s"


@dataclass(frozen=True)
class Table:
    """A small table that prints the same text and HTML on every run (no pandas, no ids)."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    title: str = ""
    notes: tuple[str, ...] = ()
    # Rows to highlight (by index), e.g. the fields a step changed.
    marked: frozenset[int] = frozenset()

    def text(self) -> str:
        widths = [len(h) for h in self.header]
        for row in self.rows:
            widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
        lines = [self.title] if self.title else []
        header = "  ".join(h.ljust(w) for h, w in zip(self.header, widths, strict=True))
        lines.append(header.rstrip())
        lines.append("  ".join("-" * w for w in widths))
        for index, row in enumerate(self.rows):
            line = "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))
            if index in self.marked:
                line += "  <- changed"
            lines.append(line.rstrip())
        lines.extend(self.notes)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        parts = []
        if self.title:
            parts.append(f"<p><b>{html.escape(self.title)}</b></p>")
        parts.append('<table style="font-family: monospace">')
        head = "".join(f"<th style='text-align:left'>{html.escape(h)}</th>" for h in self.header)
        parts.append(f"<tr>{head}</tr>")
        for index, row in enumerate(self.rows):
            style = " style='background:#fff3b0'" if index in self.marked else ""
            cells = "".join(f"<td style='text-align:left'>{html.escape(c)}</td>" for c in row)
            parts.append(f"<tr{style}>{cells}</tr>")
        parts.append("</table>")
        parts.extend(f"<p>{html.escape(n)}</p>" for n in self.notes)
        return "\n".join(parts)


def show_state(
    state: JobState,
    *,
    before: JobState | None = None,
    fields: Sequence[str] = STATE_FIELDS,
    title: str | None = None,
) -> Table:
    """The control item's fields in a fixed order; with `before`, the changed ones are marked."""
    rows: list[tuple[str, ...]] = []
    marked = set()
    for index, name in enumerate(fields):
        value = cell(getattr(state, name))
        if before is None:
            rows.append((name, value))
            continue
        old = cell(getattr(before, name))
        rows.append((name, old, value))
        if old != value:
            marked.add(index)
    header = ("field", "value") if before is None else ("field", "before", "after")
    heading = title if title is not None else f"control item JOB#{state.job} / STATE"
    notes = ("(no field changed)",) if before is not None and not marked else ()
    return Table(header, tuple(rows), heading, notes, frozenset(marked))


def show_runs(runs: Iterable[RunRecord], *, title: str = "run history (newest first)") -> Table:
    """Run-history items (SK = RUN#...), one row each, in the order given."""
    rows = tuple(
        (
            r.run_id,
            r.outcome,
            cell(r.slot),
            cell(r.started_at),
            cell(r.finished_at),
            cell(r.took_over_from),
            cell(r.error),
        )
        for r in runs
    )
    header = ("run_id", "outcome", "slot", "started_at", "finished_at", "took_over_from", "error")
    notes = () if rows else ("(no runs yet)",)
    return Table(header, rows, title, notes)


def show_result(result: InvocationResult, *, title: str = "what the invocation did") -> Table:
    """One invocation's result, field by field (what the Lambda would return)."""
    rows = (
        ("outcome", cell(result.outcome)),
        ("reason", cell(result.reason)),
        ("detail", result.detail or "-"),
        ("run_id", cell(result.run_id)),
        ("slot", cell(result.slot)),
        ("keyed_by", result.keyed_by),
        ("took_over_from", cell(result.took_over_from)),
        ("error", cell(result.error)),
    )
    return Table(("field", "value"), rows, title)


def show_outcome(outcome: Any, *, title: str | None = None) -> Table:
    """A store outcome (Acquired, Blocked, Committed, Fenced) and the item it carries."""
    kind = type(outcome).__name__
    meaning = {
        "Acquired": "the condition held: this run now holds the lock",
        "Blocked": "the condition failed: nothing was written; here is the item that refused it",
        "Committed": "the outcome was recorded and the lock released",
        "Fenced": "this run no longer held the lock: its outcome was refused, nothing written",
    }.get(kind, "")
    state = getattr(outcome, "state", None)
    rows = [("outcome", kind), ("meaning", meaning)]
    if state is not None:
        for name in ("status", "version", "run_id", "lease_expires_at", "last_run_id"):
            rows.append((f"item.{name}", cell(getattr(state, name))))
    return Table(("field", "value"), tuple(rows), title or f"store outcome: {kind}")


def show_requests(counts: Counter[str], *, title: str = "DynamoDB requests") -> Table:
    """Request counts by operation, reads and writes totalled."""
    names = [op for op in _OPERATIONS if counts.get(op)]
    names += sorted(op for op in counts if op not in _OPERATIONS and counts[op])
    rows = tuple((op, str(counts[op]), "write" if op in _WRITES else "read") for op in names)
    writes = sum(counts[op] for op in counts if op in _WRITES)
    total = sum(counts.values())
    note = f"total {total} request(s), of which {writes} write(s)"
    return Table(("operation", "count", "kind"), rows, title, (note,))


def show_costs(paths: dict[str, Counter[str]], *, title: str = "cost of each path") -> Table:
    """DynamoDB requests per invocation path, one row per path, reads and writes split."""
    ops = [op for op in _OPERATIONS if any(c.get(op) for c in paths.values())]
    rows = []
    for name, counts in paths.items():
        reads = sum(n for op, n in counts.items() if op not in _WRITES)
        writes = sum(n for op, n in counts.items() if op in _WRITES)
        rows.append((name, *(str(counts.get(op, 0)) for op in ops), str(reads), str(writes)))
    return Table(("path", *ops, "reads", "writes"), tuple(rows), title)


def show_raw_item(
    item: dict[str, Any] | None, *, table: str, fields: Sequence[str] | None = None
) -> Table:
    """A control item in DynamoDB's typed form (GetItem's `Item`): attribute, type, value.

    The course's fields come in STATE_FIELDS order, then any others; `fields` limits them.
    """
    if item is None:
        return Table(("attribute", "type", "value"), (), notes=("(no item)",))
    order = ["PK", "SK", "job", *STATE_FIELDS, "created_at"]
    names = [n for n in order if n in item] + sorted(n for n in item if n not in order)
    if fields is not None:
        names = [n for n in ("PK", "SK", *fields) if n in item]
    rows = []
    for name in names:
        ((kind, value),) = item[name].items()
        shown = "null" if kind == "NULL" else cell(value)
        rows.append((name, kind, shown))
    title = f"GetItem {table} PK={item['PK']['S']} SK={item['SK']['S']}"
    return Table(("attribute", "type", "value"), tuple(rows), title)


def show_environment(where: Iterable[tuple[str, str]]) -> Table:
    """What the course needs, checked (without versions or ports), then `where` it works."""
    rows = [("python >= 3.11", "ok" if sys.version_info >= (3, 11) else "too old")]
    for module, use in (
        ("boto3", "AWS SDK"),
        ("moto", "embedded backend"),
        ("ipywidgets", "dashboard"),
        ("matplotlib", "timeline pictures"),
    ):
        found = importlib.util.find_spec(module) is not None
        rows.append((f"{module} ({use})", "ok" if found else "missing"))
    rows.extend(where)
    return Table(("check", "result"), tuple(rows), "environment")


# --- counting requests -----------------------------------------------------------------------


class RequestCounter:
    """Counts the DynamoDB API calls a boto3 client makes, by operation and by thread.

    It listens to botocore's `before-call` event, which fires once per API call (botocore's
    own retries of that call are not counted again).
    """

    def __init__(self, client: Any) -> None:
        self._lock = threading.Lock()
        self._calls: list[tuple[int, str]] = []
        client.meta.events.register("before-call.dynamodb", self._record)

    def _record(self, model: Any = None, **_: Any) -> None:
        with self._lock:
            self._calls.append((threading.get_ident(), model.name))

    def mark(self) -> int:
        """A position to count from."""
        with self._lock:
            return len(self._calls)

    def since(self, mark: int, *, threads: Iterable[int] | None = None) -> Counter[str]:
        """Calls made after `mark` (only those from `threads`, when given)."""
        with self._lock:
            calls = self._calls[mark:]
        wanted = None if threads is None else set(threads)
        return Counter(op for ident, op in calls if wanted is None or ident in wanted)

    @contextlib.contextmanager
    def measure(self) -> Iterator[Counter[str]]:
        """`with counter.measure() as counts:` fills `counts` when the block ends."""
        counts: Counter[str] = Counter()
        start = self.mark()
        try:
            yield counts
        finally:
            counts.update(self.since(start))
