"""environment.yml (conda) and pyproject.toml (pip) describe the same environment."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def _by_name(lines: list[str]) -> dict[str, Requirement]:
    requirements = [Requirement(line) for line in lines]
    names = [canonicalize_name(r.name) for r in requirements]
    assert len(set(names)) == len(names), f"a requirement is listed twice: {sorted(names)}"
    return dict(zip(names, requirements, strict=True))


def _key(requirement: Requirement) -> tuple[frozenset[str], SpecifierSet, str]:
    return frozenset(requirement.extras), requirement.specifier, str(requirement.marker or "")


def test_environment_yml_lists_every_pyproject_requirement_exactly():
    """Same Python floor, and the same packages with the same extras and version specifiers."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = [line for group in project["optional-dependencies"].values() for line in group]
    wanted = [*project["dependencies"], *extras]

    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [d for d in environment["dependencies"] if isinstance(d, str)]
    (pip,) = [d["pip"] for d in environment["dependencies"] if isinstance(d, dict)]
    options = [line for line in pip if line.startswith("-")]

    assert environment["name"] == "jobcontroller"
    assert f"python{project['requires-python']}" in conda
    assert "pip" in conda
    assert options == ["-e ."], "the package itself is installed from the checkout"
    listed = _by_name([line for line in pip if not line.startswith("-")])
    required = _by_name(wanted)
    assert listed.keys() == required.keys()
    for name, requirement in required.items():
        assert _key(listed[name]) == _key(requirement), f"{name}: {listed[name]} != {requirement}"
