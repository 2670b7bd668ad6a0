"""The workload side: what a run is given, and the course's placeholder workload."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .clock import Clock
from .errors import WorkloadCrash
from .model import Drill, format_ts

__all__ = ["PlaceholderFailure", "Workload", "WorkloadContext", "WorkloadTimeout", "placeholder"]


@dataclass(frozen=True)
class WorkloadContext:
    """What a workload gets: who it is, which slot it serves, and when it must stop."""

    job: str
    run_id: str
    slot: datetime | None
    deadline: datetime
    clock: Clock
    drill: Drill | None = None

    def remaining(self) -> timedelta:
        """Time left before the lease ends; past that the run's commit will be refused."""
        return self.deadline - self.clock.now()


Workload = Callable[[WorkloadContext], Any]


class PlaceholderFailure(Exception):
    """The placeholder workload failed because it was told to."""


class WorkloadTimeout(Exception):
    """The workload stopped because its deadline (the end of its lease) came first."""


def placeholder(*, seconds: float = 1.0, fail: bool = False, crash: bool = False) -> Workload:
    """A stand-in for real work: takes `seconds` on the injected clock, then returns.

    It fails (`fail=True` or a FAIL drill in the control item) with PlaceholderFailure, or
    crashes (`crash=True` or a CRASH drill) by raising WorkloadCrash, which like a killed
    process skips the failure record and leaves the lock held until its lease runs out.
    It stops with WorkloadTimeout rather than run past its deadline.
    """
    if seconds < 0:
        raise ValueError("seconds must be >= 0")

    def run(ctx: WorkloadContext) -> dict[str, Any]:
        if crash or ctx.drill is Drill.CRASH:
            raise WorkloadCrash(f"run {ctx.run_id} crashed (simulated) while holding the lock")
        left = ctx.remaining().total_seconds()
        if seconds > left:
            ctx.clock.sleep(max(left, 0))
            raise WorkloadTimeout(
                f"needed {seconds:g}s but the lease ends at {format_ts(ctx.deadline)}; "
                "give the function a longer timeout or make the work smaller"
            )
        ctx.clock.sleep(seconds)
        if fail or ctx.drill is Drill.FAIL:
            raise PlaceholderFailure(f"run {ctx.run_id} failed (simulated failure)")
        slot = None if ctx.slot is None else format_ts(ctx.slot)
        return {"processed": True, "slot": slot, "seconds": seconds}

    return run
