"""Predictions: nothing predicted says so honestly; a prediction is judged against the run."""

from __future__ import annotations

import pytest

from jobcontroller.controller import InvocationResult, Outcome
from jobcontroller.course.predict import answer_of, judge
from jobcontroller.model import Reason


def test_no_prediction_says_so_and_shows_the_answer():
    """With the placeholder None, the verdict is neither right nor wrong and names the answer."""
    verdict = judge(None, 8)
    assert verdict.right is None
    assert verdict.text().startswith("You predicted nothing yet")
    assert "The run answered: 8." in verdict.text()


@pytest.mark.parametrize(
    ("predicted", "actual", "right"),
    [
        (8, 8, True),
        ("8", 8, True),
        (1, 8, False),
        ("takeover", "TAKEOVER", True),
        ("RUN", "X", False),
    ],
)
def test_a_prediction_is_judged(predicted, actual, right):
    """Numbers and their digits, and strings in any case, compare as the same answer."""
    verdict = judge(predicted, actual, why="because")
    assert verdict.right is right
    assert ("right." in verdict.text()) is right
    assert ("Why: because" in verdict.text()) is not right


def test_an_answer_outside_the_choices_is_refused():
    """A prediction that is not one of the offered choices gets an error listing them."""
    with pytest.raises(ValueError, match="choose one of 'RUN', 'TAKEOVER'"):
        judge("maybe", "RUN", choices=["RUN", "TAKEOVER"])


@pytest.mark.parametrize(
    ("result", "answer"),
    [
        (InvocationResult("j", Outcome.SUCCEEDED, "slot", took_over_from="run-1"), "TAKEOVER"),
        (InvocationResult("j", Outcome.SUCCEEDED, "slot"), "RUN"),
        (InvocationResult("j", Outcome.SKIPPED, "slot", reason=Reason.SLOT_DONE), "SLOT_DONE"),
        (InvocationResult("j", Outcome.FAILED, "slot"), "FAILED"),
    ],
)
def test_answer_of_names_what_the_invocation_answered(result, answer):
    """An invocation's answer is TAKEOVER, RUN, the skip reason, or its outcome."""
    assert answer_of(result) == answer
