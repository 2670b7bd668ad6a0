"""A DynamoDB client wrapper that bills every request from the items it really touched.

It wraps any boto3-like DynamoDB client (the benchmark uses the in-memory stand-in,
`jobcontroller.embedded.memory.MemoryDynamoDB`, whose requests are atomic like DynamoDB's).
For each request it looks at the stored item before and after, so a write is billed on the
larger of the two and a refused write on the item that refused it (see `capacity`). Looking
and sending happen under one lock, so no other request lands in between: the measurement is
exact, and the order of requests is still decided by the threads that send them.

Each request is recorded on the tape of the invocation that sent it (a per-thread `Tape`).
A racing invocation can be held at a `threading.Barrier` after its first request, so that
every racer has read (or tried to write) before any goes on, and then wait for the racer
before it to finish: every racer acts on what it saw before the others wrote, which is the
interleaving that tests a lock, and it is the same on every run.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from jobcontroller.embedded.capacity import item_size, read_units, write_units

__all__ = ["MeteredClient", "Request", "Tape"]

_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")
_READS = ("get_item", "query")
# Answers that mean "the condition was false": the write was refused but still billed.
_REFUSED = ("ConditionalCheckFailedException", "TransactionCanceledException")


@dataclass(frozen=True)
class Request:
    """One request as DynamoDB would bill it."""

    operation: str
    read_units: float
    write_units: float
    applied: bool
    sizes: tuple[int, ...]  # bytes of each item billed (the larger of before and after)


@dataclass
class Tape:
    """The requests one invocation sent.

    `barrier`, if set, holds the invocation after its first request until every racer has
    sent theirs; then `turn`, if set, holds it until the racer before it has finished.
    """

    requests: list[Request] = field(default_factory=list)
    barrier: threading.Barrier | None = None
    turn: threading.Event | None = None

    @property
    def read_units(self) -> float:
        return sum(r.read_units for r in self.requests)

    @property
    def write_units(self) -> float:
        return sum(r.write_units for r in self.requests)


class MeteredClient:
    """Forwards every call to `inner` and bills the data-plane ones on the current tape."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.meta = inner.meta
        self._lock = threading.Lock()
        self._local = threading.local()
        self._keys: dict[str, list[str]] = {}
        # The largest item written, by table and kind (a sort key's prefix, as "STATE" or
        # "RUN"): what the designs store, in bytes as billed.
        self.largest: dict[str, int] = {}

    # --- tapes ----------------------------------------------------------------------------

    def start(
        self, *, barrier: threading.Barrier | None = None, turn: threading.Event | None = None
    ) -> Tape:
        """Begin recording this thread's requests on a fresh tape."""
        tape = Tape(barrier=barrier, turn=turn)
        self._local.tape = tape
        return tape

    def stop(self) -> None:
        self._local.tape = None

    # --- forwarding -----------------------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)
        if name not in _WRITES + _READS:
            return target

        def call(**params: Any) -> Any:
            tape: Tape | None = getattr(self._local, "tape", None)
            try:
                with self._lock:
                    return self._metered(name, target, params)
            finally:
                # Outside the lock: the other racers must be able to send their first request.
                if tape is not None and tape.barrier is not None and len(tape.requests) == 1:
                    tape.barrier.wait(timeout=30)
                    if tape.turn is not None and not tape.turn.wait(timeout=30):
                        raise TimeoutError("the racer before this one never finished")

        return call

    def _metered(self, name: str, target: Any, params: dict[str, Any]) -> Any:
        if name in _READS:
            response = target(**params)
            items = [response["Item"]] if "Item" in response else response.get("Items", [])
            size = sum(item_size(i) for i in items)
            read = read_units(size, consistent=bool(params.get("ConsistentRead")))
            self._record(Request(_operation(name), read, 0, True, (size,)))
            return response
        parts = [(t, self.key_of(t, k)) for t, k in _parts(name, params)]
        before = [item_size(self._peek(table, key)) for table, key in parts]
        try:
            response = target(**params)
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in _REFUSED:
                raise
            transactional = name == "transact_write_items"
            units = [write_units(b, 0, applied=False, transactional=transactional) for b in before]
            # The doc states what a refused single write costs; for a cancelled transaction
            # it is assumed the same, doubled like every transactional write.
            self._record(Request(_operation(name), 0, sum(units), False, tuple(before)))
            raise
        after = [item_size(self._peek(table, key)) for table, key in parts]
        for (table, key), size in zip(parts, after, strict=True):
            kind = f"{table}/{key.get('SK', {}).get('S', 'item').split('#')[0]}"
            self.largest[kind] = max(self.largest.get(kind, 0), size)
        sizes = tuple(max(b, a) for b, a in zip(before, after, strict=True))
        transactional = name == "transact_write_items"
        units = [
            write_units(b, a, applied=True, transactional=transactional)
            for b, a in zip(before, after, strict=True)
        ]
        self._record(Request(_operation(name), 0, sum(units), True, sizes))
        return response

    def _record(self, request: Request) -> None:
        tape: Tape | None = getattr(self._local, "tape", None)
        if tape is not None:
            tape.requests.append(request)

    def _peek(self, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        """The stored item, read without billing (the meter's own look, not the design's)."""
        answer = self.inner.get_item(TableName=table, Key=key, ConsistentRead=True)
        item: dict[str, Any] | None = answer.get("Item")
        return item

    def key_of(self, table: str, item: dict[str, Any]) -> dict[str, Any]:
        if table not in self._keys:
            schema = self.inner.describe_table(TableName=table)["Table"]["KeySchema"]
            self._keys[table] = [k["AttributeName"] for k in schema]
        return {k: item[k] for k in self._keys[table]}


def _operation(name: str) -> str:
    return "".join(part.title() for part in name.split("_"))


def _parts(name: str, params: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(table, key or whole item) for each item a write touches."""
    if name == "transact_write_items":
        parts = []
        for entry in params["TransactItems"]:
            ((_, request),) = entry.items()
            parts.append((request["TableName"], request.get("Key") or request["Item"]))
        return parts
    return [(params["TableName"], params.get("Key") or params["Item"])]
