"""DynamoDB's transaction conflicts on a control item, reproduced on the embedded backend.

DynamoDB refuses a request on an item while a transaction is writing that item: a
`TransactWriteItems` is cancelled with `TransactionCanceledException` whose cancellation
reason for that item is `TransactionConflict`, and a single write (`UpdateItem`, `PutItem`,
`DeleteItem`) fails with `TransactionConflictException`. Nothing is applied either way, and
botocore does not retry either of them.
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-conflict-handling

moto, served one request at a time, never overlaps two requests, so it never conflicts. Here a
seeded generator decides, write by write, whether another request was "in flight" on the
control item (`SK = STATE`) when this one arrived; the same requests in the same order meet
the same conflicts on every run. A conflict comes from a request that ends, so at most
`in_a_row` writes on one item conflict one after another before one gets through.

The embedded server (embedded.server) asks `answer` about every DynamoDB request before moto
sees it, so the Lambda's own requests, sent from the local runner's child process, meet the
conflicts too. The rate is 0 unless a test or the realism layer's owner sets it.
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DOC", "FROM_LAMBDA", "TransactionConflicts"]

# botocore adds `exec-env/<AWS_EXECUTION_ENV>` to its User-Agent, and Lambda (and the local
# runner's child process) sets AWS_EXECUTION_ENV=AWS_Lambda_<runtime>: the function's requests.
FROM_LAMBDA = "exec-env/AWS_Lambda_"

DOC = (
    "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/"
    "transaction-apis.html#transaction-conflict-handling"
)
_PREFIX = "DynamoDB_20120810."
_SINGLE_WRITES = ("UpdateItem", "PutItem", "DeleteItem")
_ERROR_TYPE = "com.amazonaws.dynamodb.v20120810#"


def _is_control_item(key: dict[str, Any] | None) -> bool:
    return bool(key) and key.get("SK", {}).get("S") == "STATE"  # type: ignore[union-attr]


def _item_of(operation: str, body: dict[str, Any]) -> tuple[str, str] | None:
    """(table, PK) of the control item a single write touches, if it touches one."""
    key = body.get("Key") if operation != "PutItem" else body.get("Item")
    if not _is_control_item(key):
        return None
    assert key is not None
    return body.get("TableName", ""), key.get("PK", {}).get("S", "")


@dataclass
class TransactionConflicts:
    """Which writes on a control item meet a transaction in flight (see the module docs).

    `rate` is the chance per write; `seed` fixes the draws; `in_a_row` bounds a burst on
    one item; `only_from` limits them to requests whose User-Agent contains it (FROM_LAMBDA:
    the function's own; "" every request). `injected` counts the conflicts answered.
    """

    rate: float = 0.0
    seed: int = 0
    in_a_row: int = 2
    only_from: str = ""
    injected: Counter[str] = field(default_factory=Counter)
    _rng: random.Random = field(init=False, repr=False)
    _streak: dict[tuple[str, str], int] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"rate {self.rate!r}: give a chance between 0 and 1, e.g. 0.3")
        if self.in_a_row < 0:
            raise ValueError(f"in_a_row {self.in_a_row!r}: give 0 or more")
        self._rng = random.Random(self.seed)

    def reset(self) -> None:
        """Start the draws again from the seed (the backend was wiped)."""
        with self._lock:
            self._rng = random.Random(self.seed)
            self._streak.clear()
            self.injected.clear()

    def answer(
        self, target: str, body: bytes, user_agent: str = ""
    ) -> tuple[int, dict[str, Any]] | None:
        """DynamoDB's answer if this request meets a conflict (status, JSON body), else None.

        `target` is the request's X-Amz-Target header, `body` its JSON.
        """
        if self.rate <= 0 or not target.startswith(_PREFIX) or self.only_from not in user_agent:
            return None
        operation = target[len(_PREFIX) :]
        if operation not in (*_SINGLE_WRITES, "TransactWriteItems"):
            return None
        request = json.loads(body or b"{}")
        if operation == "TransactWriteItems":
            items = [_transact_item(entry) for entry in request.get("TransactItems", [])]
        else:
            items = [_item_of(operation, request)]
        touched = [item for item in items if item is not None]
        if not touched or not self._draw(touched[0]):
            return None
        self.injected[operation] += 1
        message = f"Transaction is ongoing for the item (embedded realism; see {DOC})"
        if operation != "TransactWriteItems":
            return 400, {"__type": _ERROR_TYPE + "TransactionConflictException", "message": message}
        reasons = [
            {"Code": "TransactionConflict", "Message": message}
            if item == touched[0]
            else {"Code": "None"}
            for item in items
        ]
        codes = ", ".join(r["Code"] for r in reasons)
        return 400, {
            "__type": _ERROR_TYPE + "TransactionCanceledException",
            "message": "Transaction cancelled, please refer cancellation reasons for specific "
            f"reasons [{codes}]",
            "CancellationReasons": reasons,
        }

    def _draw(self, item: tuple[str, str]) -> bool:
        with self._lock:
            streak = self._streak.get(item, 0)
            hit = self._rng.random() < self.rate and streak < self.in_a_row
            self._streak[item] = streak + 1 if hit else 0
            return hit


def _transact_item(entry: dict[str, Any]) -> tuple[str, str] | None:
    (action, params), *_ = entry.items()
    if action == "Put":
        return _item_of("PutItem", params)
    return _item_of("UpdateItem", params)
