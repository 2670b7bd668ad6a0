"""requirements-lock.txt, pyproject.toml, environment.yml and tasks.py describe one environment.

When one of these fails after pyproject.toml changed, run `python3 tasks.py lock`.
"""

from __future__ import annotations

import importlib.util
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements-lock.txt"
PROJECT = "jobcontroller (pyproject.toml)"
HASH_LINE = r"\s+--hash=(sha256:[0-9a-f]{64})( \\)?"
# "# via NAME" on one line, or "# via" followed by one "#   NAME" line each.
VIA_LINE = r"\s+#(?: via|  ) (.+)"
RELOCK = "run `python3 tasks.py lock` and commit requirements-lock.txt"


@dataclass(frozen=True)
class Pin:
    """One entry of the lock: a pinned version, where it applies, its files and who needs it."""

    name: str
    version: Version
    marker: Marker | None
    hashes: tuple[str, ...]
    via: tuple[str, ...]


def _parse_lock(text: str) -> list[Pin]:
    """The entries of a `uv pip compile --generate-hashes` file (annotations in split style)."""
    blocks: list[list[str]] = []
    for line in text.splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            blocks.append([line])
        elif blocks:
            blocks[-1].append(line)
    return [_parse_entry(block) for block in blocks]


def _parse_entry(lines: list[str]) -> Pin:
    requirement = Requirement(lines[0].rstrip(" \\"))
    (specifier,) = requirement.specifier
    assert specifier.operator == "==", f"not pinned with ==: {lines[0]}"
    hashes = [m[1] for line in lines if (m := re.fullmatch(HASH_LINE, line))]
    via = [m[1] for line in lines if (m := re.fullmatch(VIA_LINE, line))]
    return Pin(
        name=canonicalize_name(requirement.name),
        version=Version(specifier.version),
        marker=requirement.marker,
        hashes=tuple(hashes),
        via=tuple(via),
    )


def _pyproject() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _direct_requirements() -> list[Requirement]:
    """What the project asks for: its dependencies and every extra (`tasks.py` installs all)."""
    project = _pyproject()["project"]
    extras = [line for group in project["optional-dependencies"].values() for line in group]  # type: ignore[index]
    return [Requirement(line) for line in [*project["dependencies"], *extras]]  # type: ignore[index]


def _build_requirements() -> list[Requirement]:
    return [Requirement(line) for line in _pyproject()["build-system"]["requires"]]  # type: ignore[index]


def _load_tasks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tasks", ROOT / "tasks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def pins() -> list[Pin]:
    return _parse_lock(LOCK.read_text())


def test_lock_parser_reads_versions_markers_hashes_and_annotations():
    """The parser the other checks rely on reads every field of an entry, one- or multi-line."""
    text = (
        "# header\n"
        "boto3==1.40.0 \\\n"
        f"    --hash=sha256:{'a' * 64} \\\n"
        f"    --hash=sha256:{'b' * 64}\n"
        "    # via\n"
        f"    #   {PROJECT}\n"
        "    #   moto\n"
        f"colorama==0.4.6 ; sys_platform == 'win32' \\\n    --hash=sha256:{'c' * 64}\n"
        "    # via pytest\n"
    )
    boto3, colorama = _parse_lock(text)
    assert (boto3.name, boto3.version, boto3.marker) == ("boto3", Version("1.40.0"), None)
    assert boto3.hashes == (f"sha256:{'a' * 64}", f"sha256:{'b' * 64}")
    assert boto3.via == (PROJECT, "moto")
    assert str(colorama.marker) == 'sys_platform == "win32"'
    assert colorama.via == ("pytest",)


def test_lock_pins_every_requirement_of_pyproject_within_its_bounds(pins: list[Pin]):
    """Each requirement (and the build backend) is locked at a version its specifier allows."""
    locked: dict[str, list[Version]] = {}
    for pin in pins:
        locked.setdefault(pin.name, []).append(pin.version)
    for requirement in [*_direct_requirements(), *_build_requirements()]:
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement} is not in the lock: {RELOCK}"
        for version in locked[name]:
            assert requirement.specifier.contains(version, prereleases=True), (
                f"the lock pins {name}=={version}, outside {requirement}: {RELOCK}"
            )


def test_lock_lists_only_what_pyproject_asks_for(pins: list[Pin]):
    """Exactly pyproject's requirements are locked 'via' the project; the rest via a locked one."""
    direct = {canonicalize_name(r.name) for r in _direct_requirements()}
    build = {canonicalize_name(r.name) for r in _build_requirements()}
    names = {pin.name for pin in pins}
    assert {pin.name for pin in pins if PROJECT in pin.via} == direct, RELOCK
    for pin in pins:
        parents = {canonicalize_name(v) for v in pin.via if v != PROJECT}
        assert parents <= names, f"{pin.name} is locked for {parents - names}: {RELOCK}"
        assert pin.via or pin.name in build, f"nothing needs {pin.name}: {RELOCK}"


def test_every_locked_file_is_hash_checked(pins: list[Pin]):
    """Each entry names the hashes of its files, so pip --require-hashes accepts nothing else."""
    assert len(pins) > 50, "the lock covers every transitive package"
    unhashed = [pin.name for pin in pins if not pin.hashes]
    assert unhashed == [], f"entries without hashes: {unhashed}: {RELOCK}"


def test_lock_is_made_for_every_python_the_project_supports():
    """tasks.py resolves for all platforms from the requires-python floor, against PyPI."""
    tasks = _load_tasks()
    command = tasks.LOCK_COMMAND
    floor = _pyproject()["project"]["requires-python"]  # type: ignore[index]
    assert floor == ">=3.11"
    assert command[command.index("--python-version") + 1] == floor.removeprefix(">=")
    assert "--universal" in command
    assert "--generate-hashes" in command
    assert command[command.index("--index-url") + 1] == "https://pypi.org/simple"
    assert Path(command[command.index("--output-file") + 1]).name == LOCK.name


def test_tasks_reads_the_same_package_names_as_the_lock(pins: list[Pin]):
    """The names tasks.py keeps when it syncs .venv are exactly the lock's entries."""
    assert _load_tasks()._locked_names() == {pin.name for pin in pins}


def test_environment_yml_installs_the_lock():
    """conda users get the same pins: environment.yml's pip section is the lock itself."""
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [d for d in environment["dependencies"] if isinstance(d, str)]
    (pip,) = [d["pip"] for d in environment["dependencies"] if isinstance(d, dict)]
    assert environment["name"] == "jobcontroller"
    assert f"python{_pyproject()['project']['requires-python']}" in conda  # type: ignore[index]
    assert "pip" in conda
    # With hashes, pip installs nothing else in the same call; README adds `pip install -e .`.
    assert pip == [f"-r {LOCK.name}"]


def test_environment_is_synced_only_when_pyproject_or_the_lock_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """ensure_environment installs on first use and after an edit, and does nothing in between."""
    tasks = _load_tasks()
    venv = tmp_path / ".venv"
    python = tasks._python_in(venv)
    python.parent.mkdir(parents=True)
    python.touch()
    (tmp_path / "pyproject.toml").write_text("[project]\n")
    (tmp_path / "requirements-lock.txt").write_text("six==1.17.0\n")
    monkeypatch.setattr(tasks, "ROOT", tmp_path)
    monkeypatch.setattr(tasks, "VENV", venv)
    monkeypatch.setattr(tasks, "STAMP", venv / "stamp.json")
    monkeypatch.setattr(tasks, "LOCK", tmp_path / "requirements-lock.txt")
    calls: list[list[str]] = []

    def run(*args: object, **_: object) -> int:
        calls.append([str(a) for a in args])
        return 0

    monkeypatch.setattr(tasks, "_run", run)
    monkeypatch.setattr(tasks, "_remove_unlocked", lambda python: None)

    def installs() -> int:
        before = len(calls)
        assert tasks.ensure_environment() == python
        return len(calls) - before

    assert installs() == 2, "first use installs the lock, then the package"
    assert "--require-hashes" in calls[0]
    assert calls[1][-4:] == ["--no-deps", "--no-build-isolation", "-e", "."]
    assert installs() == 0
    (tmp_path / "requirements-lock.txt").write_text("six==1.16.0\n")
    assert installs() == 2
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    assert installs() == 2
    assert json.loads((venv / "stamp.json").read_text())["lock_sha256"]


def test_readme_names_the_locked_versions(pins: list[Pin]):
    """The versions README's Versions table says the course is tested on are the locked ones."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Versions\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| ([a-z0-9-]+) \| ([0-9][^ |]*) \|$", section, flags=re.MULTILINE)
    assert len(rows) >= 5, "the table names the main packages"
    locked = {pin.name: str(pin.version) for pin in pins}
    for name, version in rows:
        assert locked.get(canonicalize_name(name)) == version, (
            f"README says {name} {version}, the lock pins {locked.get(name)}: update README"
        )


def test_tasks_refuses_to_install_a_lock_that_misses_a_requirement(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A requirement added to pyproject.toml but not locked stops the install with what to run."""
    tasks = _load_tasks()
    python = tasks._python_in(tmp_path / ".venv")
    python.parent.mkdir(parents=True)
    python.touch()
    (tmp_path / "pyproject.toml").write_text(
        "[project]\ndependencies = ['boto3>=1.34']\n"
        "[project.optional-dependencies]\ndev = ['Mypy[reports]>=1; python_version>\"3\"']\n"
    )
    (tmp_path / "requirements-lock.txt").write_text("boto3==1.40.0\n")
    monkeypatch.setattr(tasks, "ROOT", tmp_path)
    monkeypatch.setattr(tasks, "VENV", tmp_path / ".venv")
    monkeypatch.setattr(tasks, "STAMP", tmp_path / ".venv" / "stamp.json")
    monkeypatch.setattr(tasks, "LOCK", tmp_path / "requirements-lock.txt")
    calls: list[tuple[object, ...]] = []

    def run(*args: object, **_: object) -> int:
        calls.append(args)
        return 0

    monkeypatch.setattr(tasks, "_run", run)

    assert tasks._required_names() == {"boto3", "mypy"}
    with pytest.raises(SystemExit, match=r"asks for mypy, .*python3 tasks.py lock"):
        tasks.ensure_environment()
    assert calls == [], "nothing is installed"
    assert not (tmp_path / ".venv" / "stamp.json").exists()
