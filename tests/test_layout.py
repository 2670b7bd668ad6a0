"""The package's layout is its architecture: who may import whom, no cycles, small modules.

The rooms, and the one direction their imports may point (root <- embedded <- ops <- course):
- the root (`jobcontroller/*.py`, exactly what the Lambda zip holds) imports only the root;
- `jobcontroller.embedded` (AWS on this machine) imports the root and itself;
- `jobcontroller.ops` (packaging, deploy, runner, CLI) imports the root, embedded and itself;
- `jobcontroller.course` may import anything, and nothing outside the course imports it.
`python -m jobcontroller` (`jobcontroller/__main__.py`) is the command line's entry point, so it
counts as ops, and it is not in the zip.

Imports under `if TYPE_CHECKING:` count: a type-only dependency is still a dependency (and a
cycle dodged that way is still a cycle).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import grimp
import pytest

import jobcontroller
from jobcontroller.ops.packaging import lambda_modules

PACKAGE = "jobcontroller"
SOURCE = Path(jobcontroller.__file__).parent
MAX_MODULE_LINES = 500
MAX_CLASS_LINES = 250

# Known offenders in code other branches are changing, by module, then by check ("layer",
# "cycle", "size"). Each is a strict xfail: once the module is fixed the test XPASSes and
# fails, which is the signal to delete its entry here.
KNOWN_OFFENDERS: dict[str, dict[str, str]] = {}

ROOMS = ("root", "embedded", "ops", "course")
# What each room may import: its own room and the rooms before it in ROOMS.
ALLOWED = {room: set(ROOMS[: i + 1]) for i, room in enumerate(ROOMS)}


def _room(module: str) -> str:
    parts = module.split(".")
    if module == f"{PACKAGE}.__main__":
        return "ops"  # the command line's entry point: `python -m jobcontroller`
    if len(parts) > 1 and parts[1] in ROOMS[1:]:
        return parts[1]
    return "root"


def _import_lines(graph: grimp.ImportGraph, importer: str, imported: str) -> str:
    details = graph.get_import_details(importer=importer, imported=imported)
    where = ", ".join(f"line {d['line_number']}: {d['line_contents']}" for d in details)
    return f"{importer} imports {imported}" + (f" ({where})" if where else "")


def layer_violations(graph: grimp.ImportGraph, module: str) -> list[str]:
    """The imports of `module` against the direction root <- embedded <- ops <- course."""
    room = _room(module)
    return [
        _import_lines(graph, module, imported)
        for imported in sorted(graph.find_modules_directly_imported_by(module))
        if _room(imported) not in ALLOWED[room]
    ]


def shortest_cycle(graph: grimp.ImportGraph, module: str) -> list[str] | None:
    """The shortest import cycle through `module`, as a list starting and ending with it."""
    best: list[str] | None = None
    for imported in sorted(graph.find_modules_directly_imported_by(module)):
        back = graph.find_shortest_chain(importer=imported, imported=module)
        if back is not None and (best is None or len(back) + 1 < len(best)):
            best = [module, *back]
    return best


_SIZE_REASON = re.compile(r"(?:^|[.!?:]\s+|\n\s*)Size: \S")


def size_offences(source: str, *, module: str) -> list[str]:
    """The module (over 500 lines) and classes (over 250) that are too big without a reason.

    A docstring with a sentence starting "Size:" that says why the size is right exempts
    the module or class it documents.
    """
    tree = ast.parse(source)
    found = []
    lines = len(source.splitlines())
    if lines > MAX_MODULE_LINES and not _SIZE_REASON.search(ast.get_docstring(tree) or ""):
        found.append(f"{module} has {lines} lines (limit {MAX_MODULE_LINES})")
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            reason = _SIZE_REASON.search(ast.get_docstring(node) or "")
            if length > MAX_CLASS_LINES and not reason:
                found.append(f"{module}.{node.name} has {length} lines (limit {MAX_CLASS_LINES})")
    if found:
        found.append("split it by job, or say why in a docstring sentence starting 'Size:'")
    return found


GRAPH = grimp.build_graph(PACKAGE, cache_dir=None)
MODULES = sorted(GRAPH.modules)


def _per_module(check: str) -> list[pytest.ParameterSet]:
    params = []
    for module in MODULES:
        reason = KNOWN_OFFENDERS.get(module, {}).get(check)
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        params.append(pytest.param(module, id=module, marks=marks))
    return params


def _source_path(module: str) -> Path:
    parts = module.split(".")[1:]
    package_dir = SOURCE.joinpath(*parts)
    if (package_dir / "__init__.py").is_file():
        return package_dir / "__init__.py"
    return SOURCE.joinpath(*parts[:-1], f"{parts[-1]}.py") if parts else SOURCE / "__init__.py"


def test_the_root_is_the_zip():
    """The modules counted as the root room are exactly the modules the Lambda zip holds."""
    root = {m for m in MODULES if _room(m) == "root"}
    zipped = {PACKAGE if m == "__init__" else f"{PACKAGE}.{m}" for m in lambda_modules()}
    assert root == zipped


@pytest.mark.parametrize("module", _per_module("layer"))
def test_imports_point_one_way(module: str):
    """A module imports only its own room and the rooms before it (root <- ... <- course)."""
    offences = layer_violations(GRAPH, module)
    assert not offences, (
        f"{module} is in room {_room(module)!r}, which may import only "
        f"{sorted(ALLOWED[_room(module)])}: " + "; ".join(offences)
    )


@pytest.mark.parametrize("module", _per_module("cycle"))
def test_no_import_cycles(module: str):
    """No module takes part in an import cycle."""
    cycle = shortest_cycle(GRAPH, module)
    assert cycle is None, f"import cycle: {' -> '.join(cycle or [])}"


@pytest.mark.parametrize("module", _per_module("size"))
def test_modules_and_classes_are_small(module: str):
    """No module over 500 lines and no class over 250, unless a 'Size:' sentence says why."""
    offences = size_offences(_source_path(module).read_text(encoding="utf-8"), module=module)
    assert not offences, "; ".join(offences)


def test_known_offenders_name_real_modules_and_checks():
    """Every entry of KNOWN_OFFENDERS names a module that exists and a check this file has."""
    assert set(KNOWN_OFFENDERS) <= set(MODULES), sorted(set(KNOWN_OFFENDERS) - set(MODULES))
    checks = {check for entry in KNOWN_OFFENDERS.values() for check in entry}
    assert checks <= {"layer", "cycle", "size"}


# The checks themselves, on made-up graphs and sources, so each can be seen to fail.


def _graph(*imports: tuple[str, str]) -> grimp.ImportGraph:
    graph = grimp.ImportGraph()
    for importer, imported in imports:
        graph.add_import(importer=importer, imported=imported, line_number=1, line_contents="x")
    return graph


@pytest.mark.parametrize(
    ("importer", "imported", "allowed"),
    [
        ("jobcontroller.store", "jobcontroller.model", True),
        ("jobcontroller.store", "jobcontroller.embedded.server", False),
        ("jobcontroller", "jobcontroller.course.core", False),
        ("jobcontroller.embedded.server", "jobcontroller.errors", True),
        ("jobcontroller.embedded.server", "jobcontroller.ops.deploy", False),
        ("jobcontroller.ops.deploy", "jobcontroller.embedded.server", True),
        ("jobcontroller.ops.cli", "jobcontroller.course.lab", False),
        ("jobcontroller.course.lab", "jobcontroller.ops.deploy", True),
        ("jobcontroller.__main__", "jobcontroller.ops.cli", True),
    ],
)
def test_layer_check_judges_each_direction(importer: str, imported: str, allowed: bool):
    """The layer check allows imports toward the root and reports the others with their line."""
    offences = layer_violations(_graph((importer, imported)), importer)
    assert offences == ([] if allowed else [f"{importer} imports {imported} (line 1: x)"])


def test_cycle_check_reports_the_shortest_cycle():
    """The cycle check names the modules of the shortest cycle in order, and None without one."""
    graph = _graph(("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a"), ("p.a", "p.d"), ("p.d", "p.a"))
    assert shortest_cycle(graph, "p.a") == ["p.a", "p.d", "p.a"]
    assert shortest_cycle(_graph(("p.a", "p.b")), "p.a") is None


def test_size_check_counts_lines_and_honours_a_size_reason():
    """Long modules and classes are reported unless their docstring has a 'Size:' sentence."""
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_CLASS_LINES))
    source = f'"""Doc."""\nclass Big:\n    """Doc."""\n{body}\n' + "y = 1\n" * MAX_MODULE_LINES
    offences = size_offences(source, module="m")
    assert offences[0].startswith(f"m has {len(source.splitlines())} lines")
    assert offences[1] == f"m.Big has {MAX_CLASS_LINES + 2} lines (limit {MAX_CLASS_LINES})"
    reasoned = source.replace('"""Doc."""', '"""Doc. Size: one table, one class."""')
    assert size_offences(reasoned, module="m") == []
    assert size_offences(source.replace("Doc.", "Sizes vary."), module="m") != []
