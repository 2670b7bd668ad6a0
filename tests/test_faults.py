"""Faults: crashes, lost leases, duplicates, throttling and lost responses never cause
duplicate or stuck work."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import timedelta

import botocore.endpoint
import pytest
from botocore.awsrequest import AWSResponse

from jobcontroller import (
    CommitConflict,
    ControlStore,
    JobConfig,
    JobController,
    Outcome,
    PlaceholderFailure,
    Reason,
    SequentialIds,
    Status,
    StoreThrottled,
    Trigger,
    WorkloadCrash,
    placeholder,
)
from jobcontroller.controller import ACQUIRE_ATTEMPTS
from jobcontroller.course.counterexamples import naive_acquire
from jobcontroller.embedded import exported
from jobcontroller.model import format_ts
from jobcontroller.store import COMMIT_ATTEMPTS, MAX_ATTEMPTS

pytestmark = pytest.mark.every_backend

JOB = "hourly_processor"
# History kept for a century, so DynamoDB Local's TTL sweeper leaves what the fixed clock
# writes alone (see TEST_HISTORY_DAYS in conftest).
CONFIG = JobConfig(run_history_days=36_500)


def scheduled(slot):
    return Trigger(JOB, slot=slot, source="scheduler")


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_):
        yield self._data


def _conflict(operation: str) -> dict:
    """DynamoDB's answer to a write that meets an in-flight transaction on the same item.

    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-conflict-handling
    """
    if operation == "TransactWriteItems":
        return {
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            "message": "Transaction cancelled, please refer cancellation reasons for specific "
            "reasons [TransactionConflict, None]",
            "CancellationReasons": [
                {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"},
                {"Code": "None"},
            ],
        }
    return {
        "__type": "com.amazonaws.dynamodb.v20120810#TransactionConflictException",
        "message": "Transaction is ongoing for the item",
    }


class Faults:
    """Make chosen DynamoDB requests fail on the wire, counting every attempt.

    `throttle(op, n)`: the next n attempts of `op` are answered with a throttling error
    and never reach the backend. `conflict(op, n)`: the next n attempts are refused as
    DynamoDB refuses a write to an item that another transaction is changing
    (TransactionConflictException, or a transaction cancelled with reason TransactionConflict),
    and never reach the backend. `lose_response(op, n)`: the next n attempts reach the
    backend and are applied, but the client gets a 500 instead of the answer.

    botocore's backoff before each retry (`backoffs`, in seconds) is recorded, not slept:
    the standard mode waits up to 1, 2, 4 and 8 s, which would only make the tests slow.
    """

    def __init__(self, client) -> None:
        self.attempts: dict[str, int] = {}
        self.tokens: list[str] = []  # ClientRequestToken of every attempt that carried one
        self.backoffs: list[float] = []
        self._plan: dict[str, list[str]] = {}
        client.meta.events.register("before-send.dynamodb", self._before_send)

    def throttle(self, operation: str, times: int) -> None:
        self._plan.setdefault(operation, []).extend(["throttle"] * times)

    def conflict(self, operation: str, times: int) -> None:
        self._plan.setdefault(operation, []).extend(["conflict"] * times)

    def lose_response(self, operation: str, times: int) -> None:
        self._plan.setdefault(operation, []).extend(["lose"] * times)

    def _before_send(self, request, **_):
        operation = request.headers["X-Amz-Target"].decode().split(".")[-1]
        self.attempts[operation] = self.attempts.get(operation, 0) + 1
        token = json.loads(request.body).get("ClientRequestToken")
        if token is not None:
            self.tokens.append(token)
        plan = self._plan.get(operation)
        if not plan:
            return None
        fault = plan.pop(0)
        if fault == "conflict":
            body = json.dumps(_conflict(operation)).encode()
            return AWSResponse(request.url, 400, {}, _Body(body))
        if fault == "throttle":
            body = {
                "__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
                "message": "Rate of requests exceeds the allowed throughput.",
            }
            return AWSResponse(request.url, 400, {}, _Body(json.dumps(body).encode()))
        # Deliver the request for real, then drop the answer on the floor.
        forwarded = urllib.request.Request(
            request.url, data=request.body, headers=dict(request.headers), method=request.method
        )
        try:
            with urllib.request.urlopen(forwarded) as response:
                response.read()
        except urllib.error.HTTPError:
            pass  # a refused condition is an answer too, and it is lost all the same
        body = {"__type": "InternalServerError", "message": "lost on the way back"}
        return AWSResponse(request.url, 500, {}, _Body(json.dumps(body).encode()))


@pytest.fixture
def prod_store(store, clock):
    """The store with the production client settings (standard retry mode), on a session
    read from the environment as the store's own would be, sharing the loaded models."""
    return ControlStore(store.table, clock=clock, session=exported.new_session())


class _RecordedTime:
    """Stands in for the `time` module in botocore.endpoint, whose only use is the sleep
    between retries: the backoff is recorded instead of waited for."""

    def __init__(self, faults: Faults) -> None:
        self._faults = faults

    def sleep(self, seconds: float) -> None:
        self._faults.backoffs.append(seconds)


@pytest.fixture
def faults(prod_store, monkeypatch):
    injected = Faults(prod_store.client)
    monkeypatch.setattr(botocore.endpoint, "time", _RecordedTime(injected))
    return injected


@pytest.fixture
def controller(prod_store, clock):
    return JobController(prod_store, JOB, config=CONFIG, clock=clock, new_run_id=SequentialIds())


def test_crash_after_acquire_is_taken_over_after_the_lease(controller, store, clock):
    """A crashed run holds the lock only until its lease passes; the takeover is recorded."""
    slot = clock.now()
    with pytest.raises(WorkloadCrash):
        controller.invoke(scheduled(slot), placeholder(crash=True), remaining_ms=900_000)
    crashed = store.read(JOB)
    assert (crashed.status, crashed.run_id) == (Status.RUNNING, "run-0001")

    clock.advance(minutes=5)
    assert controller.invoke(scheduled(slot), placeholder()).reason is Reason.RUNNING

    clock.advance(minutes=10)  # past the 14 min 50 s lease
    result = controller.invoke(scheduled(slot), placeholder())
    assert (result.outcome, result.took_over_from) == (Outcome.SUCCEEDED, "run-0001")
    state = store.read(JOB)
    assert (state.status, state.run_count, state.takeover_count) == (Status.IDLE, 1, 1)
    assert state.last_takeover_from == "run-0001"
    [history] = store.runs(JOB)
    assert history.took_over_from == "run-0001"


def test_the_seeds_design_stays_wedged_after_a_crash(store, clock):
    """Without a lease, a crash after the naive acquire blocks the job for good."""
    assert naive_acquire(store, JOB, run_id="crashed", now=clock.now()) is True
    for _ in range(3):
        clock.advance(hours=24)
        assert naive_acquire(store, JOB, run_id="next", now=clock.now()) is False
    assert store.read(JOB).run_id == "crashed"


def test_a_late_commit_is_fenced_off(controller, store, clock, raw_item):
    """A run that overran its lease cannot overwrite the run that took over from it."""
    slot = clock.now()
    successor = JobController(
        store, JOB, config=CONFIG, clock=clock, new_run_id=SequentialIds(prefix="successor-")
    )
    seen = {}

    def slow_then_overtaken(ctx):
        clock.advance(minutes=20)  # the lease (14 min 50 s) passes while we work
        seen["successor"] = successor.invoke(scheduled(slot), placeholder())
        seen["item_after_successor"] = raw_item()
        return "late result"

    late = controller.invoke(scheduled(slot), slow_then_overtaken, remaining_ms=900_000)
    assert seen["successor"].outcome is Outcome.SUCCEEDED
    assert seen["successor"].took_over_from == "run-0001"
    assert late.outcome is Outcome.FENCED
    assert raw_item() == seen["item_after_successor"]
    assert store.read(JOB).run_count == 1
    assert [r.run_id for r in store.runs(JOB)] == ["successor-0001"]


@pytest.mark.parametrize("wait_hours", [0, 0.5, 3])
def test_duplicate_delivery_of_a_finished_slot(controller, store, clock, raw_item, wait_hours):
    """A slot delivered again (at once, later, or after later slots) is skipped, writing nothing."""
    slot = clock.now()
    controller.invoke(scheduled(slot), placeholder())
    for hour in range(1, int(wait_hours) + 1):
        clock.set(max(clock.now(), slot + timedelta(hours=hour)))  # slots come in their hour
        controller.invoke(scheduled(slot + timedelta(hours=hour)), placeholder())
    clock.set(max(clock.now(), slot + timedelta(hours=wait_hours)))
    before = raw_item()
    result = controller.invoke(scheduled(slot), placeholder())
    assert (result.outcome, result.reason) == (Outcome.SKIPPED, Reason.SLOT_DONE)
    assert raw_item() == before


def test_throttled_acquire_is_retried_without_a_duplicate_run(controller, store, faults, clock):
    """Two throttled acquires are retried by botocore; the job runs once."""
    faults.throttle("UpdateItem", 2)
    result = controller.invoke(scheduled(clock.now()), placeholder())
    assert result.outcome is Outcome.SUCCEEDED
    assert faults.attempts["UpdateItem"] == 3
    assert len(faults.backoffs) == 2
    assert store.read(JOB).run_count == 1


def test_throttled_commit_is_retried_without_a_duplicate_run(controller, store, faults, clock):
    """Two throttled commits are retried by botocore; one success, one history item."""
    faults.throttle("TransactWriteItems", 2)
    result = controller.invoke(scheduled(clock.now()), placeholder())
    assert result.outcome is Outcome.SUCCEEDED
    assert faults.attempts["TransactWriteItems"] == 3
    assert store.read(JOB).run_count == 1
    assert len(store.runs(JOB)) == 1


@pytest.mark.parametrize("operation", ["GetItem", "UpdateItem"])
def test_throttled_on_every_attempt_is_the_packages_error_and_changes_nothing(
    controller, store, faults, clock, operation
):
    """Throttled on all attempts: StoreThrottled says so, and the item is as it was."""
    before = store.read(JOB)
    faults.throttle(operation, MAX_ATTEMPTS)
    with pytest.raises(StoreThrottled, match="not applied"):
        controller.invoke(scheduled(clock.now()), placeholder())
    assert faults.attempts[operation] >= MAX_ATTEMPTS
    # botocore backed off before each of its retries (recorded by Faults, not slept).
    assert len(faults.backoffs) == MAX_ATTEMPTS - 1
    assert store.read(JOB) == before


def test_ambiguous_acquire_recognises_its_own_write(controller, store, faults, clock):
    """An acquire applied but answered with an error is retried, sees itself, and runs once."""
    faults.lose_response("UpdateItem", 1)
    result = controller.invoke(scheduled(clock.now()), placeholder())
    assert result.outcome is Outcome.SUCCEEDED
    assert faults.attempts["UpdateItem"] == 2
    state = store.read(JOB)
    assert (state.run_count, state.status, state.last_run_id) == (1, Status.IDLE, "run-0001")


def test_ambiguous_acquire_that_never_gets_an_answer_does_not_wedge(
    controller, store, faults, clock
):
    """If every answer is lost the invocation fails, and the lease lets the next slot run."""
    faults.lose_response("UpdateItem", MAX_ATTEMPTS)
    slot = clock.now()
    with pytest.raises(Exception, match=r"InternalServerError|lost on the way back"):
        controller.invoke(scheduled(slot), placeholder(), remaining_ms=300_000)
    assert store.read(JOB).status is Status.RUNNING
    clock.advance(minutes=5)
    result = controller.invoke(scheduled(slot), placeholder())
    assert (result.outcome, result.took_over_from) == (Outcome.SUCCEEDED, "run-0001")
    assert store.read(JOB).run_count == 1


def test_ambiguous_commit_is_not_counted_twice(controller, store, faults, clock):
    """A commit applied but answered with an error is recognised on retry, not repeated.

    DynamoDB answers the retry, which carries the same ClientRequestToken, as a success
    without applying it again; moto ignores the token, refuses the retry on the fence, and
    the store recognises its own commit in the item that blocked it.
    """
    faults.lose_response("TransactWriteItems", 1)
    result = controller.invoke(scheduled(clock.now()), placeholder())
    assert result.outcome is Outcome.SUCCEEDED
    assert faults.attempts["TransactWriteItems"] == 2
    assert store.read(JOB).run_count == 1
    assert len(store.runs(JOB)) == 1


def test_failure_record_that_fails_keeps_the_workloads_exception(controller, store, faults, clock):
    """When recording a failure also fails, the workload's own exception is what surfaces."""
    faults.throttle("TransactWriteItems", MAX_ATTEMPTS)
    with pytest.raises(PlaceholderFailure) as info:
        controller.invoke(scheduled(clock.now()), placeholder(fail=True), remaining_ms=300_000)
    assert "recording this failure also failed" in "".join(info.value.__notes__)
    assert info.value.__cause__ is not None
    # The lock is left to its lease, exactly as after a crash.
    assert store.read(JOB).status is Status.RUNNING


def test_acquire_meeting_a_transaction_reads_again_and_runs(controller, store, faults, clock):
    """An acquire refused by one TransactionConflictException reads, decides and tries again,
    so the slot's only delivery still runs, once."""
    faults.conflict("UpdateItem", 1)
    result = controller.invoke(scheduled(clock.now()), placeholder())
    assert result.outcome is Outcome.SUCCEEDED
    assert (faults.attempts["UpdateItem"], faults.attempts["GetItem"]) == (2, 2)
    assert store.read(JOB).run_count == 1


def test_acquire_that_keeps_meeting_transactions_is_a_lost_race(
    controller, store, faults, clock, raw_item
):
    """After ACQUIRE_ATTEMPTS conflicts it skips with LOST_RACE, naming the transaction, and
    has written nothing."""
    faults.conflict("UpdateItem", ACQUIRE_ATTEMPTS)
    before = raw_item()
    result = controller.invoke(scheduled(clock.now()), placeholder())
    assert (result.outcome, result.reason) == (Outcome.SKIPPED, Reason.LOST_RACE)
    assert "transaction" in result.detail
    assert faults.attempts["UpdateItem"] == ACQUIRE_ATTEMPTS
    assert raw_item() == before


def test_commit_meeting_a_transaction_is_retried_with_the_same_token(
    controller, store, faults, clock
):
    """A commit cancelled by a conflict is sent again, same token, after a backoff on the clock."""
    faults.conflict("TransactWriteItems", 2)
    slot = clock.now()
    result = controller.invoke(scheduled(slot), placeholder(seconds=0))
    assert result.outcome is Outcome.SUCCEEDED
    assert faults.attempts["TransactWriteItems"] == 3
    assert len(faults.tokens) == 3 and len(set(faults.tokens)) == 1
    assert clock.now() > slot  # the backoff slept on the injected clock, not the wall clock
    state = store.read(JOB)
    assert (state.status, state.run_count, len(store.runs(JOB))) == (Status.IDLE, 1, 1)


def test_commit_that_keeps_conflicting_is_reported_clearly(controller, store, faults, clock):
    """After its bounded retries the commit raises the package's CommitConflict naming the lease."""
    faults.conflict("TransactWriteItems", COMMIT_ATTEMPTS)
    with pytest.raises(CommitConflict, match="lease") as info:
        controller.invoke(scheduled(clock.now()), placeholder(seconds=0), remaining_ms=300_000)
    state = store.read(JOB)
    assert state.status is Status.RUNNING and state.run_id == "run-0001"
    assert format_ts(state.lease_expires_at) in str(info.value)
    assert faults.attempts["TransactWriteItems"] == COMMIT_ATTEMPTS


def test_botocore_retries_of_one_commit_reuse_its_token(controller, store, faults, clock):
    """Retries of one request carry one token, so DynamoDB applies the commit at most once."""
    faults.throttle("TransactWriteItems", 2)
    controller.invoke(scheduled(clock.now()), placeholder(seconds=0))
    assert len(faults.tokens) == 3 and len(set(faults.tokens)) == 1
