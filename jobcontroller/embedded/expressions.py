"""DynamoDB's expression language, the subset the store uses: parse once, evaluate on items.

Condition expressions (comparisons, `AND`/`OR`/`NOT`, `BETWEEN`, `attribute_exists`,
`attribute_not_exists`, `begins_with`) and update expressions (`SET` with `+`, `-` and
`if_not_exists`; `REMOVE`), with DynamoDB's rules: a comparison between different types, or
with a missing attribute, is false rather than an error
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.OperatorsAndFunctions.html).
Anything else raises `NotImplementedError` naming it.
"""

from __future__ import annotations

import functools
import json
import re
from decimal import Decimal
from typing import Any

__all__ = [
    "Context",
    "Invalid",
    "Item",
    "comparable",
    "evaluate",
    "parse_condition",
    "parse_update",
]

Item = dict[str, dict[str, Any]]  # attribute name -> typed value, e.g. {"S": "IDLE"}


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
def parse_condition(text: str) -> tuple[Any, ...]:
    parser = _Parser(text)
    tree = parser.condition()
    parser.done()
    return tree


@functools.lru_cache(maxsize=512)
def parse_update(text: str) -> tuple[tuple[str, str, Any], ...]:
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


class Context:
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


class Invalid(Exception):
    """A ValidationException to raise with the operation's name once it is known."""


def _validation(message: str) -> Invalid:
    return Invalid(message)


def comparable(value: dict[str, Any] | None) -> tuple[str, Any] | None:
    if value is None:
        return None
    ((kind, raw),) = value.items()
    if kind == "N":
        return kind, Decimal(raw)
    if kind in ("S", "B", "BOOL", "NULL"):
        return kind, raw
    return kind, json.dumps(raw, sort_keys=True)


def evaluate(tree: tuple[Any, ...], item: Item | None, ctx: Context) -> Any:
    kind = tree[0]
    if kind == "and":
        return evaluate(tree[1], item, ctx) and evaluate(tree[2], item, ctx)
    if kind == "or":
        return evaluate(tree[1], item, ctx) or evaluate(tree[2], item, ctx)
    if kind == "not":
        return not evaluate(tree[1], item, ctx)
    if kind == "path":
        return (item or {}).get(ctx.name(tree[1]))
    if kind == "value":
        return ctx.value(tree[1])
    if kind == "cmp":
        return _compare(tree[1], evaluate(tree[2], item, ctx), evaluate(tree[3], item, ctx))
    if kind == "between":
        value = evaluate(tree[1], item, ctx)
        return _compare(">=", value, evaluate(tree[2], item, ctx)) and _compare(
            "<=", value, evaluate(tree[3], item, ctx)
        )
    if kind == "call":
        return _call(tree[1], tree[2], item, ctx)
    if kind == "arith":
        left, right = evaluate(tree[2], item, ctx), evaluate(tree[3], item, ctx)
        if left is None or right is None or "N" not in left or "N" not in right:
            raise _validation("an operand in the update expression has an incorrect data type")
        total = Decimal(left["N"]) + (1 if tree[1] == "+" else -1) * Decimal(right["N"])
        return {"N": str(total)}
    raise NotImplementedError(f"MemoryDynamoDB cannot evaluate {kind!r}")


def _compare(op: str, left: dict[str, Any] | None, right: dict[str, Any] | None) -> bool:
    a, b = comparable(left), comparable(right)
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


def _call(name: str, args: tuple[Any, ...], item: Item | None, ctx: Context) -> Any:
    if name in ("attribute_exists", "attribute_not_exists"):
        present = ctx.name(args[0][1]) in (item or {})
        return present if name == "attribute_exists" else not present
    if name == "begins_with":
        value, prefix = (evaluate(a, item, ctx) for a in args)
        return bool(
            value
            and prefix
            and "S" in value
            and "S" in prefix
            and value["S"].startswith(prefix["S"])
        )
    if name == "if_not_exists":
        current = evaluate(args[0], item, ctx)
        return current if current is not None else evaluate(args[1], item, ctx)
    raise NotImplementedError(f"MemoryDynamoDB does not support the function {name}()")
