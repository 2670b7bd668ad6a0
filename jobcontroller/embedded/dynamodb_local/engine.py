"""DynamoDB Local in a child process, exported to boto3 through the environment."""

from __future__ import annotations

import atexit
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any

from jobcontroller.embedded import exported
from jobcontroller.embedded.exported import DEFAULT_REGION, HOST
from jobcontroller.errors import ConfigError

from .install import _JAR, _LIB, DynamoDBLocalFailed, find_engine, find_java

__all__ = ["DEFAULT_REGION", "DynamoDBLocal", "start_dynamodb_local"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


class DynamoDBLocal:
    """DynamoDB Local in a child process: in memory, reached on a loopback port.

    Use it as a context manager, or call `start()` and `stop()`. Its log goes to a file
    (`log_path`), never to stdout, so it stays out of notebook output. With
    `export_environment=True` (the default) `start()` points boto3, child processes and the
    AWS CLI at it through AWS_ENDPOINT_URL and dummy credentials, as the embedded backend
    does, and `stop()` restores what it found; the tests pass False and set the variables
    per test. The engine has no bind option and listens on every interface; the package
    only ever reaches it on 127.0.0.1.

    With `shared_db=True` (`-sharedDb`) every region and access key sees the same tables, so
    a learner's mismatched region hides nothing; with False each access key and region is a
    separate database (tables *and* request tokens), as separate accounts are, which the
    tests use to give every test an engine of its own without restarting it.
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
            assert self._scratch is not None
            exported.empty_config(self._scratch.name)
            self._saved_env = exported.export(self.environment())
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
            self._endpoint_url = f"http://{HOST}:{port}"
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
            exported.restore(self._saved_env)
            self._saved_env = {}
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
        assert self._scratch is not None
        return exported.environment(self.endpoint_url, self._region, self._scratch.name)

    def session(self) -> Any:
        """A boto3 session with the dummy credentials and this engine's region."""
        return exported.session(self._region)

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
