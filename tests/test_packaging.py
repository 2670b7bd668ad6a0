"""The Lambda deployment zip: only the core, nothing third-party, the same bytes every time."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import jobcontroller
from jobcontroller.ops.packaging import (
    HANDLER,
    ZIP_NAME,
    LayoutError,
    build_zip,
    inspect_zip,
    lambda_modules,
    subpackage_imports,
)
from jobcontroller.ops.runner import runtime_site

SOURCE = Path(jobcontroller.__file__).parent

# What the Lambda runtime provides: boto3 and what it depends on, nothing else.
RUNTIME_TOP_LEVEL = {"boto3", "botocore", "jmespath", "dateutil", "urllib3", "s3transfer", "six"}


@pytest.fixture
def source_copy(tmp_path: Path) -> Path:
    """A copy of the package source that a test may change."""
    copy = tmp_path / "src" / "jobcontroller"
    shutil.copytree(SOURCE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def _import_in_fresh_python(code_dir: Path, site: Path, python: str = sys.executable) -> dict:
    """Import the handler in an isolated interpreter whose path is the code and boto3 only."""
    script = (
        "import json, sys\n"
        f"sys.path[:0] = [{str(code_dir)!r}, {str(site)!r}]\n"
        f"import {HANDLER.rpartition('.')[0]} as h\n"
        "assert callable(h.lambda_handler)\n"
        "mods = sorted(m for m in sys.modules)\n"
        "print(json.dumps({'modules': mods, 'file': h.__file__, 'version': sys.version}))\n"
    )
    done = subprocess.run(
        [python, "-I", "-S", "-B", "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_lambda_modules_are_the_package_root():
    """The zip's modules are exactly the root's *.py files but __main__, read from the tree."""
    root = {p.stem for p in SOURCE.glob("*.py")} - {"__main__"}
    assert set(lambda_modules()) == root
    assert {"handler", "store", "__init__"} <= root


def test_a_new_root_module_joins_the_zip(tmp_path: Path, source_copy: Path):
    """A module added to the package root is in the next zip without editing any list."""
    (source_copy / "extra.py").write_text("VALUE = 1\n")
    report = inspect_zip(build_zip(out_dir=tmp_path, source_dir=source_copy))
    assert "jobcontroller/extra.py" in report.entries
    assert not any("/ops/" in e or "/course/" in e or "__main__" in e for e in report.entries)


@pytest.mark.parametrize(
    "statement",
    [
        "from .embedded import server",
        "from . import ops",
        "import jobcontroller.course.core",
        "from jobcontroller.ops.deploy import deploy",
        "from jobcontroller import embedded",
        "def f():\n    from .course import core",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .ops import cli",
    ],
)
def test_build_refuses_a_root_module_importing_a_subpackage(
    tmp_path: Path, source_copy: Path, statement: str
):
    """A root module importing a subpackage, in any spelling, stops the build naming both."""
    gate = source_copy / "gate.py"
    gate.write_text(gate.read_text() + "\n" + statement + "  # noqa\n")
    with pytest.raises(LayoutError, match=r"jobcontroller\.gate imports jobcontroller\.\w+.*move"):
        build_zip(out_dir=tmp_path / "out", source_dir=source_copy)
    assert not (tmp_path / "out" / ZIP_NAME).exists()


def test_root_imports_of_root_modules_are_allowed(tmp_path: Path):
    """Relative and absolute imports between root modules are not mistaken for subpackages."""
    subpackages = frozenset({"ops"})
    module = tmp_path / "m.py"
    module.write_text(
        "from . import model\nfrom .store import ControlStore\nimport jobcontroller.gate\n"
        "from jobcontroller import operations\nfrom ..ops import x\n"
    )
    assert subpackage_imports(module, subpackages) == []
    module.write_text("from jobcontroller import model, ops\n")
    assert subpackage_imports(module, subpackages) == ["jobcontroller.ops"]


def test_zip_holds_exactly_the_core_modules(tmp_path: Path):
    """The zip's entries are jobcontroller/<module>.py for the root's modules, sorted, no more."""
    report = inspect_zip(build_zip(out_dir=tmp_path))
    expected = sorted(f"jobcontroller/{m}.py" for m in lambda_modules())
    assert list(report.entries) == expected
    assert report.path == tmp_path / ZIP_NAME


def test_zip_entries_carry_fixed_metadata(tmp_path: Path):
    """Every entry has the fixed timestamp, mode 0644, unix origin and deflate compression."""
    with zipfile.ZipFile(build_zip(out_dir=tmp_path)) as archive:
        infos = archive.infolist()
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {i.external_attr >> 16 for i in infos} == {0o100644}
    assert {i.create_system for i in infos} == {3}
    assert {i.compress_type for i in infos} == {zipfile.ZIP_DEFLATED}


def test_same_source_gives_same_bytes(tmp_path: Path, source_copy: Path):
    """Different mtimes, file modes and output folders do not change the zip's sha256."""
    first = inspect_zip(build_zip(out_dir=tmp_path / "one"))
    for path in source_copy.glob("*.py"):
        os.utime(path, (1_900_000_000, 1_900_000_000))
        path.chmod(0o600)
    second = inspect_zip(build_zip(out_dir=tmp_path / "two", source_dir=source_copy))
    assert second.sha256 == first.sha256
    assert second.size_bytes == first.size_bytes


def test_changed_source_changes_the_hash(tmp_path: Path, source_copy: Path):
    """A one-byte change in a core module gives a different sha256."""
    before = inspect_zip(build_zip(out_dir=tmp_path / "before", source_dir=source_copy))
    gate = source_copy / "gate.py"
    gate.write_text(gate.read_text() + "\n")
    after = inspect_zip(build_zip(out_dir=tmp_path / "after", source_dir=source_copy))
    assert after.sha256 != before.sha256


def test_report_gives_size_and_lambdas_hash(tmp_path: Path):
    """The report's size is the file's, and code_sha256 is base64(sha256) as Lambda reports it."""
    path = build_zip(out_dir=tmp_path)
    report = inspect_zip(path)
    data = path.read_bytes()
    assert report.size_bytes == len(data) == path.stat().st_size
    assert report.sha256 == hashlib.sha256(data).hexdigest()
    assert report.code_sha256 == base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert report.size_bytes < 100_000  # core source only: tens of kilobytes
    assert f"{report.size_bytes:,} bytes" in str(report)


def test_build_refuses_a_missing_handler(tmp_path: Path, source_copy: Path):
    """A source without handler.py stops the build, naming the file and the handler path."""
    (source_copy / "handler.py").unlink()
    with pytest.raises(FileNotFoundError, match=r"handler\.py.*jobcontroller\.handler"):
        build_zip(out_dir=tmp_path / "out", source_dir=source_copy)
    assert not (tmp_path / "out" / ZIP_NAME).exists()


def test_zip_imports_with_boto3_only(tmp_path: Path):
    """The extracted zip's handler imports with only boto3's runtime packages on the path."""
    code = tmp_path / "code"
    with zipfile.ZipFile(build_zip(out_dir=tmp_path)) as archive:
        archive.extractall(code)
    site = runtime_site(tmp_path / "site")
    assert {p.name.removesuffix(".py") for p in site.iterdir()} == RUNTIME_TOP_LEVEL
    loaded = _import_in_fresh_python(code, site)
    assert loaded["file"].startswith(str(code))
    ours = {m.split(".", 1)[1] for m in loaded["modules"] if m.startswith("jobcontroller.")}
    assert ours <= set(lambda_modules())
    third_party = {m.split(".")[0] for m in loaded["modules"]} - set(sys.stdlib_module_names)
    assert third_party - {"jobcontroller", "__main__", "__mp_main__"} <= RUNTIME_TOP_LEVEL
    for heavy in ("moto", "matplotlib", "ipywidgets", "pytest", "yaml"):
        assert heavy not in third_party


def test_zip_imports_under_the_lambda_runtimes_python(tmp_path: Path, python312: str):
    """The zip's handler imports under Python 3.12, the function's runtime."""
    code = tmp_path / "code"
    with zipfile.ZipFile(build_zip(out_dir=tmp_path)) as archive:
        archive.extractall(code)
    loaded = _import_in_fresh_python(code, runtime_site(tmp_path / "site"), python312)
    assert loaded["version"].startswith("3.12")


def test_command_line_builds_the_zip(tmp_path: Path):
    """`python -m jobcontroller.ops.packaging --out-dir D` writes the zip and prints its size."""
    done = subprocess.run(
        [sys.executable, "-m", "jobcontroller.ops.packaging", "--out-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    report = inspect_zip(tmp_path / ZIP_NAME)
    assert f"{report.size_bytes:,} bytes" in done.stdout
