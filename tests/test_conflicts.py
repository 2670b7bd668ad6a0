"""DynamoDB's transaction conflicts on the control item, answered by the embedded server for the
realism layer (embedded.conflicts), and the controller that retries through them."""

from __future__ import annotations

import threading
from datetime import timedelta

import boto3
import pytest
from botocore.exceptions import ClientError
from conftest import JOB, TABLE

from jobcontroller import (
    ControlStore,
    JobConfig,
    JobController,
    ManualClock,
    SequentialIds,
    WriteConflict,
)
from jobcontroller.embedded.conflicts import DOC, TransactionConflicts
from jobcontroller.embedded.realism import disabled
from jobcontroller.model import Outcome, Status, Trigger

KEY = {"PK": {"S": f"JOB#{JOB}"}, "SK": {"S": "STATE"}}


@pytest.fixture
def table(fresh_aws, clock):
    """The job's table and IDLE control item on the freshly reset embedded backend."""
    store = ControlStore(TABLE, client=boto3.client("dynamodb"))
    store.create_table()
    store.init_job(JOB, now=clock.now())
    return store


def _bump(client, item_key=KEY):
    client.update_item(
        TableName=TABLE,
        Key=item_key,
        UpdateExpression="SET version = version + :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
    )


def test_a_single_write_on_the_control_item_meets_a_transaction_in_flight(table, realism):
    """UpdateItem gets TransactionConflictException with AWS's doc link, and nothing changes."""
    realism.conflicts = TransactionConflicts(rate=1.0, in_a_row=1)
    client = boto3.client("dynamodb")
    with pytest.raises(ClientError) as failed:
        _bump(client)
    assert failed.value.response["Error"]["Code"] == "TransactionConflictException"
    assert DOC in failed.value.response["Error"]["Message"]
    assert table.read(JOB).version == 0  # nothing was applied
    _bump(client)  # the transaction in flight has ended: the next write gets through
    assert table.read(JOB).version == 1
    assert realism.conflicts.injected == {"UpdateItem": 1}


def test_a_transaction_is_cancelled_with_the_conflict_as_its_reason(table, realism):
    """TransactWriteItems is cancelled with reasons [TransactionConflict, None], nothing applied."""
    realism.conflicts = TransactionConflicts(rate=1.0)
    client = boto3.client("dynamodb")
    put = {"Put": {"TableName": TABLE, "Item": {"PK": KEY["PK"], "SK": {"S": "RUN#x"}}}}
    update = {
        "Update": {
            "TableName": TABLE,
            "Key": KEY,
            "UpdateExpression": "SET version = :v",
            "ExpressionAttributeValues": {":v": {"N": "7"}},
        }
    }
    with pytest.raises(ClientError) as failed:
        client.transact_write_items(TransactItems=[put, update])
    assert failed.value.response["Error"]["Code"] == "TransactionCanceledException"
    reasons = [r["Code"] for r in failed.value.response["CancellationReasons"]]
    assert reasons == ["None", "TransactionConflict"]
    assert table.read(JOB).version == 0
    run_key = {"PK": KEY["PK"], "SK": {"S": "RUN#x"}}
    assert "Item" not in client.get_item(TableName=TABLE, Key=run_key)


def test_other_items_reads_and_a_switched_off_layer_never_conflict(table, realism):
    """Only writes on a control item conflict, and only while the layer is on."""
    realism.conflicts = TransactionConflicts(rate=1.0)
    client = boto3.client("dynamodb")
    other = {"PK": KEY["PK"], "SK": {"S": "RUN#y"}}
    client.put_item(TableName=TABLE, Item=other)
    client.get_item(TableName=TABLE, Key=KEY)
    with disabled(realism):
        _bump(client)
    assert table.read(JOB).version == 1
    assert not realism.conflicts.injected


def test_the_same_seed_gives_the_same_conflicts():
    """The draws depend on the seed and the order of the requests only."""

    def run(seed):
        conflicts = TransactionConflicts(rate=0.4, seed=seed)
        body = b'{"TableName": "t", "Key": {"PK": {"S": "JOB#a"}, "SK": {"S": "STATE"}}}'
        target = "DynamoDB_20120810.UpdateItem"
        return [conflicts.answer(target, body) is not None for _ in range(40)]

    assert run(3) == run(3)
    assert run(3) != run(4)
    assert 0 < sum(run(3)) < 40


@pytest.mark.parametrize("rate", [-0.1, 1.5])
def test_a_rate_outside_0_to_1_is_refused(rate):
    """A rate is a chance: anything outside [0, 1] is refused with what to give instead."""
    with pytest.raises(ValueError, match="between 0 and 1"):
        TransactionConflicts(rate=rate)


def test_an_acquire_that_keeps_conflicting_gives_up_and_writes_nothing(table, realism, clock):
    """Three conflicts in a row: the controller skips with LOST_RACE and the item is as it was."""
    realism.conflicts = TransactionConflicts(rate=1.0, in_a_row=3)
    controller = JobController(table, JOB, clock=clock, new_run_id=SequentialIds())
    result = controller.invoke(Trigger(JOB, slot=clock.now(), source="scheduler"), lambda ctx: 1)
    assert (result.outcome, str(result.reason)) == (Outcome.SKIPPED, "LOST_RACE")
    assert "transaction was writing the item" in result.detail
    assert table.read(JOB).version == 0
    assert realism.conflicts.injected == {"UpdateItem": 3}


def test_racing_deliveries_under_conflicts_run_each_slot_once_and_wedge_nothing(table, realism):
    """24 slots, each delivered by 3 racing invocations, half the control-item writes meeting
    a conflict: every slot runs exactly once and the job ends IDLE, never left RUNNING."""
    realism.conflicts = TransactionConflicts(rate=0.5, seed=7)
    config = JobConfig(run_history_days=36_500)
    clock = ManualClock("2026-01-05T09:00:00Z")
    ids = SequentialIds()
    ran: list[str] = []
    slots = [clock.now() + timedelta(hours=h) for h in range(24)]
    for slot in slots:
        clock.set(slot)
        results = []

        def deliver(slot=slot, results=results):
            controller = JobController(table, JOB, config=config, clock=clock, new_run_id=ids)
            trigger = Trigger(JOB, slot=slot, source="scheduler")
            results.append(controller.invoke(trigger, lambda ctx: ran.append(ctx.run_id)))

        threads = [threading.Thread(target=deliver) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        succeeded = [r for r in results if r.outcome is Outcome.SUCCEEDED]
        assert len(succeeded) == 1, (slot, results)
        assert table.read(JOB).status is Status.IDLE
    state = table.read(JOB)
    assert state.run_count == len(ran) == 24
    assert state.last_slot == slots[-1]
    assert realism.conflicts.injected["UpdateItem"] > 0
    assert realism.conflicts.injected["TransactWriteItems"] > 0


def test_set_up_writes_are_resent_through_conflicts_and_applied_once(table, realism):
    """init_job, set_drill, set_paused and delete_job meeting two conflicts in a row each are
    resent as they were, applied once, and wait only on the store's clock (0.05 + 0.1 s)."""
    clock = ManualClock("2026-01-05T09:00:00Z")
    store = ControlStore(TABLE, client=boto3.client("dynamodb"), clock=clock)
    realism.conflicts = TransactionConflicts(rate=1.0, in_a_row=2)
    assert store.init_job("other", now=clock.now()) is True
    assert store.set_drill(JOB, "FAIL").version == 1
    assert store.set_paused(JOB, True).version == 2
    assert store.read(JOB).paused is True
    assert store.delete_job("other") == 1
    assert realism.conflicts.injected == {"PutItem": 2, "UpdateItem": 4, "DeleteItem": 2}
    assert clock.now() == ManualClock("2026-01-05T09:00:00.600Z").now()


def test_a_set_up_write_that_keeps_conflicting_says_so_and_changes_nothing(table, realism):
    """Four conflicts in a row: set_drill raises WriteConflict naming the write, and the item
    is unchanged (the version has not moved, no drill)."""
    store = ControlStore(
        TABLE, client=boto3.client("dynamodb"), clock=ManualClock("2026-01-05T09:00:00Z")
    )
    realism.conflicts = TransactionConflicts(rate=1.0, in_a_row=4)
    with pytest.raises(WriteConflict, match=r"setting drill of job .* was not applied"):
        store.set_drill(JOB, "CRASH")
    realism.conflicts = TransactionConflicts(rate=0.0)
    state = store.read(JOB)
    assert (state.version, state.drill) == (0, None)
