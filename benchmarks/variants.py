"""Two cheaper ways this controller could keep its run history, measured beside the real one.

The store commits a run with one transaction: the fenced UpdateItem of the control item and
the PutItem of the run's history item. A transaction bills every item twice, so the commit
costs 4 write units where the two writes alone would cost 2. The variants keep the store's
code as it is (its requests are built exactly as in production) and change only how the
commit transaction reaches DynamoDB, in a client between the store and the table:

- `history-after`: the UpdateItem alone (same condition, same fencing), then, if it was
  applied, the PutItem of the history item. A process that dies between the two leaves a
  run counted in the control item with no history item.
- `history-in-item`: no history items; the UpdateItem also sets `recent_runs`, the last
  `KEEP` runs as a list in the control item. The commit is fenced on the version the run
  holds, so the list it extends is the one the run read; the item grows, and every request
  on it is billed on its size.
"""

from __future__ import annotations

import copy
from typing import Any

from benchmarks.contenders import ControllerDesign
from jobcontroller.controller import InvocationResult
from jobcontroller.embedded.designs import Env
from jobcontroller.model import Trigger
from jobcontroller.store import ControlStore

__all__ = ["HistoryAfterCommit", "HistoryInItem"]

KEEP = 3  # runs kept in the control item by `history-in-item`
_SUMMARY = ("run_id", "slot", "started_at", "finished_at", "outcome", "error")


class _CommitRewriter:
    """Forwards every call to `inner`, except the commit transaction, which `split` sends."""

    def __init__(self, inner: Any, split: Any) -> None:
        self._inner = inner
        self._split = split
        self.meta = inner.meta

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def transact_write_items(self, **params: Any) -> dict[str, Any]:
        entries = params["TransactItems"]
        update = next(e["Update"] for e in entries if "Update" in e)
        put = next((e["Put"] for e in entries if "Put" in e), None)
        return self._split(self._inner, update, put)


def _after(inner: Any, update: dict[str, Any], put: dict[str, Any] | None) -> dict[str, Any]:
    inner.update_item(**update)  # a refused condition raises here: no history is written
    if put is not None:
        inner.put_item(**put)
    return {}


def _in_item(inner: Any, update: dict[str, Any], put: dict[str, Any] | None) -> dict[str, Any]:
    request = copy.deepcopy(update)
    if put is not None:
        # What the run read is what the fenced write applies to, so the list is extended
        # from the stored item as the run holds it (the meter does not bill this look: the
        # run already has the item, from its acquire's ALL_NEW answer).
        stored = inner.inner.get_item(TableName=update["TableName"], Key=update["Key"])
        old = stored.get("Item", {}).get("recent_runs", {"L": []})["L"]
        summary = {"M": {k: v for k, v in put["Item"].items() if k in _SUMMARY}}
        request["UpdateExpression"] += ", #recent_runs = :recent_runs"
        request["ExpressionAttributeNames"]["#recent_runs"] = "recent_runs"
        request["ExpressionAttributeValues"][":recent_runs"] = {"L": [summary, *old][:KEEP]}
    inner.update_item(**request)
    return {}


class _Rewritten:
    """The Env a variant's controller gets: the same, with the store on the rewriting client."""

    def __init__(self, env: Env, store: ControlStore) -> None:
        self._env = env
        self.store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._env, name)


class HistoryAfterCommit(ControllerDesign):
    """This controller, its history item written after the commit instead of inside it."""

    name = "history-after"
    _split = staticmethod(_after)

    def invoke(self, env: Env, trigger: Trigger) -> InvocationResult:
        client = _CommitRewriter(env.client, self._split)
        store = ControlStore(env.store.table, client=client, clock=env.clock)
        return super().invoke(_Rewritten(env, store), trigger)


class HistoryInItem(HistoryAfterCommit):
    """This controller, its last KEEP runs kept in the control item instead of history items."""

    name = "history-in-item"
    _split = staticmethod(_in_item)
