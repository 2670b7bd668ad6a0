"""The teardown module: delete a stack in order, safely again, and prove nothing is left."""

from __future__ import annotations

import pytest

from jobcontroller import ManualClock
from jobcontroller.errors import ConfigError, TeardownIncomplete
from jobcontroller.ops import deploy as d
from jobcontroller.ops import teardown


@pytest.fixture
def deployed(target, zip_path):
    """The stack for prefix 'ann', deployed with a fixed clock."""
    return d.deploy(target, d.Names("ann"), zip_path=zip_path, clock=ManualClock())


def test_teardown_deletes_everything_in_order_and_is_safe_to_repeat(target, deployed):
    """Teardown removes the schedules first and the table last, leaves nothing, and can rerun."""
    d.schedule_once(target, deployed.names, clock=ManualClock())
    report = teardown.teardown(target, deployed.names)
    assert report.leftovers == ()
    assert teardown.leftovers(target, "ann") == []
    kinds = [entry.split(" ", 1)[0] for entry in report.deleted]
    assert kinds[:3] == ["schedule", "schedule", "schedule"]  # two schedules, then the group
    assert kinds[-1] == "table"
    assert kinds.index("role") < kinds.index("function")  # the scheduler's role before its target
    assert len(report.deleted) == 10
    assert teardown.teardown(target, deployed.names).deleted == ()


def test_teardown_leaves_other_participants_alone(target, zip_path, deployed):
    """Tearing down 'ann' leaves every resource of 'annb' (a prefix that starts the same)."""
    d.deploy(target, d.Names("annb"), zip_path=zip_path, clock=ManualClock())
    before = teardown.leftovers(target, "annb")
    teardown.teardown(target, deployed.names)
    assert teardown.leftovers(target, "ann") == []
    assert teardown.leftovers(target, "annb") == before
    assert len(before) == 9  # annb's whole stack


def test_teardown_reports_anything_tagged_it_did_not_delete(target, deployed):
    """A tagged resource teardown does not know about makes it raise, naming the resource."""
    target.client("sqs").create_queue(QueueName="ann-stray", tags={"jobcontroller:prefix": "ann"})
    with pytest.raises(TeardownIncomplete, match="ann-stray"):
        teardown.teardown(target, deployed.names)


def test_teardown_can_keep_the_table(target, deployed):
    """keep_table=True deletes everything but the table, and that is not reported as left over."""
    report = teardown.teardown(target, deployed.names, keep_table=True)
    assert not any(entry.startswith("table") for entry in report.deleted)
    assert teardown.leftovers(target, "ann") == [deployed.table_arn]


def test_leftovers_refuses_a_bad_prefix(target):
    """leftovers validates its prefix, so an empty one can never match everything."""
    with pytest.raises(ConfigError):
        teardown.leftovers(target, "")
