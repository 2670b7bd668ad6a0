"""jobcontroller: decide whether a scheduled job runs, from state held in DynamoDB.

The core (gate, store, controller, handler) is imported eagerly and is all the Lambda
needs. Course and deployment helpers are imported on first use, so the handler's cold
start does not pay for moto, ipywidgets or matplotlib.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from .clock import Clock, ManualClock, SequentialIds, SystemClock, random_ids
from .controller import InvocationResult, JobController, Outcome
from .errors import (
    BadEvent,
    ConfigError,
    ControlItemCorrupt,
    ControlItemMissing,
    JobControllerError,
    RealAWSBlocked,
    RealAWSNotConfirmed,
    TableMissing,
    TeardownIncomplete,
    UnknownJob,
    WorkloadCrash,
)
from .events import parse_event, schedule_input
from .gate import decide
from .model import Action, Decision, Drill, JobConfig, JobState, Reason, Status, Trigger
from .store import Acquired, Blocked, Committed, ControlStore, Fenced, RunRecord
from .workload import PlaceholderFailure, WorkloadContext, WorkloadTimeout, placeholder

# A library configures no logging of its own: without this, Python's last-resort handler
# would print bare warnings (such as "fenced") wherever the package is used.
# https://docs.python.org/3/howto/logging.html#configuring-logging-for-a-library
logging.getLogger(__name__).addHandler(logging.NullHandler())

# name -> module, imported on first access (PEP 562).
_LAZY = {
    "EmbeddedAWS": "local",
    "start_embedded": "local",
    # course helpers (notebooks 00-04)
    "Course": "course",
    "setup": "course",
    "show_requests": "course",
    "show_result": "course",
    "show_runs": "course",
    "show_state": "course",
    "Dashboard": "dashboard",
    "check_cooldown": "exercises",
    "check_gate": "exercises",
    "show_solution": "exercises",
    "draw_race": "viz",
}

__all__ = [
    "Acquired",
    "Action",
    "BadEvent",
    "Blocked",
    "Clock",
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
    "SystemClock",
    "TableMissing",
    "TeardownIncomplete",
    "Trigger",
    "UnknownJob",
    "WorkloadContext",
    "WorkloadCrash",
    "WorkloadTimeout",
    "decide",
    "parse_event",
    "placeholder",
    "random_ids",
    "schedule_input",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'jobcontroller' has no attribute {name!r}")
