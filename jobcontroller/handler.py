"""The Lambda entry point: `jobcontroller.handler.lambda_handler`.

Configuration comes from environment variables (see docs/architecture.md). The store's
client is created once per execution environment and reused by warm invocations; no
decision is taken from anything kept between invocations (rule 7).
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .clock import Clock, SystemClock, random_ids
from .controller import JobController
from .errors import ConfigError
from .events import parse_event
from .model import JobConfig, job_key
from .store import ControlStore
from .workload import Workload, placeholder

__all__ = ["JOB_CONFIG_VARIABLES", "Settings", "environment", "lambda_handler", "settings_from_env"]

# The JobConfig fields the function reads from its environment, and their variables
# (docs/architecture.md). JobConfig holds the defaults and the checks; this is only the naming.
# default_lease_seconds is not here: a Lambda always has a context to ask for its remaining time.
JOB_CONFIG_VARIABLES: dict[str, str] = {
    "interval_seconds": "JOB_INTERVAL_SECONDS",
    "cooldown_slack_seconds": "JOB_COOLDOWN_SLACK_SECONDS",
    "lease_margin_seconds": "JOB_LEASE_MARGIN_SECONDS",
    "run_history_days": "JOB_RUN_HISTORY_DAYS",
}


@dataclass(frozen=True)
class Settings:
    """Everything the handler reads from its environment, validated (`settings_from_env`)."""

    table: str
    job: str
    config: JobConfig = field(default_factory=JobConfig)
    workload: str = "placeholder"
    workload_seconds: float = 1.0

    def to_env(self) -> dict[str, str]:
        """These settings as the function's variables; `settings_from_env` reads them back."""
        numbers = {name: getattr(self.config, name) for name in JOB_CONFIG_VARIABLES}
        return environment(
            table=self.table,
            job=self.job,
            workload=self.workload,
            workload_seconds=self.workload_seconds,
            **numbers,
        )


def environment(
    *,
    table: str,
    job: str,
    workload: str = Settings.workload,
    workload_seconds: float = Settings.workload_seconds,
    **config: int,
) -> dict[str, str]:
    """The environment variables for these values, as Lambda stores them (all strings).

    `config` takes the JobConfig fields of JOB_CONFIG_VARIABLES; a field left out gets
    JobConfig's default. Nothing is checked here, so that values the handler would refuse can
    still be written down and then checked by the handler's own reading, `settings_from_env`.
    """
    unknown = sorted(set(config) - set(JOB_CONFIG_VARIABLES))
    if unknown:
        raise TypeError(f"environment() got unknown job settings {unknown}")
    defaults = JobConfig()
    seconds = workload_seconds
    return {
        "JOB_TABLE": table,
        "JOB_NAME": job,
        **{
            variable: str(config.get(name, getattr(defaults, name)))
            for name, variable in JOB_CONFIG_VARIABLES.items()
        },
        "JOB_WORKLOAD": workload,
        "JOB_WORKLOAD_SECONDS": str(int(seconds) if float(seconds).is_integer() else seconds),
    }


def _required(env: Mapping[str, str], name: str, example: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"environment variable {name} is not set: set it, e.g. {name}={example}")
    return value


def settings_from_env(env: Mapping[str, str] | None = None) -> Settings:
    """Read and check the handler's environment; ConfigError names the bad variable.

    This is the one check of a function's settings: deploy runs it on the variables it is about
    to write, so a function the handler would refuse is never created.
    """
    env = os.environ if env is None else env
    table = _required(env, "JOB_TABLE", "job_control")
    job = _required(env, "JOB_NAME", "hourly_processor")
    try:
        job_key(job)
    except Exception as exc:
        raise ConfigError(f"environment variable JOB_NAME: {exc}") from None
    defaults = JobConfig()
    numbers: dict[str, int] = {}
    for field_name, name in JOB_CONFIG_VARIABLES.items():
        raw = env.get(name, "").strip()
        if not raw:
            continue  # JobConfig's default
        try:
            numbers[field_name] = int(raw)
        except ValueError:
            raise ConfigError(
                f"environment variable {name}={raw!r} is not a whole number of "
                f"{'days' if name.endswith('DAYS') else 'seconds'}, "
                f"e.g. {name}={getattr(defaults, field_name)}"
            ) from None
    try:
        config = JobConfig(**numbers)
    except ValueError as exc:
        raise ConfigError(f"job settings from the environment are inconsistent: {exc}") from None
    seconds_raw = env.get("JOB_WORKLOAD_SECONDS", "").strip() or str(Settings.workload_seconds)
    try:
        workload_seconds = float(seconds_raw)
        if workload_seconds < 0:
            raise ValueError
    except ValueError:
        raise ConfigError(
            f"environment variable JOB_WORKLOAD_SECONDS={seconds_raw!r} must be a number "
            ">= 0, e.g. JOB_WORKLOAD_SECONDS=1"
        ) from None
    workload = env.get("JOB_WORKLOAD", "").strip() or Settings.workload
    if workload != "placeholder" and workload.count(":") != 1:
        raise ConfigError(
            f"environment variable JOB_WORKLOAD={workload!r} must be 'placeholder' or "
            "'module:function', e.g. JOB_WORKLOAD=myjobs.nightly:run"
        )
    return Settings(table, job, config, workload, workload_seconds)


def load_workload(settings: Settings) -> Workload:
    """The workload named by JOB_WORKLOAD."""
    if settings.workload == "placeholder":
        return placeholder(seconds=settings.workload_seconds)
    module_name, _, attr = settings.workload.partition(":")
    try:
        workload: Workload = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"environment variable JOB_WORKLOAD={settings.workload!r}: cannot load it ({exc}); "
            "check the module is in the deployment package and the function name is right"
        ) from None
    return workload


# Injection points, like the controller's own keyword arguments: in Lambda they stay as they
# are; the local runner (jobcontroller.ops.runner) sets them in its child process to simulate
# time and print fixed run ids. The zip's code is the same either way.
clock: Clock = SystemClock()
new_run_id: Callable[[], str] = random_ids
# Stamps only the run history's TTL, which DynamoDB applies by real time. The local runner
# points it at its simulated clock on the embedded backend (moto never expires items).
wall_clock: Clock = SystemClock()

_store: ControlStore | None = None


def _store_for(table: str) -> ControlStore:
    # One client per execution environment: creating it costs more than a DynamoDB call.
    global _store
    if _store is None or _store.table != table:
        _store = ControlStore(table)
    return _store


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    """Parse the trigger, run the controller once, return what it did."""
    settings = settings_from_env()
    trigger = parse_event(event, job=settings.job)
    controller = JobController(
        _store_for(settings.table),
        settings.job,
        config=settings.config,
        clock=clock,
        wall_clock=wall_clock,
        new_run_id=new_run_id,
    )
    remaining = None if context is None else context.get_remaining_time_in_millis()
    result = controller.invoke(trigger, load_workload(settings), remaining_ms=remaining)
    outcome = result.to_dict()
    # One structured line per invocation for CloudWatch Logs (Lambda captures stdout). The
    # table stays the source of truth; this is for reading a day's decisions at a glance.
    print(json.dumps({"jobcontroller": outcome}, sort_keys=True), flush=True)
    return outcome
