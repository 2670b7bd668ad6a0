"""Predictions before running: the learner writes an answer, the run that follows judges it.

A notebook cell holds `my_prediction = None` and a question; the learner replaces `None` with
an answer, then runs the demo, and `judge(my_prediction, actual, ...)` says whether it was
right. With the placeholder still in place it says so, honestly, instead of judging: that is
what a notebook's stored output shows, the same on every run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from jobcontroller.controller import InvocationResult, Outcome

__all__ = ["Verdict", "answer_of", "judge"]


@dataclass(frozen=True)
class Verdict:
    """A prediction next to what the run answered."""

    predicted: Any
    actual: Any
    right: bool | None  # None: nothing predicted yet
    why: str = ""

    def text(self) -> str:
        if self.right is None:
            return (
                "You predicted nothing yet: replace None in my_prediction above with your "
                f"answer, run that cell, then this one.\nThe run answered: {self.actual}."
            )
        if self.right:
            return f"You predicted {self.predicted!r}, and the run answered {self.actual}: right."
        lines = [f"You predicted {self.predicted!r}, but the run answered {self.actual}."]
        if self.why:
            lines.append(f"Why: {self.why}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.text()


def _normal(value: Any) -> Any:
    if isinstance(value, str):
        return value.strip().upper()
    return value


def judge(
    predicted: Any, actual: Any, *, choices: Sequence[Any] | None = None, why: str = ""
) -> Verdict:
    """Compare a prediction with the run's answer (strings compare case-insensitively).

    With `choices`, an answer outside them is reported as such rather than judged wrong.
    """
    if predicted is None:
        return Verdict(None, actual, None, why)
    if isinstance(actual, int) and isinstance(predicted, str) and predicted.strip().isdigit():
        predicted = int(predicted)  # "8" and 8 are the same answer
    if choices is not None and _normal(predicted) not in [_normal(c) for c in choices]:
        options = ", ".join(repr(c) for c in choices)
        raise ValueError(f"my_prediction is {predicted!r}: choose one of {options}")
    return Verdict(predicted, actual, _normal(predicted) == _normal(actual), why)


def answer_of(result: InvocationResult) -> str:
    """What an invocation answered, in the gate's words: RUN, TAKEOVER or the skip reason."""
    if result.took_over_from:
        return "TAKEOVER"
    if result.outcome is Outcome.SKIPPED and result.reason is not None:
        return result.reason.value
    if result.outcome is Outcome.SUCCEEDED:
        return "RUN"
    return result.outcome.value
