"""Exercises for notebooks 06-08 (the deployed stack): each checker runs the learner's answer
and explains the first part that is wrong; solutions are printed only on request.

- 06: `check_schedule(answer, lab)`: the schedule's flexible window, input template, retry
  policy and dead-letter queue, in the shape `create_schedule` takes them. The template is
  rendered for real deliveries and parsed by the handler's own `parse_event`.
- 07: `proofcheck.check_counts(fn, lab)` (in its own module).
- 08: `check_leftovers(prediction, lab)`: which resources are still there once only the
  function is deleted, compared with what the lookup finds.

Course tooling only: the Lambda never imports this module.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from jobcontroller.course.verdict import Verdict
from jobcontroller.errors import JobControllerError
from jobcontroller.events import parse_event
from jobcontroller.model import format_ts
from jobcontroller.ops import deploy as _deploy

if TYPE_CHECKING:
    from jobcontroller.course.lab import Lab

__all__ = [
    "RESOURCES",
    "Verdict",
    "check_leftovers",
    "check_schedule",
    "resources_now",
    "show_lab_solution",
]


# --- 06: the schedule's settings -----------------------------------------------------------

_SLOT = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def _render(template: str, slot: datetime, execution_id: str, attempt: int) -> Any:
    # The context attributes the Scheduler fills in at each delivery:
    # https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-schedule-context-attributes.html
    values = {
        "<aws.scheduler.scheduled-time>": format_ts(slot),
        "<aws.scheduler.execution-id>": execution_id,
        "<aws.scheduler.attempt-number>": str(attempt),
    }
    for placeholder, value in values.items():
        template = template.replace(placeholder, value)
    return json.loads(template)


def _check_window(answer: dict[str, Any]) -> str | None:
    window = answer.get("FlexibleTimeWindow")
    if not isinstance(window, dict) or "Mode" not in window:
        return 'FlexibleTimeWindow: give a dict like {"Mode": ...}.'
    if window["Mode"] != "OFF":
        minutes = window.get("MaximumWindowInMinutes", "some")
        return (
            f"FlexibleTimeWindow is {window['Mode']} ({minutes} minutes): the Scheduler may "
            f"then deliver the 10:00 slot at any moment in the {minutes} minutes after it, a "
            'time nobody chose. The course delivers at the slot: {"Mode": "OFF"}.'
        )
    return None


def _check_input(answer: dict[str, Any], job: str) -> str | None:
    template = answer.get("Input")
    if isinstance(template, dict):
        if any(value is Ellipsis for value in template.values()):
            return "Input: replace the ... with a placeholder (see the list above the cell)."
        template = json.dumps(template)
    if not isinstance(template, str):
        return "Input: give the event template as a dict (or its JSON text)."
    # One slot delivered twice (at-least-once): each copy has its own execution id and
    # attempt number, and whenever it arrives, its scheduled time is the slot's.
    deliveries = [(_SLOT, "0a1b2c3d4e5f6a7b", 1), (_SLOT, "9f8e7d6c5b4a3f2e", 2)]
    triggers = []
    for slot, execution_id, attempt in deliveries:
        try:
            triggers.append(parse_event(_render(template, slot, execution_id, attempt), job=job))
        except (ValueError, JobControllerError) as exc:
            return (
                f"Input: rendered for the 10:00 slot, the handler refuses it: {exc}. "
                "The slot the delivery is for must reach the handler as 'scheduled_time'."
            )
    if any(t.slot != _SLOT for t in triggers):
        got = ", ".join("none" if t.slot is None else t.slot.isoformat() for t in triggers)
        return (
            f"Input: two deliveries of the 10:00 slot reached the handler as slots {got}. "
            "Only <aws.scheduler.scheduled-time> names the slot itself, the same on every "
            "delivery; a fixed time or the execution id does not."
        )
    next_hour = parse_event(_render(template, _SLOT + timedelta(hours=1), "x", 1), job=job)
    if next_hour.slot != _SLOT + timedelta(hours=1):
        return "Input: the 11:00 slot reached the handler as another slot: use the placeholder."
    return None


def _check_retries(answer: dict[str, Any]) -> str | None:
    policy = answer.get("RetryPolicy")
    if not isinstance(policy, dict):
        return 'RetryPolicy: give a dict like {"MaximumRetryAttempts": ..., ...}.'
    retries, age = policy.get("MaximumRetryAttempts"), policy.get("MaximumEventAgeInSeconds")
    if retries != 0:
        return (
            f"RetryPolicy: MaximumRetryAttempts {retries!r} means a delivery that fails is "
            "sent again, at times nobody chose, on top of the slots that follow. Retries come "
            "from state here (the next slot, a takeover): set it to 0."
        )
    if not isinstance(age, int) or not 60 <= age <= 3600:
        return (
            f"RetryPolicy: MaximumEventAgeInSeconds {age!r}: an event older than one interval "
            "(3600 s) must go to the dead-letter queue, not arrive on top of the next slot. "
            "Give a number from 60 (the Scheduler's minimum) to 3600."
        )
    return None


def _check_dlq(answer: dict[str, Any], lab: Lab) -> str | None:
    config = answer.get("DeadLetterConfig")
    wanted = lab.target.arn("sqs", lab.names.schedule_dlq)
    arn = config.get("Arn") if isinstance(config, dict) else None
    if arn == wanted:
        return None
    if arn == lab.target.arn("sqs", lab.names.failure_queue):
        return (
            "DeadLetterConfig: that is Lambda's on-failure queue. The Scheduler's role may only "
            f"send to the schedule's own queue: {wanted}."
        )
    return (
        f"DeadLetterConfig: {config!r}. With retries off, an event the Scheduler cannot deliver "
        "must leave a trace a person can find: the schedule's dead-letter queue, "
        f'{{"Arn": {wanted!r}}}.'
    )


def check_schedule(answer: dict[str, Any], lab: Lab) -> Verdict:
    """Check the learner's schedule settings part by part; explain the first wrong part."""
    if not isinstance(answer, dict):
        raise TypeError("pass the dict of schedule settings, e.g. check_schedule(my_schedule, lab)")
    problems = [
        _check_window(answer),
        _check_input(answer, lab.names.job),
        _check_retries(answer),
        _check_dlq(answer, lab),
    ]
    wrong = [p for p in problems if p is not None]
    return Verdict(
        "the schedule's settings",
        len(problems) - len(wrong),
        len(problems),
        (f"First wrong part: {wrong[0]}",) if wrong else (),
        "The deployed schedule below is set the same way.",
    )


# --- 08: what is left after deleting the function ---------------------------------------------

# key: (kind as the lookup shows it, a name function, why it outlives the function)
RESOURCES: dict[str, tuple[str, Callable[[_deploy.Names], str], str]] = {
    "table": (
        "dynamodb table",
        lambda n: n.table,
        "the table is independent of whoever reads it; its items stay until it is deleted",
    ),
    "function": (
        "lambda function",
        lambda n: n.function,
        "you deleted it (and its asynchronous invoke configuration went with it)",
    ),
    "function_role": (
        "iam role",
        lambda n: n.function_role,
        "a role is an IAM resource of its own: deleting the function that used it leaves it, "
        "ready to be given to any other function in the account",
    ),
    "scheduler_role": (
        "iam role",
        lambda n: n.scheduler_role,
        "the Scheduler's role belongs to the schedule, which is still there",
    ),
    "log_group": (
        "logs log-group",
        lambda n: n.log_group,
        "Lambda never deletes a function's log group: it outlives the function, with its "
        "logs (and, on real AWS, their storage cost) until its retention runs out",
    ),
    "failure_queue": (
        "sqs queue",
        lambda n: n.failure_queue,
        "a queue does not depend on who sends to it",
    ),
    "schedule_dlq": (
        "sqs queue",
        lambda n: n.schedule_dlq,
        "a queue does not depend on who sends to it",
    ),
    "schedule_group": (
        "scheduler schedule-group",
        lambda n: n.schedule_group,
        "the group holds the schedule, which is still there",
    ),
    "schedule": (
        "scheduler schedule",
        lambda n: f"{n.schedule_group}/{n.schedule}",
        "a schedule does not check that its target exists: it keeps firing every hour, and "
        "every delivery fails and goes to the schedule's dead-letter queue",
    ),
}


def resources_now(lab: Lab) -> set[str]:
    """The RESOURCES keys of what the prefix's lookup finds now."""
    from jobcontroller.course.lab_views import resource_kind

    found = {resource_kind(arn) for arn in _deploy.leftovers(lab.target, lab.names.prefix)}
    return {key for key, (kind, name, _) in RESOURCES.items() if (kind, name(lab.names)) in found}


def check_leftovers(prediction: Iterable[str], lab: Lab) -> Verdict:
    """Compare the predicted set of RESOURCES keys with what is there now; explain each miss."""
    predicted = set(prediction)
    unknown = sorted(predicted - set(RESOURCES))
    if unknown:
        raise ValueError(
            f"unknown resource names {unknown}: use these: {', '.join(RESOURCES)}. Nothing "
            "was checked."
        )
    there = resources_now(lab)
    misses = [k for k in RESOURCES if (k in predicted) != (k in there)]
    lines = []
    for key in misses:
        said = "left" if key in predicted else "gone"
        found = "still there" if key in there else "gone"
        lines.append(f"  {key}: you said {said}, it is {found}: {RESOURCES[key][2]}.")
    if misses:
        lines.insert(0, f"Wrong for {len(misses)} of {len(RESOURCES)}:")
    return Verdict(
        "your prediction",
        len(RESOURCES) - len(misses),
        len(RESOURCES),
        tuple(lines),
        f"Still there: {', '.join(k for k in RESOURCES if k in there) or 'nothing'}.",
    )


# --- solutions on request ----------------------------------------------------------------------


def solution_schedule(lab: Lab) -> dict[str, Any]:
    """One answer to 06's exercise: the settings deploy.schedule_request sends."""
    return {
        "FlexibleTimeWindow": {"Mode": "OFF"},  # deliver at the slot
        "Input": {
            "job": lab.names.job,
            "source": "scheduler",
            # The slot this delivery is for: the same on every copy and every retry.
            "scheduled_time": "<aws.scheduler.scheduled-time>",
            "execution_id": "<aws.scheduler.execution-id>",
            "attempt": "<aws.scheduler.attempt-number>",
        },
        # No retries by infrastructure; an event older than one interval is dead-lettered.
        "RetryPolicy": {"MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 3600},
        "DeadLetterConfig": {"Arn": lab.target.arn("sqs", lab.names.schedule_dlq)},
    }


def solution_leftovers(lab: Lab) -> set[str]:
    """One answer to 08's exercise: everything but the function is still there."""
    return set(RESOURCES) - {"function"}


def _solution_counts() -> Callable[..., Any]:
    from jobcontroller.course.proofcheck import solution_counts

    return solution_counts


_SOLUTIONS: dict[str, Callable[[], Callable[..., Any]]] = {
    "schedule": lambda: solution_schedule,
    "counts": _solution_counts,
    "leftovers": lambda: solution_leftovers,
}


def show_lab_solution(name: str, *, reveal: bool = False) -> None:
    """Print a reference solution ('schedule', 'counts' or 'leftovers') when `reveal=True`."""
    if name not in _SOLUTIONS:
        raise KeyError(f"no exercise {name!r}: choose one of {sorted(_SOLUTIONS)}")
    if not reveal:
        print(
            f"The solution to the {name!r} exercise is hidden. Change reveal=False to "
            "reveal=True in this cell and run it again to see it."
        )
        return
    print(inspect.getsource(_SOLUTIONS[name]()))
