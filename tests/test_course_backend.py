"""The course's one connect path: the backend JOBCONTROLLER_BACKEND chooses, DynamoDB Local
started once and guarded, clear refusals, and the participant's prefix on real AWS."""

from __future__ import annotations

import os

import pytest

from jobcontroller import Outcome
from jobcontroller.clock import SystemClock
from jobcontroller.course import backend as course_backend
from jobcontroller.course.core import setup
from jobcontroller.embedded import dynamodb_local as ddbl
from jobcontroller.embedded import server
from jobcontroller.errors import ConfigError
from jobcontroller.ops.naming import TAG_KEY, Names


@pytest.fixture
def chosen(monkeypatch):
    """Set JOBCONTROLLER_BACKEND for the test (None: unset), the old switch always unset."""
    monkeypatch.delenv("JOBCONTROLLER_REAL_AWS", raising=False)

    def choose(value):
        if value is None:
            monkeypatch.delenv("JOBCONTROLLER_BACKEND", raising=False)
        else:
            monkeypatch.setenv("JOBCONTROLLER_BACKEND", value)

    return choose


@pytest.fixture
def engine_calls(monkeypatch):
    """Record starts of the kernel's DynamoDB Local and installs of its guard (none real)."""
    calls = {"start": 0, "guard": 0}
    monkeypatch.setattr(course_backend, "_guarded", False)

    def guard():
        calls["guard"] += 1

    monkeypatch.setattr(server, "guard_real_aws", guard)
    return calls


@pytest.fixture
def created(monkeypatch):
    """Record every table the course's store creates (nothing is created for real)."""
    from jobcontroller.store import ControlStore

    tables: list[str] = []
    monkeypatch.setattr(ControlStore, "create_table", lambda self, **_: tables.append(self.table))
    return tables


class _FakeEngine:
    def session(self):
        return "session"


def test_dynamodb_local_is_started_and_guarded_once_per_kernel(chosen, engine_calls, monkeypatch):
    """Every connect reuses the kernel's engine, and the real-AWS guard is installed once."""
    fake = _FakeEngine()

    def start():
        engine_calls["start"] += 1
        return fake

    monkeypatch.setattr(ddbl, "start_dynamodb_local", start)
    chosen("dynamodb-local")
    first = course_backend.connect_local(purpose="test")
    second = course_backend.connect()
    assert first.local is fake and second.local is fake
    assert (first.kind, first.label) == ("dynamodb-local", "DynamoDB Local")
    assert engine_calls == {"start": 2, "guard": 1}


def test_a_missing_engine_names_the_install_task_and_creates_nothing(
    chosen, engine_calls, created, monkeypatch
):
    """Without Java or the engine, setup() says `python3 tasks.py dynamodb-local` and how to
    go back to the embedded backend, before any table or environment variable changes."""

    def start():
        raise ddbl.DynamoDBLocalMissing("DynamoDB Local is not installed: no jar.")

    monkeypatch.setattr(ddbl, "start_dynamodb_local", start)
    chosen("dynamodb-local")
    before = dict(os.environ)
    with pytest.raises(ddbl.DynamoDBLocalMissing) as missing:
        setup()
    message = str(missing.value)
    assert "python3 tasks.py dynamodb-local" in message
    assert "no jar" in message and "unset JOBCONTROLLER_BACKEND" in message
    assert dict(os.environ) == before
    assert created == [] and engine_calls["guard"] == 0


@pytest.mark.parametrize("value", ["moto", "local", "real-aws"])
def test_setup_refuses_a_bad_backend_naming_the_three(chosen, created, value):
    """A JOBCONTROLLER_BACKEND that is not a backend stops setup() before it creates anything."""
    chosen(value)
    with pytest.raises(ConfigError, match="embedded, dynamodb-local, aws"):
        setup()
    assert created == []


def test_the_labs_say_they_use_the_embedded_backend_for_dynamodb_local(chosen):
    """DynamoDB Local serves no Lambda: the labs use the embedded backend and say so, once."""
    said: list[str] = []
    chosen("dynamodb-local")
    assert course_backend.lab_backend(say=said.append) == "embedded"
    assert len(said) == 1
    assert "DynamoDB Local" in said[0] and "embedded backend" in said[0]
    chosen(None)
    assert course_backend.lab_backend(say=said.append) == "embedded"
    chosen("aws")
    assert course_backend.lab_backend(say=said.append) == "aws"
    assert len(said) == 1


@pytest.mark.parametrize(
    ("variable", "value"), [("JOBCONTROLLER_BACKEND", "aws"), ("JOBCONTROLLER_REAL_AWS", "1")]
)
@pytest.mark.parametrize("prefix", [None, "ann"])
def test_on_real_aws_the_table_carries_the_participants_prefix_and_tag(
    fresh_aws, monkeypatch, variable, value, prefix
):
    """With the real-AWS choice (faked: the session still points at moto) the table is the one
    `Names` gives the participant's stack, tagged with the prefix, and `job_control` is not
    created."""
    monkeypatch.delenv("JOBCONTROLLER_BACKEND", raising=False)
    monkeypatch.delenv("JOBCONTROLLER_REAL_AWS", raising=False)
    monkeypatch.setenv(variable, value)
    course = setup() if prefix is None else setup(prefix=prefix)
    expected = Names(prefix or course_backend.DEFAULT_PREFIX)
    assert course.table == expected.table
    assert course.kind == "aws" and course.backend == "real AWS"
    assert isinstance(course.history_clock, SystemClock)
    client = fresh_aws.client("dynamodb")
    assert client.list_tables()["TableNames"] == [expected.table]
    arn = client.describe_table(TableName=expected.table)["Table"]["TableArn"]
    tags = client.list_tags_of_resource(ResourceArn=arn)["Tags"]
    assert {"Key": TAG_KEY, "Value": expected.prefix} in tags


@pytest.mark.parametrize("prefix", ["", "Ann", "ann-1", "a" * 17])
def test_a_bad_prefix_on_real_aws_is_refused_before_the_account_is_touched(
    chosen, created, monkeypatch, prefix
):
    """An unusable prefix raises the naming rules' ConfigError before connect() is called."""
    from jobcontroller.ops import naming

    asked = []
    monkeypatch.setattr(naming, "connect", lambda **kwargs: asked.append(kwargs))
    chosen("aws")
    with pytest.raises(ConfigError, match="prefix"):
        setup(prefix=prefix)
    assert asked == [] and created == []


def test_the_local_backends_keep_the_unprefixed_table(chosen, fresh_aws):
    """On the embedded backend the table stays `job_control`, so stored outputs do not move."""
    chosen(None)
    course = setup(prefix="ann")
    assert course.table == "job_control"
    assert course.backend == "embedded (moto)"
    assert course.history_clock is course.clock


@pytest.fixture
def on_dynamodb_local(chosen, dynamodb_local, engine_calls, monkeypatch):
    """JOBCONTROLLER_BACKEND=dynamodb-local, served by the suite's engine (not exported)."""
    monkeypatch.setattr(ddbl, "start_dynamodb_local", lambda: dynamodb_local)
    chosen("dynamodb-local")
    return dynamodb_local


@pytest.mark.dynamodb_local
def test_setup_runs_the_course_on_dynamodb_local(on_dynamodb_local):
    """setup() on DynamoDB Local: its own label, history stamped in real time (DynamoDB Local
    deletes expired items, so the fixed course day would make history vanish), one run."""
    course = setup(table="course_on_dynamodb_local")
    try:
        assert (course.kind, course.backend) == ("dynamodb-local", "DynamoDB Local")
        assert course.store.client.meta.endpoint_url == on_dynamodb_local.endpoint_url
        assert isinstance(course.history_clock, SystemClock)
        course.at("09:00:05")
        assert course.invoke("09:00").outcome is Outcome.SUCCEEDED
        assert [r.run_id for r in course.runs()] == ["run-0001"]
    finally:
        course.store.delete_table()


@pytest.mark.dynamodb_local
def test_check_lock_races_its_threads_on_dynamodb_local(on_dynamodb_local):
    """Notebook 02's lock checker runs all five checks on Amazon's engine too."""
    from jobcontroller.course.check_lock import check_lock, solution_acquire

    report = check_lock(solution_acquire)
    assert report.ok and len(report.passed) == report.total == 5
