"""Build the Lambda deployment zip: the core modules only, the same bytes for the same source.

The zip holds `jobcontroller/<module>.py` for the modules in `LAMBDA_MODULES` and nothing
else: boto3 and botocore come from the Lambda Python runtime
(https://docs.aws.amazon.com/lambda/latest/dg/lambda-python.html), and the course and
deployment modules (moto, ipywidgets, matplotlib) are never imported by the handler.

Every entry gets a fixed timestamp, fixed permissions and a fixed compression level, and the
entries are sorted, so building twice from the same source gives the same sha256. That makes
"is the deployed function running this code?" a comparison of two hashes (Lambda reports
`CodeSha256`, the base64 of the zip's sha256).
"""

from __future__ import annotations

import ast
import base64
import hashlib
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "HANDLER",
    "LAMBDA_MODULES",
    "PACKAGE",
    "ZIP_NAME",
    "ZipReport",
    "build_zip",
    "inspect_zip",
    "project_imports",
]

PACKAGE = "jobcontroller"
HANDLER = f"{PACKAGE}.handler.lambda_handler"
ZIP_NAME = "jobcontroller-lambda.zip"

# The one list of what the Lambda needs. `build_zip` refuses to build if the handler imports
# a project module that is not here, and tests/test_packaging.py checks the same by import
# analysis, so the list cannot silently fall behind the code.
LAMBDA_MODULES: tuple[str, ...] = (
    "__init__",
    "clock",
    "controller",
    "errors",
    "events",
    "gate",
    "handler",
    "model",
    "store",
    "workload",
)

# 1980-01-01 is the earliest time a zip entry can carry; any fixed value would do.
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
# Regular file, rw-r--r--: Lambda only needs to read the code.
_FILE_MODE = 0o100644
_CREATE_SYSTEM_UNIX = 3
_COMPRESS_LEVEL = 9


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


def _module_name(path: Path) -> str:
    return path.stem


def _is_type_checking_block(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def _imports_of(path: Path) -> set[str]:
    """Project modules that `path` imports (statically), by module name within the package.

    Imports under `if TYPE_CHECKING:` never run, so they are left out. Imports inside
    functions count: they run when the function does. `importlib.import_module` calls with
    computed names (the package's lazy `__getattr__`) are not static imports and are not
    followed: that is how the course modules stay out of the handler's import graph.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if _is_type_checking_block(node):
            for child in node.orelse:  # type: ignore[attr-defined]
                visit(child)
            return
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module is None:  # from jobcontroller import x, y
                found.update(alias.name for alias in node.names)
            elif node.level == 1:  # from jobcontroller.x import y
                found.add(node.module.split(".")[0])
            elif node.level == 0 and node.module and node.module.split(".")[0] == PACKAGE:
                parts = node.module.split(".")
                if len(parts) > 1:
                    found.add(parts[1])
                else:  # from jobcontroller import x: x may be a module or a name
                    found.update(alias.name for alias in node.names)
                    found.add("__init__")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == PACKAGE:
                    found.add(parts[1] if len(parts) > 1 else "__init__")
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def project_imports(module: str = "handler", *, source_dir: Path | None = None) -> set[str]:
    """Every project module that importing `jobcontroller.<module>` loads, itself included.

    Importing a submodule first imports the package, so `__init__` and what it imports
    are always part of the answer.
    """
    source_dir = source_dir or _source_dir()
    available = {_module_name(p) for p in source_dir.glob("*.py")}
    seen: set[str] = set()
    todo = [module, "__init__"]
    while todo:
        name = todo.pop()
        if name in seen or name not in available:
            continue
        seen.add(name)
        todo.extend(_imports_of(source_dir / f"{name}.py") - seen)
    return seen


def _check_modules(source_dir: Path) -> None:
    missing = [m for m in LAMBDA_MODULES if not (source_dir / f"{m}.py").is_file()]
    if missing:
        raise FileNotFoundError(
            f"cannot build the Lambda zip: {', '.join(m + '.py' for m in missing)} missing "
            f"from {source_dir}; restore the file(s) or remove them from LAMBDA_MODULES"
        )
    needed = project_imports("handler", source_dir=source_dir)
    outside = sorted(needed - set(LAMBDA_MODULES))
    if outside:
        raise RuntimeError(
            f"the handler imports {', '.join(outside)}, which the Lambda zip would not "
            "contain: add them to LAMBDA_MODULES in jobcontroller/packaging.py, or stop "
            "importing them from the handler's modules"
        )


def _zip_bytes(source_dir: Path) -> bytes:
    with tempfile.SpooledTemporaryFile() as buffer:
        with zipfile.ZipFile(buffer, "w") as archive:
            for module in sorted(LAMBDA_MODULES):
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
    _check_modules(source_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = out / ZIP_NAME
    data = _zip_bytes(source_dir)
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
