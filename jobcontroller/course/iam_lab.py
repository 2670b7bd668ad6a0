"""Notebook 06's least-privilege check, failure first: which calls the role's policy refuses.

moto stores IAM policies but never enforces them, so on the embedded backend no call is ever
refused. This module evaluates calls against a policy document instead, with the part of IAM's
evaluation logic the course's policies use: `Allow` and `Deny` statements, `Action` and
`Resource` with `*` and `?` wildcards, and the `dynamodb:LeadingKeys` condition under
`ForAllValues:StringEquals` / `ForAllValues:StringLike`. An explicit Deny wins; no Allow
means refused. https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html

The calls are the handler's own, recorded by the local runner (`record_calls`) and resolved to
IAM authorisations by `ops.authz`; the probes are calls the handler must never be allowed to
make. `check_policy` is the exercise's checker: it names what a policy allows that it should
not (or what the handler needs that it refuses), the first problem explained.
Course tooling only: the Lambda never imports this module.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jobcontroller.course.display import Table
from jobcontroller.course.lab import Lab
from jobcontroller.course.lab_day import COURSE_DAY
from jobcontroller.ops.authz import Authorization, authorizations
from jobcontroller.ops.invocation import AwsCall

__all__ = [
    "Decision",
    "PolicyCheck",
    "Probe",
    "check_lab_policy",
    "check_policy",
    "decide",
    "function_policy",
    "needed",
    "probes",
    "record_calls",
    "show_calls",
    "show_decisions",
    "show_probes",
]

# The condition operators this evaluator knows; anything else is refused with a clear error
# rather than guessed at.
_OPERATORS = ("ForAllValues:StringEquals", "ForAllValues:StringLike")


@dataclass(frozen=True)
class Decision:
    """Whether a policy allows one authorisation, and which statement (or reason) decided."""

    authorization: Authorization
    allowed: bool
    because: str


@dataclass(frozen=True)
class Probe:
    """A call the function must never be allowed to make, and why."""

    authorization: Authorization
    harm: str
    kind: str  # which rule it breaks: "key", "action" or "table" (see _EXPLAIN)


def _as_list(value: Any) -> list[Any]:
    return [value] if isinstance(value, str) else list(value or [])


def _matches(pattern: str, value: str, *, case: bool) -> bool:
    # IAM wildcards: `*` any run of characters, `?` one; no other special characters.
    regex = "".join(
        ".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in str(pattern)
    )
    return re.fullmatch(regex, value, flags=0 if case else re.IGNORECASE) is not None


def _condition_holds(condition: Mapping[str, Any], authorization: Authorization) -> bool:
    for operator, keys in condition.items():
        if operator not in _OPERATORS:
            raise ValueError(
                f"condition operator {operator!r}: this checker knows only "
                f"{', '.join(_OPERATORS)} (on dynamodb:LeadingKeys)"
            )
        for key, allowed in keys.items():
            if key.lower() != "dynamodb:leadingkeys":
                raise ValueError(f"condition key {key!r}: only dynamodb:LeadingKeys is known")
            # ForAllValues over a request that carries no partition key (Scan, DeleteTable) is
            # TRUE: every one of its zero values matches. IAM's documented trap:
            # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html
            if authorization.leading_key is None:
                continue
            like = operator.endswith("StringLike")
            if not any(
                _matches(p, authorization.leading_key, case=True)
                if like
                else p == authorization.leading_key
                for p in _as_list(allowed)
            ):
                return False
    return True


def _statement_applies(statement: Mapping[str, Any], authorization: Authorization) -> bool | None:
    """True if it applies; None if action and resource match but the condition does not."""
    if not any(
        _matches(a, authorization.action, case=False) for a in _as_list(statement.get("Action"))
    ):
        return False
    resource = authorization.resource or "*"
    if not any(_matches(r, resource, case=True) for r in _as_list(statement.get("Resource"))):
        return False
    return True if _condition_holds(statement.get("Condition") or {}, authorization) else None


def _statements(policy: Any) -> list[Mapping[str, Any]]:
    if not isinstance(policy, Mapping) or "Statement" not in policy:
        raise ValueError(
            'give a policy document: {"Version": "2012-10-17", "Statement": [{...}, ...]}'
        )
    statements = policy["Statement"]
    statements = [statements] if isinstance(statements, Mapping) else list(statements)
    for index, statement in enumerate(statements):
        if not isinstance(statement, Mapping) or statement.get("Effect") not in ("Allow", "Deny"):
            raise ValueError(
                f"statement {index}: give a dict with Effect 'Allow' or 'Deny', Action, Resource"
            )
        if "Action" not in statement or "Resource" not in statement:
            raise ValueError(f"statement {index}: it needs both Action and Resource")
    return statements


def decide(policy: Any, authorization: Authorization) -> Decision:
    """Whether `policy` allows `authorization`: an applicable Deny wins, then any Allow."""
    allowed_by = None
    condition_failed = None
    for index, statement in enumerate(_statements(policy)):
        applies = _statement_applies(statement, authorization)
        name = statement.get("Sid") or f"statement {index}"
        if applies is None and statement["Effect"] == "Allow":
            condition_failed = condition_failed or name
        if not applies:
            continue
        if statement["Effect"] == "Deny":
            return Decision(authorization, False, f"denied by {name}")
        allowed_by = allowed_by or name
    if allowed_by:
        return Decision(authorization, True, f"allowed by {allowed_by}")
    if condition_failed:
        return Decision(
            authorization,
            False,
            f"{condition_failed}'s dynamodb:LeadingKeys condition leaves out "
            f"{authorization.leading_key}",
        )
    return Decision(authorization, False, "no statement allows it (implicit deny)")


def function_policy(lab: Lab) -> dict[str, Any]:
    """The function role's only inline policy, read back from IAM (GetRolePolicy)."""
    iam = lab.target.client("iam")
    role = lab.names.function_role
    (name,) = iam.list_role_policies(RoleName=role)["PolicyNames"]
    document: dict[str, Any] = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
    return document


def record_calls(lab: Lab) -> list[AwsCall]:
    """The AWS calls one run of the handler makes: on the embedded backend, recorded while the
    10:00 slot is delivered through the lab's runner, which records them. On real AWS the
    handler runs in Lambda, out of reach: the same calls are written out instead (a GetItem,
    the lock's UpdateItem, and the commit's TransactWriteItems: an UpdateItem and a PutItem)."""
    if not lab.embedded:
        key = {"PK": {"S": f"JOB#{lab.names.job}"}}
        table = lab.names.table
        return [
            AwsCall("dynamodb", "GetItem", {"TableName": table, "Key": key}),
            AwsCall("dynamodb", "UpdateItem", {"TableName": table, "Key": key}),
            AwsCall(
                "dynamodb",
                "TransactWriteItems",
                {
                    "TransactItems": [
                        {"Update": {"TableName": table, "Key": key}},
                        {"Put": {"TableName": table, "Item": key}},
                    ]
                },
            ),
        ]
    # The lab's own runner records every call, and its warm execution environment serves
    # this delivery without starting another process.
    (delivery,) = lab.driver.fire(COURSE_DAY.replace(hour=10))
    assert delivery.invocation is not None
    return list(delivery.invocation.calls)


def needed(lab: Lab, calls: Iterable[AwsCall]) -> list[Authorization]:
    """The IAM authorisations the recorded calls needed (ops.authz)."""
    return authorizations(calls, account=lab.target.account, region=lab.target.region)


def probes(table_arn: str, job: str) -> list[Probe]:
    """Calls the function must be refused, the most telling first."""
    other_table = table_arn.rsplit("/", 1)[0] + "/job_control"
    own, other = f"JOB#{job}", "JOB#other_job"
    return [
        Probe(
            Authorization("dynamodb:GetItem", table_arn, other),
            "reads another job's control item in the same table",
            "key",
        ),
        Probe(
            Authorization("dynamodb:UpdateItem", table_arn, other),
            "writes another job's item: it could take or break that job's lock",
            "key",
        ),
        Probe(
            Authorization("dynamodb:Scan", table_arn),
            "reads every job's items at once (a Scan names no partition key)",
            "action",
        ),
        Probe(
            Authorization("dynamodb:DeleteItem", table_arn, own),
            "deletes its own control item, which the handler never does",
            "action",
        ),
        Probe(
            Authorization("dynamodb:DeleteTable", table_arn),
            "drops the table with every job's state",
            "action",
        ),
        Probe(
            Authorization("dynamodb:GetItem", other_table, own),
            "reads a table that is not its own",
            "table",
        ),
    ]


def show_decisions(policy: Any, rows: Sequence[Authorization], *, title: str) -> Table:
    """Each authorisation, the policy's decision and why."""
    decisions = [decide(policy, a) for a in rows]
    return Table(
        ("action", "resource", "partition key", "decision", "why"),
        tuple(
            (
                d.authorization.action,
                (d.authorization.resource or "-").rsplit(":", 1)[-1],
                d.authorization.leading_key or "(none)",
                "ALLOWED" if d.allowed else "refused",
                d.because,
            )
            for d in decisions
        ),
        title=title,
    )


def show_calls(policy: Any, lab: Lab, calls: Iterable[AwsCall]) -> Table:
    """The handler's recorded calls, as IAM authorisations, against `policy`."""
    return show_decisions(
        policy, needed(lab, calls), title="the handler's calls, against the deployed policy"
    )


def show_probes(policy: Any, lab: Lab) -> Table:
    """The probes (calls the function must never make) against `policy`."""
    table_arn = lab.target.arn("dynamodb", f"table/{lab.names.table}")
    rows = [p.authorization for p in probes(table_arn, lab.names.job)]
    return show_decisions(policy, rows, title="calls the function must never make")


@dataclass(frozen=True)
class PolicyCheck:
    """The exercise's verdict on a learner's policy: what it gets wrong, first one explained."""

    problems: tuple[str, ...]
    explanation: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems

    def text(self) -> str:
        if self.ok:
            return (
                "All correct: the policy allows exactly the handler's calls, on this table, "
                "for this job's key, and refuses every probe."
            )
        lines = [f"not yet: {len(self.problems)} problem(s)"]
        lines += [f"  - {p}" for p in self.problems]
        lines.append(f"first problem: {self.explanation}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.text()


_EXPLAIN = {
    "needed": (
        "the handler's own call would be refused, so every run would fail with "
        "AccessDeniedException. Grant exactly the actions it uses: dynamodb:GetItem, "
        "dynamodb:UpdateItem, dynamodb:PutItem."
    ),
    "key": (
        'nothing limits the partition key. Add "Condition": {"ForAllValues:StringEquals": '
        '{"dynamodb:LeadingKeys": ["JOB#<job>"]}}, so only this job\'s items can be touched.'
    ),
    "action": (
        "a wildcard or an extra action grants calls the handler never makes. Note that "
        "the LeadingKeys condition does not stop them: ForAllValues over a call that names no "
        "partition key (Scan, DeleteTable) is true. List the three actions by name."
    ),
    "table": (
        "the Resource is not the table's ARN alone. Name this table's ARN "
        "(arn:aws:dynamodb:<region>:<account>:table/<name>), not '*' or 'table/*'."
    ),
}


def check_policy(
    policy: Any, *, table_arn: str, job: str, calls: Sequence[Authorization]
) -> PolicyCheck:
    """Check `policy` against the handler's needed authorisations (`calls`, all must be
    allowed) and `probes` (all must be refused); name every problem, explain the first."""
    try:
        _statements(policy)
        needed_decisions = [decide(policy, a) for a in calls]
        probe_decisions = [(p, decide(policy, p.authorization)) for p in probes(table_arn, job)]
    except ValueError as exc:
        return PolicyCheck((str(exc),), "the document could not be read: " + str(exc))
    problems: list[str] = []
    first = ""
    for decision in needed_decisions:
        auth = decision.authorization
        if not decision.allowed:
            problems.append(f"refuses the handler's {auth.action} on {auth.leading_key}")
            first = first or _EXPLAIN["needed"]
    for probe, decision in probe_decisions:
        if decision.allowed:
            auth = probe.authorization
            where = auth.resource.rsplit(":", 1)[-1] if auth.resource else "*"
            key = f" on {auth.leading_key}" if auth.leading_key else ""
            problems.append(f"allows {auth.action} on {where}{key}: {probe.harm}")
            first = first or _EXPLAIN[probe.kind]
    return PolicyCheck(tuple(dict.fromkeys(problems)), first)


def check_lab_policy(policy: Any, lab: Lab, calls: Iterable[AwsCall]) -> PolicyCheck:
    """`check_policy` for this lab's table, job and the handler's recorded calls."""
    table_arn = lab.target.arn("dynamodb", f"table/{lab.names.table}")
    return check_policy(policy, table_arn=table_arn, job=lab.names.job, calls=needed(lab, calls))
