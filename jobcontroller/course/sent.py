"""Show what a call sent: requests captured from botocore, and items as DynamoDB returns them.

`capture(client)` listens to botocore's `before-call` event, which fires once per API call
after the parameters have been validated and serialised, just before the request is signed
and sent (botocore's own retries of that call do not fire it again). What it records is
the request body botocore built, decoded, not a copy of the arguments retyped by hand: if a
helper (the package's store, the resource layer's `Table`) rewrites what it was given, the
capture shows the rewritten request. https://boto3.amazonaws.com/v1/documentation/api/latest/guide/events.html

    with capture(course.store.client) as sent:
        course.acquire(state, run_id="run-A")
    sent                      # dynamodb.update_item(TableName=..., ConditionExpression=...)

Course tooling only: the Lambda never imports this module.
"""

from __future__ import annotations

import contextlib
import html
import itertools
import json
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from botocore import xform_name

from jobcontroller.course.display import Table, cell

__all__ = ["Sent", "SentRequest", "capture", "show_item"]

_INDENT = "    "
# A dict with more entries than this is written one entry per line.
_INLINE_ENTRIES = 2
# A string argument longer than this is cut into pieces (Python joins adjacent literals).
_WIDTH = 72
_ids = itertools.count()


def _literal(value: Any) -> str:
    """A JSON-decoded value written as the Python literal a learner would type."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if value is None:
        return "None"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    return str(value)


def _wrapped(text: str) -> list[str]:
    """A long expression cut after its commas, into pieces that fit a line."""
    pieces: list[str] = []
    for part in text.split(", "):
        if pieces and len(pieces[-1]) + len(part) + 2 <= _WIDTH:
            pieces[-1] += ", " + part
        else:
            pieces.append(part)
    return [p + ", " for p in pieces[:-1]] + pieces[-1:]


def _argument(name: str, value: Any) -> list[str]:
    """One keyword argument; a larger dict gets one line per entry, like hand-written code."""
    if isinstance(value, str) and len(name) + len(value) > _WIDTH:
        lines = [f"{_INDENT}{name}=("]
        lines += [f"{_INDENT * 2}{json.dumps(piece)}" for piece in _wrapped(value)]
        lines.append(f"{_INDENT}),")
        return lines
    if isinstance(value, dict) and len(value) > _INLINE_ENTRIES:
        lines = [f"{_INDENT}{name}={{"]
        lines += [f"{_INDENT * 2}{json.dumps(k)}: {_literal(v)}," for k, v in value.items()]
        lines.append(f"{_INDENT}}},")
        return lines
    return [f"{_INDENT}{name}={_literal(value)},"]


@dataclass(frozen=True)
class SentRequest:
    """One API call as botocore serialised it: the service, the operation and its body."""

    service: str
    operation: str
    params: dict[str, Any]

    @property
    def method(self) -> str:
        """The client method that sends it, e.g. `update_item` for UpdateItem."""
        return xform_name(self.operation)

    def text(self) -> str:
        """The request written as the boto3 client call that would send it."""
        lines = [f"{self.service}.{self.method}("]
        for name, value in self.params.items():
            lines += _argument(name, value)
        lines.append(")")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(self.text())}</pre>"


class Sent(Sequence[SentRequest]):
    """The requests one `capture` block saw, in the order they were sent."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[SentRequest] = []

    def _add(self, request: SentRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def __getitem__(self, index: Any) -> Any:
        with self._lock:
            return self._requests[index]

    def __len__(self) -> int:
        with self._lock:
            return len(self._requests)

    @property
    def operations(self) -> list[str]:
        """The operations sent, in order, e.g. ['GetItem', 'UpdateItem']."""
        return [r.operation for r in self]

    def text(self) -> str:
        if not len(self):
            return "(no request was sent)"
        return "\n\n".join(r.text() for r in self)

    def __repr__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(self.text())}</pre>"


def _decode(body: Any) -> dict[str, Any]:
    """The serialised body as a dict: JSON protocols (DynamoDB) send bytes, query ones a dict."""
    if isinstance(body, dict):
        return dict(body)
    if isinstance(body, bytes | bytearray):
        body = body.decode("utf-8")
    if not body:
        return {}
    decoded = json.loads(body)
    return decoded if isinstance(decoded, dict) else {"body": decoded}


@contextlib.contextmanager
def capture(client: Any, *, operations: Sequence[str] | None = None) -> Iterator[Sent]:
    """Record every request `client` sends inside the block (only `operations`, when given)."""
    sent = Sent()
    service = client.meta.service_model.service_id.hyphenize()
    wanted = None if operations is None else set(operations)
    # A unique id, so two captures on one client can be removed independently.
    unique_id = f"jobcontroller-sent-{next(_ids)}"

    def record(model: Any = None, params: Any = None, **_: Any) -> None:
        if wanted is not None and model.name not in wanted:
            return
        body = {} if params is None else params.get("body")
        sent._add(SentRequest(service, model.name, _decode(body)))

    event = f"before-call.{service}"
    client.meta.events.register(event, record, unique_id=unique_id)
    try:
        yield sent
    finally:
        client.meta.events.unregister(event, unique_id=unique_id)


def _shown(attribute: dict[str, Any]) -> tuple[str, str]:
    ((kind, value),) = attribute.items()
    return kind, "null" if kind == "NULL" else cell(value)


def show_item(
    item: dict[str, Any] | None,
    *,
    fields: Sequence[str] | None = None,
    title: str = "the item as DynamoDB returned it",
) -> Table:
    """An item in DynamoDB's typed form (as a client returns it): attribute, type, value.

    `fields` limits and orders the rows (the key attributes always come first); this shows a
    response's item without the response's request id, dates and HTTP headers.
    """
    header = ("attribute", "type", "value")
    if item is None:
        return Table(header, (), title, ("(no item)",))
    names = list(item) if fields is None else [n for n in ("PK", "SK", *fields) if n in item]
    rows = tuple((name, *_shown(item[name])) for name in names)
    return Table(header, rows, title)
