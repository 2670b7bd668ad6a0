"""Fixtures shared by every test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jobcontroller.local import EmbeddedAWS, start_embedded


@pytest.fixture(scope="session")
def aws() -> Iterator[EmbeddedAWS]:
    """The embedded backend, started once for the session; plain boto3 clients reach it."""
    backend = start_embedded()
    yield backend
    backend.stop()


@pytest.fixture
def fresh_aws(aws: EmbeddedAWS) -> EmbeddedAWS:
    """The embedded backend with every moto resource wiped before the test."""
    aws.reset()
    return aws


# --- the core's fixtures: a fresh table and job on the embedded backend -------------------

JOB = "hourly_processor"
TABLE = "job_control"
T0 = "2026-01-05T09:00:00Z"


@pytest.fixture
def clock():
    """A manual clock at the course's fixed start time."""
    from jobcontroller import ManualClock

    return ManualClock(T0)


@pytest.fixture
def dynamodb(fresh_aws):
    """A plain DynamoDB client on the freshly reset embedded backend."""
    import boto3

    return boto3.client("dynamodb")


@pytest.fixture
def store(dynamodb, clock):
    """A ControlStore with the table created and the job initialised."""
    from jobcontroller import ControlStore

    control = ControlStore(TABLE, client=dynamodb)
    control.create_table()
    control.init_job(JOB, now=clock.now())
    return control


@pytest.fixture
def make_controller(store, clock):
    """Build JobControllers that share the store and clock, with sequential run ids."""
    from jobcontroller import JobConfig, JobController, SequentialIds

    ids = SequentialIds()

    def make(**options):
        options.setdefault("config", JobConfig())
        return JobController(store, JOB, clock=clock, new_run_id=ids, **options)

    return make


@pytest.fixture
def raw_item(dynamodb):
    """Read the job's control item exactly as stored (attribute for attribute)."""

    def read(job=JOB):
        key = {"PK": {"S": f"JOB#{job}"}, "SK": {"S": "STATE"}}
        return dynamodb.get_item(TableName=TABLE, Key=key, ConsistentRead=True).get("Item")

    return read
