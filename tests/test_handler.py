"""The Lambda handler: configuration from the environment, end to end on the embedded backend."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from jobcontroller import ConfigError, JobConfig
from jobcontroller.handler import Settings, environment, lambda_handler, settings_from_env

JOB = "hourly_processor"
GOOD_ENV = {"JOB_TABLE": "job_control", "JOB_NAME": JOB}


class LambdaContext:
    """The one method of the Lambda context object that the handler uses."""

    def __init__(self, remaining_ms: int = 60_000) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def handler_env(monkeypatch, store):
    for name, value in GOOD_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("JOB_WORKLOAD_SECONDS", "0")
    return monkeypatch


def test_defaults():
    """Only the table and job are required; the rest have the documented defaults."""
    settings = settings_from_env(GOOD_ENV)
    assert (settings.table, settings.job, settings.workload) == ("job_control", JOB, "placeholder")
    assert settings.config.interval_seconds == 3600
    assert settings.config.cooldown_slack_seconds == 60
    assert settings.config.lease_margin_seconds == 10
    assert settings.config.run_history_days == 7


@pytest.mark.parametrize(
    ("changes", "variable"),
    [
        ({"JOB_TABLE": ""}, "JOB_TABLE"),
        ({"JOB_NAME": "  "}, "JOB_NAME"),
        ({"JOB_NAME": "hourly processor"}, "JOB_NAME"),
        ({"JOB_INTERVAL_SECONDS": "1h"}, "JOB_INTERVAL_SECONDS"),
        ({"JOB_COOLDOWN_SLACK_SECONDS": "-"}, "JOB_COOLDOWN_SLACK_SECONDS"),
        ({"JOB_LEASE_MARGIN_SECONDS": "ten"}, "JOB_LEASE_MARGIN_SECONDS"),
        ({"JOB_RUN_HISTORY_DAYS": "1.5"}, "JOB_RUN_HISTORY_DAYS"),
        ({"JOB_WORKLOAD_SECONDS": "-3"}, "JOB_WORKLOAD_SECONDS"),
        ({"JOB_WORKLOAD": "not a module path"}, "JOB_WORKLOAD"),
        ({"JOB_INTERVAL_SECONDS": "60"}, "cooldown_slack_seconds"),
    ],
)
def test_bad_settings_name_the_variable(changes, variable):
    """A missing or wrong variable raises ConfigError naming it (and an example value)."""
    env = {**GOOD_ENV, **changes}
    if changes.get("JOB_TABLE") == "":
        del env["JOB_TABLE"]
    with pytest.raises(ConfigError, match=variable):
        settings_from_env(env)


def test_handler_runs_a_scheduled_slot_once(handler_env, store, clock):
    """A Scheduler payload runs once; the same payload again is skipped with SLOT_DONE."""
    handler_env.setattr("jobcontroller.handler.clock", clock)  # the slot is near this clock
    event = {"job": JOB, "source": "scheduler", "scheduled_time": "2026-01-05T09:00:00Z"}
    first = lambda_handler(event, LambdaContext())
    second = lambda_handler(event, LambdaContext())
    assert first["outcome"] == "SUCCEEDED" and first["slot"] == "2026-01-05T09:00:00Z"
    assert (second["outcome"], second["reason"]) == ("SKIPPED", "SLOT_DONE")
    assert json.loads(json.dumps(first)) == first
    assert store.read(JOB).run_count == 1


def test_handler_logs_one_json_line_per_invocation(handler_env, store, capsys):
    """Each invocation prints one JSON line with its outcome, for CloudWatch Logs."""
    returned = lambda_handler({}, LambdaContext())
    [line] = capsys.readouterr().out.splitlines()
    assert json.loads(line) == {"jobcontroller": returned}


def test_handler_loads_a_workload_by_module_path(handler_env, store):
    """JOB_WORKLOAD=module:function runs that function as the workload."""
    handler_env.setenv("JOB_WORKLOAD", "builtins:repr")  # any callable taking the context
    assert lambda_handler({}, LambdaContext())["outcome"] == "SUCCEEDED"
    [run] = store.runs(JOB)
    assert run.outcome == "SUCCEEDED" and run.source == "manual"


def test_handler_reports_an_unloadable_workload(handler_env, store, raw_item):
    """A JOB_WORKLOAD that cannot be imported is a ConfigError naming it, before any write."""
    handler_env.setenv("JOB_WORKLOAD", "no_such_module:run")
    before = raw_item()
    with pytest.raises(ConfigError, match="JOB_WORKLOAD"):
        lambda_handler({}, LambdaContext())
    assert raw_item() == before


def test_handler_import_stays_light():
    """Importing the handler pulls in neither moto nor the course's widget or plotting code."""
    code = (
        "import sys, jobcontroller.handler;"
        "heavy = [m for m in ('moto', 'ipywidgets', 'matplotlib', 'werkzeug', 'flask')"
        " if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_settings_to_env_and_back_is_the_identity():
    """Settings.to_env() gives variables that settings_from_env reads back to equal settings."""
    settings = Settings(
        table="t",
        job="nightly",
        config=JobConfig(interval_seconds=600, cooldown_slack_seconds=5, run_history_days=2),
        workload="myjobs.nightly:run",
        workload_seconds=2.5,
    )
    env = settings.to_env()
    assert env["JOB_INTERVAL_SECONDS"] == "600" and env["JOB_WORKLOAD_SECONDS"] == "2.5"
    assert settings_from_env(env) == settings


def test_environment_fills_in_jobconfigs_defaults_and_refuses_unknown_names():
    """environment() writes JobConfig's default for an omitted field and refuses a typo."""
    env = environment(table="t", job="j", interval_seconds=600)
    assert env["JOB_INTERVAL_SECONDS"] == "600"
    assert env["JOB_COOLDOWN_SLACK_SECONDS"] == str(JobConfig().cooldown_slack_seconds)
    with pytest.raises(TypeError, match="interval_secs"):
        environment(table="t", job="j", interval_secs=600)
