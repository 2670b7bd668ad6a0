"""One exception per outcome, all under `JobControllerError`.

Every message says what to do next. None of these is raised after a partial write: the
store raises them before writing, or the write was a single conditional request that
either happened whole or not at all.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BadEvent",
    "CommitConflict",
    "ConfigError",
    "ControlItemCorrupt",
    "ControlItemMissing",
    "JobControllerError",
    "RealAWSBlocked",
    "RealAWSNotConfirmed",
    "StoreThrottled",
    "TableMissing",
    "TeardownIncomplete",
    "UnknownJob",
    "WorkloadCrash",
    "WriteConflict",
    "preview",
]

# Error messages quote bad input, but only its start: an event or item can be megabytes
# long, and the message goes to the logs on every invocation.
PREVIEW_CHARS = 80


def preview(value: Any) -> str:
    """`repr(value)` cut to its first PREVIEW_CHARS characters, saying how long it was."""
    try:
        text = repr(value)
    except Exception:  # an object whose repr fails is still reported, by its type
        return f"<{type(value).__name__}>"
    if len(text) <= PREVIEW_CHARS:
        return text
    return f"{text[:PREVIEW_CHARS]}... ({len(text)} chars)"


class JobControllerError(Exception):
    """Base class of every error this package raises on purpose."""


class BadEvent(JobControllerError):
    """The Lambda event is not a trigger this controller understands."""


class UnknownJob(JobControllerError):
    """The event names a job this function does not control, or a name that cannot be a job."""


class ConfigError(JobControllerError):
    """An environment variable or option is missing or has a wrong value."""


class TableMissing(JobControllerError):
    """The control table does not exist (create it first)."""


class ControlItemMissing(JobControllerError):
    """The job's control item does not exist (initialise the job first)."""


class ControlItemCorrupt(JobControllerError):
    """The job's control item exists but an attribute has the wrong type or an unknown value."""


class CommitConflict(JobControllerError):
    """The commit met another transaction on every try; the lock stays held until its lease."""


class WriteConflict(JobControllerError):
    """A set-up write met a transaction on the item on every try; it was not applied."""


class StoreThrottled(JobControllerError):
    """DynamoDB throttled a request on every retry; it was not applied."""


class RealAWSBlocked(JobControllerError):
    """A request tried to leave the embedded backend for real AWS."""


class RealAWSNotConfirmed(JobControllerError):
    """A real-AWS action was asked for without the explicit opt-in."""


class TeardownIncomplete(JobControllerError):
    """Resources tagged with the prefix are still there after teardown."""


class WorkloadCrash(BaseException):
    """Raised by the placeholder workload to simulate the process dying mid-run.

    It derives from BaseException on purpose: the controller records failures for
    `Exception`s, and a crash must leave the lock held exactly as a killed Lambda would.
    """
