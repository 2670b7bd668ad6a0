"""Virtual time, one thread at a time, and faults on the wire: the simulation's machinery.

Each simulated invocation is a real thread running real code, but a `Scheduler` lets only one
run at a time: a task yields whenever it sends a DynamoDB request or sleeps, and the scheduler
picks who goes next on a virtual clock, breaking ties with a seeded generator. So every
interleaving DynamoDB allows (a request is atomic, nothing else is) can happen, and a seed
replays the same one.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import random
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from jobcontroller.store import MAX_ATTEMPTS

__all__ = ["FaultRates", "FaultyClient", "Scheduler", "Task", "TaskClock"]


@dataclass(frozen=True)
class FaultRates:
    """How often each fault is drawn: per slot, per invocation or per request."""

    late: float = 0.10  # per slot: the delivery lands 1-15 minutes late
    duplicate: float = 0.10  # per slot: the slot is delivered again 1-90 minutes later
    race: float = 0.05  # per slot: 2-8 copies arrive at the same instant
    crash: float = 0.03  # per invocation: the process dies right after taking the lock
    overrun: float = 0.03  # per invocation: the work needs longer than the lease
    late_commit: float = 0.03  # per invocation: the process stalls past its lease, then commits
    async_retry: float = 0.5  # per failed invocation: Lambda delivers the event again
    pause: float = 0.01  # per slot: an operator pauses the job for 1-3 slots
    throttle: float = 0.01  # per request: throttled; botocore retries (rarely in vain)
    lost_answer: float = 0.01  # per write: applied, the answer lost, botocore retries it
    conflict: float = 0.005  # per write: DynamoDB reports a transaction conflict
    skew_seconds: float = 30.0  # each invoker's clock is off by up to this, either way


# --- the scheduler: one thread at a time, on virtual time --------------------------------


class Task:
    def __init__(self, scheduler: Scheduler, name: str, body: Callable[[], Any]) -> None:
        self.name = name
        self.body = body
        self.go = threading.Event()
        self.started = False
        self.result: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, args=(scheduler,), daemon=True)

    def _main(self, scheduler: Scheduler) -> None:
        scheduler.local.task = self
        self.go.wait()
        try:
            self.result = self.body()
        except BaseException as exc:  # recorded and judged by the checker
            self.error = exc
        finally:
            scheduler.switch.set()


class Scheduler:
    """Runs tasks one at a time in virtual time; ties are broken by the seeded generator."""

    def __init__(self, start: datetime, rng: random.Random) -> None:
        self.now = start
        self.rng = rng
        self.switch = threading.Event()
        self.local = threading.local()
        self._queue: list[tuple[datetime, float, int, Task]] = []
        self._count = itertools.count()

    def spawn(self, at: datetime, name: str, body: Callable[[], Any]) -> Task:
        task = Task(self, name, body)
        self._push(at, task)
        return task

    def _push(self, at: datetime, task: Task) -> None:
        heapq.heappush(self._queue, (at, self.rng.random(), next(self._count), task))

    def pause(self, seconds: float) -> None:
        """Called from a task: let `seconds` of virtual time pass, and others run meanwhile."""
        task: Task = self.local.task
        self._push(self.now + timedelta(seconds=max(seconds, 0)), task)
        task.go.clear()
        self.switch.set()
        task.go.wait()

    def run_until(self, end: datetime) -> None:
        while self._queue and self._queue[0][0] <= end:
            at, _, _, task = heapq.heappop(self._queue)
            self.now = max(self.now, at)
            self.switch.clear()
            if not task.started:
                task.started = True
                task.thread.start()
            task.go.set()
            self.switch.wait()
        self.now = max(self.now, end)


class TaskClock:
    """An invoker's clock: virtual time plus this invoker's skew; sleeping yields."""

    def __init__(self, scheduler: Scheduler, skew: float) -> None:
        self._scheduler = scheduler
        self._skew = timedelta(seconds=skew)

    def now(self) -> datetime:
        return self._scheduler.now + self._skew

    def sleep(self, seconds: float) -> None:
        self._scheduler.pause(seconds)


# --- faults on the wire -------------------------------------------------------------------

_WRITES = {"update_item", "put_item", "transact_write_items", "delete_item"}


class FaultyClient:
    """A DynamoDB client whose requests yield to the scheduler and sometimes fail.

    The faults are the ones botocore and DynamoDB produce: a throttled request is retried
    (standard mode, MAX_ATTEMPTS in all) and only fails when every attempt was throttled; a
    write whose answer is lost is sent again, as botocore does, and the caller gets the
    answer to the second attempt; a conflict is raised as DynamoDB raises it.
    """

    def __init__(
        self,
        inner: Any,
        *,
        scheduler: Scheduler,
        rng: random.Random,
        rates: FaultRates,
        injected: Counter[str],
    ) -> None:
        self._inner = inner
        self._scheduler = scheduler
        self._rng = rng
        self._rates = rates
        self._injected = injected
        self.meta = inner.meta

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._inner, name)
        if name not in _WRITES and name not in ("get_item", "query"):
            return method

        def call(**params: Any) -> Any:
            rng, rates, injected = self._rng, self._rates, self._injected
            self._scheduler.pause(rng.uniform(0.002, 0.02))
            if rng.random() < rates.throttle:
                throttled = rng.choice([1, 1, 1, 2, 2, 3, MAX_ATTEMPTS])
                injected["throttle"] += 1
                self._scheduler.pause(0.05 * (2**throttled))
                if throttled >= MAX_ATTEMPTS:
                    raise ClientError(
                        {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}},
                        "".join(part.title() for part in name.split("_")),
                    )
            if name in _WRITES and rng.random() < rates.conflict:
                injected["transaction conflict"] += 1
                raise _conflict(name, params)
            if name in _WRITES and rng.random() < rates.lost_answer:
                injected["lost answer"] += 1
                with contextlib.suppress(ClientError):  # the first answer is lost either way
                    method(**params)
                self._scheduler.pause(rng.uniform(0.05, 0.5))
            return method(**params)

        return call


def _conflict(operation: str, params: dict[str, Any]) -> ClientError:
    if operation == "transact_write_items":
        reasons = [{"Code": "TransactionConflict", "Message": "Transaction is ongoing"}] + [
            {"Code": "None"} for _ in params["TransactItems"][1:]
        ]
        return ClientError(
            {
                "Error": {
                    "Code": "TransactionCanceledException",
                    "Message": "Transaction cancelled [TransactionConflict]",
                },
                "CancellationReasons": reasons,
            },
            "TransactWriteItems",
        )
    return ClientError(
        {
            "Error": {
                "Code": "TransactionConflictException",
                "Message": "Transaction is ongoing for the item",
            }
        },
        "UpdateItem",
    )
