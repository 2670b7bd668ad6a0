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
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from jobcontroller.embedded.expressions import (
    Context,
    Invalid,
    Item,
    comparable,
    evaluate,
    parse_condition,
    parse_update,
)

__all__ = ["MemoryDynamoDB"]

_TOKEN_WINDOW_SECONDS = 600.0


def _error(operation: str, code: str, message: str, **extra: Any) -> ClientError:
    response: dict[str, Any] = {"Error": {"Code": code, "Message": message}}
    response.update(extra)
    return ClientError(response, operation)


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
    Size: one class because it stands in for one boto3 client; each method is one DynamoDB
    operation, and the expression language lives in `jobcontroller.embedded.expressions`.
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
            raise Invalid("The provided key element does not match the schema")
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
            ctx = Context(
                params.get("ExpressionAttributeNames"), params.get("ExpressionAttributeValues")
            )
            tree = parse_condition(params["KeyConditionExpression"])
            try:
                items = [i for i in table["items"].values() if evaluate(tree, i, ctx)]
            except Invalid as exc:
                raise _error("Query", "ValidationException", str(exc)) from None
            sort = table["keys"][1] if len(table["keys"]) > 1 else None
            if sort is not None:
                items.sort(key=lambda i: comparable(i[sort]) or ("", ""))
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
                except Invalid as exc:
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
        ctx = Context(
            params.get("ExpressionAttributeNames"), params.get("ExpressionAttributeValues")
        )
        new = copy.deepcopy(old) if old is not None else copy.deepcopy(params["Key"])
        for clause, path, value in parse_update(params["UpdateExpression"]):
            name = ctx.name(path)
            if clause == "REMOVE":
                new.pop(name, None)
            else:
                # Every value is computed from the item as it was before this request.
                new[name] = copy.deepcopy(evaluate(value, old, ctx))
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
        ctx = Context(
            params.get("ExpressionAttributeNames"), params.get("ExpressionAttributeValues")
        )
        if evaluate(parse_condition(condition), old, ctx):
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
        except Invalid as exc:
            raise _error(operation, "ValidationException", str(exc)) from None


class _ConditionFailed(Exception):
    def __init__(self, old: Item | None) -> None:
        super().__init__("condition failed")
        self.old = old
