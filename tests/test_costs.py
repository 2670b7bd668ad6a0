"""course.costs: notebook 03's read-first against write-first comparison, from counts and sizes."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from jobcontroller import ControlStore, JobController, ManualClock, SequentialIds, Trigger
from jobcontroller.course.costs import compare_gates, powertools_record
from jobcontroller.embedded.capacity import item_size, plain_item_size
from jobcontroller.embedded.memory import MemoryDynamoDB
from jobcontroller.workload import placeholder

SLOT = datetime(2026, 1, 5, 9, tzinfo=UTC)
MEASURED = {
    "ran the workload": Counter(GetItem=1, UpdateItem=1, TransactWriteItems=1),
    "lost the race": Counter(GetItem=1, UpdateItem=1),
    "duplicate of a done slot": Counter(GetItem=1),
}


class _Course:
    """The two things compare_gates reads from a course: its store and job, and the runs."""

    def __init__(self, *, run: bool) -> None:
        clock = ManualClock(SLOT)
        self.job = "hourly_processor"
        self.store = ControlStore("job_control", client=MemoryDynamoDB(), clock=clock)
        self.store.create_table()
        self.store.init_job(self.job, now=clock.now())
        if run:
            controller = JobController(
                self.store, self.job, clock=clock, wall_clock=clock, new_run_id=SequentialIds()
            )
            controller.invoke(Trigger(self.job, slot=SLOT), placeholder())

    def runs(self, *, limit: int = 10):
        return self.store.runs(self.job, limit=limit)


def test_a_completed_record_carries_the_response_and_is_larger():
    """Powertools' COMPLETED record adds `data` to the INPROGRESS one; both are keyed by slot."""
    running = powertools_record(SLOT, {"ok": True}, done=False)
    done = powertools_record(SLOT, {"ok": True}, done=True)
    assert running["status"] == "INPROGRESS" and "data" not in running
    assert done["data"] == '{"ok":true}'
    assert (
        done["id"] == running["id"] != powertools_record(SLOT.replace(hour=10), {}, done=True)["id"]
    )
    assert plain_item_size(done) > plain_item_size(running)


def test_per_path_costs_follow_the_counts_and_the_items_sizes():
    """A skip is 1 read unit ($0.125/M), a run 1 read and 5 write units ($3.25/M) here."""
    course = _Course(run=True)
    per_path, _ = compare_gates(course, measured=MEASURED, slot=SLOT)
    assert item_size(course.store.raw_item(course.job)) < 1024, "every write is 1 unit here"
    rows = {row[0]: row for row in per_path.rows}
    assert rows["duplicate of a done slot"][1:] == (
        "1 req, 1 R + 0 W",
        "$0.125",
        "1 req, 0 R + 1 W",
        "$0.625",
    )
    assert rows["ran the workload"][1:] == (
        "3 req, 1 R + 5 W",
        "$3.250",
        "2 req, 0 R + 2 W",
        "$1.250",
    )
    assert rows["lost the race"][2] == "$0.750"


def test_write_first_wins_until_enough_duplicates_make_the_cheap_read_pay():
    """Per slot, write-first is cheaper with few duplicates, even at 4, read-first above."""
    _, per_slot = compare_gates(_Course(run=True), measured=MEASURED, slot=SLOT)
    winners = {row[0]: row[3] for row in per_slot.rows}
    assert winners["0"] == "write-first"
    assert winners["4"] == "even"
    assert winners["10"] == "read-first"


@pytest.mark.parametrize(
    ("measured", "run", "message"),
    [
        ({"lost the race": Counter()}, True, "run Step 6 first"),
        (MEASURED, False, "no run history yet"),
    ],
)
def test_it_says_what_to_run_first_when_a_measurement_is_missing(measured, run, message):
    """Without Step 6's counts or its run, the error says to run Step 6 first."""
    with pytest.raises(ValueError, match=message):
        compare_gates(_Course(run=run), measured=measured, slot=SLOT)
