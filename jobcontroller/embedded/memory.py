"""DynamoDB in memory: the client operations the store uses, with DynamoDB's semantics.

`MemoryDynamoDB` stands in for a boto3 DynamoDB *client*, not for the store: the real
`ControlStore` runs on it unchanged, so the fault simulation exercises the same conditional
writes, recovery paths and fencing that run in Lambda, thousands of times a second. The same
contract tests run on it, on moto's server and on DynamoDB Local, so it cannot drift.

What it implements, as DynamoDB documents it:
- every request is atomic, and a transaction applies all of its items or none;
- condition and update expressions (`SET`, `REMOVE`, `if_not_exists`, `+`/`-`, comparisons,
  `AND`/`OR`/`NOT`, `attribute_exists`, `attribute_not_exists`, `begins_with`); a comparison
  between different types, or with a missing attribute, is false, not an error
  (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.OperatorsAndFunctions.html);
- `ReturnValuesOnConditionCheckFailure=ALL_OLD` on single writes and in transactions;
- `ClientRequestToken`: a transaction repeated with the same token within 10 minutes succeeds
  and is not applied again; the same token with other parameters raises
  `IdempotentParameterMismatchException`
  (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html).

Anything else (scans, indexes, nested paths) raises `NotImplementedError` naming it: a fake
that guesses would teach the simulation the wrong lesson.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

__all__ = ["MemoryDynamoDB"]

_TOKEN_WINDOW_SECONDS = 600.0

Item = dict[str, dict[str, Any]]  # attribute name -> typed value, e.g. {"S": "IDLE"}


def _error(operation: str, code: str, message: str, **extra: Any) -> ClientError:
    response: dict[str, Any] = {"Error": {"Code": code, "Message": message}}
    response.update(extra)
    return ClientError(response, operation)  # type: ignore[arg-type]  # botocore's TypedDict


# --- expressions ---------------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<op><>|<=|>=|=|<|>|\(|\)|,|\+|-)|(?P<word>[#:]?[A-Za-z_][A-Za-z0-9_]*))"
)
_KEYWORDS = {"AND", "OR", "NOT", "BETWEEN", "IN"}


@functools.lru_cache(maxsize=512)
def _tokens(text: str) -> tuple[str, ...]:
    out: list[str] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise NotImplementedError(f"MemoryDynamoDB cannot parse {text[pos : pos + 30]!r}")
        token = match.group("op") or match.group("word")
        out.append(token.upper() if token.upper() in _KEYWORDS else token)
        pos = match.end()
    return tuple(out)


class _Parser:
    """A recursive-descent parser for the expression subset; produces nested tuples."""

    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise NotImplementedError(f"expected {expected!r} at {token!r} in {self.tokens}")
        self.pos += 1
        return token

    def done(self) -> None:
        if self.peek() is not None:
            raise NotImplementedError(f"unexpected {self.peek()!r} in {self.tokens}")

    # condition := or
    def condition(self) -> tuple[Any, ...]:
        left = self.conjunction()
        while self.peek() == "OR":
            self.take()
            left = ("or", left, self.conjunction())
        return left

    def conjunction(self) -> tuple[Any, ...]:
        left = self.negation()
        while self.peek() == "AND":
            self.take()
            left = ("and", left, self.negation())
        return left

    def negation(self) -> tuple[Any, ...]:
        if self.peek() == "NOT":
            self.take()
            return ("not", self.negation())
        if self.peek() == "(":
            self.take()
            inner = self.condition()
            self.take(")")
            return inner
        left = self.operand()
        if left[0] == "call" and left[1] in _PREDICATES:
            return left
        op = self.take()
        if op == "BETWEEN":
            low = self.operand()
            self.take("AND")
            return ("between", left, low, self.operand())
        if op not in ("=", "<>", "<", "<=", ">", ">="):
            raise NotImplementedError(f"MemoryDynamoDB does not support {op!r}")
        return ("cmp", op, left, self.operand())

    def operand(self) -> tuple[Any, ...]:
        token = self.take()
        if self.peek() == "(":  # a function call
            self.take()
            args = [self.operand()]
            while self.peek() == ",":
                self.take()
                args.append(self.operand())
            self.take(")")
            return ("call", token, tuple(args))
        if token.startswith(":"):
            return ("value", token)
        if token.startswith("#") or token[0].isalpha() or token[0] == "_":
            return ("path", token)
        raise NotImplementedError(f"MemoryDynamoDB cannot read operand {token!r}")

    def value(self) -> tuple[Any, ...]:
        left = self.operand()
        while self.peek() in ("+", "-"):
            op = self.take()
            left = ("arith", op, left, self.operand())
        return left


_PREDICATES = {"attribute_exists", "attribute_not_exists", "begins_with"}


@functools.lru_cache(maxsize=512)
def _parse_condition(text: str) -> tuple[Any, ...]:
    parser = _Parser(text)
    tree = parser.condition()
    parser.done()
    return tree


@functools.lru_cache(maxsize=512)
def _parse_update(text: str) -> tuple[tuple[str, str, Any], ...]:
    """`SET a = v, b = v REMOVE c, d` as (("SET", name, value-tree), ("REMOVE", name, None))."""
    parser = _Parser(text)
    actions: list[tuple[str, str, Any]] = []
    while parser.peek() is not None:
        clause = parser.take().upper()
        if clause not in ("SET", "REMOVE"):
            raise NotImplementedError(f"MemoryDynamoDB supports SET and REMOVE, not {clause!r}")
        while True:
            path = parser.operand()
            if path[0] != "path":
                raise NotImplementedError(f"cannot assign to {path}")
            if clause == "SET":
                parser.take("=")
                actions.append(("SET", path[1], parser.value()))
            else:
                actions.append(("REMOVE", path[1], None))
            if parser.peek() != ",":
                break
            parser.take()
    return tuple(actions)


class _Context:
    """Resolves `#name` and `:value` placeholders against one request."""

    def __init__(self, names: dict[str, str] | None, values: dict[str, Any] | None) -> None:
        self.names = names or {}
        self.values = values or {}

    def name(self, token: str) -> str:
        if token.startswith("#"):
            try:
                return self.names[token]
            except KeyError:
                raise _validation(f"the name placeholder {token} is not defined") from None
        return token

    def value(self, token: str) -> dict[str, Any]:
        try:
            return self.values[token]
        except KeyError:
            raise _validation(f"the value placeholder {token} is not defined") from None


class _Invalid(Exception):
    """A ValidationException to raise with the operation's name once it is known."""


def _validation(message: str) -> _Invalid:
    return _Invalid(message)


def _comparable(value: dict[str, Any] | None) -> tuple[str, Any] | None:
    if value is None:
        return None
    ((kind, raw),) = value.items()
    if kind == "N":
        return kind, Decimal(raw)
    if kind in ("S", "B", "BOOL", "NULL"):
        return kind, raw
    return kind, json.dumps(raw, sort_keys=True)


def _evaluate(tree: tuple[Any, ...], item: Item | None, ctx: _Context) -> Any:
    kind = tree[0]
    if kind == "and":
        return _evaluate(tree[1], item, ctx) and _evaluate(tree[2], item, ctx)
    if kind == "or":
        return _evaluate(tree[1], item, ctx) or _evaluate(tree[2], item, ctx)
    if kind == "not":
        return not _evaluate(tree[1], item, ctx)
    if kind == "path":
        return (item or {}).get(ctx.name(tree[1]))
    if kind == "value":
        return ctx.value(tree[1])
    if kind == "cmp":
        return _compare(tree[1], _evaluate(tree[2], item, ctx), _evaluate(tree[3], item, ctx))
    if kind == "between":
        value = _evaluate(tree[1], item, ctx)
        return _compare(">=", value, _evaluate(tree[2], item, ctx)) and _compare(
            "<=", value, _evaluate(tree[3], item, ctx)
        )
    if kind == "call":
        return _call(tree[1], tree[2], item, ctx)
    if kind == "arith":
        left, right = _evaluate(tree[2], item, ctx), _evaluate(tree[3], item, ctx)
        if left is None or right is None or "N" not in left or "N" not in right:
            raise _validation("an operand in the update expression has an incorrect data type")
        total = Decimal(left["N"]) + (1 if tree[1] == "+" else -1) * Decimal(right["N"])
        return {"N": str(total)}
    raise NotImplementedError(f"MemoryDynamoDB cannot evaluate {kind!r}")


def _compare(op: str, left: dict[str, Any] | None, right: dict[str, Any] | None) -> bool:
    a, b = _comparable(left), _comparable(right)
    if a is None or b is None:
        # A missing attribute makes every comparison false; `<>` is true (it is not equal).
        return op == "<>" and (a is not None or b is not None)
    if a[0] != b[0]:
        return op == "<>"  # different types: never equal, never ordered
    if op == "=":
        return bool(a[1] == b[1])
    if op == "<>":
        return bool(a[1] != b[1])
    if a[0] not in ("N", "S", "B"):
        raise _validation(f"the operator {op} cannot compare values of type {a[0]}")
    return bool({"<": a[1] < b[1], "<=": a[1] <= b[1], ">": a[1] > b[1], ">=": a[1] >= b[1]}[op])


def _call(name: str, args: tuple[Any, ...], item: Item | None, ctx: _Context) -> Any:
    if name in ("attribute_exists", "attribute_not_exists"):
        present = ctx.name(args[0][1]) in (item or {})
        return present if name == "attribute_exists" else not present
    if name == "begins_with":
        value, prefix = (_evaluate(a, item, ctx) for a in args)
        return bool(
            value
            and prefix
            and "S" in value
            and "S" in prefix
            and value["S"].startswith(prefix["S"])
        )
    if name == "if_not_exists":
        current = _evaluate(args[0], item, ctx)
        return current if current is not None else _evaluate(args[1], item, ctx)
    raise NotImplementedError(f"MemoryDynamoDB does not support the function {name}()")


# --- the client ----------------------------------------------------------------------------


class _Meta:
    def __init__(self, region: str) -> None:
        self.region_name = region
        self.endpoint_url = "memory://dynamodb"


class _Waiter:
    def wait(self, **_: Any) -> None:
        """Tables are ACTIVE as soon as they exist here."""


class MemoryDynamoDB:
    """The subset of a boto3 DynamoDB client that `ControlStore` calls, in memory.

    Thread-safe: one lock around each request makes every request atomic, as DynamoDB does.
    `clock` (seconds, monotonic) dates request tokens; pass a virtual one in simulations.
    """

    def __init__(
        self, *, region: str = "us-east-1", clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.meta = _Meta(region)
        self._clock = clock
        self._lock = threading.Lock()
        self._tables: dict[str, dict[str, Any]] = {}
        self._tokens: dict[str, tuple[str, float]] = {}
        self.requests = 0

    # --- tables --------------------------------------------------------------------------

    def create_table(self, **params: Any) -> dict[str, Any]:
        name = params["TableName"]
        with self._lock:
            if name in self._tables:
                raise _error(
                    "CreateTable", "ResourceInUseException", f"Table already exists: {name}"
                )
            keys = [k["AttributeName"] for k in params["KeySchema"]]
            self._tables[name] = {
                "keys": keys,
                "schema": copy.deepcopy(params["KeySchema"]),
                "definitions": copy.deepcopy(params["AttributeDefinitions"]),
                "billing": params.get("BillingMode", "PROVISIONED"),
                "items": {},
                "ttl": None,
            }
        return {"TableDescription": self._describe(name)}

    def delete_table(self, *, TableName: str) -> dict[str, Any]:
        with self._lock:
            self._table("DeleteTable", TableName)
            del self._tables[TableName]
        return {}

    def describe_table(self, *, TableName: str) -> dict[str, Any]:
        with self._lock:
            self._table("DescribeTable", TableName)
            return {"Table": self._describe(TableName)}

    def _describe(self, name: str) -> dict[str, Any]:
        table = self._tables[name]
        return {
            "TableName": name,
            "KeySchema": copy.deepcopy(table["schema"]),
            "AttributeDefinitions": copy.deepcopy(table["definitions"]),
            "BillingModeSummary": {"BillingMode": table["billing"]},
            "TableStatus": "ACTIVE",
        }

    def describe_time_to_live(self, *, TableName: str) -> dict[str, Any]:
        with self._lock:
            ttl = self._table("DescribeTimeToLive", TableName)["ttl"]
        if ttl is None:
            return {"TimeToLiveDescription": {"TimeToLiveStatus": "DISABLED"}}
        return {"TimeToLiveDescription": {"TimeToLiveStatus": "ENABLED", "AttributeName": ttl}}

    def update_time_to_live(self, *, TableName: str, TimeToLiveSpecification: dict[str, Any]):
        with self._lock:
            table = self._table("UpdateTimeToLive", TableName)
            enabled = TimeToLiveSpecification["Enabled"]
            table["ttl"] = TimeToLiveSpecification["AttributeName"] if enabled else None
        return {"TimeToLiveSpecification": TimeToLiveSpecification}

    def get_waiter(self, name: str) -> _Waiter:
        if name not in ("table_exists", "table_not_exists"):
            raise NotImplementedError(f"MemoryDynamoDB has no waiter {name!r}")
        return _Waiter()

    def _table(self, operation: str, name: str) -> dict[str, Any]:
        try:
            return self._tables[name]
        except KeyError:
            raise _error(
                operation,
                "ResourceNotFoundException",
                "Requested resource not found: Table: " + name + " not found",
            ) from None

    def _key(self, table: dict[str, Any], key: Item) -> tuple[str, ...]:
        if set(key) != set(table["keys"]):
            raise _validation("The provided key element does not match the schema")
        return tuple(json.dumps(key[k], sort_keys=True) for k in table["keys"])

    # --- items ---------------------------------------------------------------------------

    def get_item(self, *, TableName: str, Key: Item, **_: Any) -> dict[str, Any]:
        with self._lock:
            self.requests += 1
            table = self._table("GetItem", TableName)
            item = table["items"].get(self._guard("GetItem", lambda: self._key(table, Key)))
            return {} if item is None else {"Item": copy.deepcopy(item)}

    def put_item(self, **params: Any) -> dict[str, Any]:
        with self._lock:
            self.requests += 1
            table = self._table("PutItem", params["TableName"])
            return self._guard("PutItem", lambda: self._put(table, params, "PutItem"))

    def update_item(self, **params: Any) -> dict[str, Any]:
        with self._lock:
            self.requests += 1
            table = self._table("UpdateItem", params["TableName"])
            return self._guard("UpdateItem", lambda: self._update(table, params, "UpdateItem"))

    def delete_item(self, *, TableName: str, Key: Item, **params: Any) -> dict[str, Any]:
        with self._lock:
            self.requests += 1
            table = self._table("DeleteItem", TableName)
            key = self._guard("DeleteItem", lambda: self._key(table, Key))
            self._check("DeleteItem", table["items"].get(key), params)
            table["items"].pop(key, None)
            return {}

    def query(self, **params: Any) -> dict[str, Any]:
        with self._lock:
            self.requests += 1
            table = self._table("Query", params["TableName"])
            ctx = _Context(
                params.get("ExpressionAttributeNames"), params.get("ExpressionAttributeValues")
            )
            tree = _parse_condition(params["KeyConditionExpression"])
            items = [
                item
                for item in table["items"].values()
                if self._guard("Query", lambda item=item: _evaluate(tree, item, ctx))
            ]
            sort = table["keys"][1] if len(table["keys"]) > 1 else None
            if sort is not None:
                items.sort(key=lambda i: _comparable(i[sort]) or ("", ""))
            if not params.get("ScanIndexForward", True):
                items.reverse()
            start = params.get("ExclusiveStartKey")
            if start is not None:
                marker = self._key(table, start)
                keys = [self._key(table, {k: i[k] for k in table["keys"]}) for i in items]
                items = items[keys.index(marker) + 1 :] if marker in keys else []
            limit = params.get("Limit")
            page, rest = (items[:limit], items[limit:]) if limit else (items, [])
            response: dict[str, Any] = {}
            if rest:
                last = page[-1]
                response["LastEvaluatedKey"] = {k: copy.deepcopy(last[k]) for k in table["keys"]}
            projection = params.get("ProjectionExpression")
            if projection:
                wanted = [ctx.name(p.strip()) for p in projection.split(",")]
                page = [{k: v for k, v in i.items() if k in wanted} for i in page]
            response.update(Items=copy.deepcopy(page), Count=len(page))
            return response

    def transact_write_items(self, *, TransactItems: list[dict[str, Any]], **params: Any):
        token = params.get("ClientRequestToken")
        with self._lock:
            self.requests += 1
            if token is not None:
                digest = json.dumps(TransactItems, sort_keys=True, default=str)
                seen = self._tokens.get(token)
                now = self._clock()
                if seen is not None and now - seen[1] < _TOKEN_WINDOW_SECONDS:
                    if seen[0] != digest:
                        raise _error(
                            "TransactWriteItems",
                            "IdempotentParameterMismatchException",
                            "The request uses the same client token as a previous, but "
                            "non-identical request.",
                        )
                    return {}  # the same request again: already applied, not applied twice
            staged: list[tuple[dict[str, Any], tuple[str, ...], Item | None]] = []
            reasons: list[dict[str, Any]] = []
            for entry in TransactItems:
                ((action, request),) = entry.items()
                table = self._table("TransactWriteItems", request["TableName"])
                try:
                    new_table_state = self._stage(action, table, request)
                    staged.append((table, *new_table_state))
                    reasons.append({"Code": "None"})
                except _ConditionFailed as failed:
                    reason: dict[str, Any] = {
                        "Code": "ConditionalCheckFailed",
                        "Message": "The conditional request failed",
                    }
                    if (
                        failed.old is not None
                        and request.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD"
                    ):
                        reason["Item"] = copy.deepcopy(failed.old)
                    reasons.append(reason)
                    staged = []
                except _Invalid as exc:
                    raise _error("TransactWriteItems", "ValidationException", str(exc)) from None
            if any(r["Code"] != "None" for r in reasons):
                codes = ", ".join(r["Code"] for r in reasons)
                raise _error(
                    "TransactWriteItems",
                    "TransactionCanceledException",
                    f"Transaction cancelled, please refer cancellation reasons for specific "
                    f"reasons [{codes}]",
                    CancellationReasons=reasons,
                )
            for table, key, item in staged:
                if item is None:
                    table["items"].pop(key, None)
                else:
                    table["items"][key] = item
            if token is not None:
                self._tokens[token] = (digest, self._clock())
            return {}

    # --- the write machinery -----------------------------------------------------------------

    def _stage(
        self, action: str, table: dict[str, Any], request: dict[str, Any]
    ) -> tuple[tuple[str, ...], Item | None]:
        if action == "Put":
            item = request["Item"]
            key = self._key(table, {k: item[k] for k in table["keys"]})
            self._check("TransactWriteItems", table["items"].get(key), request, raise_as=None)
            return key, copy.deepcopy(item)
        if action == "Update":
            key = self._key(table, request["Key"])
            old = table["items"].get(key)
            self._check("TransactWriteItems", old, request, raise_as=None)
            return key, self._apply_update(old, request)
        if action == "Delete":
            key = self._key(table, request["Key"])
            self._check("TransactWriteItems", table["items"].get(key), request, raise_as=None)
            return key, None
        if action == "ConditionCheck":
            key = self._key(table, request["Key"])
            self._check("TransactWriteItems", table["items"].get(key), request, raise_as=None)
            return key, table["items"].get(key)
        raise NotImplementedError(f"MemoryDynamoDB does not support transaction action {action}")

    def _put(self, table: dict[str, Any], params: dict[str, Any], operation: str) -> dict[str, Any]:
        item = params["Item"]
        key = self._key(table, {k: item[k] for k in table["keys"]})
        self._check(operation, table["items"].get(key), params)
        table["items"][key] = copy.deepcopy(item)
        return {}

    def _update(self, table: dict[str, Any], params: dict[str, Any], operation: str):
        key = self._key(table, params["Key"])
        old = table["items"].get(key)
        self._check(operation, old, params)
        new = self._apply_update(old, params)
        table["items"][key] = new
        response: dict[str, Any] = {}
        returns = params.get("ReturnValues", "NONE")
        if returns == "ALL_NEW":
            response["Attributes"] = copy.deepcopy(new)
        elif returns == "ALL_OLD" and old is not None:
            response["Attributes"] = copy.deepcopy(old)
        elif returns != "NONE":
            raise NotImplementedError(f"MemoryDynamoDB does not support ReturnValues={returns}")
        return response

    def _apply_update(self, old: Item | None, params: dict[str, Any]) -> Item:
        ctx = _Context(
            params.get("ExpressionAttributeNames"), params.get("ExpressionAttributeValues")
        )
        new = copy.deepcopy(old) if old is not None else copy.deepcopy(params["Key"])
        for clause, path, value in _parse_update(params["UpdateExpression"]):
            name = ctx.name(path)
            if clause == "REMOVE":
                new.pop(name, None)
            else:
                # Every value is computed from the item as it was before this request.
                new[name] = copy.deepcopy(_evaluate(value, old, ctx))
        return new

    def _check(
        self,
        operation: str,
        old: Item | None,
        params: dict[str, Any],
        *,
        raise_as: str | None = "ConditionalCheckFailedException",
    ) -> None:
        condition = params.get("ConditionExpression")
        if condition is None:
            return
        ctx = _Context(
            params.get("ExpressionAttributeNames"), params.get("ExpressionAttributeValues")
        )
        if _evaluate(_parse_condition(condition), old, ctx):
            return
        if raise_as is None:
            raise _ConditionFailed(old)
        extra: dict[str, Any] = {}
        if old is not None and params.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD":
            extra["Item"] = copy.deepcopy(old)
        raise _error(operation, raise_as, "The conditional request failed", **extra)

    @staticmethod
    def _guard(operation: str, action: Callable[[], Any]) -> Any:
        try:
            return action()
        except _Invalid as exc:
            raise _error(operation, "ValidationException", str(exc)) from None


class _ConditionFailed(Exception):
    def __init__(self, old: Item | None) -> None:
        super().__init__("condition failed")
        self.old = old
