"""Fixtures shared by every test module."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobcontroller.embedded.realism import Realism, VirtualTime, install_default
from jobcontroller.embedded.server import EmbeddedAWS, start_embedded


@pytest.fixture(scope="session")
def aws() -> Iterator[EmbeddedAWS]:
    """The embedded backend, started once for the session; plain boto3 clients reach it."""
    backend = start_embedded()
    yield backend
    backend.stop()


@pytest.fixture(autouse=True)
def no_backend_choice_from_the_shell(monkeypatch):
    """Each test talks to the backend it sets up: a JOBCONTROLLER_BACKEND (or the old
    JOBCONTROLLER_REAL_AWS) left in the shell must not send setup() elsewhere."""
    monkeypatch.delenv("JOBCONTROLLER_BACKEND", raising=False)
    monkeypatch.delenv("JOBCONTROLLER_REAL_AWS", raising=False)


@pytest.fixture(autouse=True)
def realism() -> Iterator[Realism]:
    """The AWS realism layer every embedded Target gets, on virtual time: AWS's delays pass
    only when the code under test waits for them, so nothing sleeps for real."""
    layer = Realism(time=VirtualTime())
    old = install_default(layer)
    yield layer
    install_default(old)


@pytest.fixture
def fresh_aws(aws: EmbeddedAWS) -> EmbeddedAWS:
    """The embedded backend with every moto resource wiped before the test."""
    aws.reset()
    return aws


# --- every backend: moto (the default) and Amazon's DynamoDB Local -------------------------

# Modules marked `every_backend` run each test on both; elsewhere `backend` is moto only.
# Modules also marked `contract` (the store's and the controller's contract) run a third time
# on DynamoDB in memory, the fault simulation's backend, so that fake cannot drift.
BACKENDS = {"moto": [], "dynamodb-local": [pytest.mark.dynamodb_local], "memory": []}
_ACCOUNTS = itertools.count(1)


def pytest_configure(config):
    for line in (
        "every_backend: run the module's tests on moto and on DynamoDB Local",
        "dynamodb_local: the test runs on Amazon's DynamoDB Local",
        "xfail_on(backend, *, reason): a known failure on that backend only (strict)",
        "contract: with every_backend, also run on DynamoDB in memory (embedded/memory.py)",
    ):
        config.addinivalue_line("markers", line)


def pytest_generate_tests(metafunc):
    definition = metafunc.definition
    if "backend" not in metafunc.fixturenames or not definition.get_closest_marker("every_backend"):
        return
    params = []
    for name, marks in BACKENDS.items():
        if name == "memory" and not definition.get_closest_marker("contract"):
            continue
        for known in definition.iter_markers("xfail_on"):
            if known.args[0] == name:
                # Strict: once the cause is fixed the test passes and the mark must go.
                marks = [*marks, pytest.mark.xfail(strict=True, reason=known.kwargs["reason"])]
        params.append(pytest.param(name, marks=marks, id=name))
    metafunc.parametrize("backend", params, indirect=True)


_LEFT_OUT = pytest.StashKey[str]()

# --- running in parallel (pytest-xdist, `--dist loadfile`, as tasks.py runs the suite) ------

# A file is the unit a worker takes: a notebook's cells run in order in one kernel, and module
# fixtures are set up once. Files that share an expensive session fixture are one unit, so the
# fixture runs once per suite, not once per worker (`e2e_run`, about 20 s).
_ONE_UNIT = {"tests/test_end_to_end.py": "e2e_run", "tests/test_iam.py": "e2e_run"}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """`--dist loadfile`, with `_ONE_UNIT`'s files together, taken in collection order."""
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class FileScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            scope = super()._split_scope(nodeid)
            return _ONE_UNIT.get(scope, scope)

    # Collection order, not xdist's "most tests first": the workers put the files holding
    # slow tests first (`_slow_files_first`), the units that would otherwise finish last.
    config.option.loadscopereorder = False
    return FileScheduling(config, log)


def _slow_files_first(config, items) -> None:
    """On an xdist worker, move the files that hold a test marked slow to the front."""
    if not hasattr(config, "workerinput"):
        return
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow)  # stable: file order kept otherwise


def pytest_collection_modifyitems(config, items):
    """Without Java or the engine, leave the DynamoDB Local tests out and say so once; on an
    xdist worker, order the files for the scheduler (`_slow_files_first`)."""
    _slow_files_first(config, items)
    ours = [item for item in items if item.get_closest_marker("dynamodb_local")]
    if not ours or os.environ.get("JOBCONTROLLER_REQUIRE_DYNAMODB_LOCAL"):
        return
    from jobcontroller.embedded.dynamodb_local import DynamoDBLocalMissing, find_engine, find_java

    try:
        find_java()
        find_engine()
    except DynamoDBLocalMissing as missing:
        # Deselected, not skipped: pytest prints a skip once per test location, this once.
        config.hook.pytest_deselected(items=ours)
        items[:] = [item for item in items if not item.get_closest_marker("dynamodb_local")]
        config.stash[_LEFT_OUT] = f"{len(ours)} DynamoDB Local tests left out: {missing}"


def pytest_terminal_summary(terminalreporter, config):
    if _LEFT_OUT in config.stash:
        terminalreporter.write_line(f"SKIPPED {config.stash[_LEFT_OUT]}", yellow=True)


@pytest.fixture(scope="session")
def dynamodb_local():
    """Amazon's DynamoDB Local, started once per session; its tests skip if it is missing."""
    from jobcontroller.embedded.dynamodb_local import DynamoDBLocal, DynamoDBLocalMissing

    # Not shared: each access key is a database of its own (see `backend`).
    engine = DynamoDBLocal(export_environment=False, shared_db=False)
    try:
        engine.start()
    except DynamoDBLocalMissing as missing:
        if os.environ.get("JOBCONTROLLER_REQUIRE_DYNAMODB_LOCAL"):
            pytest.fail(f"DynamoDB Local is required here (CI runs both backends): {missing}")
        # One reason for every skipped test, so pytest's -r summary prints one line.
        pytest.skip(f"DynamoDB Local tests skipped: {missing}")
    yield engine
    engine.stop()


@pytest.fixture
def backend(request, monkeypatch):
    """The backend a test talks to, reset and exported to boto3 through the environment."""
    if getattr(request, "param", "moto") == "moto":
        return request.getfixturevalue("fresh_aws")
    if request.param == "memory":
        from jobcontroller.embedded.memory import MemoryDynamoDB

        return MemoryDynamoDB()
    import boto3

    from jobcontroller.embedded import exported

    request.getfixturevalue("aws")  # its guard keeps every request on loopback
    engine = request.getfixturevalue("dynamodb_local")
    for key, value in engine.environment().items():
        monkeypatch.setenv(key, value)
    # A fresh access key is a fresh, empty database: tables, and the request tokens DynamoDB
    # remembers for 10 minutes, which deleting tables would not forget.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", f"test{next(_ACCOUNTS):06d}")
    # boto3's default session caches the endpoint and credentials it first saw: a new one,
    # sharing the models this process has loaded.
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", exported.new_session())
    return engine


# --- the serve commands (`python -m jobcontroller.embedded`, `... dynamodb_local serve`) -----


@pytest.fixture
def serving():
    """Start a serve command and read its output up to the line that says it is serving.

    `serving(command, sigint="SIG_IGN")` starts `command` (a list) with SIGINT ignored, as a
    shell script's `&` job has it (a process inherits the disposition through exec), or
    "SIG_DFL" as a terminal leaves it. Returns the process (stdout and stderr piped), the
    lines read and the `export` lines as a dict. Every process started is killed at the end.
    """
    import subprocess
    import sys

    started = []

    def start(command, *, sigint="SIG_DFL", **popen):
        launch = (
            f"import os, signal, sys; signal.signal(signal.SIGINT, signal.{sigint}); "
            f"os.execv(sys.executable, {list(command)!r})"
        )
        server = subprocess.Popen(
            [sys.executable, "-c", launch],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            **popen,
        )
        started.append(server)
        lines = []
        while not lines or "Serving" not in lines[-1]:
            line = server.stdout.readline()
            assert line, f"it exited before serving: {lines}"
            lines.append(line)
        exports = dict(
            line.strip().removeprefix("export ").split("=", 1)
            for line in lines
            if line.startswith("export ")
        )
        return server, lines, exports

    yield start
    for server in started:
        server.kill()
        server.wait()
        server.stdout.close()
        server.stderr.close()


# --- the core's fixtures: a fresh table and job on the embedded backend -------------------

JOB = "hourly_processor"
TABLE = "job_control"
T0 = "2026-01-05T09:00:00Z"
# Run history written at the fixed clock (T0) with the default 7 days is already past its
# TTL in real time, and DynamoDB Local's TTL sweeper deletes such items within seconds,
# mid-test. Tests that read history back keep it for a century instead.
# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/howitworks-ttl.html
TEST_HISTORY_DAYS = 36_500


@pytest.fixture
def clock():
    """A manual clock at the course's fixed start time."""
    from jobcontroller import ManualClock

    return ManualClock(T0)


@pytest.fixture
def dynamodb(backend):
    """A plain DynamoDB client on the freshly reset backend (moto unless parametrized)."""
    import boto3

    from jobcontroller.embedded.memory import MemoryDynamoDB

    if isinstance(backend, MemoryDynamoDB):
        return backend  # it is the client
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
        options.setdefault("config", JobConfig(run_history_days=TEST_HISTORY_DAYS))
        return JobController(store, JOB, clock=clock, new_run_id=ids, **options)

    return make


@pytest.fixture
def raw_item(dynamodb):
    """Read the job's control item exactly as stored (attribute for attribute)."""

    def read(job=JOB):
        key = {"PK": {"S": f"JOB#{job}"}, "SK": {"S": "STATE"}}
        return dynamodb.get_item(TableName=TABLE, Key=key, ConsistentRead=True).get("Item")

    return read


# --- the runner's fixtures (test_runner, test_driver, test_authz): a deployed stack ---------


@pytest.fixture
def target(fresh_aws):
    """A Target on the freshly reset embedded backend."""
    from jobcontroller.ops import deploy as d

    return d.connect(fresh_aws.session(), say=None)


@pytest.fixture
def zip_path(tmp_path_factory):
    """The deployment zip, built once per test."""
    from jobcontroller.ops.packaging import build_zip

    return build_zip(out_dir=tmp_path_factory.mktemp("zip"))


@pytest.fixture
def stack(target):
    """The course's stack for 'ann' (a workload of 0 s) and a recording runner for it."""
    from jobcontroller import ManualClock
    from jobcontroller.ops import deploy as d
    from jobcontroller.ops.runner import LocalLambdaRunner

    names = d.Names("ann")
    d.deploy(
        target,
        names,
        function=d.FunctionSettings(workload_seconds=0),
        clock=ManualClock("2026-01-05T08:00:00Z"),
    )
    with LocalLambdaRunner(target, names.function, record_calls=True) as runner:
        yield names, runner


@pytest.fixture
def stack_store(target, stack):
    """The stack's control store."""
    from jobcontroller import ControlStore

    names, _ = stack
    return ControlStore(names.table, client=target.client("dynamodb"))


# --- the end-to-end run (tests/test_end_to_end.py and tests/test_iam.py) -------------------

E2E_PREFIX = "e2e"
E2E_DAY = "2026-01-05T09:00:00Z"
# The day's trouble, by slot (HH:MM): sequential and racing duplicates, a late delivery,
# a failing run and a crash whose lease the next slot takes over.
E2E_SEQUENTIAL = {"10:00": 2}
E2E_RACING = {"11:00": 3}
E2E_LATE = {"12:00": 59}
E2E_DRILLS = {"14:00": "FAIL", "17:00": "CRASH"}


@pytest.fixture(scope="session")
def e2e_run(aws, tmp_path_factory):
    """Deploy prefix 'e2e', fire 24 hourly slots through the schedule driver and the built
    zip (recording every AWS call the handler makes), read back everything the tests check,
    then tear down twice. Runs once per session: what it saw is kept in a namespace."""
    import json
    import time
    from datetime import timedelta
    from types import SimpleNamespace

    from jobcontroller import ManualClock, SequentialIds
    from jobcontroller.ops import deploy as d
    from jobcontroller.ops.driver import ScheduleDriver
    from jobcontroller.ops.runner import LocalLambdaRunner
    from jobcontroller.ops.schedules import slot_run_id
    from jobcontroller.store import ControlStore

    aws.reset()
    started = time.monotonic()
    target = d.connect(aws.session(), say=None)
    names = d.Names(E2E_PREFIX)
    deployment = d.deploy(target, names, clock=ManualClock("2026-01-05T08:55:00Z"))
    store = ControlStore(names.table, client=target.client("dynamodb"))
    iam = target.client("iam")

    def role(name):
        inline = {
            p: iam.get_role_policy(RoleName=name, PolicyName=p)["PolicyDocument"]
            for p in iam.list_role_policies(RoleName=name)["PolicyNames"]
        }
        return SimpleNamespace(
            trust=iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"],
            inline=inline,
            attached=iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"],
        )

    def messages(queue):
        sqs = target.client("sqs")
        url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        found = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        found = found.get("Messages", [])
        return [json.loads(m["Body"]) for m in found]

    work = tmp_path_factory.mktemp("e2e")
    runner = LocalLambdaRunner(
        target,
        names.function,
        work_dir=work,
        record_calls=True,
        request_ids=SequentialIds("request-"),
    )
    driver = ScheduleDriver(target, names, runner, run_ids=slot_run_id)
    first = ManualClock(E2E_DAY).now()
    slots = driver.slots(first, first + timedelta(hours=24))
    deliveries, after, invoke_seconds = {}, {}, 0.0
    for slot in slots:
        key = slot.strftime("%H:%M")
        if key in E2E_DRILLS:
            store.set_drill(names.job, E2E_DRILLS[key])
        copies = E2E_SEQUENTIAL.get(key) or E2E_RACING.get(key) or 1
        fired = time.monotonic()
        deliveries[key] = driver.fire(
            slot,
            delay_seconds=E2E_LATE.get(key, 0),
            copies=copies,
            concurrent=key in E2E_RACING,
        )
        invoke_seconds += time.monotonic() - fired
        after[key] = store.read(names.job)
    runner.close()
    invocations = [x.invocation for batch in deliveries.values() for x in batch]
    run = SimpleNamespace(
        target=target,
        names=names,
        deployment=deployment,
        slots=slots,
        deliveries=deliveries,
        after=after,
        final=store.read(names.job),
        history=store.runs(names.job, limit=100),
        ttl=target.client("dynamodb").describe_time_to_live(TableName=names.table)[
            "TimeToLiveDescription"
        ],
        function_env=target.client("lambda").get_function_configuration(
            FunctionName=names.function
        )["Environment"]["Variables"],
        failure_records=messages(names.failure_queue),
        schedule_dlq=messages(names.schedule_dlq),
        calls=[call for invocation in invocations for call in invocation.calls],
        invocations=len(invocations),
        function_role=role(names.function_role),
        scheduler_role=role(names.scheduler_role),
        present_before_teardown=d.leftovers(target, names.prefix),
    )
    run.teardown = d.teardown(target, names)
    run.teardown_again = d.teardown(target, names)
    run.leftovers = d.leftovers(target, names.prefix)
    run.seconds = time.monotonic() - started
    run.seconds_per_invocation = invoke_seconds / len(invocations)
    return run


def _runs_python_312(candidate: str) -> tuple[bool, str]:
    probe = subprocess.run(
        [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 12))"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    said = (probe.stderr.strip().splitlines() or ["no output"])[0]
    return probe.stdout.strip() == "True", said


@pytest.fixture(scope="session")
def python312() -> str:
    """A Python 3.12 (the Lambda runtime's version), or a skip saying why none was found.

    First `python3.12` on PATH; a name on PATH is not proof (a pyenv shim answers for versions
    it has not selected), so it is asked. Then the interpreters pyenv has installed, selected
    or not, as a machine with pyenv often has 3.12 without it being on PATH.
    """
    tried = []
    candidates = [shutil.which("python3.12")]
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    candidates += sorted(str(p) for p in pyenv_root.glob("versions/3.12*/bin/python3.12"))
    for candidate in filter(None, candidates):
        works, said = _runs_python_312(candidate)
        if works:
            return candidate
        tried.append(f"{candidate}: {said[:80]}")
    pytest.skip(
        "no working Python 3.12 (the Lambda runtime's version) on PATH or in pyenv; install "
        "one to run the zip under it" + (f" (tried {'; '.join(tried)})" if tried else "")
    )
