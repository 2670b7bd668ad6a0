"""The deploy module: names, the real-AWS opt-in, each step, teardown and the leftovers check."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import pytest

from jobcontroller import ManualClock
from jobcontroller.errors import ConfigError
from jobcontroller.handler import Settings, lambda_handler
from jobcontroller.model import JobConfig
from jobcontroller.ops import deploy as d
from jobcontroller.ops.packaging import build_zip, inspect_zip
from jobcontroller.store import TTL_ATTRIBUTE, ControlStore

ACCOUNT = "123456789012"  # moto's
REGION = "us-east-1"
DOCS = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


@pytest.fixture
def deployed(target, zip_path):
    """The stack for prefix 'ann', deployed with a fixed clock."""
    names = d.Names("ann")
    return d.deploy(target, names, zip_path=zip_path, clock=ManualClock())


def _arn(service: str, resource: str, region: str = REGION) -> str:
    return f"arn:aws:{service}:{region}:{ACCOUNT}:{resource}"


def _expected_arns(prefix: str, job: str = "hourly_processor") -> list[str]:
    return sorted(
        [
            _arn("dynamodb", f"table/{prefix}-job_control"),
            _arn("lambda", f"function:{prefix}-{job}"),
            _arn("logs", f"log-group:/aws/lambda/{prefix}-{job}"),
            _arn("sqs", f"{prefix}-{job}-failures"),
            _arn("sqs", f"{prefix}-{job}-schedule-dlq"),
            _arn("iam", f"role/jobcontroller/{prefix}/{prefix}-{job}-fn", region=""),
            _arn("iam", f"role/jobcontroller/{prefix}/{prefix}-{job}-scheduler", region=""),
            _arn("scheduler", f"schedule-group/{prefix}-jobcontroller"),
            _arn("scheduler", f"schedule/{prefix}-jobcontroller/{prefix}-{job}"),
        ]
    )


# --- settings -------------------------------------------------------------------


def test_timeout_must_leave_room_above_the_lease_margin():
    """A timeout not above margin plus workload is refused: every lease would already be over."""
    with pytest.raises(ConfigError, match="timeout_seconds=10"):
        d.FunctionSettings(timeout_seconds=10, lease_margin_seconds=10)


def test_environment_names_are_the_documented_ones():
    """The function's environment variables are exactly those docs/architecture.md lists."""
    documented = set(re.findall(r"^\| `(JOB_[A-Z_]+)` \|", DOCS.read_text(), re.MULTILINE))
    environment = d.FunctionSettings().environment(d.Names("ann"))
    assert set(environment) == documented
    assert environment["JOB_TABLE"] == "ann-job_control"
    assert environment["JOB_LEASE_MARGIN_SECONDS"] == "10"


def test_default_function_settings_are_the_handlers_defaults():
    """FunctionSettings() deploys exactly JobConfig's and the handler's default settings."""
    settings = d.FunctionSettings().handler_settings(d.Names("ann"))
    assert settings == Settings(table="ann-job_control", job="hourly_processor")
    assert settings.config == JobConfig()


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"interval_seconds": 30}, "cooldown_slack_seconds must be smaller than the interval"),
        ({"workload": "nocolon"}, "JOB_WORKLOAD='nocolon' must be 'placeholder' or"),
    ],
    ids=["slack-above-interval", "workload-without-colon"],
)
def test_deploy_refuses_what_the_handler_would_refuse(target, zip_path, monkeypatch, options, says):
    """Settings the handler would refuse are refused by deploy with its message; nothing made."""
    names = d.Names("ann")
    function = d.FunctionSettings(**options)
    # The runtime's answer: the real handler, reading the environment deploy would write.
    for variable, value in function.environment(names).items():
        monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=re.escape(says)) as runtime:
        lambda_handler({}, None)
    with pytest.raises(ConfigError) as refused:
        d.deploy(target, names, zip_path=zip_path, function=function, clock=ManualClock())
    assert str(refused.value) == str(runtime.value)
    assert target.client("dynamodb").list_tables()["TableNames"] == []
    assert target.client("iam").list_roles()["Roles"] == []
    assert target.client("lambda").list_functions()["Functions"] == []
    assert d.leftovers(target, "ann") == []


def test_function_config_refuses_what_the_handler_would_refuse():
    """The step-by-step path (function_config, used by ensure_function) runs the same check."""
    with pytest.raises(ConfigError, match="JOB_WORKLOAD='nocolon'"):
        d.function_config(d.Names("ann"), d.FunctionSettings(workload="nocolon"), "arn:role")


# --- deploy ------------------------------------------------------------------------------


def test_deploy_creates_every_resource_under_the_prefix(target, deployed):
    """After deploy, leftovers lists exactly the nine resources of the stack."""
    assert d.leftovers(target, "ann") == _expected_arns("ann")
    assert deployed.function_arn == _arn("lambda", "function:ann-hourly_processor")


def test_every_resource_carries_the_prefix_tag(target, deployed):
    """Each resource reports the tag jobcontroller:prefix=ann through its own service's API."""
    names, want = deployed.names, {"jobcontroller:prefix": "ann"}
    ddb, lam, logs = target.client("dynamodb"), target.client("lambda"), target.client("logs")
    sqs, iam, scheduler = target.client("sqs"), target.client("iam"), target.client("scheduler")

    def pairs(tags):
        return {t["Key"]: t["Value"] for t in tags}

    found = {
        "table": pairs(ddb.list_tags_of_resource(ResourceArn=deployed.table_arn)["Tags"]),
        "function": lam.list_tags(Resource=deployed.function_arn)["Tags"],
        "log group": logs.list_tags_for_resource(resourceArn=deployed.log_group_arn)["tags"],
        "fn role": pairs(iam.list_role_tags(RoleName=names.function_role)["Tags"]),
        "sched role": pairs(iam.list_role_tags(RoleName=names.scheduler_role)["Tags"]),
        "group": pairs(
            scheduler.list_tags_for_resource(
                ResourceArn=_arn("scheduler", f"schedule-group/{names.schedule_group}")
            )["Tags"]
        ),
    }
    for queue in (names.failure_queue, names.schedule_dlq):
        url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        found[queue] = sqs.list_queue_tags(QueueUrl=url)["Tags"]
    for what, tags in found.items():
        assert tags.items() >= want.items(), what


def test_deploy_twice_changes_nothing(target, zip_path, deployed):
    """A second deploy returns the same ARNs and leaves the same resources (the schedule kept)."""
    again = d.deploy(target, deployed.names, zip_path=zip_path, clock=ManualClock())
    assert again == deployed
    assert d.leftovers(target, "ann") == _expected_arns("ann")


def test_deploy_initialises_the_job_once(target, deployed):
    """Deploy writes the IDLE control item; a second init leaves it alone."""
    store = ControlStore(deployed.names.table, client=target.client("dynamodb"))
    assert store.read("hourly_processor").status.value == "IDLE"
    assert d.init_job(target, deployed.names) is False


def test_table_has_the_key_schema_billing_and_ttl(target, deployed, realism):
    """The table has string PK/SK, on-demand billing and TTL on expires_at (ENABLED once AWS
    has finished ENABLING it)."""
    ddb = target.client("dynamodb")
    table = ddb.describe_table(TableName="ann-job_control")["Table"]
    assert table["KeySchema"] == [
        {"AttributeName": "PK", "KeyType": "HASH"},
        {"AttributeName": "SK", "KeyType": "RANGE"},
    ]
    assert {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]} == {
        "PK": "S",
        "SK": "S",
    }
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = ddb.describe_time_to_live(TableName="ann-job_control")["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLING", "AttributeName": TTL_ATTRIBUTE}
    realism.sleep(realism.delays.ttl_enabling)
    ttl = ddb.describe_time_to_live(TableName="ann-job_control")["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": TTL_ATTRIBUTE}


def test_function_is_configured_as_the_contract_says(target, deployed, zip_path):
    """Runtime python3.12, the contract's handler, a 60 s timeout, env vars, the uploaded zip."""
    config = target.client("lambda").get_function_configuration(FunctionName="ann-hourly_processor")
    assert config["Runtime"] == "python3.12"
    assert config["Handler"] == "jobcontroller.handler.lambda_handler"
    assert config["Timeout"] == 60
    assert config["Timeout"] > int(config["Environment"]["Variables"]["JOB_LEASE_MARGIN_SECONDS"])
    assert config["Environment"]["Variables"] == d.FunctionSettings().environment(deployed.names)
    assert config["Role"] == deployed.function_role_arn
    assert config["CodeSha256"] == inspect_zip(zip_path).code_sha256 == deployed.code_sha256


def test_async_invocations_are_not_retried_and_fail_to_the_queue(target, deployed):
    """The function's async config has 0 retries and the failure queue as on-failure target."""
    config = target.client("lambda").get_function_event_invoke_config(
        FunctionName="ann-hourly_processor"
    )
    assert config["MaximumRetryAttempts"] == 0
    assert config["DestinationConfig"]["OnFailure"]["Destination"] == deployed.failure_queue_arn
    assert deployed.failure_queue_arn == _arn("sqs", "ann-hourly_processor-failures")


def test_log_group_has_a_retention(target, deployed):
    """The function's log group exists ahead of the function, with a 14-day retention."""
    groups = target.client("logs").describe_log_groups(
        logGroupNamePrefix="/aws/lambda/ann-hourly_processor"
    )["logGroups"]
    assert [(g["logGroupName"], g["retentionInDays"]) for g in groups] == [
        ("/aws/lambda/ann-hourly_processor", 14)
    ]


def test_schedule_is_hourly_exact_unretried_and_dead_lettered(target, deployed):
    """The schedule fires hourly with no flexible window, 0 retries, a DLQ and the slot input."""
    schedule = target.client("scheduler").get_schedule(
        Name="ann-hourly_processor", GroupName="ann-jobcontroller"
    )
    assert schedule["ScheduleExpression"] == "cron(0 * * * ? *)"
    assert schedule["ScheduleExpressionTimezone"] == "UTC"
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert schedule["State"] == "ENABLED"
    target_ = schedule["Target"]
    assert target_["Arn"] == deployed.function_arn
    assert target_["RoleArn"] == deployed.scheduler_role_arn
    assert target_["RetryPolicy"]["MaximumRetryAttempts"] == 0
    assert target_["RetryPolicy"]["MaximumEventAgeInSeconds"] == 3600
    assert target_["DeadLetterConfig"]["Arn"] == deployed.schedule_dlq_arn
    assert json.loads(target_["Input"]) == {
        "job": "hourly_processor",
        "source": "scheduler",
        "scheduled_time": "<aws.scheduler.scheduled-time>",
        "execution_id": "<aws.scheduler.execution-id>",
        "attempt": "<aws.scheduler.attempt-number>",
    }


def test_function_role_allows_only_its_items_logs_and_queue(target, deployed):
    """The function role: Get/Put/UpdateItem on its JOB#<job> items, its logs, its queue."""
    iam = target.client("iam")
    role = iam.get_role(RoleName="ann-hourly_processor-fn")["Role"]
    assert role["Path"] == "/jobcontroller/ann/"
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "lambda.amazonaws.com"
    }
    assert iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"] == ["jobcontroller"]
    assert iam.list_attached_role_policies(RoleName=role["RoleName"])["AttachedPolicies"] == []
    doc = iam.get_role_policy(RoleName=role["RoleName"], PolicyName="jobcontroller")[
        "PolicyDocument"
    ]
    by_sid = {s["Sid"]: s for s in doc["Statement"]}
    assert set(by_sid) == {"OwnJobItemsOnly", "OwnLogGroup", "AsyncFailureDestination"}
    items = by_sid["OwnJobItemsOnly"]
    assert sorted(items["Action"]) == [
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
    ]
    assert items["Resource"] == [deployed.table_arn]
    assert items["Condition"] == {
        "ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["JOB#hourly_processor"]}
    }
    logs = by_sid["OwnLogGroup"]
    assert sorted(logs["Action"]) == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert logs["Resource"] == [f"{deployed.log_group_arn}:*"]
    queue = by_sid["AsyncFailureDestination"]
    assert (queue["Action"], queue["Resource"]) == (
        ["sqs:SendMessage"],
        [deployed.failure_queue_arn],
    )
    for statement in doc["Statement"]:
        assert all("*" not in a for a in statement["Action"])
        assert all(r != "*" for r in statement["Resource"])


def test_scheduler_role_may_only_invoke_this_function(target, deployed):
    """The scheduler's role: invoke this function, send to its DLQ, nothing else."""
    iam = target.client("iam")
    role = iam.get_role(RoleName="ann-hourly_processor-scheduler")["Role"]
    trust = role["AssumeRolePolicyDocument"]["Statement"][0]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    doc = iam.get_role_policy(RoleName=role["RoleName"], PolicyName="jobcontroller")[
        "PolicyDocument"
    ]
    grants = sorted((s["Action"][0], s["Resource"][0]) for s in doc["Statement"])
    assert grants == [
        ("lambda:InvokeFunction", deployed.function_arn),
        ("sqs:SendMessage", deployed.schedule_dlq_arn),
    ]


def test_each_step_runs_alone_in_order(target, zip_path):
    """The steps, called one by one as notebook 05 does, build the same stack as deploy."""
    names = d.Names("bob")
    d.ensure_table(target, names)
    d.init_job(target, names, clock=ManualClock())
    d.ensure_log_group(target, names)
    d.ensure_queues(target, names)
    d.ensure_function_role(target, names)
    d.ensure_function(target, names, zip_path=zip_path)
    d.ensure_async_config(target, names)
    d.ensure_scheduler_role(target, names)
    d.ensure_schedule(target, names)
    assert d.leftovers(target, "bob") == _expected_arns("bob")


def test_ensure_function_updates_code_and_configuration(target, deployed, tmp_path):
    """Deploying changed code and settings updates the existing function in place."""
    original = build_zip(out_dir=tmp_path / "z")
    other = tmp_path / "other.zip"
    other.write_bytes(original.read_bytes())
    with zipfile.ZipFile(other, "a") as archive:
        archive.writestr("extra.txt", "changed")
    settings = d.FunctionSettings(timeout_seconds=90)
    d.ensure_function(target, deployed.names, zip_path=other, settings=settings)
    config = target.client("lambda").get_function_configuration(FunctionName="ann-hourly_processor")
    assert config["Timeout"] == 90
    assert config["CodeSha256"] == inspect_zip(other).code_sha256
    assert config["CodeSha256"] != inspect_zip(original).code_sha256


def test_one_off_schedule_fires_once_and_deletes_itself(target, deployed):
    """schedule_once makes an at() schedule minutes ahead that deletes itself after firing."""
    arn, when = d.schedule_once(target, deployed.names, clock=ManualClock("2026-01-05T09:00:00Z"))
    assert when.isoformat() == "2026-01-05T09:03:00+00:00"
    name = arn.rsplit("/", 1)[1]
    schedule = target.client("scheduler").get_schedule(Name=name, GroupName="ann-jobcontroller")
    assert schedule["ScheduleExpression"] == "at(2026-01-05T09:03:00)"
    assert schedule["ActionAfterCompletion"] == "DELETE"
    assert schedule["Target"]["Arn"] == deployed.function_arn


def test_one_off_schedule_in_the_past_is_refused(target, deployed):
    """An at() time less than 30 s ahead is refused with both times in the message."""
    clock = ManualClock("2026-01-05T09:00:00Z")
    with pytest.raises(ConfigError, match="at least 30 s after now"):
        d.schedule_once(target, deployed.names, at=clock.now(), clock=clock)
