"""The stack's two dead-letter queues: the function's on-failure queue and the schedule's DLQ."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from jobcontroller.ops.naming import Names, Target
from jobcontroller.ops.retry import QUEUE_DELETED_RECENTLY, until_consistent

__all__ = ["Queues", "ensure_queues"]


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
