"""Fuzzing: event parsing and control-item decoding raise only the package's own errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from jobcontroller import BadEvent, ControlItemCorrupt, JobControllerError, JobState, Trigger
from jobcontroller.events import check_slot, parse_event
from jobcontroller.model import format_ts

JOB = "hourly_processor"
T0 = datetime(2026, 1, 5, 9, tzinfo=UTC)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

offsets = st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
aware_times = st.datetimes(timezones=offsets | st.just(UTC))


def _iso(when: datetime, suffix: str) -> str:
    return when.isoformat().replace("+00:00", "Z") + suffix


# Times as a schedule or a person might write them, right or slightly wrong.
time_texts = st.one_of(
    st.builds(_iso, aware_times, st.sampled_from(["", "", " ", "\x00", "Z", "junk"])),
    st.datetimes().map(lambda naive: naive.isoformat()),
    st.text(max_size=40),
    st.from_regex(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z", fullmatch=True),
)
# JSON values as json.loads makes them (floats include inf and nan: `Infinity` parses).
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20) | time_texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
event_keys = st.sampled_from(["job", "source", "scheduled_time", "execution_id", "attempt"])
events = st.one_of(
    st.dictionaries(event_keys, json_values),
    st.dictionaries(event_keys | st.text(max_size=8) | st.integers(), json_values, max_size=4),
    st.fixed_dictionaries(
        {"job": st.just(JOB), "scheduled_time": time_texts},
        optional={"attempt": json_values, "source": st.sampled_from(["scheduler", "manual"])},
    ),
    json_values,
)


@FUZZ
@given(events)
@example({"attempt": float("inf")})
@example({1: "x", "job": JOB})
@example({"scheduled_time": "0001-01-01T00:00:00+01:00"})
@example({"scheduled_time": "9999-12-31T23:59:59-01:00"})
def test_parse_event_returns_a_trigger_or_a_package_error(event):
    """Whatever the event, parsing returns a UTC Trigger or raises a JobControllerError."""
    try:
        trigger = parse_event(event, job=JOB)
    except JobControllerError as exc:
        assert len(str(exc)) < 600  # a short prefix of the input at most
        return
    assert isinstance(trigger, Trigger) and trigger.job == JOB
    assert trigger.slot is None or trigger.slot.utcoffset() == timedelta(0)
    if trigger.slot is not None:
        assert len(format_ts(trigger.slot)) == 20


@FUZZ
@given(aware_times, aware_times)
def test_check_slot_accepts_or_raises_bad_event(slot, now):
    """Any two aware times: the slot is accepted or refused with BadEvent, never overflows."""
    try:
        check_slot(slot, now=now)
    except BadEvent:
        return
    assert abs(slot - now) <= timedelta(hours=30)


# Values DynamoDB's deserializer can hand back for an attribute.
ddb_values = st.recursive(
    st.none()
    | st.booleans()
    | st.text(max_size=24)
    | time_texts
    | st.binary(max_size=8)
    | st.decimals(allow_nan=True, allow_infinity=True)
    | st.integers()
    | st.sampled_from(["IDLE", "RUNNING", "FAIL", "CRASH", "JOB#hourly_processor", "STATE"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=8), inner, max_size=3)
        | st.frozensets(st.text(max_size=5), max_size=3)
    ),
    max_leaves=6,
)
GOOD = JobState.new(JOB, now=T0).to_item()


@st.composite
def items(draw):
    item = dict(GOOD)
    for name in draw(st.lists(st.sampled_from(sorted(GOOD)), max_size=4, unique=True)):
        if draw(st.booleans()):
            del item[name]
        else:
            item[name] = draw(ddb_values)
    item.update(draw(st.dictionaries(st.text(max_size=10), ddb_values, max_size=2)))
    return item


@FUZZ
@given(items())
@example({**GOOD, "version": Decimal("1E+125")})
@example({**GOOD, "run_count": Decimal("NaN")})
def test_from_item_returns_a_state_or_control_item_corrupt(item):
    """Any item: decoding gives a JobState that round-trips, or raises ControlItemCorrupt."""
    try:
        state = JobState.from_item(item, job=JOB)
    except ControlItemCorrupt as exc:
        assert len(str(exc)) < 800
        return
    again = JobState.from_item(state.to_item(), job=JOB)
    assert again == state
