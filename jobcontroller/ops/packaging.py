"""Build the Lambda deployment zip: the package root's modules, the same bytes for the same source.

The zip is the package root: `jobcontroller/<module>.py` for every module directly in the
package directory except `__main__.py` (the command line), and nothing else. The layout is the
list: a module belongs to the Lambda exactly when it sits in the root, so there is no list to
keep in step. boto3 and botocore come from the Lambda Python runtime
(https://docs.aws.amazon.com/lambda/latest/dg/lambda-python.html); the subpackages (the
embedded AWS, operations, the course, with moto, ipywidgets and matplotlib behind them) are
never in the zip, and `build_zip` refuses to build if a root module imports one of them.

Every entry gets a fixed timestamp, fixed permissions and a fixed compression level, and the
entries are sorted, so building twice from the same source gives the same sha256. That makes
"is the deployed function running this code?" a comparison of two hashes (Lambda reports
`CodeSha256`, the base64 of the zip's sha256).
"""

from __future__ import annotations

import ast
import base64
import functools
import hashlib
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "HANDLER",
    "PACKAGE",
    "ZIP_NAME",
    "LayoutError",
    "ZipReport",
    "build_zip",
    "inspect_zip",
    "lambda_modules",
    "subpackage_imports",
]

PACKAGE = "jobcontroller"
HANDLER = f"{PACKAGE}.handler.lambda_handler"
ZIP_NAME = "jobcontroller-lambda.zip"

# `python -m jobcontroller` starts the command line, which lives in ops: not Lambda code.
_NOT_IN_ZIP = frozenset({"__main__"})

# 1980-01-01 is the earliest time a zip entry can carry; any fixed value would do.
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
# Regular file, rw-r--r--: Lambda only needs to read the code.
_FILE_MODE = 0o100644
_CREATE_SYSTEM_UNIX = 3
_COMPRESS_LEVEL = 9


class LayoutError(RuntimeError):
    """A root module imports a subpackage, so the zip (the root alone) would not import."""


@dataclass(frozen=True)
class ZipReport:
    """What a built zip contains and how to recognise it."""

    path: Path
    size_bytes: int
    sha256: str  # hex, for people and file names
    code_sha256: str  # base64 of the same digest, the form Lambda reports as CodeSha256
    entries: tuple[str, ...]

    def __str__(self) -> str:
        return (
            f"{self.path.name}: {self.size_bytes:,} bytes, {len(self.entries)} files, "
            f"sha256 {self.sha256[:12]}"
        )


def _source_dir() -> Path:
    return Path(__file__).resolve().parent.parent  # the package root: the Lambda modules


def lambda_modules(source_dir: Path | None = None) -> tuple[str, ...]:
    """The modules the zip holds: every `*.py` of the package root but `__main__`, sorted."""
    source_dir = Path(source_dir) if source_dir is not None else _source_dir()
    return tuple(sorted(p.stem for p in source_dir.glob("*.py") if p.stem not in _NOT_IN_ZIP))


def _subpackages(source_dir: Path) -> frozenset[str]:
    return frozenset(p.parent.name for p in source_dir.glob("*/__init__.py"))


def _imported_names(node: ast.Import | ast.ImportFrom) -> list[str]:
    """The dotted names an import statement loads, relative ones spelled from the package."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level == 0:
        base = node.module or ""
    elif node.level == 1:  # a root module's `from .x import y` / `from . import x`
        base = ".".join(filter(None, [PACKAGE, node.module]))
    else:  # `..` from the root leaves the package: not ours
        return []
    # `from jobcontroller import ops` imports the subpackage through its name.
    return [base] + [f"{base}.{alias.name}" for alias in node.names]


def subpackage_imports(path: Path, subpackages: frozenset[str]) -> list[str]:
    """The subpackages (`jobcontroller.<sub>`) that the module at `path` imports, sorted.

    Every import statement counts, also those in functions or under `TYPE_CHECKING`: the rule
    is that the root does not depend on the rooms built on it, not merely that the zip loads.
    """
    return list(_subpackage_imports_in(path.read_text(encoding="utf-8"), str(path), subpackages))


# Parsing and walking the root's modules is most of a build's time, and a course or a test run
# builds the zip for every deploy from the same few sources: keyed by the text, so an edited
# module is parsed again.
@functools.lru_cache(maxsize=256)
def _subpackage_imports_in(
    source: str, filename: str, subpackages: frozenset[str]
) -> tuple[str, ...]:
    tree = ast.parse(source, filename=filename)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            for name in _imported_names(node):
                parts = name.split(".")
                if len(parts) > 1 and parts[0] == PACKAGE and parts[1] in subpackages:
                    found.add(f"{PACKAGE}.{parts[1]}")
    return tuple(sorted(found))


def _check_layout(source_dir: Path, modules: tuple[str, ...]) -> None:
    if "handler" not in modules:
        raise FileNotFoundError(
            f"cannot build the Lambda zip: handler.py is missing from {source_dir}; the function's "
            f"handler is {HANDLER}, so restore it"
        )
    subpackages = _subpackages(source_dir)
    offences = [
        f"{PACKAGE}.{module} imports {', '.join(found)}"
        for module in modules
        if (found := subpackage_imports(source_dir / f"{module}.py", subpackages))
    ]
    if offences:
        raise LayoutError(
            f"cannot build the Lambda zip: {'; '.join(offences)}. The zip holds the package "
            "root only, so a root module may import only root modules: move the code it needs "
            "into the root, or move the importing code into the subpackage"
        )


def _zip_bytes(source_dir: Path, modules: tuple[str, ...]) -> bytes:
    with tempfile.SpooledTemporaryFile() as buffer:
        with zipfile.ZipFile(buffer, "w") as archive:
            for module in modules:
                info = zipfile.ZipInfo(f"{PACKAGE}/{module}.py", date_time=_FIXED_TIME)
                info.external_attr = _FILE_MODE << 16
                info.create_system = _CREATE_SYSTEM_UNIX
                info.compress_type = zipfile.ZIP_DEFLATED
                data = (source_dir / f"{module}.py").read_bytes()
                archive.writestr(info, data, compresslevel=_COMPRESS_LEVEL)
        buffer.seek(0)
        return buffer.read()


def build_zip(*, out_dir: str | os.PathLike[str], source_dir: Path | None = None) -> Path:
    """Write the deployment zip into `out_dir` and return its path.

    `source_dir` is the package directory to read (default: this installed package).
    The file is replaced atomically, so a reader never sees half a zip.
    """
    source_dir = Path(source_dir) if source_dir is not None else _source_dir()
    modules = lambda_modules(source_dir)
    _check_layout(source_dir, modules)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = out / ZIP_NAME
    data = _zip_bytes(source_dir, modules)
    fd, tmp = tempfile.mkstemp(dir=out, prefix=".tmp-", suffix=".zip")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def inspect_zip(path: str | os.PathLike[str]) -> ZipReport:
    """Size, hashes and entries of a built zip."""
    path = Path(path)
    data = path.read_bytes()
    digest = hashlib.sha256(data).digest()
    with zipfile.ZipFile(path) as archive:
        entries = tuple(archive.namelist())
    return ZipReport(
        path=path,
        size_bytes=len(data),
        sha256=digest.hex(),
        code_sha256=base64.b64encode(digest).decode("ascii"),
        entries=entries,
    )


def main(argv: list[str] | None = None) -> int:
    """`python -m jobcontroller.ops.packaging --out-dir build`: build the zip, say where."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m jobcontroller.ops.packaging", description="Build the Lambda deployment zip."
    )
    parser.add_argument("--out-dir", default="build", help="where to write it (default: build)")
    args = parser.parse_args(argv)
    report = inspect_zip(build_zip(out_dir=args.out_dir))
    print(report.path)
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
