"""tasks.py course: JupyterLab starts without its news pop-up and fetches no news."""

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
