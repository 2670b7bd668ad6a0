"""The course set-up and displays: idempotent set-up, reset, races, demos and curated tables."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from jobcontroller import Reason, Status, TableMissing, WorkloadCrash
from jobcontroller.course.core import SEED_FIELDS, STATE_FIELDS, Table, setup, show_costs

JOB = "hourly_processor"


@pytest.fixture
def course(fresh_aws):
    """A course on a freshly wiped embedded backend, job IDLE, clock at 09:00."""
    return setup()


def test_setup_creates_the_table_and_an_idle_job(course):
    """setup() leaves an IDLE control item with the seed's initial values."""
    state = course.state()
    assert state.status is Status.IDLE
    assert (state.version, state.run_count) == (0, 0)
    assert course.clock.now() == course.when("09:00")


def test_setup_without_fresh_keeps_the_job(course):
    """A second setup(fresh=False) changes nothing that is already there."""
    course.at("09:00:05")
    course.invoke("09:00")
    again = setup(fresh=False)
    assert again.create() == (False, False)
    assert again.state().run_count == 1


def test_setup_create_false_keeps_an_existing_table_and_job(course):
    """setup(create=False) only connects: the table, the job and its history stay."""
    course.at("09:00:05")
    course.invoke("09:00")
    again = setup(create=False)
    assert again.state().run_count == 1
    assert again.create() == (False, False)


def test_setup_drop_table_starts_01_from_no_table(course):
    """setup(create=False, drop_table=True) leaves no table, so 01 creates it the same each run."""
    bare = setup(create=False, drop_table=True)
    with pytest.raises(TableMissing):
        bare.state()
    assert bare.create() == (True, True)


def test_setup_never_drops_a_table_on_real_aws(course, monkeypatch):
    """With the real-AWS opt-in, drop_table sends no DeleteTable (a real table is never deleted)."""
    from jobcontroller.course import core

    deleted = []
    monkeypatch.setenv(core.REAL_AWS_VARIABLE, "1")
    monkeypatch.setattr(core.ControlStore, "delete_table", lambda self: deleted.append(self))
    core.setup(create=False, drop_table=True)
    assert deleted == []


def test_setup_on_real_aws_needs_the_account_confirmed_first(course, monkeypatch):
    """With the opt-in, setup goes through the same confirmation as notebook 06: without the
    account id it raises RealAWSNotConfirmed and creates nothing."""
    from jobcontroller.course import core
    from jobcontroller.errors import RealAWSNotConfirmed
    from jobcontroller.ops import naming

    asked = []

    def connect(*, confirm=None, **_):
        asked.append(confirm)
        raise RealAWSNotConfirmed("shown: account 123456789012; pass it to confirm")

    created = []
    monkeypatch.setenv(core.REAL_AWS_VARIABLE, "1")
    monkeypatch.setattr(naming, "connect", connect)
    monkeypatch.setattr(core.ControlStore, "create_table", lambda self, **_: created.append(1))
    with pytest.raises(RealAWSNotConfirmed):
        core.setup()
    with pytest.raises(RealAWSNotConfirmed):
        core.setup(confirm_account="123456789012")
    assert asked == [None, "123456789012"]
    assert created == []


def test_reset_rewinds_state_clock_and_ids(course):
    """After reset() the job, the clock, the ids and the history start over."""
    course.at("09:00:05")
    course.invoke("09:00")
    state = course.reset()
    assert (state.run_count, state.version, state.last_run_id) == (0, 0, None)
    assert course.runs() == []
    assert course.clock.now() == course.when("09:00")
    course.at("09:00:05")
    assert course.invoke("09:00").run_id == "run-0001"


def test_a_run_updates_the_seed_fields(course):
    """Proof check: run_count increments, last_success_ts and next_allowed_run are set."""
    course.at("09:00:05")
    result = course.invoke("09:00")
    state = course.state()
    assert result.outcome.value == "SUCCEEDED"
    assert state.run_count == 1
    assert state.last_success_ts == course.when("09:00:06")
    assert state.next_allowed_run == course.when("10:00")


def test_a_failed_run_records_the_error_and_goes_idle(course):
    """Proof check: last_error is set and status is back at IDLE after a failure."""
    course.at("09:00:05")
    result = course.invoke("09:00", fail=True)
    state = course.state()
    assert result.outcome.value == "FAILED"
    assert state.status is Status.IDLE
    assert "PlaceholderFailure" in state.last_error
    assert (state.run_count, state.failure_count) == (0, 1)


def test_the_request_counter_counts_each_path(course):
    """A run costs a read and two writes; a gated duplicate costs one read and no write."""
    course.at("09:00:05")
    with course.requests.measure() as ran:
        course.invoke("09:00")
    with course.requests.measure() as gated:
        skipped = course.invoke("09:00")
    assert ran == {"GetItem": 1, "UpdateItem": 1, "TransactWriteItems": 1}
    assert gated == {"GetItem": 1}
    assert skipped.reason is Reason.SLOT_DONE


def test_show_state_lists_fields_in_a_fixed_order_and_marks_changes(course):
    """show_state prints every field in STATE_FIELDS order and marks what changed."""
    before = course.state()
    course.at("09:00:05")
    course.invoke("09:00")
    table = course.show_state(before=before)
    assert [row[0] for row in table.rows] == list(STATE_FIELDS)
    changed = {table.rows[i][0] for i in table.marked}
    assert {"run_count", "version", "last_success_ts", "next_allowed_run"} <= changed
    assert "status" not in changed
    assert "<- changed" in table.text()


def test_show_state_can_limit_to_the_seed_fields(course):
    """fields= restricts the table to the seed's own fields."""
    table = course.show_state(fields=SEED_FIELDS)
    assert [row[0] for row in table.rows] == list(SEED_FIELDS)


def test_show_result_and_show_runs_are_curated(course):
    """The result and history tables carry the run id, outcome and slot, nothing raw."""
    course.at("09:00:05")
    result = course.invoke("09:00")
    text = course.show_result(result).text()
    assert "run-0001" in text and "SUCCEEDED" in text
    assert "ResponseMetadata" not in text
    history = course.show_runs().text()
    assert "run-0001  SUCCEEDED  2026-01-05T09:00:00Z" in history


def test_show_item_shows_dynamodb_types(course):
    """show_item reads the raw item and names each attribute's DynamoDB type."""
    rows = {row[0]: row[1:] for row in course.show_item().rows}
    assert rows["PK"] == ("S", "JOB#hourly_processor")
    assert rows["version"] == ("N", "0")
    assert rows["last_error"] == ("NULL", "null")
    assert rows["paused"] == ("BOOL", "false")


def test_show_table_reports_the_key_schema(course):
    """show_table names PK as HASH and SK as RANGE, both strings."""
    assert course.show_table().rows == (("PK", "HASH", "S"), ("SK", "RANGE", "S"))


def test_table_escapes_html_and_pads_text():
    """Table output is escaped in HTML and column-aligned in text."""
    table = Table(("a", "b"), (("<x>", "1"), ("long value", "2")), "t", ("note",))
    assert "&lt;x&gt;" in table._repr_html_()
    assert table.text().splitlines()[3] == "<x>         1"


def test_when_understands_short_and_full_times(course):
    """'HH:MM' means that time on the first day; full ISO times are taken as they are."""
    assert course.when("10:30").isoformat() == "2026-01-05T10:30:00+00:00"
    assert course.when("2026-01-06T01:00:00Z").isoformat() == "2026-01-06T01:00:00+00:00"
    with pytest.raises(ValueError):
        course.when("10")


def test_slot_now_floors_to_the_interval(course):
    """slot_now is the hour the clock is in."""
    course.at("10:59:59")
    assert course.slot_now() == course.when("10:00")


def test_forced_race_conditional_lock_admits_one(course):
    """Eight triggers that all read first: one runs, seven lose the race, in contender order."""
    report = course.race(8)
    outcomes = [(c.outcome, c.reason) for c in report.contenders]
    assert outcomes[0] == ("SUCCEEDED", None)
    assert outcomes[1:] == [("SKIPPED", "LOST_RACE")] * 7
    assert [c.run_id for c in report.contenders] == [f"run-{i:04d}" for i in range(1, 9)]
    assert report.after.run_count == 1
    assert report.contenders[1].requests == {"GetItem": 1, "UpdateItem": 1}


def test_forced_race_naive_lock_runs_every_contender(course):
    """The naive read-then-write lock under the same interleaving runs all eight."""
    report = course.race(8, design="naive")
    assert report.runs == 8
    assert report.after.run_count == 8
    assert all(c.outcome == "RAN" for c in report.contenders)


def test_forced_race_prints_the_same_every_time(course):
    """Two races after a reset print identically (run ids, steps, counters)."""
    first = repr(course.race(6))
    course.reset()
    assert repr(course.race(6)) == first


def test_a_race_on_a_paused_job_skips_everyone(course):
    """When the gate says no, every contender exits after its read and nobody writes."""
    course.pause()
    report = course.race(3)
    assert [c.reason for c in report.contenders] == ["PAUSED"] * 3
    assert report.after.version == report.before.version


def test_free_running_rounds_have_one_run_each(course):
    """Free-running threads: exactly one run per round."""
    table = course.race_rounds(rounds=3, contenders=6)
    rows = dict(table.rows)
    assert rows["rounds with exactly one run"] == "3"
    assert rows["run_count before -> after"] == "0 -> 3"


def test_separate_processes_run_each_slot_once(course):
    """Separate processes, each with its own client: one SUCCEEDED per slot."""
    table = course.race_processes(processes=3, rounds=2)
    assert [row[1] for row in table.rows] == ["SKIPPED x2, SUCCEEDED x1"] * 2
    assert course.state().run_count == 2


def test_the_seed_design_stays_wedged_after_a_crash(course):
    """Seed design: a crash after taking the lock leaves RUNNING forever; later triggers exit."""
    course.at("09:00:05")
    assert "crashed" in course.seed_invoke(crash=True)
    course.at("2026-01-06T09:00:05Z")
    assert "exit: status is RUNNING" in course.seed_invoke()
    assert course.state().status is Status.RUNNING


def test_the_lease_recovers_from_a_crash(course):
    """Package design: after a crash the next slot takes over once the lease has passed."""
    course.at("09:00:05")
    with pytest.raises(WorkloadCrash):
        course.invoke("09:00", crash=True)
    course.at("09:10")
    assert course.invoke("09:00").reason is Reason.RUNNING
    course.at("10:00:05")
    result = course.invoke("10:00")
    assert result.took_over_from == "run-0001"
    assert course.state().takeover_count == 1


def test_a_late_commit_is_fenced(course):
    """A run that overruns its lease while another takes over has its commit refused."""
    course.at("09:00:05")
    work = course.overtaken_workload(rival_slot="10:00")
    late = course.invoke("09:00", workload=work)
    assert late.outcome.value == "FENCED"
    assert work.rival_result.outcome.value == "SUCCEEDED"
    assert work.rival_result.took_over_from == "run-0001"
    state = course.state()
    assert (state.run_count, state.last_run_id) == (1, "run-0002")


def test_the_seed_lock_raises_conditional_check_failed_the_second_time(course):
    """The seed's conditional UpdateItem: first call locks, a second raises the AWS error."""
    rows = dict((r[0], r[2]) for r in course.seed_lock(expected_version=0).rows)
    assert rows["status"] == "RUNNING"
    with pytest.raises(ClientError) as caught:
        course.seed_lock(expected_version=0)
    assert caught.value.response["Error"]["Code"] == "ConditionalCheckFailedException"


def test_completion_anchored_cooldown_skips_every_other_hour(course):
    """Over a simulated day, cooldown from completion runs 12 of 24 slots, from the slot 24."""
    notes = course.compare_cooldowns().notes
    assert notes[0].endswith("ran 12 of 24 slots")
    assert notes[1].endswith("ran 24 of 24 slots")


def test_environment_check_is_stable(course):
    """The environment table names the backend and has no versions or ports."""
    rows = dict(course.environment().rows)
    assert rows["backend"] == "embedded (moto)"
    assert rows["boto3 (AWS SDK)"] == "ok"
    assert "127.0.0.1" not in course.environment().text()


def test_show_costs_splits_reads_and_writes():
    """show_costs totals reads and writes per path."""
    from collections import Counter

    table = show_costs({"ran": Counter(GetItem=1, UpdateItem=1), "gated": Counter(GetItem=1)})
    assert table.header == ("path", "GetItem", "UpdateItem", "reads", "writes")
    assert table.rows == (("ran", "1", "1", "1", "1"), ("gated", "1", "0", "1", "0"))
