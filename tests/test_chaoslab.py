"""The chaos lab's displays: invariant tables, predictions judged, stories of one slot."""

from __future__ import annotations

import pytest

from jobcontroller.course import chaoslab
from jobcontroller.embedded.chaos import simulate
from jobcontroller.embedded.designs import DESIGNS


@pytest.fixture(scope="module")
def reports():
    """The controller and the read-then-write lock over the same 150 slots."""
    return {
        name: simulate(slots=150, seed=3, design=DESIGNS[name]())
        for name in ("controller", "read-then-write")
    }


def test_the_invariant_table_counts_violations_per_design(reports):
    """One row per invariant, one column per design, violations with checks in brackets."""
    table = chaoslab.show_invariants(reports)
    overlaps = sum(
        v.invariant == "one workload at a time" for v in reports["read-then-write"].violations
    )
    assert overlaps > 0
    assert table.header == ("invariant", "controller", "read-then-write")
    row = next(r for r in table.rows if r[0] == "one workload at a time")
    checks = reports["controller"].checks["one workload at a time"]
    assert row[1:] == (f"0 ({checks})", f"{overlaps} ({reports['read-then-write'].checks[row[0]]})")


@pytest.mark.parametrize(
    ("guess", "verdict"),
    [
        (None, "nothing predicted yet"),
        ("one workload at a time", "right"),
        (["one workload at a time", "at most one success per slot"], "right"),
        ("cooldown never loses a slot", "not this time"),
    ],
)
def test_predictions_are_judged_against_what_broke(reports, guess, verdict):
    """A blank is said to be blank; a guess is right only if the design broke all of it."""
    table = chaoslab.judge_predictions({"read-then-write": guess}, reports)
    assert table.rows[0][3].startswith(verdict)


def test_a_prediction_that_is_not_an_invariant_is_refused(reports):
    """A typo names the invariants to choose from instead of being judged wrong."""
    with pytest.raises(ValueError, match="choose from"):
        chaoslab.judge_predictions({"read-then-write": "two winners"}, reports)


def test_a_story_lists_the_deliveries_and_workloads_of_the_slot(reports):
    """The first overlap's story shows at least two workloads of that slot."""
    report = reports["read-then-write"]
    overlap = chaoslab.first_violation(report, "one workload at a time")
    lines = [row[0] for row in chaoslab.show_story(report, overlap).rows]
    assert sum("worked until" in line for line in lines) >= 2
    with pytest.raises(ValueError, match="broke no"):
        chaoslab.first_violation(reports["controller"], "one workload at a time")
