"""Amazon's DynamoDB Local on a loopback port, in memory, started and stopped by the package.

moto is the default backend; DynamoDB Local is Amazon's own engine, and it differs from moto
exactly where this project depends on DynamoDB's semantics (request tokens, comparisons of
mixed types, TTL deletion, transaction conflicts). The suite runs its contract tests on both.

The engine is a Java program (Java 17 or newer). Amazon publishes it on its own download site;
this package takes the copy that ships inside the npm package `amplify-dynamodb-simulator`
(`emulator/DynamoDBLocal.jar` with `DynamoDBLocal_lib/`), because the npm registry is reachable
wherever the course's other packages are. `install()` fetches only that package's tarball
(`npm pack`, no JavaScript dependencies) and unpacks its `emulator/` folder into the cache.

Where the engine is looked for, first match wins: `engine_dir=`, the environment variable
JOBCONTROLLER_DYNAMODB_LOCAL_DIR, then ~/.cache/jobcontroller/dynamodb-local (XDG_CACHE_HOME is
honoured). Each may be the emulator folder itself or a folder holding it.

This module imports only the standard library and the package root (boto3 only when a client
is asked for), so tooling can find, install and start the engine before anything else.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any

from jobcontroller.errors import ConfigError

__all__ = [
    "DEFAULT_REGION",
    "ENGINE_PACKAGE",
    "ENV_DIR",
    "DynamoDBLocal",
    "DynamoDBLocalFailed",
    "DynamoDBLocalMissing",
    "find_engine",
    "find_java",
    "install",
    "install_command",
    "main",
    "start_dynamodb_local",
]

DEFAULT_REGION = "us-east-1"
ENV_DIR = "JOBCONTROLLER_DYNAMODB_LOCAL_DIR"
# Pinned, so every machine runs the same engine (this one carries DynamoDB Local 1.25.1).
ENGINE_PACKAGE = "amplify-dynamodb-simulator@2.9.30"
_JAR = "DynamoDBLocal.jar"
_LIB = "DynamoDBLocal_lib"
_HOST = "127.0.0.1"
_DUMMY_SECRET = "testing"
# Where an engine folder may sit below a directory we are pointed at: the folder itself, an
# unpacked tarball's `emulator/` or `package/emulator/`, or an `npm install --prefix`.
_LAYOUTS = (
    Path("."),
    Path("emulator"),
    Path("package/emulator"),
    Path("node_modules/amplify-dynamodb-simulator/emulator"),
)
# Variables that would send boto3 somewhere else or pick up a learner's real identity.
# https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html
_REMOVED = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
_REMOVED_PREFIX = "AWS_ENDPOINT_URL_"


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


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((_HOST, 0))
        return int(probe.getsockname()[1])


class DynamoDBLocal:
    """DynamoDB Local in a child process: in memory, one shared database, on a loopback port.

    Use it as a context manager, or call `start()` and `stop()`. Its log goes to a file
    (`log_path`), never to stdout, so it stays out of notebook output. With
    `export_environment=True` (the default) `start()` points boto3, child processes and the
    AWS CLI at it through AWS_ENDPOINT_URL and dummy credentials, as the embedded backend
    does, and `stop()` restores what it found; the tests pass False and set the variables
    per test. With `shared_db=True` (`-sharedDb`) every region and access key sees the same
    tables, so a learner's mismatched region hides nothing; with False each access key and
    region is a separate database (tables *and* request tokens), as separate accounts are,
    which the tests use to give every test an engine of its own without restarting it.
    """

    def __init__(
        self,
        *,
        region: str = DEFAULT_REGION,
        port: int = 0,
        engine_dir: str | Path | None = None,
        log_path: str | Path | None = None,
        export_environment: bool = True,
        start_timeout: float = 60.0,
        shared_db: bool = True,
    ) -> None:
        self._region = region
        self._port = port
        self._engine_dir = engine_dir
        self._log_path = None if log_path is None else Path(log_path)
        self._export = export_environment
        self._shared_db = shared_db
        self._start_timeout = start_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._endpoint_url: str | None = None
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        self._saved_env: dict[str, str | None] = {}
        self.start_seconds: float | None = None

    @property
    def region(self) -> str:
        return self._region

    @property
    def endpoint_url(self) -> str:
        if self._endpoint_url is None:
            raise ConfigError("DynamoDB Local is not running: call start() first.")
        return self._endpoint_url

    @property
    def running(self) -> bool:
        return self._process is not None

    @property
    def log_path(self) -> Path | None:
        """The file the engine's own output goes to (kept after stop, for reading)."""
        return self._log_path

    def start(self) -> DynamoDBLocal:
        """Start the engine and wait (at most `start_timeout` s) until it answers."""
        if self._process is not None:
            return self
        java, engine = find_java(), find_engine(self._engine_dir)
        self._scratch = tempfile.TemporaryDirectory(prefix="jobcontroller-ddblocal-")
        if self._log_path is None:
            self._log_path = Path(self._scratch.name) / "dynamodb-local.log"
        started = time.monotonic()
        try:
            self._launch(java, engine, deadline=started + self._start_timeout)
        except BaseException:
            self._kill()
            self._forget_scratch()
            raise
        self.start_seconds = time.monotonic() - started
        if self._export:
            self._export_environment()
        return self

    def _launch(self, java: str, engine: Path, *, deadline: float) -> None:
        # A port picked free can be taken before Java binds it: then try another.
        for attempt in range(3):
            port = self._port or _free_port()
            assert self._log_path is not None  # set by start()
            self._log = open(self._log_path, "ab")  # noqa: SIM115 - closed by stop()
            self._process = subprocess.Popen(
                [
                    java,
                    # A test engine lives minutes: the quick JIT tier and one GC thread start
                    # it in about a third of the time on a busy two-core machine.
                    "-XX:TieredStopAtLevel=1",
                    "-XX:+UseSerialGC",
                    f"-Djava.library.path={engine / _LIB}",
                    "-jar",
                    str(engine / _JAR),
                    "-inMemory",
                    *(["-sharedDb"] if self._shared_db else []),
                    # No network beyond loopback: the engine would otherwise send telemetry.
                    "-disableTelemetry",
                    "-port",
                    str(port),
                ],
                cwd=engine,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
            )
            self._endpoint_url = f"http://{_HOST}:{port}"
            atexit.register(self._kill)
            try:
                self._wait_until_ready(deadline)
                return
            except DynamoDBLocalFailed:
                self._kill()
                if self._port or attempt == 2 or "Address already in use" not in self._log_tail():
                    raise

    def stop(self) -> None:
        """Stop the engine (its in-memory tables go with it) and restore the environment."""
        if self._process is None:
            return
        if self._export:
            self._restore_environment()
        self._kill()
        self._forget_scratch()

    def reset(self) -> None:
        """Delete every table, so the next test starts from an empty engine."""
        client = self.client("dynamodb")
        for page in client.get_paginator("list_tables").paginate():
            for name in page["TableNames"]:
                client.delete_table(TableName=name)

    def environment(self) -> dict[str, str]:
        """The variables that point boto3, a child process or the AWS CLI at this engine."""
        endpoint_url = self.endpoint_url
        assert self._scratch is not None
        return {
            "AWS_ENDPOINT_URL": endpoint_url,
            "AWS_ACCESS_KEY_ID": _DUMMY_SECRET,
            "AWS_SECRET_ACCESS_KEY": _DUMMY_SECRET,
            "AWS_SESSION_TOKEN": _DUMMY_SECRET,
            "AWS_DEFAULT_REGION": self._region,
            "AWS_REGION": self._region,
            # Empty files, so a learner's real profile and its settings are never read.
            "AWS_CONFIG_FILE": os.path.join(self._scratch.name, "config"),
            "AWS_SHARED_CREDENTIALS_FILE": os.path.join(self._scratch.name, "credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def session(self) -> Any:
        """A boto3 session with the dummy credentials and this engine's region."""
        import boto3

        return boto3.session.Session(
            aws_access_key_id=_DUMMY_SECRET,
            aws_secret_access_key=_DUMMY_SECRET,
            aws_session_token=_DUMMY_SECRET,
            region_name=self._region,
        )

    def client(self, service: str = "dynamodb", **kwargs: Any) -> Any:
        """A boto3 client bound to this engine (it serves DynamoDB only)."""
        return self.session().client(service, endpoint_url=self.endpoint_url, **kwargs)

    def __enter__(self) -> DynamoDBLocal:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"DynamoDBLocal(region={self._region!r}, {self._endpoint_url or 'stopped'})"

    # --- the child process ---------------------------------------------------------------

    def _wait_until_ready(self, deadline: float) -> None:
        """Poll the port until any HTTP answer comes back; fail on exit or at the deadline."""
        assert self._process is not None
        # Bypass proxy settings: the request is for loopback.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        while True:
            try:
                with opener.open(self.endpoint_url, timeout=2) as response:
                    response.read()
                return
            except urllib.error.HTTPError:
                return  # an unsigned request is refused with HTTP 400: the engine answers
            except OSError:
                pass  # not listening yet
            code = self._process.poll()
            if code is not None:
                raise DynamoDBLocalFailed(
                    f"DynamoDB Local exited with code {code} before it answered; its log "
                    f"ends with:\n{self._log_tail()}"
                )
            if time.monotonic() > deadline:
                raise DynamoDBLocalFailed(
                    f"DynamoDB Local did not answer within {self._start_timeout:g} s on "
                    f"{self.endpoint_url}; its log ends with:\n{self._log_tail()}"
                )
            time.sleep(0.05)

    def _forget_scratch(self) -> None:
        if self._scratch is None:
            return
        # Keep a log the caller asked for; the default one goes with the temp folder.
        if self._log_path is not None and Path(self._scratch.name) in self._log_path.parents:
            self._log_path = None
        self._scratch.cleanup()
        self._scratch = None

    def _log_tail(self) -> str:
        if self._log_path is None or not self._log_path.exists():
            return ""
        return self._log_path.read_text(errors="replace")[-2000:]

    def _kill(self) -> None:
        atexit.unregister(self._kill)
        process, self._process, self._endpoint_url = self._process, None, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    # --- the environment -----------------------------------------------------------------

    def _export_environment(self) -> None:
        assert self._scratch is not None
        for name in ("config", "credentials"):
            open(os.path.join(self._scratch.name, name), "w").close()
        exported = self.environment()
        removed = [*_REMOVED, *(k for k in os.environ if k.startswith(_REMOVED_PREFIX))]
        no_proxy = {k: _with_loopback(os.environ.get(k)) for k in ("NO_PROXY", "no_proxy")}
        self._saved_env = {k: os.environ.get(k) for k in [*exported, *removed, *no_proxy]}
        for key in removed:
            os.environ.pop(key, None)
        os.environ.update(no_proxy)
        os.environ.update(exported)
        _forget_boto3_default_session()

    def _restore_environment(self) -> None:
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env = {}
        _forget_boto3_default_session()


def _forget_boto3_default_session() -> None:
    # boto3's default session caches credentials and config: rebuild it from the environment.
    boto3 = sys.modules.get("boto3")
    if boto3 is not None:
        setattr(boto3, "DEFAULT_SESSION", None)  # noqa: B010 - a module found at run time


def _with_loopback(no_proxy: str | None) -> str:
    entries = [e for e in (no_proxy or "").split(",") if e]
    return ",".join([*entries, *(h for h in (_HOST, "localhost") if h not in entries)])


_engine: DynamoDBLocal | None = None
_engine_lock = threading.Lock()


def start_dynamodb_local(*, region: str | None = None) -> DynamoDBLocal:
    """The process-wide DynamoDB Local, started on first call with the environment exported.

    Later calls return the running one. `endpoint_url` says where it listens and `stop()`
    ends it (the interpreter's exit ends it too).
    """
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = DynamoDBLocal(region=region or DEFAULT_REGION)
        elif region is not None and region != _engine.region:
            raise ConfigError(
                f"DynamoDB Local already serves {_engine.region}, not {region}: "
                "restart the kernel to change region."
            )
        return _engine.start()


def main(argv: list[str] | None = None) -> int:
    """`python -m jobcontroller.embedded.dynamodb_local install | where | serve`."""
    parser = argparse.ArgumentParser(
        prog="python -m jobcontroller.embedded.dynamodb_local",
        description="Install, locate or serve Amazon's DynamoDB Local.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    installing = commands.add_parser("install", help="fetch the engine if it is missing")
    installing.add_argument("--target", help="folder to install into (default: the cache)")
    installing.add_argument("--force", action="store_true", help="fetch it again")
    commands.add_parser("where", help="print the engine's folder, or why it is missing")
    serving = commands.add_parser("serve", help="serve until Ctrl-C, printing the exports")
    serving.add_argument("--region", default=DEFAULT_REGION)
    serving.add_argument("--port", type=int, default=0, help="0 picks a free one (default)")
    args = parser.parse_args(argv)
    try:
        if args.command == "install":
            if args.target is None and os.environ.get(ENV_DIR):
                args.target = os.environ[ENV_DIR]
            print(f"DynamoDB Local: {install(target=args.target, force=args.force)}")
        elif args.command == "where":
            print(find_engine())
            find_java()
        else:
            with DynamoDBLocal(region=args.region, port=args.port) as engine:
                print("# Paste into another shell to use DynamoDB Local from there:")
                print("unset AWS_PROFILE")
                for key, value in engine.environment().items():
                    print(f"export {key}={value}")
                print(f"# Log: {engine.log_path}. Serving; Ctrl-C stops it.", flush=True)
                with contextlib.suppress(KeyboardInterrupt):
                    threading.Event().wait()
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
