"""The naming module: names derived from one prefix, and the real-AWS opt-in of `connect`."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from jobcontroller.errors import ConfigError, RealAWSNotConfirmed
from jobcontroller.ops import naming

ACCOUNT = "123456789012"  # moto's
REGION = "us-east-1"


# --- names -------------------------------------------------------------------------------


def test_names_derive_from_prefix_and_job():
    """Every resource name starts with the prefix and carries the job."""
    names = naming.Names("ann", "nightly")
    assert names.table == "ann-job_control"
    assert names.function == "ann-nightly"
    assert names.log_group == "/aws/lambda/ann-nightly"
    assert names.function_role == "ann-nightly-fn"
    assert names.scheduler_role == "ann-nightly-scheduler"
    assert names.failure_queue == "ann-nightly-failures"
    assert names.schedule_dlq == "ann-nightly-schedule-dlq"
    assert names.schedule_group == "ann-jobcontroller"
    assert names.schedule == "ann-nightly"
    assert names.iam_path == "/jobcontroller/ann/"
    assert names.tags == {"jobcontroller:prefix": "ann"}


@pytest.mark.parametrize("prefix", ["", "Ann", "ann-b", "7ann", "a" * 17, "an n", None])
def test_unusable_prefix_is_refused(prefix):
    """An empty, upper-case, hyphenated, too long or non-string prefix is refused with the rule."""
    with pytest.raises(ConfigError, match="lowercase letter"):
        naming.Names(prefix)


def test_job_name_that_makes_names_too_long_is_refused():
    """A job name that would overflow an AWS name limit is refused, naming the resource."""
    with pytest.raises(ConfigError, match="longer than AWS allows"):
        naming.Names("annannannannanna", "j" * 50)


def test_bad_job_name_is_refused():
    """A job name that cannot be a control-item key is refused."""
    with pytest.raises(ConfigError, match="job name"):
        naming.Names("ann", "no spaces")


# --- the real-AWS opt-in ---------------------------------------------------------------


class _RealLookingSession(boto3.session.Session):
    """A session that points at real AWS endpoints but answers STS from a stub (no network)."""

    def __init__(self, account: str = "111122223333") -> None:
        super().__init__(aws_access_key_id="x", aws_secret_access_key="y", region_name="eu-west-1")
        self.account = account
        self.sts_calls = 0

    def client(self, service, *args, **kwargs):
        kwargs["endpoint_url"] = f"https://{service}.eu-west-1.amazonaws.com"
        client = super().client(service, *args, **kwargs)
        if service == "sts":
            stub = Stubber(client)
            stub.add_response(
                "get_caller_identity",
                {
                    "Account": self.account,
                    "Arn": f"arn:aws:iam::{self.account}:user/me",
                    "UserId": "AID",
                },
            )
            stub.activate()
            client.meta.events.register(
                "before-call.sts.GetCallerIdentity", lambda **_: self._count()
            )
        return client

    def _count(self) -> None:
        self.sts_calls += 1


def test_embedded_backend_needs_no_opt_in(fresh_aws):
    """On the embedded backend connect returns a Target without any opt-in."""
    said = []
    target = naming.connect(fresh_aws.session(), env={}, say=said.append)
    assert target.embedded is True
    assert (target.account, target.region) == (ACCOUNT, REGION)
    assert said == [f"Target: embedded backend (moto): account {ACCOUNT}, region {REGION}"]


@pytest.mark.parametrize("env", [{}, {"JOBCONTROLLER_BACKEND": "dynamodb-local"}], ids=str)
def test_real_aws_without_the_environment_variable_is_refused_before_any_call(env):
    """Unless the backend chosen is aws, real AWS is refused before even STS is called."""
    session = _RealLookingSession()
    with pytest.raises(RealAWSNotConfirmed, match=r"JOBCONTROLLER_BACKEND=aws.*REAL_AWS=1"):
        naming.connect(session, env=env, confirm="111122223333", say=None)
    assert session.sts_calls == 0


@pytest.mark.parametrize("confirm", [None, "", "999999999999"])
def test_real_aws_without_the_matching_account_is_refused_after_showing_it(confirm):
    """With the variable but no matching confirm, the account and region are shown, then refused."""
    said = []
    with pytest.raises(RealAWSNotConfirmed, match="confirm='111122223333'"):
        naming.connect(
            _RealLookingSession(),
            env={"JOBCONTROLLER_REAL_AWS": "1"},
            confirm=confirm,
            say=said.append,
        )
    assert len(said) == 1
    assert "REAL AWS: account 111122223333, region eu-west-1" in said[0]


@pytest.mark.parametrize(
    "opt_in", [{"JOBCONTROLLER_REAL_AWS": "1"}, {"JOBCONTROLLER_BACKEND": "aws"}], ids=str
)
def test_real_aws_with_both_opt_ins_gives_a_real_target(opt_in):
    """Either spelling of the variable plus confirm=<account id> gives a real-AWS Target."""
    target = naming.connect(
        _RealLookingSession(),
        env=opt_in,
        confirm="111122223333",
        say=None,
    )
    assert target.embedded is False
    assert (target.account, target.region) == ("111122223333", "eu-west-1")


def test_missing_region_is_a_clear_error(aws, monkeypatch):
    """A session with no region gives ConfigError naming AWS_DEFAULT_REGION."""
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    session = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="y")
    assert session.region_name is None
    with pytest.raises(ConfigError, match="AWS_DEFAULT_REGION"):
        naming.connect(session, say=None)
