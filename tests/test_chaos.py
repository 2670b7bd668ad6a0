"""The fault simulation: the controller keeps every invariant; each counter-example breaks one."""

from __future__ import annotations

import dataclasses

import boto3
import pytest

from jobcontroller.embedded.chaos import (
    DESIGNS,
    INVARIANTS,
    FaultRates,
    Report,
    main,
    simulate,
)
from jobcontroller.ops import cli


def _violated(report: Report) -> set[str]:
    return {v.invariant for v in report.violations}


def test_the_controller_keeps_every_invariant_under_faults():
    """300 slots with every fault drawn: the checker runs each invariant and finds nothing."""
    report = simulate(slots=300, seed=11)
    assert report.violations == [], report.text()
    for invariant in INVARIANTS[:-1]:  # the cooldown check only counts COOLDOWN skips
        assert report.checks[invariant] > 0, invariant
    for fault in ("crash", "late commit", "racing copies", "lost answer", "throttle"):
        assert report.faults[fault] > 0, fault


def test_the_controller_keeps_every_invariant_on_the_embedded_backend(fresh_aws):
    """The same simulation through moto's server (a real HTTP client) also finds nothing."""
    report = simulate(slots=40, seed=5, client=boto3.client("dynamodb"))
    assert report.violations == [], report.text()
    assert report.outcomes["SUCCEEDED"] > 0


@pytest.mark.parametrize(
    ("design", "expected"),
    [
        # No lease: a crash leaves the job RUNNING for good; cooldown from completion.
        ("card", {"never RUNNING past lease + interval", "cooldown never loses a slot"}),
        # Read, check in Python, write blindly: racing copies both run.
        ("read-then-write", {"one workload at a time", "at most one success per slot"}),
        # The next run allowed one interval after the last one *finished*.
        ("completion-cooldown", {"cooldown never loses a slot"}),
    ],
)
def test_each_counter_example_is_caught(design: str, expected: set[str]):
    """The course's broken designs fail the same run, on the invariant that names their flaw."""
    report = simulate(slots=300, seed=3, design=DESIGNS[design]())
    assert expected <= _violated(report), report.text()


def test_the_same_seed_replays_the_same_history():
    """Two runs with one seed inject the same faults and reach the same outcomes."""
    first = simulate(slots=120, seed=21, design=DESIGNS["read-then-write"]())
    second = simulate(slots=120, seed=21, design=DESIGNS["read-then-write"]())
    assert first.faults == second.faults
    assert first.outcomes == second.outcomes
    assert first.violations == second.violations


def test_a_violation_replays_from_its_seed_and_slot():
    """Re-running up to a violation's slot, with its seed, reproduces that violation."""
    report = simulate(slots=200, seed=3, design=DESIGNS["completion-cooldown"]())
    violation = report.violations[0]
    replay = simulate(slots=violation.slot + 1, seed=3, design=DESIGNS["completion-cooldown"]())
    assert violation in replay.violations


def test_without_faults_every_slot_runs_once():
    """With every fault rate at zero, each slot succeeds exactly once and nothing is skipped."""
    calm = dataclasses.replace(
        FaultRates(),
        **{f.name: 0.0 for f in dataclasses.fields(FaultRates)},
    )
    report = simulate(slots=48, seed=1, rates=calm)
    assert report.outcomes == {"SUCCEEDED": 48}
    assert report.violations == []


def test_the_command_prints_the_table_and_exits_1_on_a_violation(capsys):
    """`simulate --design card` prints the closing table with the replay line and exits 1."""
    assert main(["--slots", "60", "--seed", "3", "--design", "card"]) == 1
    out = capsys.readouterr().out
    assert "never RUNNING past lease + interval" in out
    assert "replay: --design card --seed 3 --slots" in out
    assert main(["--slots", "20", "--seed", "2"]) == 0


def test_the_cli_runs_the_simulation(capsys):
    """`jobcontroller simulate` is the same command; a bad slot count is one clear line."""
    assert cli.main(["simulate", "--slots", "30", "--seed", "3", "--design", "card"]) == 1
    assert "VIOLATION" in capsys.readouterr().out
    assert cli.main(["simulate", "--slots", "0"]) == 1
    assert "--slots must be 1 or more" in capsys.readouterr().err
