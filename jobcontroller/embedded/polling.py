"""SQS's short and long polling, as the realism layer (embedded.realism) answers them.

ReceiveMessage with WaitTimeSeconds 0 (a short poll) asks only a sample of SQS's servers and
can answer without messages that are in the queue; a long poll asks all of them and answers
as soon as a message is there, or empty after its wait.
https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-short-and-long-polling.html

moto answers every receive from the whole queue, and waits out a long poll on an empty queue
for real (holding the one-at-a-time server). Here every other short poll of a queue comes
back empty, and a long poll is sent to moto as a short one, its wait passed on the layer's
clock when the answer is empty.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Polls", "answer_long_polls_now"]


def answer_long_polls_now(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    """before-parameter-build handler: keep the caller's parameters, ask moto without a wait."""
    if int(params.get("WaitTimeSeconds") or 0) > 0:
        context["realism_params"] = dict(params)
        params["WaitTimeSeconds"] = 0


@dataclass
class Polls:
    """How many short polls each queue has had (odd ones find nothing)."""

    _counts: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()

    def answer(
        self, params: dict[str, Any], parsed: dict[str, Any], sleep: Callable[[float], None]
    ) -> None:
        """Rewrite moto's ReceiveMessage answer as SQS would give it (see the module docs)."""
        if (wait := int(params.get("WaitTimeSeconds") or 0)) > 0:
            if not parsed.get("Messages"):
                sleep(wait)  # an empty long poll answers after its wait
            return
        url = params.get("QueueUrl", "")
        with self._lock:
            self._counts[url] = count = self._counts.get(url, 0) + 1
        if count % 2 == 1:  # the servers this short poll sampled held none of the messages
            parsed["Messages"] = []
