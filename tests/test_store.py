"""The store against the embedded backend: table, control item, lock, fencing, history."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from jobcontroller import (
    Acquired,
    Blocked,
    Committed,
    ControlItemCorrupt,
    ControlItemMissing,
    ControlStore,
    Fenced,
    Outcome,
    RunRecord,
    Status,
    TableMissing,
)
from jobcontroller.model import finish_transition
from jobcontroller.store import TTL_ATTRIBUTE

pytestmark = [pytest.mark.every_backend, pytest.mark.contract]

JOB = "hourly_processor"


def test_create_table_is_idempotent_and_enables_ttl(dynamodb):
    """Creating twice is fine (TTL, which DynamoDB refuses to enable twice, is enabled once);
    the table has PK/SK string keys and TTL on expires_at."""
    store = ControlStore("job_control", client=dynamodb)
    assert store.create_table() is True
    assert store.create_table() is False
    table = dynamodb.describe_table(TableName="job_control")["Table"]
    assert {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]} == {
        "PK": "HASH",
        "SK": "RANGE",
    }
    ttl = dynamodb.describe_time_to_live(TableName="job_control")["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": TTL_ATTRIBUTE}


def test_init_job_never_overwrites(store, clock, raw_item):
    """Initialising an existing job changes nothing, even after it has run."""
    held = store.acquire(
        store.read(JOB), run_id="r1", now=clock.now(), lease_until=clock.now(), slot=None
    )
    assert isinstance(held, Acquired)
    before = raw_item()
    assert store.init_job(JOB, now=clock.now()) is False
    assert raw_item() == before


def test_read_missing_job(store):
    """Reading a job with no control item says to initialise it."""
    with pytest.raises(ControlItemMissing, match=r"init_job\('nightly'\)"):
        store.read("nightly")


def test_missing_table(dynamodb):
    """Every entry point on a missing table raises TableMissing saying to create it."""
    store = ControlStore("no_such_table", client=dynamodb)
    for call in (
        lambda: store.read(JOB),
        lambda: store.init_job(JOB, now=None),
        lambda: store.runs(JOB),
    ):
        with pytest.raises(TableMissing, match="create_table"):
            call()


def test_acquire_is_the_seeds_optimistic_lock(store, clock):
    """Acquire sets RUNNING, bumps the version and records holder, lease and slot."""
    state = store.read(JOB)
    lease = clock.now() + timedelta(minutes=14)
    outcome = store.acquire(
        state, run_id="r1", now=clock.now(), lease_until=lease, slot=clock.now()
    )
    assert isinstance(outcome, Acquired) and not outcome.recovered
    assert outcome.state == store.read(JOB)
    assert (outcome.state.status, outcome.state.version) == (Status.RUNNING, state.version + 1)
    assert (outcome.state.run_id, outcome.state.lease_expires_at) == ("r1", lease)


def test_acquire_with_a_stale_version_is_blocked(store, clock):
    """A write based on an old read is refused and returns the item that blocked it."""
    stale = store.read(JOB)
    store.set_paused(JOB, False)  # any write moves the version on
    outcome = store.acquire(stale, run_id="r1", now=clock.now(), lease_until=clock.now(), slot=None)
    assert isinstance(outcome, Blocked)
    assert outcome.state.version == stale.version + 1
    assert store.read(JOB).status is Status.IDLE


def test_takeover_needs_the_lease_to_have_passed_at_write_time(store, clock):
    """The takeover's own condition re-checks the lease, whatever the caller believed."""
    now = clock.now()
    first = store.acquire(
        store.read(JOB), run_id="r1", now=now, lease_until=now + timedelta(minutes=5), slot=None
    )
    too_early = store.acquire(
        first.state, run_id="r2", now=now, lease_until=now, slot=None, takeover=True
    )
    assert isinstance(too_early, Blocked) and too_early.state.run_id == "r1"
    later = now + timedelta(minutes=6)
    taken = store.acquire(
        first.state, run_id="r2", now=later, lease_until=later, slot=None, takeover=True
    )
    assert isinstance(taken, Acquired)
    assert (taken.state.run_id, taken.state.takeover_count) == ("r2", 1)
    assert taken.state.last_takeover_from == "r1"


# Far in the future: DynamoDB (and DynamoDB Local, within seconds) deletes items whose TTL
# attribute has passed, so history written with an expiry in the past may vanish mid-test.
# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/howitworks-ttl.html
EXPIRES = 4_102_444_800  # 2100-01-01T00:00:00Z


def record(run_id, clock, outcome=Outcome.SUCCEEDED, **extra):
    now = clock.now()
    return RunRecord(JOB, run_id, now, now, outcome, expires_at=EXPIRES, **extra)


def test_finish_commits_and_writes_history(store, clock):
    """A fenced commit releases the lock, counts the run and stores its history item."""
    now = clock.now()
    held = store.acquire(store.read(JOB), run_id="r1", now=now, lease_until=now, slot=now).state
    done = store.finish(
        held, record("r1", clock, slot=now), next_allowed_run=now + timedelta(hours=1)
    )
    assert isinstance(done, Committed)
    assert done.state == store.read(JOB)
    assert (done.state.status, done.state.run_count, done.state.last_slot) == (Status.IDLE, 1, now)
    [history] = store.runs(JOB)
    assert (history.run_id, history.outcome, history.expires_at) == (
        "r1",
        Outcome.SUCCEEDED,
        EXPIRES,
    )
    assert history.outcome is Outcome.SUCCEEDED


def test_finish_records_failure(store, clock):
    """A failure record sets last_error, counts it, and leaves run_count and the slot alone."""
    now = clock.now()
    held = store.acquire(store.read(JOB), run_id="r1", now=now, lease_until=now, slot=now).state
    done = store.finish(held, record("r1", clock, outcome=Outcome.FAILED, error="boom", slot=now))
    assert isinstance(done, Committed)
    stored = store.read(JOB)
    assert done.state == stored
    assert (stored.status, stored.last_error, stored.failure_count) == (Status.IDLE, "boom", 1)
    assert (stored.run_count, stored.last_slot) == (0, None)


def test_finish_by_a_run_that_lost_the_lock_is_fenced(store, clock, raw_item):
    """A commit by anyone but the current holder is refused and changes nothing."""
    now = clock.now()
    held = store.acquire(store.read(JOB), run_id="r1", now=now, lease_until=now, slot=None).state
    impostor = replace(held, run_id="r0")
    before = raw_item()
    outcome = store.finish(impostor, record("r0", clock))
    assert isinstance(outcome, Fenced) and outcome.state.run_id == "r1"
    assert raw_item() == before
    assert store.runs(JOB) == []


def test_pause_resume_and_drill(store):
    """Pause, resume and drills are single writes that bump the version."""
    v0 = store.read(JOB).version
    assert store.set_paused(JOB, True).paused is True
    assert store.set_paused(JOB, False).paused is False
    assert store.set_drill(JOB, "CRASH").drill == "CRASH"
    assert store.read(JOB).version == v0 + 3
    with pytest.raises(ValueError):
        store.set_drill(JOB, "EXPLODE")
    with pytest.raises(ControlItemMissing):
        store.set_paused("nightly", True)


def test_history_is_newest_first_and_limited(store, clock):
    """runs() lists the job's history newest first, at most `limit` items."""
    for n in range(3):
        now = clock.advance(hours=1)
        held = store.acquire(
            store.read(JOB), run_id=f"r{n}", now=now, lease_until=now, slot=None
        ).state
        store.finish(held, record(f"r{n}", clock))
    assert [r.run_id for r in store.runs(JOB)] == ["r2", "r1", "r0"]
    assert [r.run_id for r in store.runs(JOB, limit=2)] == ["r2", "r1"]


def test_a_lease_ending_exactly_now_can_be_taken_over(store, clock):
    """The gate and the store agree on the boundary: a lease ending at `now` has passed."""
    now = clock.now()
    first = store.acquire(store.read(JOB), run_id="r1", now=now, lease_until=now, slot=None)
    taken = store.acquire(
        first.state, run_id="r2", now=now, lease_until=now, slot=None, takeover=True
    )
    assert isinstance(taken, Acquired) and taken.state.run_id == "r2"


def test_delete_job_removes_the_control_item_and_history(store, clock):
    """delete_job empties the job's partition, so init_job starts it again from IDLE."""
    now = clock.now()
    held = store.acquire(store.read(JOB), run_id="r1", now=now, lease_until=now, slot=None).state
    store.finish(held, record("r1", clock))
    assert store.delete_job(JOB) == 2
    assert store.raw_item(JOB) is None and store.runs(JOB) == []
    assert store.init_job(JOB, now=now) is True


def test_finish_returns_the_pure_transition_as_stored(store, clock):
    """The commit writes exactly `finish_transition`'s state and returns it, nothing re-derived."""
    now = clock.now()
    held = store.acquire(store.read(JOB), run_id="r1", now=now, lease_until=now, slot=now).state
    rec = record("r1", clock, slot=now)
    after = now + timedelta(hours=1)
    expected = finish_transition(held, rec, next_allowed_run=after)
    done = store.finish(held, rec, next_allowed_run=after)
    assert done.state == expected == store.read(JOB)


def test_a_pause_during_a_run_is_kept_and_the_version_still_moves_on(store, clock):
    """An operator's write while a run holds the lock is kept by the commit, which bumps past it."""
    now = clock.now()
    held = store.acquire(store.read(JOB), run_id="r1", now=now, lease_until=now, slot=now).state
    store.set_paused(JOB, True)
    done = store.finish(held, record("r1", clock, slot=now))
    stored = store.read(JOB)
    assert isinstance(done, Committed) and done.state == stored
    assert (stored.status, stored.paused, stored.version) == (Status.IDLE, True, held.version + 2)
    assert stored.run_count == 1


class _Recorder:
    """A client that notes the request token of every commit it passes on."""

    def __init__(self, inner):
        self._inner = inner
        self.tokens = []

    def transact_write_items(self, **params):
        self.tokens.append(params.get("ClientRequestToken"))
        return self._inner.transact_write_items(**params)

    def __getattr__(self, name):
        return getattr(self._inner, name)


def test_finish_tokens_are_unique_per_attempt_whatever_the_run_id(store, clock):
    """Two runs that share a run id (the course restarts its ids) send different request tokens."""
    recorder = store.client = _Recorder(store.client)
    for _ in range(2):
        store.delete_job(JOB)
        store.init_job(JOB, now=clock.now())
        now = clock.now()
        held = store.acquire(store.read(JOB), run_id="r1", now=now, lease_until=now, slot=now)
        assert isinstance(store.finish(held.state, record("r1", clock, slot=now)), Committed)
    tokens = recorder.tokens
    assert len(tokens) == 2 and tokens[0] != tokens[1]
    assert all(t is not None and 1 <= len(t) <= 36 for t in tokens)


def _run_to_the_end(store, clock, run_id):
    now = clock.now()
    held = store.acquire(store.read(JOB), run_id=run_id, now=now, lease_until=now, slot=now)
    return store.finish(held.state, record(run_id, clock, slot=now), next_allowed_run=now)


@pytest.mark.parametrize("later", [False, True], ids=["same-request", "other-request"])
def test_a_run_id_used_again_after_a_reset_still_commits(store, clock, later):
    """DynamoDB applies a transaction once per ClientRequestToken for 10 minutes, so a run
    reusing an earlier run's id (sequential ids restart with every reset) must still commit."""
    # https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html
    assert isinstance(_run_to_the_end(store, clock, "run-0001"), Committed)
    store.delete_job(JOB)
    store.init_job(JOB, now=clock.now())
    if later:
        clock.advance(minutes=1)  # the same token with other parameters
    second = _run_to_the_end(store, clock, "run-0001")
    stored = store.read(JOB)
    assert isinstance(second, Committed) and second.state == stored
    assert (stored.status, stored.run_count) == (Status.IDLE, 1)
    assert [r.run_id for r in store.runs(JOB)] == ["run-0001"]


@pytest.mark.xfail_on(
    "moto", reason="moto answers HTTP 500 where DynamoDB evaluates number <= string as false"
)
def test_a_takeover_meeting_a_numeric_lease_is_refused_and_reported(store, clock, dynamodb):
    """DynamoDB evaluates a comparison of a number with a string as false, so a takeover whose
    lease clause meets a lease stored as a number is refused, reported as corrupt, and writes
    nothing."""
    # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.OperatorsAndFunctions.html
    now = clock.now()
    held = store.acquire(store.read(JOB), run_id="r1", now=now, lease_until=now, slot=None).state
    # Another tool rewrites the lease as epoch seconds after our read, version unchanged.
    key = {"PK": {"S": f"JOB#{JOB}"}, "SK": {"S": "STATE"}}
    dynamodb.update_item(
        TableName=store.table,
        Key=key,
        UpdateExpression="SET lease_expires_at = :epoch",
        ExpressionAttributeValues={":epoch": {"N": str(int(now.timestamp()))}},
    )
    before = store.raw_item(JOB)
    later = now + timedelta(hours=1)
    with pytest.raises(ControlItemCorrupt, match="lease_expires_at"):
        store.acquire(held, run_id="r2", now=later, lease_until=later, slot=None, takeover=True)
    assert store.raw_item(JOB) == before


def test_a_long_run_id_still_commits(store, clock):
    """DynamoDB refuses a ClientRequestToken over 36 characters (moto accepts any), so the
    commit's token must stay within that whatever the run id's length."""
    # https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html
    run_id = "lambda-request-" + "f" * 49  # a 64-character run id
    done = _run_to_the_end(store, clock, run_id)
    assert isinstance(done, Committed)
    assert (done.state.status, done.state.last_run_id) == (Status.IDLE, run_id)
    assert [r.run_id for r in store.runs(JOB)] == [run_id]
