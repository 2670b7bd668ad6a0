"""AWS's eventual consistency on the embedded backend (embedded.realism), and the deploy,
teardown and leftovers proof that wait it out (ops.retry), on virtual time (conftest)."""

from __future__ import annotations

import dataclasses
import json

import pytest
from botocore.exceptions import ClientError

from jobcontroller.embedded.realism import Delays, disabled
from jobcontroller.errors import ConfigError
from jobcontroller.ops import cli, retry
from jobcontroller.ops import deploy as d
from jobcontroller.ops.remote import RemoteLambdaRunner


def _role(target, name="ann-probe", service="lambda.amazonaws.com"):
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
        ],
    }
    iam = target.client("iam")
    return iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]


# --- the layer: AWS's answers while it catches up -------------------------------------------


def test_a_new_role_is_not_assumable_by_lambda_until_it_has_propagated(target, realism):
    """CreateFunction with a seconds-old role gets Lambda's error and a doc link; later it works."""
    role = _role(target)
    lam = target.client("lambda")
    request = dict(
        FunctionName="ann-probe",
        Runtime="python3.12",
        Role=role["Arn"],
        Handler="x.handler",
        Code={"ZipFile": b"PK\x05\x06" + b"\0" * 18},
    )
    with pytest.raises(ClientError) as failed:
        lam.create_function(**request)
    assert failed.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert "cannot be assumed by Lambda" in str(failed.value)
    assert "https://docs.aws.amazon.com/" in str(failed.value)
    realism.sleep(realism.delays.role_for_lambda)
    assert lam.create_function(**request)["FunctionName"] == "ann-probe"


def test_sqs_refuses_a_name_for_60_seconds_after_delete_queue(target, realism):
    """CreateQueue right after DeleteQueue is QueueDeletedRecently; then it works."""
    sqs = target.client("sqs")
    url = sqs.create_queue(QueueName="ann-q")["QueueUrl"]
    sqs.delete_queue(QueueUrl=url)
    with pytest.raises(ClientError, match="60 seconds") as failed:
        sqs.create_queue(QueueName="ann-q")
    assert failed.value.response["Error"]["Code"] == "AWS.SimpleQueueService.QueueDeletedRecently"
    realism.sleep(60)
    assert sqs.create_queue(QueueName="ann-q")["QueueUrl"].endswith("/ann-q")


def test_the_layer_can_be_switched_off_for_a_test(target, realism):
    """Inside `disabled()` a seconds-old role is usable at once, as moto alone answers."""
    role = _role(target, service="scheduler.amazonaws.com")
    with disabled(realism):
        group = target.client("scheduler").create_schedule(
            Name="ann-probe",
            ScheduleExpression="rate(1 hour)",
            FlexibleTimeWindow={"Mode": "OFF"},
            Target={
                "Arn": "arn:aws:lambda:us-east-1:123456789012:function:x",
                "RoleArn": role["Arn"],
            },
        )
    assert group["ScheduleArn"].endswith("/ann-probe")


# --- the deploy waits for AWS ---------------------------------------------------------------


def test_deploy_waits_for_roles_and_the_policy_with_a_progress_line(target, realism):
    """A first deploy waits out each new role (Lambda, Scheduler) and the destination check."""
    said: list[str] = []
    start = realism.aws_now()
    deployed = d.deploy(target, d.Names("ann"), say=said.append)
    assert deployed.function_arn.endswith(":function:ann-hourly_processor")
    waits = " ".join(line for line in said if "retrying in" in line)
    assert "has not reached Lambda" in waits
    assert "destination check" in waits
    assert "EventBridge Scheduler" in waits
    assert realism.aws_now() - start >= realism.delays.role_for_lambda


def test_a_role_that_never_propagates_fails_after_about_two_minutes(target, realism):
    """A role never assumable: the deploy gives up after about 120 s with AWS's error."""
    realism.delays = Delays(role_for_lambda=10_000)
    said: list[str] = []
    start = realism.aws_now()
    with pytest.raises(ClientError, match="cannot be assumed by Lambda"):
        d.deploy(target, d.Names("ann"), say=said.append)
    waited = realism.aws_now() - start
    assert 90 <= waited <= retry.LIMIT_SECONDS
    assert any("gave up" in line for line in said)


def test_an_error_not_caused_by_propagation_is_raised_at_once(target, realism):
    """until_consistent retries only the exact code and message; anything else is not waited on."""
    calls = []

    def call():
        calls.append(1)
        target.client("lambda").get_function(FunctionName="ann-none")

    start = realism.aws_now()
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        retry.until_consistent(
            target, call, waits_for=[retry.ROLE_NOT_ASSUMABLE_BY_LAMBDA], what="probe"
        )
    assert (len(calls), realism.aws_now()) == (1, start)


def test_a_redeploy_waits_for_an_update_still_in_progress(target, tmp_path):
    """Two updates in a row: the second waits for the first (InProgress) instead of failing."""
    names = d.Names("ann")
    d.deploy(target, names)
    zip_path = d.build_zip(out_dir=str(tmp_path))
    role = target.client("iam").get_role(RoleName=names.function_role)["Role"]["Arn"]
    for timeout in (30, 45):
        d.ensure_function(
            target,
            names,
            zip_path=zip_path,
            role_arn=role,
            settings=d.FunctionSettings(timeout_seconds=timeout),
        )
    config = target.client("lambda").get_function_configuration(FunctionName=names.function)
    assert config["Timeout"] == 45


def test_switching_the_schedule_off_and_on_keeps_a_custom_expression(target):
    """set_schedule_enabled sends the whole schedule back: a custom expression survives."""
    names = d.Names("ann")
    d.deploy(target, names, schedule=d.ScheduleSettings(expression="rate(5 minutes)"))
    scheduler = target.client("scheduler")
    d.set_schedule_enabled(target, names, False)
    off = scheduler.get_schedule(Name=names.schedule, GroupName=names.schedule_group)
    d.set_schedule_enabled(target, names, True)
    on = scheduler.get_schedule(Name=names.schedule, GroupName=names.schedule_group)
    assert (off["State"], off["ScheduleExpression"]) == ("DISABLED", "rate(5 minutes)")
    assert (on["State"], on["ScheduleExpression"]) == ("ENABLED", "rate(5 minutes)")


# --- names refused before anything exists --------------------------------------------------


def test_the_cli_deploy_shows_each_wait_for_aws(target, capsys):
    """`deploy --prefix ann` prints a progress line while the new roles propagate."""
    assert cli.main(["deploy", "--prefix", "ann"]) == 0
    out = capsys.readouterr().out
    assert "ann: function ann-hourly_processor: the new role has not reached Lambda yet" in out
    assert "ann: deployed arn:aws:lambda:" in out


def test_deploy_with_a_dotted_job_name_is_refused_before_anything_is_created(target, capsys):
    """`deploy --prefix ann --job a.b` is a usage error that names a fix, and creates nothing."""
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["deploy", "--prefix", "ann", "--job", "a.b"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert "'a_b'" in err and "letters, digits" in err
    assert d.leftovers(target, "ann") == []


def test_a_job_name_whose_one_off_schedule_would_be_too_long_is_refused():
    """The one-off schedule's name (schedule + 21 characters) is checked against 64 up front."""
    with pytest.raises(ConfigError, match="one-off schedule"):
        d.Names("ann", "j" * 40)
    assert d.Names("ann", "j" * 38).once_schedule  # 4 + 38 + 21 = 63 characters fit


# --- teardown and the leftovers proof -------------------------------------------------------


@pytest.mark.parametrize("answer", ["ok", "NonExistentQueue"])
def test_a_repeated_teardown_within_60_seconds_reports_nothing_deleted(target, realism, answer):
    """A queue deleted seconds ago may still be found and answer either way: treated as gone."""
    realism.deleted_queue_answer = answer
    names = d.Names("ann")
    d.deploy(target, names)
    first = d.teardown(target, names)
    again = d.teardown(target, names)
    assert f"queue {names.failure_queue}" in first.deleted
    assert again.deleted == ()


def test_a_redeploy_right_after_teardown_waits_out_the_queue_name(target, realism):
    """Deploy, teardown, deploy: the second deploy waits for SQS's 60 s, with a progress line."""
    names = d.Names("ann")
    d.deploy(target, names)
    d.teardown(target, names)
    said: list[str] = []
    d.deploy(target, names, say=said.append)
    assert any("deleted less than 60 s ago" in line for line in said)
    assert len(d.leftovers(target, "ann")) == 9


def test_leftovers_drops_what_the_tagging_index_still_lists_but_is_gone(target):
    """Right after teardown the tagging API still lists deleted ARNs; leftovers drops them."""
    names = d.Names("ann")
    d.deploy(target, names)
    d.teardown(target, names)
    tagging = target.client("resourcegroupstaggingapi")
    listed = tagging.get_resources(TagFilters=[{"Key": d.TAG_KEY, "Values": ["ann"]}])
    assert listed["ResourceTagMappingList"]  # the index lags behind the deletes
    assert d.leftovers(target, "ann") == []


def test_leftovers_finds_a_new_resource_the_tagging_index_does_not_list_yet(target):
    """A queue created seconds ago is missing from the tagging API but found by its service."""
    sqs = target.client("sqs")
    sqs.create_queue(QueueName="ann-stray", tags={d.TAG_KEY: "ann"})
    tagging = target.client("resourcegroupstaggingapi")
    listed = tagging.get_resources(TagFilters=[{"Key": d.TAG_KEY, "Values": ["ann"]}])
    assert listed["ResourceTagMappingList"] == []
    assert d.leftovers(target, "ann") == [target.arn("sqs", "ann-stray")]


# --- the remote runner ----------------------------------------------------------------------


def test_the_remote_runner_waits_longer_than_the_function_and_never_resends(target):
    """Synchronous invokes: read timeout above the function's timeout, one attempt only."""
    names = d.Names("ann")
    d.deploy(target, names, function=d.FunctionSettings(timeout_seconds=120))
    runner = RemoteLambdaRunner(dataclasses.replace(target, embedded=False), names.function)
    config = runner.invoker().meta.config
    assert config.read_timeout > 120
    assert config.retries["total_max_attempts"] == 1


# --- the instructor's smoke test ----------------------------------------------------------------


def test_the_smoke_test_passes_under_the_realism_layer_and_leaves_nothing(target, capsys):
    """`smoke --prefix smk`: deploy, invoke, one scheduled delivery, teardown, nothing left."""
    assert cli.main(["smoke", "--prefix", "smk"]) == 0
    out = capsys.readouterr().out
    report = out[out.index("smoke test of prefix 'smk'") :].splitlines()
    names = [line.split()[1] for line in report[1:-1]]
    assert names == ["deploy", "invoke", "one", "teardown", "nothing"]
    assert all(line.split()[0] == "ok" for line in report[1:-1])
    assert report[-1] == "PASSED"
    assert d.leftovers(target, "smk") == []


def test_a_failing_smoke_test_still_tears_down(target, realism):
    """A deploy that fails (a role that never propagates) is reported, and nothing is left."""
    from jobcontroller.ops.smoke import smoke_test

    realism.delays = Delays(role_for_lambda=10_000)
    report = smoke_test(target, prefix="smk", say=None)
    assert [(s.name, s.passed) for s in report.steps] == [
        ("deploy", False),
        ("teardown", True),
        ("nothing left", True),
    ]
    assert "cannot be assumed by Lambda" in report.steps[0].detail
    assert not report.passed and "FAILED" in report.text()
