"""jobcontroller: decide whether a scheduled job runs, from state held in DynamoDB.

The package root is the Lambda and nothing else: exactly the modules the deployment zip
holds. Everything else lives in subpackages, by job, and imports the root, never the other
way round:

- `jobcontroller.embedded`: AWS on this machine (moto served on loopback, its real-AWS guard);
- `jobcontroller.ops`: packaging, deploy and teardown, the IAM policies, the local Lambda
  runner and schedule driver, the command line;
- `jobcontroller.course`: the notebooks' helpers (set-up, displays, races, exercises, labs).
"""

from __future__ import annotations

import logging

from .clock import Clock, ManualClock, SequentialIds, SystemClock, random_ids
from .controller import InvocationResult, JobController
from .errors import (
    BadEvent,
    CommitConflict,
    ConfigError,
    ControlItemCorrupt,
    ControlItemMissing,
    JobControllerError,
    RealAWSBlocked,
    RealAWSNotConfirmed,
    StoreThrottled,
    TableMissing,
    TeardownIncomplete,
    UnknownJob,
    WorkloadCrash,
    WriteConflict,
)
from .events import parse_event, schedule_input
from .gate import decide
from .model import (
    Action,
    Decision,
    Drill,
    JobConfig,
    JobState,
    Outcome,
    Reason,
    RunRecord,
    Status,
    Trigger,
)
from .store import Acquired, Blocked, Committed, ControlStore, Fenced
from .workload import PlaceholderFailure, WorkloadContext, WorkloadTimeout, placeholder

# A library configures no logging of its own: without this, Python's last-resort handler
# would print bare warnings (such as "fenced") wherever the package is used.
# https://docs.python.org/3/howto/logging.html#configuring-logging-for-a-library
logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "Acquired",
    "Action",
    "BadEvent",
    "Blocked",
    "Clock",
    "CommitConflict",
    "Committed",
    "ConfigError",
    "ControlItemCorrupt",
    "ControlItemMissing",
    "ControlStore",
    "Decision",
    "Drill",
    "Fenced",
    "InvocationResult",
    "JobConfig",
    "JobController",
    "JobControllerError",
    "JobState",
    "ManualClock",
    "Outcome",
    "PlaceholderFailure",
    "RealAWSBlocked",
    "RealAWSNotConfirmed",
    "Reason",
    "RunRecord",
    "SequentialIds",
    "Status",
    "StoreThrottled",
    "SystemClock",
    "TableMissing",
    "TeardownIncomplete",
    "Trigger",
    "UnknownJob",
    "WorkloadContext",
    "WorkloadCrash",
    "WorkloadTimeout",
    "WriteConflict",
    "decide",
    "parse_event",
    "placeholder",
    "random_ids",
    "schedule_input",
]
