"""tasks.py: `course` starts JupyterLab without its news pop-up; `test` picks pytest's options."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def tasks(tmp_path, monkeypatch):
    """tasks.py loaded as a module, its .venv pointed at a temporary folder."""
    spec = importlib.util.spec_from_file_location("tasks_under_test", ROOT / "tasks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "VENV", tmp_path / ".venv")
    return module


def _overrides(tasks) -> Path:
    return tasks.VENV / "share" / "jupyter" / "lab" / "settings" / "overrides.json"


def test_course_answers_the_news_question_and_fetches_no_news(tasks, monkeypatch):
    """`course` writes fetchNews=false into the app settings and passes news_url=None."""
    calls = []
    monkeypatch.setattr(tasks, "ensure_environment", lambda: Path("python"))
    monkeypatch.setattr(tasks, "_run", lambda *args, **kw: calls.append(args) or 0)
    assert tasks.course([]) == 0
    settings = json.loads(_overrides(tasks).read_text())
    assert settings["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"
    (args,) = calls
    assert "--LabApp.news_url=None" in args


def test_existing_overrides_are_kept(tasks):
    """Other settings in an existing overrides.json survive; a second call changes nothing."""
    path = _overrides(tasks)
    path.parent.mkdir(parents=True)
    theme = {"@jupyterlab/apputils-extension:themes": {"theme": "JupyterLab Dark"}}
    path.write_text(json.dumps(theme))
    tasks._no_news_popup()
    first = path.read_text()
    tasks._no_news_popup()
    assert path.read_text() == first
    settings = json.loads(first)
    assert settings["@jupyterlab/apputils-extension:themes"] == {"theme": "JupyterLab Dark"}
    assert settings["@jupyterlab/apputils-extension:notification"] == {"fetchNews": "false"}


def test_the_suite_runs_on_one_worker_per_core_file_by_file(tasks, monkeypatch):
    """`test` asks pytest-xdist for one worker per core (at most MAX_WORKERS), file by file."""
    monkeypatch.setattr(tasks, "_cores", lambda: 2)
    options = tasks.pytest_options(["tests/test_gate.py"])
    assert options[:1] == ["--nbval"]
    assert options[-5:] == ["-n", "2", "--dist", "loadfile", "tests/test_gate.py"]
    monkeypatch.setattr(tasks, "_cores", lambda: 64)
    assert tasks.pytest_options([])[-3] == str(tasks.MAX_WORKERS)


@pytest.mark.parametrize("chosen", [["-n", "0"], ["-n3"], ["--numprocesses=1"], ["--pdb"]])
def test_workers_chosen_by_the_caller_are_left_alone(tasks, chosen):
    """Worker options (or a debugger) given to `test` replace the default workers."""
    options = tasks.pytest_options(chosen)
    assert options.count("-n") == chosen.count("-n")
    assert "loadfile" not in options
    assert options[-len(chosen) :] == chosen


def test_quick_leaves_the_slow_tests_out(tasks):
    """`--quick` becomes `-m "not slow"` and is not passed to pytest itself."""
    options = tasks.pytest_options(["--quick", "-x"])
    assert "--quick" not in options
    assert options[options.index("-m") + 1] == "not slow"
    assert options[-1] == "-x"
    assert "-m" not in tasks.pytest_options(["-x"])


def test_pytest_runs_with_the_bytecode_cache_on(tasks, monkeypatch):
    """`test` runs pytest with PYTHONDONTWRITEBYTECODE dropped and the rest of the environment
    kept, after ruff and mypy have passed."""
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    monkeypatch.setenv("KEPT_FOR_PYTEST", "yes")
    calls = []
    monkeypatch.setattr(tasks, "ensure_environment", lambda: Path("python"))
    monkeypatch.setattr(tasks, "_run", lambda *args, **kw: calls.append((args, kw)) or 0)
    assert tasks.test(["-x"]) == 0
    (ruff, _), (mypy, _), (pytest_args, pytest_kw) = calls
    assert (ruff[2], mypy[2], pytest_args[2]) == ("ruff", "mypy", "pytest")
    assert "PYTHONDONTWRITEBYTECODE" not in pytest_kw["env"]
    assert pytest_kw["env"]["KEPT_FOR_PYTEST"] == "yes"
