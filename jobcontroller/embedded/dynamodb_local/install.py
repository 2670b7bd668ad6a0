"""Where DynamoDB Local is, and how to fetch it.

Amazon publishes the engine on its own download site; this package takes the copy that ships
inside the npm package `amplify-dynamodb-simulator` (`emulator/DynamoDBLocal.jar` with
`DynamoDBLocal_lib/`), because the npm registry is reachable wherever the course's other
packages are. `install()` fetches only that package's tarball (`npm pack`, no JavaScript
dependencies) and unpacks its `emulator/` folder into the cache.

Where the engine is looked for, first match wins: `engine_dir=`, the environment variable
JOBCONTROLLER_DYNAMODB_LOCAL_DIR, then ~/.cache/jobcontroller/dynamodb-local (XDG_CACHE_HOME is
honoured). Each may be the emulator folder itself or a folder holding it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from jobcontroller.errors import ConfigError

__all__ = [
    "ENGINE_PACKAGE",
    "ENV_DIR",
    "DynamoDBLocalFailed",
    "DynamoDBLocalMissing",
    "default_cache_dir",
    "find_engine",
    "find_java",
    "install",
    "install_command",
]

ENV_DIR = "JOBCONTROLLER_DYNAMODB_LOCAL_DIR"
# Pinned, so every machine runs the same engine (this one carries DynamoDB Local 1.25.1).
ENGINE_PACKAGE = "amplify-dynamodb-simulator@2.9.30"
_JAR = "DynamoDBLocal.jar"
_LIB = "DynamoDBLocal_lib"
# Where an engine folder may sit below a directory we are pointed at: the folder itself, an
# unpacked tarball's `emulator/` or `package/emulator/`, or an `npm install --prefix`.
_LAYOUTS = (
    Path("."),
    Path("emulator"),
    Path("package/emulator"),
    Path("node_modules/amplify-dynamodb-simulator/emulator"),
)


class DynamoDBLocalMissing(ConfigError):
    """Java or the DynamoDB Local engine is not installed where the package looks for it."""


class DynamoDBLocalFailed(ConfigError):
    """DynamoDB Local was found but did not start (its log says why)."""


def install_command() -> str:
    """The one command that installs the engine into the default cache folder."""
    return "python -m jobcontroller.embedded.dynamodb_local install"


def default_cache_dir() -> Path:
    """~/.cache/jobcontroller/dynamodb-local (under XDG_CACHE_HOME when that is set)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "jobcontroller" / "dynamodb-local"


def _engine_in(directory: Path) -> Path | None:
    for layout in _LAYOUTS:
        candidate = directory / layout
        if (candidate / _JAR).is_file() and (candidate / _LIB).is_dir():
            return candidate.resolve()
    return None


def find_engine(engine_dir: str | Path | None = None) -> Path:
    """The folder holding DynamoDBLocal.jar and DynamoDBLocal_lib/, or DynamoDBLocalMissing."""
    from_env = os.environ.get(ENV_DIR)
    if engine_dir is not None:
        searched = [Path(engine_dir)]
    elif from_env:
        # An explicit setting that is wrong is reported, not silently replaced by the cache.
        searched = [Path(from_env)]
    else:
        searched = [default_cache_dir()]
    for directory in searched:
        found = _engine_in(directory)
        if found is not None:
            return found
    raise DynamoDBLocalMissing(
        f"DynamoDB Local is not installed: no {_JAR} with {_LIB}/ in "
        f"{', '.join(str(d) for d in searched)}. Install it (npm and Java 17+ needed) with "
        f"`{install_command()}`, or point {ENV_DIR} at a folder that holds it."
    )


def find_java() -> str:
    """The `java` executable (JAVA_HOME first, then PATH), or DynamoDBLocalMissing."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / ("java.exe" if os.name == "nt" else "java")
        if candidate.is_file():
            return str(candidate)
    found = shutil.which("java")
    if found is None:
        raise DynamoDBLocalMissing(
            "DynamoDB Local needs Java 17 or newer, and no `java` is on PATH or in JAVA_HOME. "
            "Install a Java runtime, e.g. `apt-get install openjdk-17-jre-headless` "
            "(or `conda install openjdk=17`)."
        )
    return found


def install(*, target: str | Path | None = None, force: bool = False) -> Path:
    """Fetch the engine from the npm registry into `target` (default: the cache folder).

    Runs `npm pack` for ENGINE_PACKAGE (its tarball only, no dependencies) and unpacks its
    `emulator/` folder. Returns the engine folder; a no-op when it is already there.
    """
    destination = Path(target) if target is not None else default_cache_dir()
    existing = _engine_in(destination)
    if existing is not None and not force:
        return existing
    npm = shutil.which("npm")
    if npm is None:
        raise DynamoDBLocalMissing(
            f"Installing DynamoDB Local needs npm (it ships inside the npm package "
            f"{ENGINE_PACKAGE}): install Node.js, e.g. `apt-get install npm`, then run "
            f"`{install_command()}` again."
        )
    destination.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="jobcontroller-npm-") as scratch:
        packed = subprocess.run(
            [npm, "pack", ENGINE_PACKAGE, "--pack-destination", scratch, "--silent"],
            cwd=scratch,
            capture_output=True,
            text=True,
            check=False,
        )
        tarballs = sorted(Path(scratch).glob("*.tgz"))
        if packed.returncode != 0 or not tarballs:
            raise DynamoDBLocalFailed(
                f"`npm pack {ENGINE_PACKAGE}` failed (exit {packed.returncode}): "
                f"{(packed.stderr or packed.stdout).strip()[-800:]}"
            )
        unpacked = Path(scratch) / "unpacked"
        with tarfile.open(tarballs[0]) as archive:
            # Plain files and folders under package/emulator/ only: no links, nothing that
            # could land outside the scratch folder.
            members = [
                m
                for m in archive.getmembers()
                if m.name.startswith("package/emulator/")
                and ".." not in Path(m.name).parts
                and (m.isfile() or m.isdir())
            ]
            archive.extractall(unpacked, members=members)
        emulator = destination / "emulator"
        if emulator.exists():
            shutil.rmtree(emulator)
        shutil.move(str(unpacked / "package" / "emulator"), emulator)
    found = _engine_in(destination)
    if found is None:
        raise DynamoDBLocalFailed(
            f"{ENGINE_PACKAGE} was unpacked into {destination} but holds no {_JAR}: "
            "the package's layout has changed; pin an older version in ENGINE_PACKAGE."
        )
    return found
