"""The exercises: reference solutions pass, and wrong answers are caught and explained."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from jobcontroller import Action, Decision, JobConfig, Reason, Status, decide
from jobcontroller.course.exercises import (
    GATE_CASES,
    check_cooldown,
    check_gate,
    gate_cases,
    show_solution,
    solution_cooldown,
    solution_gate,
    solution_gate_stage1,
)

CONFIG = JobConfig()


@pytest.mark.parametrize("case", GATE_CASES, ids=lambda c: c.name)
def test_reference_cases_match_the_package_gate(case):
    """Every reference case's expected answer is what the package's own gate decides."""
    got = decide(case.state, case.trigger, case.now, config=CONFIG)
    assert (got.action, got.reason) == (case.action, case.reason)


@pytest.mark.parametrize("case", GATE_CASES, ids=lambda c: c.name)
def test_solution_gate_matches_the_package_gate(case):
    """The revealed solution decides every case as the package's gate does."""
    got = solution_gate(case.state, case.trigger, case.now, config=CONFIG)
    want = decide(case.state, case.trigger, case.now, config=CONFIG)
    assert (got.action, got.reason) == (want.action, want.reason)


def test_reference_cases_cover_every_decision():
    """The cases exercise RUN, TAKEOVER and every gate skip reason."""
    seen = {(c.action, c.reason) for c in GATE_CASES}
    gate_reasons = {Reason.PAUSED, Reason.RUNNING, Reason.SLOT_DONE, Reason.COOLDOWN}
    assert {r for _, r in seen if r} == gate_reasons
    assert {(Action.RUN, None), (Action.TAKEOVER, None)} <= seen


def test_check_gate_accepts_the_solution():
    """check_gate passes the solution and the package's gate."""
    assert check_gate(solution_gate).passed
    assert check_gate(decide).text().endswith("All correct: well done.")


def _seed_gate(state, trigger, now, config):
    if state.status is Status.RUNNING:
        return Decision(Action.SKIP, Reason.RUNNING)
    if state.next_allowed_run is not None and now < state.next_allowed_run:
        return Decision(Action.SKIP, Reason.COOLDOWN)
    return Decision(Action.RUN)


def _never_takes_over(state, trigger, now, config):
    if state.status is Status.RUNNING and not state.paused:
        return Decision(Action.SKIP, Reason.RUNNING)
    return solution_gate(state, trigger, now, config=config)


def _lease_before_pause(state, trigger, now, config):
    if state.status is Status.RUNNING and state.lease_expires_at > now:
        return Decision(Action.SKIP, Reason.RUNNING)
    return solution_gate(state, trigger, now, config=config)


def _cooldown_before_slot(state, trigger, now, config):
    when = trigger.slot or now
    if state.next_allowed_run and when < state.next_allowed_run - config.cooldown_slack:
        return Decision(Action.SKIP, Reason.COOLDOWN)
    return solution_gate(state, trigger, now, config=config)


def _slot_equal_only(state, trigger, now, config):
    if trigger.slot is not None and state.last_slot is not None and trigger.slot < state.last_slot:
        lease_live = state.lease_expires_at is not None and state.lease_expires_at > now
        if not state.paused and not lease_live:
            # the mistake: an older slot is not recognised as done
            return Decision(Action.RUN)
    return solution_gate(state, trigger, now, config=config)


def _cooldown_from_last_success(state, trigger, now, config):
    decision = solution_gate(state, trigger, now, config=config)
    since = state.last_success_ts
    if decision.runs and since and now < since + config.interval - config.cooldown_slack:
        return Decision(Action.SKIP, Reason.COOLDOWN)
    return decision


def _no_slack(state, trigger, now, config):
    decision = solution_gate(state, trigger, now, config=config)
    if decision.runs and state.next_allowed_run and now < state.next_allowed_run:
        return Decision(Action.SKIP, Reason.COOLDOWN)
    return decision


def _arrival_not_slot(state, trigger, now, config):
    # the mistake: the cooldown compares when the trigger arrived, not the slot it stands for
    decision = solution_gate(state, trigger, now, config=config)
    if decision.reason is Reason.COOLDOWN and now >= state.next_allowed_run - config.cooldown_slack:
        return Decision(Action.RUN)
    return decision


def _raises(state, trigger, now, config):
    return state.lease_expires_at > now  # TypeError on an IDLE item (no lease)


def _returns_text(state, trigger, now, config):
    return "RUN"


@pytest.mark.parametrize(
    ("gate", "first_wrong", "says"),
    [
        (_seed_gate, "a paused job", "your gate said RUN"),
        (_lease_before_pause, "paused while a run holds the lock", "SKIP (RUNNING)"),
        (_never_takes_over, "the holder's lease has expired", "SKIP (RUNNING)"),
        (_cooldown_before_slot, "the same slot delivered again", "SKIP (COOLDOWN)"),
        (_slot_equal_only, "an older slot arrives late", "your gate said RUN"),
        (
            _cooldown_from_last_success,
            "the next slot, delivered late after a slow run",
            "SKIP (COOLDOWN)",
        ),
        (_no_slack, "a manual trigger 30 s before next_allowed_run", "SKIP (COOLDOWN)"),
        (_arrival_not_slot, "the same slot delivered late, inside the cooldown", "said RUN"),
        (_raises, "a fresh job, first slot", "raised TypeError"),
        (_returns_text, "a fresh job, first slot", "return a Decision"),
    ],
    ids=lambda v: getattr(v, "__name__", None),
)
def test_check_gate_explains_the_first_wrong_answer(gate, first_wrong, says):
    """A wrong gate fails, and the report names its first wrong case and what it said."""
    report = check_gate(gate)
    assert not report.passed
    assert not report
    assert f'"{first_wrong}"' in report.explanation[0]
    assert says in report.text()
    assert any(line.startswith("  why:") for line in report.explanation)


def test_stage_one_holds_only_status_and_cooldown_cases():
    """Stage 1 asks about status and cooldown only: no pause, no expired lease, no done slot."""
    stage1 = gate_cases(1)
    assert 0 < len(stage1) < len(gate_cases(2)) == len(GATE_CASES)
    for case in stage1:
        assert not case.state.paused
        slot, last = case.trigger.slot, case.state.last_slot
        assert slot is None or last is None or slot > last
        assert (case.action, case.reason) != (Action.TAKEOVER, None)
    assert {c.reason for c in stage1} == {None, Reason.RUNNING, Reason.COOLDOWN}


def test_check_gate_stage_one_accepts_the_stage_one_solution_and_the_package_gate():
    """The design card's two checks (with the slack) pass stage 1, and so does the full gate."""
    assert check_gate(solution_gate_stage1, stage=1).passed
    assert check_gate(decide, stage=1).passed
    assert check_gate(solution_gate, stage=1).passed


def test_the_stage_one_solution_is_not_enough_for_stage_two():
    """Stage 2 adds what stage 1 leaves out: the first thing it misses is the pause."""
    report = check_gate(solution_gate_stage1, stage=2)
    assert not report.passed
    assert '"a paused job"' in report.explanation[0]


def test_check_gate_stage_one_explains_the_missing_slack():
    """The design card's literal gate (no slack) fails stage 1 at the trigger 30 s early."""
    report = check_gate(_seed_gate, stage=1)
    assert not report.passed
    assert report.total == len(gate_cases(1))
    assert '"a manual trigger 30 s before next_allowed_run"' in report.explanation[0]
    assert report.text().startswith("gate, stage 1:")


def test_check_gate_refuses_an_unknown_stage():
    """A stage other than 1 or 2 is a clear error."""
    with pytest.raises(ValueError, match="stage must be 1"):
        check_gate(solution_gate, stage=3)


def test_check_cooldown_accepts_the_solution():
    """The slot-anchored rule runs all 24 slots and a manual trigger, and refuses two early ones."""
    report = check_cooldown(solution_cooldown)
    assert (report.right, report.total) == (27, 27)


@pytest.mark.parametrize(
    ("rule", "first_case", "verdict"),
    [
        (lambda slot, arrived, finished, config: finished + config.interval, 3, "was skipped"),
        (lambda slot, arrived, finished, config: arrived + config.interval, 8, "was skipped"),
        (lambda slot, arrived, finished, config: slot or arrived, 2, "was allowed to run"),
        (
            lambda slot, arrived, finished, config: slot + config.interval if slot else arrived,
            27,
            "was allowed to run",
        ),
        (lambda slot, arrived, finished, config: slot + config.interval, 26, "raised TypeError"),
    ],
    ids=["from-completion", "from-arrival", "no-cooldown", "manual-no-cooldown", "manual-none"],
)
def test_check_cooldown_explains_wrong_anchors(rule, first_case, verdict):
    """Anchoring on completion or arrival skips a slot; no cooldown, or none after a manual run
    (slot None), lets an extra run through; ignoring the None slot raises and is reported."""
    report = check_cooldown(rule)
    assert not report.passed
    assert report.explanation[0].startswith(f"First wrong answer: case {first_case} of 27")
    assert verdict in "\n".join(report.explanation)


@pytest.mark.parametrize(
    ("rule", "says"),
    [
        (lambda slot, arrived, finished, config: 3600, "return a UTC-aware datetime"),
        (lambda slot, arrived, finished, config: datetime(2026, 1, 5), "UTC-aware"),
        (lambda slot, arrived, finished, config: 1 / 0, "raised ZeroDivisionError"),
    ],
    ids=["number", "naive-datetime", "raises"],
)
def test_check_cooldown_reports_unusable_answers(rule, says):
    """A rule that returns no aware datetime, or raises, is reported, not crashed on."""
    report = check_cooldown(rule)
    assert not report.passed
    assert says in report.text()


def test_solution_cooldown_uses_arrival_for_manual_runs():
    """Manual runs (no slot) count the interval from their arrival."""
    arrived = datetime(2026, 1, 5, 9, 20, tzinfo=UTC)
    assert solution_cooldown(None, arrived, arrived, CONFIG) == datetime(
        2026, 1, 5, 10, 20, tzinfo=UTC
    )


def test_show_solution_prints_the_source(capsys):
    """show_solution('gate') prints the solution's source code."""
    show_solution("gate")
    out = capsys.readouterr().out
    assert out.startswith("def my_gate(state, trigger, now, config):")
    assert "Reason.SLOT_DONE" in out


@pytest.mark.parametrize(
    ("name", "starts"),
    [
        ("gate-1", "def my_gate(state, trigger, now, config):"),
        ("lock", "def my_acquire(dynamodb, table, key, version, run_id, now):"),
    ],
)
def test_show_solution_prints_the_notebook_02_solutions(capsys, name, starts):
    """The stage-1 gate and the lock are revealed on request, by name."""
    show_solution(name)
    assert capsys.readouterr().out.startswith(starts)


@pytest.mark.parametrize(
    ("name", "check", "namespace"),
    [
        ("gate-1", lambda fn: check_gate(fn, stage=1), {}),
        ("gate", check_gate, {}),
        ("cooldown", check_cooldown, {}),
    ],
)
def test_a_revealed_solution_pasted_into_a_notebook_passes_its_check(
    capsys, name, check, namespace
):
    """The printed solution runs with only the notebook's imports (no annotations to resolve)."""
    import jobcontroller

    show_solution(name)
    scope = {n: getattr(jobcontroller, n) for n in ("Action", "Decision", "Reason", "Status")}
    exec(capsys.readouterr().out, scope)  # what a learner pasting it into the cell would run
    learner_fn = next(v for k, v in scope.items() if k.startswith("my_"))
    assert check(learner_fn).passed


def test_show_solution_can_stay_hidden(capsys):
    """reveal=False prints how to reveal the solution, not the solution."""
    show_solution("cooldown", reveal=False)
    out = capsys.readouterr().out
    assert "reveal=True" in out
    assert "def solution_cooldown" not in out


def test_show_solution_refuses_unknown_names():
    """An unknown exercise name says which names exist."""
    with pytest.raises(KeyError, match="cooldown"):
        show_solution("locks")
