"""infra/template.yaml: cfn-lint clean, the same stack as the deploy module, deployable on moto."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import lint, lint_file
from cfnlint.decode import cfn_yaml

from jobcontroller import ManualClock
from jobcontroller.handler import settings_from_env
from jobcontroller.ops import deploy as d
from jobcontroller.ops import naming
from jobcontroller.ops.packaging import HANDLER, build_zip, inspect_zip
from jobcontroller.store import TTL_ATTRIBUTE

TEMPLATE = Path(__file__).resolve().parents[1] / "infra" / "template.yaml"
ACCOUNT, REGION = "123456789012", "us-east-1"
NAMES = d.Names("ann")
PARAMETERS = {
    "Prefix": "ann",
    "JobName": "hourly_processor",
    "ScheduleExpression": d.DEFAULT_SCHEDULE,
}
PSEUDO = {"AWS::AccountId": ACCOUNT, "AWS::Region": REGION, "AWS::Partition": "aws"}

# The resource types moto's CloudFormation does not implement (checked by the moto test below):
# these are held to the deploy module by the static comparisons only.
MOTO_UNSUPPORTED = {
    "AWS::Lambda::EventInvokeConfig",
    "AWS::Scheduler::ScheduleGroup",
    "AWS::Scheduler::Schedule",
}


def _load() -> dict[str, Any]:
    return json.loads(json.dumps(cfn_yaml.load(str(TEMPLATE))))


class _Resolver:
    """Resolve Ref, Fn::Sub and Fn::GetAtt for this template's resources and parameters."""

    def __init__(self, template: dict[str, Any], parameters: dict[str, str]) -> None:
        self.resources = template["Resources"]
        self.values = {**PSEUDO, **parameters}

    def props(self, logical_id: str) -> dict[str, Any]:
        return self(self.resources[logical_id]["Properties"])

    def _name(self, logical_id: str) -> str:
        resource = self.resources[logical_id]
        key = {
            "AWS::DynamoDB::Table": "TableName",
            "AWS::Lambda::Function": "FunctionName",
            "AWS::IAM::Role": "RoleName",
            "AWS::SQS::Queue": "QueueName",
            "AWS::Scheduler::ScheduleGroup": "Name",
            "AWS::Scheduler::Schedule": "Name",
            "AWS::Logs::LogGroup": "LogGroupName",
        }[resource["Type"]]
        return self(resource["Properties"][key])

    def ref(self, name: str) -> str:
        if name in self.values:
            return self.values[name]
        return self._name(name)

    def get_att(self, logical_id: str, attribute: str) -> str:
        assert attribute == "Arn", attribute
        kind, name = self.resources[logical_id]["Type"], self._name(logical_id)
        props = self.resources[logical_id]["Properties"]
        prefix = f"arn:aws:{{}}:{REGION}:{ACCOUNT}:"
        return {
            "AWS::DynamoDB::Table": prefix.format("dynamodb") + f"table/{name}",
            "AWS::Lambda::Function": prefix.format("lambda") + f"function:{name}",
            "AWS::SQS::Queue": prefix.format("sqs") + name,
            "AWS::IAM::Role": f"arn:aws:iam::{ACCOUNT}:role{self(props.get('Path', '/'))}{name}",
        }[kind]

    def __call__(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self(item) for item in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, value),) = node.items()
            if key == "Ref":
                return self.ref(value)
            if key == "Fn::GetAtt":
                return self.get_att(*value)
            if key == "Fn::Sub":

                def one(match: re.Match) -> str:
                    name = match.group(1)
                    return self.get_att(*name.split(".")) if "." in name else self.ref(name)

                return re.sub(r"\$\{([^}!]+)\}", one, value)
        return {key: self(value) for key, value in node.items()}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    """The template as data, with intrinsic functions in their long form."""
    return _load()


@pytest.fixture(scope="module")
def resolved(template) -> _Resolver:
    """The template resolved for prefix 'ann' in moto's account and region."""
    return _Resolver(template, PARAMETERS)


def _by_type(template: dict[str, Any], kind: str) -> list[str]:
    return [k for k, r in template["Resources"].items() if r["Type"] == kind]


# --- lint -------------------------------------------------------------------------------


def test_template_is_cfn_lint_clean():
    """cfn-lint reports nothing for infra/template.yaml."""
    assert lint_file(TEMPLATE) == []


def test_cfn_lint_would_catch_a_bad_timeout():
    """The lint check is live: the same template with a 6000 s timeout fails it."""
    broken = TEMPLATE.read_text().replace("Timeout: 60\n", "Timeout: 6000\n")
    assert broken != TEMPLATE.read_text()
    assert any("6000" in str(match) for match in lint(broken))


# --- parity with the deploy module ------------------------------------------------------


def test_parameters_match_the_deploy_modules_rules(template):
    """Prefix, JobName and ScheduleExpression follow the same rules and default as deploy."""
    params = template["Parameters"]
    assert set(params) == {"Prefix", "JobName", "ScheduleExpression"}
    assert params["Prefix"]["AllowedPattern"] == naming.PREFIX_PATTERN.pattern
    assert params["JobName"]["Default"] == d.DEFAULT_JOB
    assert params["ScheduleExpression"]["Default"] == d.DEFAULT_SCHEDULE


def test_every_name_is_the_deploy_modules_name(resolved):
    """Each physical name in the template equals the one Names derives from the prefix."""
    assert resolved.ref("Table") == NAMES.table
    assert resolved.ref("Function") == NAMES.function
    assert resolved.props("FunctionLogGroup")["LogGroupName"] == NAMES.log_group
    assert resolved.props("FailureQueue")["QueueName"] == NAMES.failure_queue
    assert resolved.props("ScheduleDeadLetterQueue")["QueueName"] == NAMES.schedule_dlq
    assert resolved.props("FunctionRole")["RoleName"] == NAMES.function_role
    assert resolved.props("SchedulerRole")["RoleName"] == NAMES.scheduler_role
    assert resolved.props("FunctionRole")["Path"] == NAMES.iam_path
    assert resolved.props("SchedulerRole")["Path"] == NAMES.iam_path
    assert resolved.ref("ScheduleGroup") == NAMES.schedule_group
    assert resolved.props("Schedule")["Name"] == NAMES.schedule


def test_every_taggable_resource_carries_the_prefix_tag(template, resolved):
    """Every resource that can carry tags has jobcontroller:prefix = Prefix."""
    untaggable = {"AWS::Lambda::EventInvokeConfig", "AWS::Scheduler::Schedule"}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] in untaggable:
            assert "Tags" not in resource["Properties"]
            continue
        tags = resolved.props(logical_id)["Tags"]
        assert {"Key": d.TAG_KEY, "Value": "ann"} in tags, logical_id


def test_table_matches_the_stores_table(target, resolved):
    """Key schema, attribute types, billing mode and TTL attribute equal the store's table."""
    d.ensure_table(target, NAMES)
    ddb = target.client("dynamodb")
    table = ddb.describe_table(TableName=NAMES.table)["Table"]
    props = resolved.props("Table")
    assert props["KeySchema"] == table["KeySchema"]
    assert sorted(props["AttributeDefinitions"], key=str) == sorted(
        table["AttributeDefinitions"], key=str
    )
    assert props["BillingMode"] == table["BillingModeSummary"]["BillingMode"]
    ttl = ddb.describe_time_to_live(TableName=NAMES.table)["TimeToLiveDescription"]
    assert props["TimeToLiveSpecification"] == {
        "AttributeName": ttl["AttributeName"],
        "Enabled": True,
    }
    assert ttl["AttributeName"] == TTL_ATTRIBUTE


def test_function_role_is_the_deploy_modules_role(resolved):
    """The function's trust and inline policy equal deploy's, statement for statement."""
    props = resolved.props("FunctionRole")
    assert props["AssumeRolePolicyDocument"] == d.lambda_trust_policy()
    (policy,) = props["Policies"]
    assert policy["PolicyName"] == "jobcontroller"
    assert policy["PolicyDocument"] == d.function_role_policy(NAMES, account=ACCOUNT, region=REGION)


def test_scheduler_role_is_the_deploy_modules_role(resolved):
    """The scheduler's trust and inline policy equal deploy's, statement for statement."""
    props = resolved.props("SchedulerRole")
    assert props["AssumeRolePolicyDocument"] == d.scheduler_trust_policy(ACCOUNT)
    (policy,) = props["Policies"]
    assert policy["PolicyDocument"] == d.scheduler_role_policy(
        NAMES, account=ACCOUNT, region=REGION
    )


def test_function_matches_runtime_handler_timeout_and_environment(resolved):
    """Runtime, handler, timeout, memory, description and environment equal deploy's."""
    props = resolved.props("Function")
    role_arn = resolved.get_att("FunctionRole", "Arn")
    expected = d.function_config(NAMES, d.FunctionSettings(), role_arn)
    assert {k: props[k] for k in expected if k != "Environment"} == {
        k: v for k, v in expected.items() if k != "Environment"
    }
    assert props["Environment"] == expected["Environment"]
    assert props["Handler"] == HANDLER and props["Runtime"] == "python3.12"
    assert props["Timeout"] > int(props["Environment"]["Variables"]["JOB_LEASE_MARGIN_SECONDS"])


def test_template_environment_is_what_the_handler_reads_from_deploys(resolved):
    """The handler reads the template's variables as the same settings as deploy's defaults."""
    variables = resolved.props("Function")["Environment"]["Variables"]
    assert settings_from_env(variables) == d.FunctionSettings().handler_settings(NAMES)


def test_async_config_matches(resolved):
    """MaximumRetryAttempts 0, the event age and the on-failure queue equal deploy's."""
    props = resolved.props("FunctionAsyncConfig")
    expected = d.async_invoke_config(d.FunctionSettings(), resolved.get_att("FailureQueue", "Arn"))
    assert {k: props[k] for k in expected} == expected
    assert props["Qualifier"] == "$LATEST"
    assert props["FunctionName"] == NAMES.function


def test_log_group_and_queues_match(resolved):
    """Log retention and the queues' message retention equal deploy's."""
    assert resolved.props("FunctionLogGroup")["RetentionInDays"] == (
        d.FunctionSettings().log_retention_days
    )
    for queue in ("FailureQueue", "ScheduleDeadLetterQueue"):
        assert resolved.props(queue)["MessageRetentionPeriod"] == 1209600


def test_schedule_matches_expression_window_retries_dlq_and_input(resolved):
    """The schedule's settings and target equal deploy's request (input compared as JSON)."""
    props = resolved.props("Schedule")
    expected = d.schedule_request(
        NAMES,
        d.ScheduleSettings(),
        function_arn=resolved.get_att("Function", "Arn"),
        role_arn=resolved.get_att("SchedulerRole", "Arn"),
        dead_letter_arn=resolved.get_att("ScheduleDeadLetterQueue", "Arn"),
    )
    # ActionAfterCompletion NONE is the service default; CloudFormation has no such property.
    expected.pop("ActionAfterCompletion")
    target_props, expected_target = props.pop("Target"), expected.pop("Target")
    assert props == expected
    assert json.loads(target_props.pop("Input")) == json.loads(expected_target.pop("Input"))
    assert target_props == expected_target


def test_the_parity_check_would_catch_a_drift(template):
    """Changing a retry setting in the template makes it differ from the deploy module."""
    drifted = json.loads(json.dumps(template))
    drifted["Resources"]["Schedule"]["Properties"]["Target"]["RetryPolicy"][
        "MaximumRetryAttempts"
    ] = 2
    props = _Resolver(drifted, PARAMETERS).props("Schedule")
    assert props["Target"]["RetryPolicy"] != {
        "MaximumRetryAttempts": d.ScheduleSettings().max_retries,
        "MaximumEventAgeInSeconds": d.ScheduleSettings().max_event_age_seconds,
    }


# --- deploying the template on moto ------------------------------------------------------


def _package(template: dict[str, Any], target: d.Target, zip_path: Path) -> dict[str, Any]:
    """What `aws cloudformation package` does: upload the local Code path, point Code at it."""
    s3 = target.client("s3")
    s3.create_bucket(Bucket="ann-artifacts")
    s3.put_object(
        Bucket="ann-artifacts", Key="jobcontroller-lambda.zip", Body=zip_path.read_bytes()
    )
    packaged = json.loads(json.dumps(template))
    code = packaged["Resources"]["Function"]["Properties"]
    assert code["Code"] == "../build/jobcontroller-lambda.zip"
    code["Code"] = {"S3Bucket": "ann-artifacts", "S3Key": "jobcontroller-lambda.zip"}
    return packaged


def _document(policy: Any) -> dict[str, Any]:
    """A policy document as data: moto's CloudFormation stores an inline policy as the
    Python repr of the dict (single quotes), which IAM then returns as a string."""
    if isinstance(policy, dict):
        return policy
    try:
        return json.loads(policy)
    except ValueError:
        return ast.literal_eval(policy)


def _moto_supported_part(template: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    from moto.cloudformation.parsing import get_model_map

    supported = get_model_map()
    part = json.loads(json.dumps(template))
    dropped = {k for k, r in part["Resources"].items() if r["Type"] not in supported}
    for logical_id in dropped:
        del part["Resources"][logical_id]
    part["Outputs"] = {
        k: v for k, v in part["Outputs"].items() if not any(x in json.dumps(v) for x in dropped)
    }
    return part, {template["Resources"][k]["Type"] for k in dropped}


def test_the_supported_part_deploys_on_moto_like_the_deploy_module(target, template, tmp_path):
    """moto's CloudFormation builds the template's table, queues, log group, roles and function
    with the deploy module's settings, and deleting the stack leaves nothing tagged."""
    zip_path = build_zip(out_dir=tmp_path)
    part, dropped_types = _moto_supported_part(_package(template, target, zip_path))
    assert dropped_types <= MOTO_UNSUPPORTED
    cfn = target.client("cloudformation")
    cfn.create_stack(
        StackName="ann-jobcontroller",
        TemplateBody=json.dumps(part),
        Parameters=[{"ParameterKey": "Prefix", "ParameterValue": "ann"}],
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    stack = cfn.describe_stacks(StackName="ann-jobcontroller")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    created = {
        r["LogicalResourceId"]: r["ResourceStatus"]
        for r in cfn.list_stack_resources(StackName="ann-jobcontroller")["StackResourceSummaries"]
    }
    assert set(created) == set(part["Resources"])
    assert set(created.values()) == {"CREATE_COMPLETE"}

    iam, lam = target.client("iam"), target.client("lambda")
    policy = iam.get_role_policy(RoleName=NAMES.function_role, PolicyName="jobcontroller")
    assert _document(policy["PolicyDocument"]) == d.function_role_policy(
        NAMES, account=ACCOUNT, region=REGION
    )
    policy = iam.get_role_policy(RoleName=NAMES.scheduler_role, PolicyName="jobcontroller")
    assert _document(policy["PolicyDocument"]) == d.scheduler_role_policy(
        NAMES, account=ACCOUNT, region=REGION
    )
    config = lam.get_function_configuration(FunctionName=NAMES.function)
    role_arn = iam.get_role(RoleName=NAMES.function_role)["Role"]["Arn"]
    expected = d.function_config(NAMES, d.FunctionSettings(), role_arn)
    assert {k: config[k] for k in expected} == expected
    assert config["CodeSha256"] == inspect_zip(zip_path).code_sha256
    table = target.client("dynamodb").describe_table(TableName=NAMES.table)["Table"]
    assert [k["AttributeName"] for k in table["KeySchema"]] == ["PK", "SK"]

    cfn.delete_stack(StackName="ann-jobcontroller")
    assert d.leftovers(target, "ann") == []


def test_template_and_deploy_module_give_the_same_function(target, template, tmp_path):
    """The function from the template and the one from deploy() have the same configuration."""
    zip_path = build_zip(out_dir=tmp_path)
    part, _ = _moto_supported_part(_package(template, target, zip_path))
    cfn = target.client("cloudformation")
    cfn.create_stack(
        StackName="cfn-jobcontroller",
        TemplateBody=json.dumps(part),
        Parameters=[{"ParameterKey": "Prefix", "ParameterValue": "cfn"}],
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    d.deploy(target, d.Names("dep"), zip_path=zip_path, clock=ManualClock())
    lam = target.client("lambda")

    def comparable(prefix: str) -> dict[str, Any]:
        config = lam.get_function_configuration(FunctionName=f"{prefix}-hourly_processor")
        keep = ("Runtime", "Handler", "Timeout", "MemorySize", "CodeSha256", "Environment")
        text = json.dumps({k: config[k] for k in keep})
        return json.loads(text.replace(f"{prefix}-", "<prefix>-"))

    assert comparable("cfn") == comparable("dep")
