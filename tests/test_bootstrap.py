"""The local runner's child program, tested in this process (the runner tests run it for real)."""

from __future__ import annotations

import ast
import io
import json
import sys
import types
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from jobcontroller.ops import bootstrap
from jobcontroller.ops.runner import BOOTSTRAP

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

HANDLERS = """
def answer(event, context):
    return {"event": event, "request_id": context.aws_request_id}

def fail(event, context):
    raise KeyError("no such job")

def unserialisable(event, context):
    return {"when": object()}

count = 0

def counter(event, context):
    global count
    count += 1
    return count

def new_run_id():
    return "the module's own"

def run_id(event, context):
    return new_run_id()
"""


def _request(tmp_path, handler: str, **extra) -> dict:
    return {
        "path": [],
        "handler": handler,
        "event": {"job": "j"},
        "request_id": "request-1",
        "deadline": 1000.0,
        "function": {"name": "f", "arn": "arn:f", "memory_mb": 128, "timeout_seconds": 60},
        "record": None,
        **extra,
    }


@pytest.fixture
def handlers(tmp_path, monkeypatch):
    """A module `probe_handlers` importable in this process, removed again afterwards."""
    (tmp_path / "probe_handlers.py").write_text(HANDLERS, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("probe_handlers", None)


def test_the_bootstrap_imports_the_standard_library_only():
    """At module level the bootstrap imports nothing outside the standard library: it runs
    before sys.path holds anything else, on the function's interpreter."""
    tree = ast.parse(BOOTSTRAP.read_text(encoding="utf-8"))
    imported = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported  # the walk found the imports
    assert imported - {"__future__"} <= sys.stdlib_module_names, imported


def test_the_runner_runs_this_very_module():
    """The file the runner starts is the module tested here, not a copy."""
    assert BOOTSTRAP.resolve() == Path(bootstrap.__file__).resolve()


def test_the_context_counts_down_to_the_deadline_and_stops_at_zero(tmp_path):
    """get_remaining_time_in_millis is the time left to the deadline, never below zero."""
    now = [990.0]
    context = bootstrap.Context(_request(tmp_path, "m.f"), wall_clock=lambda: now[0])
    assert context.get_remaining_time_in_millis() == 10_000
    now[0] = 1005.0
    assert context.get_remaining_time_in_millis() == 0
    assert (context.function_name, context.aws_request_id) == ("f", "request-1")
    assert context.log_group_name == "/aws/lambda/f"


def test_in_a_replay_the_context_counts_down_on_the_simulated_clock(tmp_path):
    """With a simulated clock the remaining time starts at the configured timeout whatever the
    wall clock says (so start-up cannot shift the lease), and simulated sleeps use it up."""
    clock = bootstrap.SimulatedClock(T0)
    context = bootstrap.Context(
        _request(tmp_path, "m.f"), simulated=clock, wall_clock=lambda: 999.0
    )
    assert context.get_remaining_time_in_millis() == 60_000
    clock.sleep(30.25)
    assert context.get_remaining_time_in_millis() == 29_750
    clock.sleep(60)
    assert context.get_remaining_time_in_millis() == 0


def test_the_simulated_clock_moves_only_when_the_handler_sleeps():
    """The clock starts at the simulated time, stands still while the process works (so load
    cannot change stored times), and jumps forward on sleep, never back."""
    clock = bootstrap.SimulatedClock(T0)
    assert clock.now() == T0
    sum(range(100_000))  # work takes real time, not simulated time
    assert clock.now() == T0
    clock.sleep(30)
    clock.sleep(-5)  # a negative sleep does not move time back
    assert clock.now() == T0 + timedelta(seconds=30)


def test_inject_sets_the_handler_modules_clock_and_run_id():
    """`now` and `run_id` replace the module's clock and new_run_id."""
    module = types.ModuleType("handler")
    module.clock, module.new_run_id = None, None
    clock = bootstrap.inject(module, {"now": T0.isoformat(), "run_id": "run-7"})
    assert module.clock is clock and clock.start == T0
    assert module.new_run_id() == "run-7"


def test_inject_refuses_a_module_without_the_injection_point():
    """Asking for `now` on a module without `clock` says which injection point is missing."""
    module = types.ModuleType("plain")
    with pytest.raises(bootstrap.NoInjectionPoint, match="no injection point clock"):
        bootstrap.inject(module, {"now": T0.isoformat()})
    assert bootstrap.inject(module, {}) is None  # nothing asked, nothing needed
    assert not hasattr(module, "clock")


def test_run_returns_the_handlers_answer(tmp_path, handlers):
    """A handler that returns gives status ok with its result."""
    answer = bootstrap.run(_request(tmp_path, "probe_handlers.answer"))
    assert answer == {"status": "ok", "result": {"event": {"job": "j"}, "request_id": "request-1"}}


@pytest.mark.parametrize(
    ("handler", "error_type"),
    [
        ("probe_handlers.fail", "KeyError"),
        ("probe_handlers.unserialisable", "TypeError"),
        ("probe_handlers.missing", "Runtime.ImportModuleError"),
        ("no_such_module.handler", "Runtime.ImportModuleError"),
    ],
)
def test_run_reports_errors_as_lambda_does(tmp_path, handlers, handler, error_type):
    """A raised exception, an answer that is not JSON or a handler that cannot be found is an
    error with Lambda's errorType."""
    answer = bootstrap.run(_request(tmp_path, handler))
    assert answer["status"] == "error"
    assert answer["error"]["errorType"] == error_type


def test_run_refuses_simulated_time_without_an_injection_point(tmp_path, handlers):
    """`now` for a handler module without `clock` is a LocalRunner.NoInjectionPoint error."""
    answer = bootstrap.run(_request(tmp_path, "probe_handlers.answer", now=T0.isoformat()))
    assert answer["error"]["errorType"] == "LocalRunner.NoInjectionPoint"


def _serve(lines: list[dict]) -> list[dict]:
    """Run serve() on these lines (the init first) and return its answers."""
    requests = io.StringIO("".join(json.dumps(line) + "\n" for line in lines))
    answers = io.StringIO()
    bootstrap.serve(requests, answers)
    return [json.loads(line) for line in answers.getvalue().splitlines()]


def test_serve_imports_once_then_answers_every_request_warm(tmp_path, monkeypatch):
    """serve() puts the code first on sys.path, imports the handler once (init), then answers
    each request in turn with the module's state kept between them."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "zipped_probe.py").write_text(HANDLERS, encoding="utf-8")
    monkeypatch.setattr(sys, "path", list(sys.path))
    init = {"path": [str(code)], "handler": "zipped_probe.counter", "record": False}
    try:
        answers = _serve([init, _request(tmp_path, "-"), _request(tmp_path, "-")])
    finally:
        sys.modules.pop("zipped_probe", None)
    assert sys.path[0] == str(code)
    assert answers == [
        {"ready": True},
        {"status": "ok", "result": 1},
        {"status": "ok", "result": 2},
    ]


def test_serve_sets_injection_points_for_one_invocation_only(tmp_path, handlers):
    """A fixed run id applies to its own request; the next request sees the module's own."""
    init = {"path": [], "handler": "probe_handlers.run_id", "record": False}
    answers = _serve(
        [init, _request(tmp_path, "-", run_id="run-7"), _request(tmp_path, "-", run_id=None)]
    )
    assert [a.get("result") for a in answers[1:]] == ["run-7", "the module's own"]


def test_serve_reports_an_import_error_at_init_and_ends(tmp_path, capsys):
    """A handler that cannot be imported gets one answer, not ready with the import error,
    and no request is served after it."""
    init = {"path": [], "handler": "no_such_module.handler", "record": False}
    answers = _serve([init, _request(tmp_path, "-")])
    assert len(answers) == 1
    assert answers[0]["ready"] is False
    assert answers[0]["error"]["errorType"] == "Runtime.ImportModuleError"
    assert "no_such_module" in capsys.readouterr().err  # the init's log, as Lambda writes it


def test_main_refuses_arguments():
    """The child takes its requests on stdin; an argument (the old request file) is refused."""
    with pytest.raises(SystemExit, match="requests on stdin"):
        bootstrap.main(["request.json"])
