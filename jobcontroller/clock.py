"""Clocks and run-id factories, passed in so tests and notebooks control time and ids."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "ManualClock", "SequentialIds", "SystemClock", "random_ids"]


class Clock(Protocol):
    """What the controller needs to know about time."""

    def now(self) -> datetime:
        """The current time, UTC-aware."""
        ...

    def sleep(self, seconds: float) -> None:
        """Let `seconds` pass."""
        ...


class SystemClock:
    """The real clock, for the Lambda and for real AWS."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class ManualClock:
    """A clock that only moves when told to, so every run prints the same times.

    `sleep` advances the clock instead of waiting, which lets a notebook simulate a day of
    hourly slots in milliseconds. It is safe to share between threads.
    """

    def __init__(self, start: datetime | str = "2026-01-05T09:00:00Z") -> None:
        if isinstance(start, str):
            start = datetime.fromisoformat(start.replace("Z", "+00:00"))
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start time, e.g. '...Z'")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def advance(self, seconds: float = 0, *, minutes: float = 0, hours: float = 0) -> datetime:
        """Move the clock forward and return the new time."""
        step = timedelta(seconds=seconds, minutes=minutes, hours=hours)
        if step < timedelta(0):
            raise ValueError("a clock cannot go backwards; pass a positive amount")
        with self._lock:
            self._now += step
            return self._now

    def set(self, when: datetime | str) -> datetime:
        """Jump to `when` (not earlier than now)."""
        target = ManualClock(when).now()
        with self._lock:
            if target < self._now:
                raise ValueError(f"cannot move the clock back from {self._now} to {target}")
            self._now = target
            return self._now

    def __repr__(self) -> str:
        return f"ManualClock({self.now().strftime('%Y-%m-%dT%H:%M:%SZ')!r})"


def random_ids() -> str:
    """A fresh random run id (the default in production)."""
    return uuid.uuid4().hex[:16]


class SequentialIds:
    """Run ids `run-0001`, `run-0002`, ... so notebook output is the same on every run."""

    def __init__(self, prefix: str = "run-") -> None:
        self._prefix = prefix
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            return f"{self._prefix}{next(self._counter):04d}"
