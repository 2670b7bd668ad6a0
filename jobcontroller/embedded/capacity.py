"""What DynamoDB bills for a request, computed from the items it touched, and what that costs.

moto's `ConsumedCapacity` does not follow DynamoDB's rules (and the in-memory stand-in reports
none), so `benchmarks/` and the course compute capacity units here, from the real items each
request read or wrote, by the rules DynamoDB publishes:

- item size = the UTF-8 bytes of every attribute name + the size of its value
  (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html);
- a read costs 1 unit per 4 KB of the item (rounded up) when strongly consistent, half that
  when eventually consistent; a write costs 1 unit per 1 KB; PutItem and UpdateItem are billed
  on the larger of the item before and after; a transaction does every item's work twice
  (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html,
  https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-capacity-handling);
- a conditional write whose condition fails still consumes write units: by the size of the
  existing item, or 1 when there is none
  (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/WorkingWithItems.html#WorkingWithItems.ConditionalUpdate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeSerializer

__all__ = [
    "PRICES",
    "Prices",
    "attribute_size",
    "item_size",
    "plain_item_size",
    "read_units",
    "write_units",
]

READ_BLOCK = 4096  # bytes per read unit
WRITE_BLOCK = 1024  # bytes per write unit


def _number_size(text: str) -> int:
    """1 byte per two significant digits, plus 1 (leading and trailing zeros do not count)."""
    digits = text.lstrip("+-").lower().split("e")[0].replace(".", "")
    significant = digits.strip("0") or "0"
    return math.ceil(len(significant) / 2) + 1


def attribute_size(value: dict[str, Any]) -> int:
    """The size of one typed value (`{"S": ...}`, `{"N": ...}`, ...), without its name."""
    ((kind, raw),) = value.items()
    if kind == "S":
        return len(raw.encode())
    if kind == "N":
        return _number_size(str(raw))
    if kind == "B":
        return len(raw)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in raw)
    if kind == "NS":
        return sum(_number_size(str(n)) for n in raw)
    if kind == "BS":
        return sum(len(b) for b in raw)
    if kind == "L":
        # 3 bytes for the list, 1 per element, plus the elements.
        return 3 + sum(1 + attribute_size(v) for v in raw)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + attribute_size(v) for k, v in raw.items())
    raise ValueError(f"unknown DynamoDB type {kind!r}: expected S, N, B, BOOL, NULL, L, M or a set")


def item_size(item: dict[str, Any] | None) -> int:
    """An item's size in bytes as DynamoDB counts it for capacity (0 for no item)."""
    if not item:
        return 0
    return sum(len(name.encode()) + attribute_size(value) for name, value in item.items())


def plain_item_size(item: dict[str, Any] | None) -> int:
    """The size of an item given as plain Python values (as `JobState.to_item()` returns it)."""
    if not item:
        return 0
    serializer = TypeSerializer()
    return item_size({name: serializer.serialize(value) for name, value in item.items()})


def read_units(size: int, *, consistent: bool) -> float:
    """Read units for reading `size` bytes (at least one block, even for no item)."""
    units = max(1, math.ceil(size / READ_BLOCK))
    return float(units) if consistent else units / 2


def write_units(before: int, after: int, *, applied: bool, transactional: bool = False) -> int:
    """Write units for one item written: the larger of its size before and after.

    A refused conditional write is billed on the item as it stood (at least 1 unit).
    """
    size = max(before, after) if applied else before
    units = max(1, math.ceil(size / WRITE_BLOCK))
    return 2 * units if transactional else units


@dataclass(frozen=True)
class Prices:
    """On-demand request prices in US dollars per million request units."""

    region: str
    write_per_million: Decimal
    read_per_million: Decimal
    source: str

    def dollars(self, *, reads: float, writes: float) -> Decimal:
        """The price of `reads` read units and `writes` write units."""
        million = Decimal(1_000_000)
        return (
            Decimal(str(reads)) * self.read_per_million
            + Decimal(str(writes)) * self.write_per_million
        ) / million


# us-east-1, Standard table class, on-demand. These are the prices AWS has published on
# https://aws.amazon.com/dynamodb/pricing/on-demand/ since its on-demand price cut of
# 1 November 2024 ($0.625 per million write request units, $0.125 per million read request
# units); the AWS News Blog post on on-demand mode restates them (updated 31 January 2025).
# This machine has no network, so they were not re-read when the benchmark was written
# (2026-11-29): check the page before quoting a figure.
PRICES = Prices(
    region="us-east-1",
    write_per_million=Decimal("0.625"),
    read_per_million=Decimal("0.125"),
    source=(
        "aws.amazon.com/dynamodb/pricing/on-demand, us-east-1 Standard, "
        "as published since 2024-11-01 (not re-read: no network)"
    ),
)
