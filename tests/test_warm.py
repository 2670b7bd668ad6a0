"""Notebook 07's memory demo: a function's module-level state, environment by environment."""

from __future__ import annotations

import pytest

from jobcontroller.course import lab as cloud
from jobcontroller.course import warm
from jobcontroller.errors import ConfigError


@pytest.fixture
def lab(fresh_aws):
    """A deployed lab on the freshly reset embedded backend."""
    lab = cloud.start(prefix="learner", say=None)
    yield lab
    lab.close()


def _functions(lab) -> list[str]:
    return [f["FunctionName"] for f in lab.target.client("lambda").list_functions()["Functions"]]


def test_memory_survives_warm_starts_and_is_not_shared(lab):
    """Warm deliveries see the earlier ones' state; the second of two simultaneous deliveries
    and the delivery after a configuration change start from nothing; the demo function is
    deleted afterwards."""
    table = warm.memory_demo(lab)
    seen = [(row[2], row[3].split()[0], row[4], row[5]) for row in table.rows]
    assert seen == [
        ("env-1", "cold", "1", "no"),
        ("env-1", "warm", "2", "no"),
        ("env-1", "warm", "3", "yes"),
        ("env-1", "warm", "4", "no"),
        ("env-2", "cold", "1", "no"),
        ("env-3", "cold", "1", "no"),
    ]
    assert "learner-memory-demo" not in _functions(lab)


def test_a_demo_without_a_handler_is_refused_before_anything_is_created(lab):
    """Source without handler(event, context) is refused with a clear error, and no function
    is created."""
    before = _functions(lab)
    with pytest.raises(ConfigError, match="handler"):
        warm.memory_demo(lab, "x = 1\n")
    assert _functions(lab) == before


def test_the_demos_own_source_shows_through(lab):
    """The learner's source is what runs: a handler that keeps nothing in memory reports no
    duplicates and a count that stays at 1 (each call resets it)."""
    source = warm.MEMORY_DEMO.replace("    invocations += 1\n", "    invocations = 1\n")
    source = source.replace("    seen_slots.append(slot)\n", "")
    table = warm.memory_demo(lab, source)
    assert {row[4] for row in table.rows} == {"1"}
    assert {row[5] for row in table.rows} == {"no"}


def test_the_days_environments_change_only_after_the_crash(lab):
    """A short day's deliveries run in one warm environment until the crash ends its process;
    the next slot starts the second, which is still warm at the end."""
    plan = cloud.DayPlan(slots=3, duplicates={"09:00": 1}, late={}, fail=(), crash=("10:00",))
    rows = warm.show_environments(lab.drive(plan)).rows
    assert [row[:4] for row in rows] == [
        ("env-1", "09:00 (cold start)", "09:00 to 10:00", "3"),
        ("env-2", "11:00 (cold start)", "11:00 to 11:00", "1"),
    ]
    assert rows[0][4] == "retired: its process ended in the 10:00 run (crashed)"
    assert rows[1][4] == "still warm at the end of the day"
