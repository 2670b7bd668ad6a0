"""The doctor: a stack deployed right passes every check; each setting broken alone is named."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from jobcontroller import ControlStore, ManualClock, Status
from jobcontroller.model import parse_ts
from jobcontroller.ops import cli
from jobcontroller.ops import deploy as d
from jobcontroller.ops.doctor import CHECKS, doctor, report

NOW = "2026-01-05T09:00:00Z"


@pytest.fixture
def deployed(target):
    """The course's stack for 'ann' (a workload of 0 s), deployed right."""
    names = d.Names("ann")
    d.deploy(
        target,
        names,
        function=d.FunctionSettings(workload_seconds=0),
        clock=ManualClock("2026-01-05T08:00:00Z"),
    )
    return target, names


def _env(target, names, **changes):
    lam = target.client("lambda")
    env = lam.get_function_configuration(FunctionName=names.function)["Environment"]["Variables"]
    lam.update_function_configuration(
        FunctionName=names.function, Environment={"Variables": {**env, **changes}}
    )


def _schedule(target, names, *, settings=None, **changes):
    request = d.schedule_request(
        names,
        settings or d.ScheduleSettings(),
        function_arn=target.arn("lambda", f"function:{names.function}"),
        role_arn=target.client("iam").get_role(RoleName=names.scheduler_role)["Role"]["Arn"],
        dead_letter_arn=target.arn("sqs", names.schedule_dlq),
    )
    if "Input" in changes:
        request["Target"]["Input"] = changes.pop("Input")
    target.client("scheduler").update_schedule(**{**request, **changes})


def _store(target, names):
    return ControlStore(names.table, client=target.client("dynamodb"))


def _short_timeout(target, names):
    target.client("lambda").update_function_configuration(FunctionName=names.function, Timeout=5)


def _async_retries(target, names):
    # Delete first: moto's put appends a second configuration and get returns the first,
    # where AWS's put replaces it.
    target.client("lambda").delete_function_event_invoke_config(FunctionName=names.function)
    target.client("lambda").put_function_event_invoke_config(
        FunctionName=names.function,
        MaximumRetryAttempts=2,
        DestinationConfig={"OnFailure": {"Destination": target.arn("sqs", names.failure_queue)}},
    )


def _schedule_retries(target, names):
    _schedule(target, names, settings=d.ScheduleSettings(max_retries=3))


def _flexible_window(target, names):
    _schedule(target, names, FlexibleTimeWindow={"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15})


def _no_placeholder(target, names):
    _schedule(target, names, Input=json.dumps({"job": names.job, "source": "scheduler"}))


def _cooldown_too_long(target, names):
    _env(target, names, JOB_COOLDOWN_SLACK_SECONDS="3600")


def _bad_history_days(target, names):
    _env(target, names, JOB_RUN_HISTORY_DAYS="a week")


def _wildcard_policy(target, names):
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"}],
    }
    target.client("iam").put_role_policy(
        RoleName=names.function_role, PolicyName="jobcontroller", PolicyDocument=json.dumps(policy)
    )


def _no_retention(target, names):
    target.client("logs").delete_retention_policy(logGroupName=names.log_group)


def _no_control_item(target, names):
    _store(target, names).delete_job(names.job)


def _paused(target, names):
    _store(target, names).set_paused(names.job, True)


def _stuck_running(target, names):
    store = _store(target, names)
    state = store.read(names.job)
    store.write_unconditionally(
        replace(
            state,
            status=Status.RUNNING,
            run_id="run-crashed",
            lease_expires_at=parse_ts("2026-01-05T08:01:00Z"),
        )
    )


BREAKS = {
    "timeout below the lease margin": (_short_timeout, {"function timeout"}),
    "Lambda retries twice": (_async_retries, {"async retries"}),
    "Scheduler retries three times": (_schedule_retries, {"schedule retries"}),
    "a 15-minute flexible window": (_flexible_window, {"flexible time window"}),
    "input without the slot": (_no_placeholder, {"schedule input"}),
    "cooldown as long as the interval": (_cooldown_too_long, {"cooldown slack"}),
    "run history not a number": (_bad_history_days, {"job settings"}),
    "role grants dynamodb:* on *": (_wildcard_policy, {"function role"}),
    "logs kept forever": (_no_retention, {"log retention"}),
    # Without the item there is nothing to read for the two checks that look inside it.
    "control item deleted": (_no_control_item, {"control item", "not paused", "lease"}),
    "job paused": (_paused, {"not paused"}),
    "stuck RUNNING past its lease": (_stuck_running, {"lease"}),
}


def test_a_stack_deployed_right_passes_every_check(deployed):
    """Every check of a freshly deployed stack is ok, one line each, in the documented order."""
    target, names = deployed
    checks = doctor(target, names, clock=ManualClock(NOW))
    assert [c.name for c in checks] == list(CHECKS)
    assert [c.name for c in checks if not c.ok] == []
    assert report(checks).splitlines()[-1] == f"all {len(CHECKS)} ok"


def test_every_check_is_broken_by_some_test():
    """The broken stacks below cover every check the doctor makes."""
    named = set().union(*(wrong for _, wrong in BREAKS.values()))
    assert named == set(CHECKS)


@pytest.mark.parametrize("break_it, wrong", BREAKS.values(), ids=list(BREAKS))
def test_a_stack_broken_one_way_is_named_and_the_rest_is_ok(deployed, break_it, wrong):
    """One broken setting makes exactly its checks WRONG, each with a fix; the others stay ok."""
    target, names = deployed
    break_it(target, names)
    checks = doctor(target, names, clock=ManualClock(NOW))
    assert {c.name for c in checks if not c.ok} == wrong
    for check in checks:
        line = check.line()
        assert line.startswith("ok" if check.ok else "WRONG"), line
    fixes = [c.detail for c in checks if not c.ok]
    assert all(("jobcontroller " in fix) or ("see '" in fix) for fix in fixes), fixes


def test_a_run_within_its_lease_is_ok(deployed):
    """A RUNNING item whose lease has not expired is a run in progress, not a stuck one."""
    target, names = deployed
    _stuck_running(target, names)
    checks = doctor(target, names, clock=ManualClock("2026-01-05T08:00:30Z"))
    lease = next(c for c in checks if c.name == "lease")
    assert lease.ok, lease.detail
    assert "run-crashed" in lease.detail


def test_a_missing_stack_is_wrong_everywhere_with_the_deploy_command(target):
    """Before any deploy every check is WRONG and the function's checks say to deploy."""
    names = d.Names("nobody")
    checks = doctor(target, names, clock=ManualClock(NOW))
    assert all(not c.ok for c in checks)
    assert "jobcontroller deploy --prefix nobody" in checks[0].detail


def test_the_cli_exits_0_when_all_ok_and_1_when_something_is_wrong(deployed, capsys):
    """`jobcontroller doctor` prints one line per check and exits 1 once a check is WRONG."""
    target, names = deployed
    assert cli.main(["doctor", "--prefix", names.prefix]) == 0
    out = capsys.readouterr().out
    assert sum(line.startswith("ok") for line in out.splitlines()) == len(CHECKS)
    _paused(target, names)
    assert cli.main(["doctor", "--prefix", names.prefix]) == 1
    out = capsys.readouterr().out
    assert "WRONG  not paused: the job is paused: jobcontroller resume --prefix ann" in out
