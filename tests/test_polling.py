"""SQS's short and long polling under the realism layer (embedded.polling)."""

from __future__ import annotations

import pytest

from jobcontroller.ops import deploy as d
from jobcontroller.ops.queues import peek


@pytest.fixture
def queue(fresh_aws):
    """A Target with the realism layer and a queue holding one message."""
    target = d.connect(fresh_aws.session(), say=None)
    sqs = target.client("sqs")
    url = sqs.create_queue(QueueName="ann-q")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="hello")
    return target, url


def test_a_short_poll_can_miss_a_message_that_is_there(queue):
    """Every other short poll of a queue comes back empty, as SQS's sampled servers may."""
    target, url = queue
    sqs = target.client("sqs")
    answers = [
        len(sqs.receive_message(QueueUrl=url, VisibilityTimeout=0).get("Messages", []))
        for _ in range(4)
    ]
    assert answers == [0, 1, 0, 1]


def test_a_long_poll_finds_the_message_at_once(queue, realism):
    """A long poll sees the message every time, and costs no time when there is one."""
    target, _url = queue
    before = realism.aws_now()
    assert peek(target, "ann-q") == ["hello"]
    assert peek(target, "ann-q") == ["hello"]  # left in the queue for the next look
    assert realism.aws_now() == before


def test_an_empty_long_poll_waits_on_the_layers_clock(queue, realism):
    """On an empty queue a long poll answers after its WaitTimeSeconds of AWS time, at once
    on the real clock."""
    target, url = queue
    sqs = target.client("sqs")
    (message,) = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    before = realism.aws_now()
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=20).get("Messages", []) == []
    assert realism.aws_now() - before == pytest.approx(20)
