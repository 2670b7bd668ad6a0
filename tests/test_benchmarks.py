"""benchmarks/: the capacity-unit arithmetic against AWS's worked examples, and one tiny run.

The examples are the ones DynamoDB's documentation works through (item sizes and formats,
read and write operations, condition expressions, on-demand pricing's key terms); the tiny
run checks what each design guarantees, never how long anything took.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from benchmarks.contenders import CONTENDERS, PowertoolsDesign
from benchmarks.day import plan_day, run_day
from benchmarks.meter import MeteredClient
from benchmarks.run import HOURS_PER_MONTH, monthly, render
from benchmarks.variants import HistoryAfterCommit, HistoryInItem
from jobcontroller.clock import ManualClock
from jobcontroller.embedded.capacity import (
    PRICES,
    Prices,
    attribute_size,
    item_size,
    read_units,
    write_units,
)
from jobcontroller.embedded.memory import MemoryDynamoDB

KB = 1024

# --- item sizes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ({"S": "IDLE"}, 4),  # UTF-8 bytes
        ({"S": "é"}, 2),  # two bytes in UTF-8
        ({"N": "123"}, 3),  # 3 significant digits: 2 bytes, plus 1
        ({"N": "1766000000"}, 3),  # trailing zeros trimmed: "1766"
        ({"N": "0.00120"}, 2),  # leading and trailing zeros trimmed: "12"
        ({"N": "-7"}, 2),
        ({"B": b"\x00\x01\x02"}, 3),  # raw bytes, not base64
        ({"BOOL": True}, 1),
        ({"NULL": True}, 1),
        ({"L": []}, 3),  # an empty list is its 3 bytes of overhead
        ({"L": [{"S": "a"}, {"S": "bc"}]}, 3 + (1 + 1) + (1 + 2)),  # 1 byte per element
        ({"M": {"k": {"S": "v"}}}, 3 + 1 + 1 + 1),  # element overhead + name + value
        ({"SS": ["ab", "c"]}, 3),
    ],
)
def test_attribute_sizes_follow_dynamodbs_published_rules(value, size):
    """Each type's size is what the item-size page says, name excluded."""
    assert attribute_size(value) == size


def test_item_size_adds_every_attribute_name_to_its_value():
    """An item's size is the sum of its attribute names' bytes and its values' sizes."""
    item = {"PK": {"S": "JOB#x"}, "version": {"N": "12"}, "paused": {"BOOL": False}}
    assert item_size(item) == (2 + 5) + (7 + 2) + (6 + 1)
    assert item_size(None) == 0


def test_an_unknown_type_is_refused_with_the_types_that_exist():
    """A value of no DynamoDB type is an error that names the types, not a guessed size."""
    with pytest.raises(ValueError, match="expected S, N, B"):
        attribute_size({"X": "1"})


# --- capacity units --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "consistent", "units"),
    [
        (3500, True, 1.0),  # "reading a 3,500-byte item consumes the same as a 4 KB item"
        (8 * KB, True, 2.0),  # an 8 KB item: 2 units strongly consistent...
        (8 * KB, False, 1.0),  # ...1 eventually consistent
        (10 * KB, True, 3.0),  # a 10 KB item is rounded up to 12 KB
        (0, True, 1.0),  # a read that finds nothing still costs the minimum
        (0, False, 0.5),
    ],
)
def test_read_units_round_up_to_4_kb(size, consistent, units):
    """Reads cost one unit per started 4 KB, half when eventually consistent."""
    assert read_units(size, consistent=consistent) == units


@pytest.mark.parametrize(
    ("before", "after", "applied", "transactional", "units"),
    [
        (0, 500, True, False, 1),  # a 500-byte item costs the same as a 1 KB one
        (0, 1 * KB, True, False, 1),  # "a standard write request of a 1 KB item: one WCU"
        (0, 3 * KB, True, False, 3),  # "...of a 3 KB item: three WCUs"
        (0, 3 * KB, True, True, 6),  # "a transactional write request of a 3 KB item: six"
        (900, 1100, True, False, 2),  # UpdateItem: the larger of before and after
        (1100, 900, True, False, 2),
        # A failed condition is billed on the existing item: 300 KB refused a 310 KB write...
        (300 * KB, 310 * KB, False, False, 300),
        (300 * KB, 310 * KB, True, False, 310),  # ...and 310 units had it succeeded
        (0, 310 * KB, False, False, 1),  # no existing item: a refused write costs 1
    ],
)
def test_write_units_follow_the_documented_examples(before, after, applied, transactional, units):
    """Writes cost one unit per started 1 KB of the larger item; refused, of the old one."""
    assert write_units(before, after, applied=applied, transactional=transactional) == units


def test_prices_turn_units_into_dollars():
    """A million write units cost the write price, a million read units the read price."""
    prices = Prices("test", Decimal("0.625"), Decimal("0.125"), "test")
    assert prices.dollars(reads=1_000_000, writes=0) == Decimal("0.125")
    assert prices.dollars(reads=2_000_000, writes=4_000_000) == Decimal("2.75")
    assert PRICES.write_per_million == 5 * PRICES.read_per_million


# --- the meter -------------------------------------------------------------------------------


@pytest.fixture
def metered() -> MeteredClient:
    inner = MemoryDynamoDB()
    inner.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
    )
    return MeteredClient(inner)


def test_meter_bills_a_write_on_the_larger_item_and_a_refused_one_on_the_old(metered):
    """Put 2 KB over 500 B costs 2 units; a refused put costs the stored item's units."""
    small = {"id": {"S": "a"}, "v": {"S": "x" * 500}}
    big = {"id": {"S": "a"}, "v": {"S": "x" * (2 * KB - 10)}}
    tape = metered.start()
    metered.put_item(TableName="t", Item=small)
    metered.put_item(TableName="t", Item=big)
    with pytest.raises(Exception, match="ConditionalCheckFailed"):
        metered.put_item(TableName="t", Item=small, ConditionExpression="attribute_not_exists(id)")
    metered.get_item(TableName="t", Key={"id": {"S": "a"}}, ConsistentRead=True)
    metered.get_item(TableName="t", Key={"id": {"S": "nobody"}})
    metered.stop()
    assert [r.write_units for r in tape.requests] == [1, 2, 2, 0, 0]
    assert [r.read_units for r in tape.requests] == [0, 0, 0, 1.0, 0.5]
    assert [r.applied for r in tape.requests] == [True, True, False, True, True]
    assert tape.requests[1].sizes == (item_size(big),)


def test_meter_bills_a_transaction_twice_per_item(metered):
    """A transaction of two small items costs 2 units each."""
    tape = metered.start()
    metered.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": "t", "Item": {"id": {"S": "a"}}}},
            {"Put": {"TableName": "t", "Item": {"id": {"S": "b"}}}},
        ]
    )
    metered.stop()
    (request,) = tape.requests
    assert (request.operation, request.write_units) == ("TransactWriteItems", 4)


# --- the day, at a tiny size ------------------------------------------------------------------

SEED, SLOTS = 11, 6


@pytest.fixture(scope="module")
def day():
    waves = plan_day(seed=SEED, slots=SLOTS)
    designs = [*CONTENDERS.values(), HistoryAfterCommit, HistoryInItem]
    return waves, {d.name: run_day(d(), waves) for d in designs}


def test_the_plan_is_the_same_for_a_seed_and_has_one_crash_and_its_retry():
    """One seed, one plan; exactly one crashing delivery, retried once for the same slot."""
    assert plan_day(seed=3) == plan_day(seed=3)
    assert plan_day(seed=3) != plan_day(seed=4)
    crashes = [d for wave in plan_day(seed=3) for d in wave if d.crash]
    assert len(crashes) == 1
    with pytest.raises(ValueError, match="slots must be >= 2"):
        plan_day(seed=3, slots=1)


def test_every_design_gets_every_delivery(day):
    """All designs see the same deliveries, each one accounted to exactly one path."""
    waves, results = day
    deliveries = sum(len(w) for w in waves)
    assert {r.invocations for r in results.values()} == {deliveries}


@pytest.mark.parametrize(
    "design", ["controller", "powertools", "shedlock", "history-after", "history-in-item"]
)
def test_the_sound_designs_run_every_slot_once_and_recover_from_the_crash(day, design):
    """No double run, no missed slot, no wedge; the crashed slot ran on its retry."""
    _, results = day
    result = results[design]
    assert (result.double_runs, result.missed, result.wedged) == (0, 0, 0)
    assert result.paths["crash"].count == 1
    assert result.paths["crash-retry"].count == 1


def test_the_cards_design_wedges_after_the_crash(day):
    """The card has no lease: every slot from the crash on is missed, and nothing retries it."""
    waves, results = day
    card = results["card"]
    crash_slot = next(d.slot for wave in waves for d in wave if d.crash)
    assert card.wedged == SLOTS - crash_slot
    assert card.paths["crash-retry"].count == 0
    assert card.missed >= card.wedged


def test_the_controllers_run_costs_a_read_an_update_and_a_two_item_transaction(day):
    """A run is GetItem + UpdateItem + TransactWriteItems, billed from the items' sizes."""
    _, results = day
    controller = results["controller"]
    run = controller.paths["run"]
    sizes = controller.item_sizes
    each_write = math.ceil(sizes["job_control/STATE"] / KB)
    expected = each_write + 2 * (each_write + math.ceil(sizes["job_control/RUN"] / KB))
    assert run.operations == {
        "GetItem": run.count,
        "UpdateItem": run.count,
        "TransactWriteItems": run.count,
    }
    assert run.read_units == run.count
    assert run.write_units == expected * run.count
    skip = controller.paths["skip"]
    assert (skip.read_units, skip.write_units) == (skip.count, 0), "a gated skip writes nothing"


def test_powertools_answers_a_duplicate_with_one_refused_put_and_no_read(day):
    """Write-first: a duplicate after completion costs a refused PutItem, billed as a write."""
    _, results = day
    skip = results["powertools"].paths["skip"]
    assert skip.count > 0
    assert skip.operations == {"PutItem (refused)": skip.count}
    assert (skip.read_units, skip.write_units) == (0, skip.count)


def test_the_cheaper_commits_keep_the_guarantees_and_cost_fewer_write_units(day):
    """Both variants write less per run than the transaction, and their runs are single writes."""
    _, results = day
    per_run = {
        name: results[name].paths["run"].write_units / results[name].paths["run"].count
        for name in ("controller", "history-after", "history-in-item")
    }
    assert per_run["history-in-item"] < per_run["history-after"] < per_run["controller"]
    assert "TransactWriteItems" not in results["history-in-item"].paths["run"].operations
    assert set(results["history-in-item"].item_sizes) == {"job_control/STATE"}


def test_monthly_cost_scales_the_days_average_slot(day):
    """The month's price is the day's units per slot, times the slots in a month, at list price."""
    _, results = day
    result = results["controller"]
    per_slot = PRICES.dollars(reads=result.read_units, writes=result.write_units) / SLOTS
    assert monthly(result, slots_per_month=HOURS_PER_MONTH) == per_slot * HOURS_PER_MONTH
    assert monthly(result, slots_per_month=2 * HOURS_PER_MONTH) == 2 * per_slot * HOURS_PER_MONTH


def test_the_table_has_a_column_per_design_and_a_row_per_path(day):
    """render() prints one column per design and one row per path and per guarantee."""
    _, results = day
    table = render(list(results.values()))
    header, rule, *rows = table.splitlines()
    assert header.split() == list(results)
    assert set(rule) <= {"-", " "}
    labels = [row.split(":")[0] for row in rows]
    for path in ("skip", "lost race", "run", "crash", "crash-retry"):
        assert path in labels
    assert any(row.startswith("double runs") for row in rows)


def test_powertools_reads_the_benchmarks_clock_only_while_told_to():
    """clocked() points Powertools' datetime at the virtual clock and puts the real one back."""
    from aws_lambda_powertools.utilities.idempotency.persistence import datarecord

    clock = ManualClock("2030-01-01T00:00:00Z")
    original = datarecord.dt
    with PowertoolsDesign().clocked(clock):
        assert datarecord.dt.datetime.now() == datetime(2030, 1, 1, tzinfo=UTC)
    assert datarecord.dt is original
