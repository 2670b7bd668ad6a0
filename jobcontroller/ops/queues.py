"""The stack's two dead-letter queues: the function's on-failure queue and the schedule's DLQ."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from jobcontroller.ops.naming import Names, Target
from jobcontroller.ops.retry import QUEUE_DELETED_RECENTLY, until_consistent

__all__ = ["LONG_POLL_SECONDS", "Queues", "ensure_queues", "failure_records", "peek"]

# ReceiveMessage with WaitTimeSeconds 0 (short polling) asks only a sample of SQS's servers
# and can answer without messages that are in the queue; long polling asks all of them and
# answers as soon as one message is there (or after this many seconds, empty).
# https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-short-and-long-polling.html
LONG_POLL_SECONDS = 5


def _queue_arn(target: Target, url: str) -> str:
    attributes = target.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["QueueArn"]
    )
    return attributes["Attributes"]["QueueArn"]


@dataclass(frozen=True)
class Queues:
    """The two dead-letter queues' ARNs."""

    failure_queue_arn: str
    schedule_dlq_arn: str


def ensure_queues(
    target: Target, names: Names, *, say: Callable[[str], None] | None = None
) -> Queues:
    """The function's on-failure queue and the schedule's dead-letter queue."""
    sqs = target.client("sqs")
    arns = []
    for queue in (names.failure_queue, names.schedule_dlq):
        url = until_consistent(
            target,
            partial(
                sqs.create_queue,
                QueueName=queue,
                # Keep failed events the longest SQS allows (14 days), to inspect them.
                Attributes={"MessageRetentionPeriod": "1209600"},
                tags=names.tags,
            ),
            # A redeploy right after a teardown: SQS blocks the name for 60 s.
            waits_for=[QUEUE_DELETED_RECENTLY],
            what=f"queue {queue}",
            say=say,
        )["QueueUrl"]
        sqs.tag_queue(QueueUrl=url, Tags=names.tags)
        arns.append(_queue_arn(target, url))
    return Queues(*arns)


def peek(target: Target, queue: str, *, wait_seconds: int = LONG_POLL_SECONDS) -> list[str]:
    """The bodies of the messages in `queue`, left where they are (long polling).

    VisibilityTimeout 0 leaves each message visible, so the next look sees it again; the
    receives repeat until one brings nothing new (one answer holds at most 10 messages).
    """
    sqs = target.client("sqs")
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    bodies: dict[str, str] = {}
    for _ in range(100):
        answer = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0, WaitTimeSeconds=wait_seconds
        )
        new = {m["MessageId"]: m["Body"] for m in answer.get("Messages", [])}
        if not new.keys() - bodies.keys():
            break
        bodies.update(new)
    return list(bodies.values())


def failure_records(target: Target, names: Names) -> list[dict[str, Any]]:
    """The records Lambda sent to the function's on-failure queue (one per failed async
    invocation: requestContext, requestPayload, responsePayload)."""
    return [json.loads(body) for body in peek(target, names.failure_queue)]
