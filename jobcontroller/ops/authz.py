"""Which IAM authorisations a list of recorded AWS calls needed.

The local runner can record every AWS call the handler makes (`record_calls=True`); this
module resolves those calls to the IAM action, resource and partition key each needed, so a
test can hold the deployed role's policy to exactly what the code used.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from jobcontroller.ops.invocation import AwsCall

__all__ = ["Authorization", "authorizations"]


@dataclass(frozen=True)
class Authorization:
    """One IAM authorisation an AWS call needs: the action, the resource, the partition key."""

    action: str  # e.g. "dynamodb:UpdateItem"
    resource: str | None  # the resource's ARN, where the call names one
    leading_key: str | None = None  # the item's partition key (for dynamodb:LeadingKeys)


# TransactWriteItems has no IAM action of its own: each item is authorised as its own
# write. https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html
_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}


def _leading_key(params: Mapping[str, Any]) -> str | None:
    key = params.get("Key") or params.get("Item") or {}
    value = key.get("PK", {})
    return value.get("S") if isinstance(value, dict) else None


def authorizations(
    calls: Iterable[AwsCall], *, account: str, region: str, partition: str = "aws"
) -> list[Authorization]:
    """The IAM authorisations `calls` needed, in order (DynamoDB calls resolved to items)."""
    needed = []
    for call in calls:
        if call.service == "dynamodb" and call.operation in (
            "TransactWriteItems",
            "TransactGetItems",
        ):
            items = [
                (kind, body)
                for entry in call.params["TransactItems"]
                for kind, body in entry.items()
            ]
        elif call.service == "dynamodb" and "TableName" in call.params:
            items = [(None, call.params)]
        else:
            needed.append(Authorization(f"{call.service}:{call.operation}", None))
            continue
        for kind, body in items:
            operation = call.operation if kind is None else _TRANSACT_ACTIONS[kind]
            table = f"arn:{partition}:dynamodb:{region}:{account}:table/{body['TableName']}"
            needed.append(Authorization(f"dynamodb:{operation}", table, _leading_key(body)))
    return needed
