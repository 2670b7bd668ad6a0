"""Waiting for AWS's eventual consistency: bounded backoff on exact errors, waiters on our clock.

A resource AWS has just created is not yet usable everywhere: a new IAM role takes seconds (and
sometimes more than a minute) to be assumable by Lambda or the Scheduler, a new role policy to
reach Lambda's destination check, a function update to finish. AWS answers with a specific
error meanwhile; `until_consistent` retries exactly those (code *and* message), backing off
exponentially for about two minutes (the figure Terraform's AWS provider uses for IAM
propagation), and says what it waits for. Anything else is raised at once.
https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from botocore import xform_name
from botocore.exceptions import ClientError, WaiterError

from jobcontroller.ops.naming import Target, error_code

__all__ = [
    "DESTINATION_NOT_PERMITTED",
    "LIMIT_SECONDS",
    "QUEUE_DELETED_RECENTLY",
    "ROLE_NOT_ASSUMABLE_BY_LAMBDA",
    "ROLE_NOT_ASSUMABLE_BY_SCHEDULER",
    "UPDATE_IN_PROGRESS",
    "Eventual",
    "until_consistent",
    "wait_until",
]

T = TypeVar("T")
LIMIT_SECONDS = 120.0


@dataclass(frozen=True)
class Eventual:
    """An error AWS gives while it catches up: its code, a piece of its message, and why."""

    code: str
    message: str
    why: str

    def matches(self, exc: ClientError) -> bool:
        message = exc.response.get("Error", {}).get("Message", "")
        return error_code(exc) == self.code and self.message in message


ROLE_NOT_ASSUMABLE_BY_LAMBDA = Eventual(
    "InvalidParameterValueException",
    "cannot be assumed by Lambda",
    "the new role has not reached Lambda yet (IAM is eventually consistent)",
)
ROLE_NOT_ASSUMABLE_BY_SCHEDULER = Eventual(
    "ValidationException",
    "must allow AWS EventBridge Scheduler to assume the role",
    "the new role has not reached EventBridge Scheduler yet (IAM is eventually consistent)",
)
DESTINATION_NOT_PERMITTED = Eventual(
    "InvalidParameterValueException",
    "does not have permissions to call SendMessage",
    "the role's new policy has not reached Lambda's destination check yet",
)
UPDATE_IN_PROGRESS = Eventual(
    "ResourceConflictException",
    "update is in progress",
    "an earlier update of the function is still in progress",
)
# SQS keeps a deleted queue's name for 60 s:
# https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_DeleteQueue.html
QUEUE_DELETED_RECENTLY = Eventual(
    "AWS.SimpleQueueService.QueueDeletedRecently",
    "",
    "a queue of this name was deleted less than 60 s ago",
)


def until_consistent(
    target: Target,
    call: Callable[[], T],
    *,
    waits_for: Sequence[Eventual],
    what: str,
    say: Callable[[str], None] | None = None,
    limit: float = LIMIT_SECONDS,
) -> T:
    """`call()`, retried with exponential backoff (1, 2, 4 .. 16 s) while it fails with one of
    `waits_for`, for at most `limit` seconds of AWS time (`target.sleep`); then its error."""
    say = say or (lambda _message: None)
    started = target.monotonic()
    delay = 1.0
    while True:
        try:
            return call()
        except ClientError as exc:
            reason = next((e for e in waits_for if e.matches(exc)), None)
            waited = target.monotonic() - started
            if reason is None:
                raise
            if waited + delay > limit:
                say(f"{what}: gave up after {waited:.0f} s: {reason.why}")
                raise
            say(f"{what}: {reason.why}; retrying in {delay:.0f} s ({waited:.0f} of {limit:.0f} s)")
            target.sleep(delay)
            delay = min(delay * 2, 16.0)


def wait_until(
    target: Target,
    service: str,
    waiter_name: str,
    *,
    delay: float | None = None,
    attempts: int | None = None,
    **params: Any,
) -> None:
    """botocore's waiter `waiter_name` (its call, acceptors, delay and attempts), sleeping on
    `target.sleep`, so the embedded backend's scaled or virtual AWS time drives it too."""
    client = target.client(service)
    config = client.get_waiter(waiter_name).config
    operation = getattr(client, xform_name(config.operation))
    pause = config.delay if delay is None else delay
    for _attempt in range(config.max_attempts if attempts is None else attempts):
        try:
            response = operation(**params)
        except ClientError as exc:
            response = exc.response
        state = next((a.state for a in config.acceptors if a.matcher_func(response)), None)
        if state == "success":
            return
        if state == "failure":
            raise WaiterError(waiter_name, f"{waiter_name} failed", response)
        target.sleep(pause)
    raise WaiterError(waiter_name, f"{waiter_name}: max attempts exceeded", {})
