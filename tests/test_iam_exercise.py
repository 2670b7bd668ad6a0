"""The IAM exercise's evaluator and checker (course.iam_lab), without AWS: the deployed policy
is the right answer; each too-wide or too-narrow policy is caught, its first problem explained."""

from __future__ import annotations

import copy

import pytest

from jobcontroller.course.iam_lab import check_policy, decide, probes
from jobcontroller.ops.authz import Authorization
from jobcontroller.ops.deploy import Names
from jobcontroller.ops.iam import function_role_policy

NAMES = Names("ann")
ACCOUNT, REGION = "123456789012", "us-east-1"
TABLE = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{NAMES.table}"
KEY = f"JOB#{NAMES.job}"
# What the handler's recorded calls resolve to (ops.authz): GetItem, UpdateItem, and the
# fenced commit's UpdateItem and PutItem.
CALLS = [
    Authorization("dynamodb:GetItem", TABLE, KEY),
    Authorization("dynamodb:UpdateItem", TABLE, KEY),
    Authorization("dynamodb:PutItem", TABLE, KEY),
]
CONDITION = {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [KEY]}}
ACTIONS = ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:PutItem"]


def _policy(*statements):
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _allow(action, resource, condition=None):
    statement = {"Effect": "Allow", "Action": action, "Resource": resource}
    if condition is not None:
        statement["Condition"] = condition
    return statement


def _check(policy):
    return check_policy(policy, table_arn=TABLE, job=NAMES.job, calls=CALLS)


@pytest.fixture
def deployed():
    """The function role's policy exactly as the deploy module writes it."""
    return function_role_policy(NAMES, account=ACCOUNT, region=REGION)


def test_the_deployed_policy_is_the_right_answer(deployed):
    """The deployed policy allows every call the handler makes and refuses every probe."""
    check = _check(deployed)
    assert check.ok, check.text()
    assert check.text().startswith("All correct")


def test_the_deployed_policy_refuses_each_probe_and_says_why(deployed):
    """Another job's key is refused by the condition; Scan and other tables by no statement."""
    reasons = {
        (p.authorization.action, p.authorization.leading_key): decide(deployed, p.authorization)
        for p in probes(TABLE, NAMES.job)
    }
    assert not any(d.allowed for d in reasons.values())
    assert "LeadingKeys condition leaves out JOB#other_job" in (
        reasons[("dynamodb:GetItem", "JOB#other_job")].because
    )
    assert reasons[("dynamodb:Scan", None)].because == "no statement allows it (implicit deny)"


def test_the_wildcard_starter_allows_everything_and_names_the_key_first():
    """dynamodb:* on *: every probe is allowed; the first problem is the missing key limit."""
    check = _check(_policy(_allow("dynamodb:*", "*")))
    assert not check.ok
    assert len(check.problems) == len(probes(TABLE, NAMES.job))
    assert "JOB#other_job" in check.problems[0]
    assert "LeadingKeys" in check.explanation
    assert check.text().startswith("not yet: 6 problem(s)")


def test_the_right_actions_without_the_condition_allow_other_jobs_keys():
    """Named actions on the table but no condition: other jobs' items, nothing else."""
    check = _check(_policy(_allow(ACTIONS, TABLE)))
    assert [p.split(":")[1].split(" ")[0] for p in check.problems] == ["GetItem", "UpdateItem"]
    assert "nothing limits the partition key" in check.explanation


def test_a_wildcard_action_with_the_condition_still_allows_scan_and_delete_table():
    """ForAllValues over a call with no partition key is true: Scan and DeleteTable get in."""
    check = _check(_policy(_allow("dynamodb:*", TABLE, CONDITION)))
    allowed = " ".join(check.problems)
    assert "dynamodb:Scan" in allowed and "dynamodb:DeleteTable" in allowed
    assert "dynamodb:DeleteItem" in allowed  # on its own key: the condition holds
    assert "JOB#other_job" not in allowed
    assert "ForAllValues over a call that names no partition key" in check.explanation


def test_a_wildcard_resource_allows_other_tables():
    """The right actions and condition on Resource '*': another table is reachable."""
    check = _check(_policy(_allow(ACTIONS, "*", CONDITION)))
    assert len(check.problems) == 1 and "table/job_control" in check.problems[0]
    assert "not '*' or 'table/*'" in check.explanation


def test_a_table_wildcard_in_the_arn_is_caught_too():
    """table/* is as wide as '*' for DynamoDB tables in the account."""
    resource = TABLE.rsplit("/", 1)[0] + "/*"
    check = _check(_policy(_allow(ACTIONS, resource, CONDITION)))
    assert not check.ok and "table/job_control" in check.problems[0]


def test_too_narrow_a_policy_refuses_the_handlers_own_calls():
    """GetItem only: the handler's UpdateItem and PutItem are refused, explained first."""
    check = _check(_policy(_allow("dynamodb:GetItem", TABLE, CONDITION)))
    assert check.problems == (
        f"refuses the handler's dynamodb:UpdateItem on {KEY}",
        f"refuses the handler's dynamodb:PutItem on {KEY}",
    )
    assert "AccessDeniedException" in check.explanation


def test_an_explicit_deny_wins_over_a_wide_allow():
    """A Deny on the risky calls next to dynamodb:* on the table removes exactly those."""
    deny = {
        "Effect": "Deny",
        "Action": ["dynamodb:Scan", "dynamodb:DeleteItem", "dynamodb:DeleteTable"],
        "Resource": "*",
    }
    policy = _policy(_allow("dynamodb:*", TABLE, CONDITION), deny)
    assert _check(policy).ok
    scan = Authorization("dynamodb:Scan", TABLE)
    assert decide(policy, scan).because == "denied by statement 1"


def test_actions_match_case_insensitively_and_resources_do_not():
    """IAM compares actions without case, ARNs with case."""
    policy = _policy(_allow("DynamoDB:getitem", TABLE))
    assert decide(policy, CALLS[0]).allowed
    upper = Authorization("dynamodb:GetItem", TABLE.upper(), KEY)
    assert not decide(policy, upper).allowed


@pytest.mark.parametrize(
    ("policy", "says"),
    [
        (None, "give a policy document"),
        ({"Statement": [{"Effect": "Allow", "Action": "dynamodb:GetItem"}]}, "Resource"),
        ({"Statement": [{"Effect": "Maybe", "Action": "*", "Resource": "*"}]}, "Effect"),
    ],
)
def test_an_unreadable_policy_is_explained_not_raised(policy, says):
    """A malformed document is reported as the problem, with what to write instead."""
    check = _check(policy)
    assert not check.ok and says in check.problems[0]


def test_an_unknown_condition_operator_is_reported(deployed):
    """A condition this checker cannot evaluate is named, not guessed at."""
    policy = copy.deepcopy(deployed)
    policy["Statement"][0]["Condition"] = {"StringEquals": {"dynamodb:LeadingKeys": [KEY]}}
    check = _check(policy)
    assert not check.ok and "StringEquals" in check.problems[0]
