"""The embedded AWS backend: moto served over HTTP on loopback, one request at a time.

Why a server and not moto's in-process `mock_aws`: DynamoDB applies each conditional write
atomically, and moto does not. Racing threads interleave inside moto's read-check-write, so
two writers can both pass `#s = :idle AND version = :v`; moto's own server, with one thread
per connection, has the same gap. Here every request, response body included, runs under one
process-wide lock, so each request is atomic as DynamoDB's are: 64 racing threads give
exactly one winner in every round. `scripts/bench_backend.py` measures all three.

Because the backend is a real HTTP endpoint exported as `AWS_ENDPOINT_URL` with dummy
credentials, plain `boto3.client(...)` calls, child processes and the AWS CLI all reach it.

moto keeps its state in this process, not in the server: `stop()` keeps it, `reset()` wipes it.
This module is course and test tooling; the Lambda handler never imports it.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import ipaddress
import json
import logging
import signal
import tempfile
import threading
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

import boto3

from jobcontroller.embedded import exported
from jobcontroller.embedded.exported import DEFAULT_REGION, HOST
from jobcontroller.errors import ConfigError, RealAWSBlocked

__all__ = [
    "DEFAULT_REGION",
    "EmbeddedAWS",
    "RealAWSBlocked",
    "add_request_hook",
    "guard_real_aws",
    "is_loopback",
    "main",
    "serve_until_stopped",
    "start_embedded",
]


_log = logging.getLogger(__name__)

# One lock for the whole process, not one per server: moto's backends are process-global,
# so two servers in one process must still take turns.
_ONE_AT_A_TIME = threading.Lock()


# Asked about each JSON-protocol request (X-Amz-Target, body, User-Agent) before moto sees
# it; the first answer (HTTP status, JSON body) is sent instead of moto's. The realism layer
# answers here what AWS would and moto cannot (a transaction conflict), for every client,
# child processes included.
RequestHook = Callable[[str, bytes, str], "tuple[int, dict[str, Any]] | None"]
_REQUEST_HOOKS: list[RequestHook] = []


def add_request_hook(hook: RequestHook) -> None:
    """Ask `hook` about every JSON-protocol request before moto answers it (once per hook)."""
    if hook not in _REQUEST_HOOKS:
        _REQUEST_HOOKS.append(hook)


def _hooked_answer(environ: dict[str, Any]) -> tuple[int, bytes] | None:
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if not target or not _REQUEST_HOOKS:
        return None
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)  # moto reads it again
    for hook in _REQUEST_HOOKS:
        answer = hook(target, body, environ.get("HTTP_USER_AGENT", ""))
        if answer is not None:
            status, document = answer
            return status, json.dumps(document).encode()
    return None


class _OneAtATime:
    """WSGI middleware that runs each whole request under the process-wide lock."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self._app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with _ONE_AT_A_TIME:
            answer = _hooked_answer(environ)
            if answer is not None:
                status, body = answer
                headers = [("Content-Type", "application/x-amz-json-1.0")]
                headers.append(("Content-Length", str(len(body))))
                start_response(f"{status} {'OK' if status < 300 else 'Bad Request'}", headers)
                return [body]
            result = self._app(environ, start_response)
            try:
                # A WSGI body may be produced lazily, so produce it while still holding the lock.
                return list(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()


def _build_server(port: int, *, threaded: bool) -> Any:
    """A listening werkzeug server for moto on loopback (port 0: the OS picks a free one)."""
    try:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server
    except ImportError as missing:
        raise ConfigError(
            f"The embedded backend needs moto[server] ({missing.name} is missing): "
            "install the course extras with `pip install -e '.[course]'`, "
            "or run `python3 tasks.py course`."
        ) from missing

    class QuietHandler(MotoRequestHandler):
        # werkzeug prints one line per request to stderr; keep them out of notebooks.
        def log(self, type: str, message: str, *args: Any) -> None:
            _log.debug(message, *args)

    server = make_server(
        HOST,
        port,
        _OneAtATime(DomainDispatcherApplication(create_backend_app)),
        threaded=threaded,
        request_handler=QuietHandler,
    )

    def server_log(type: str, message: str, *args: Any) -> None:
        # Only a crash inside moto reaches here (with its traceback): that one stays visible.
        _log.log(logging.ERROR if type == "error" else logging.DEBUG, message, *args)

    # werkzeug offers no hook for the server's own log line; replacing the method on this one
    # instance is the least code that routes it to logging.
    server.log = server_log  # type: ignore[method-assign]
    return server


def is_loopback(url_or_host: str | None) -> bool:
    """True when a URL (or a bare host name) points at this machine's loopback interface."""
    text = url_or_host or ""
    host = urllib.parse.urlsplit(text).hostname if "://" in text else text
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


_guard_lock = threading.Lock()
_guard_users = 0
_unguarded_send: Callable[..., Any] | None = None


def _install_guard() -> None:
    """Make botocore refuse, before any socket is opened, every request not for loopback."""
    global _guard_users, _unguarded_send
    from botocore.httpsession import URLLib3Session

    with _guard_lock:
        if _guard_users == 0:
            unguarded = URLLib3Session.send

            def guarded_send(self: URLLib3Session, request: Any) -> Any:
                host = urllib.parse.urlsplit(request.url).hostname
                if not is_loopback(host):
                    # The same words on every local backend (moto, DynamoDB Local): notebook
                    # 00 shows this error and stores the same output on both.
                    raise RealAWSBlocked(
                        f"Blocked a request to {host}: the course runs on a backend on this "
                        "machine, so nothing may reach real AWS. Create the client without "
                        "endpoint_url (or with the local one), or restart with "
                        "JOBCONTROLLER_BACKEND=aws to opt in to real AWS."
                    )
                return unguarded(self, request)

            _unguarded_send = unguarded
            URLLib3Session.send = guarded_send
        _guard_users += 1


def guard_real_aws() -> None:
    """Refuse every request not for loopback from now until the process ends.

    `EmbeddedAWS` guards while it runs; a course on DynamoDB Local, which has no such guard
    of its own, calls this once so that a learner's client aimed at real AWS is refused the
    same way on both local backends.
    """
    _install_guard()


def _remove_guard() -> None:
    global _guard_users, _unguarded_send
    from botocore.httpsession import URLLib3Session

    with _guard_lock:
        _guard_users -= 1
        if _guard_users == 0 and _unguarded_send is not None:
            URLLib3Session.send = _unguarded_send
            _unguarded_send = None


class EmbeddedAWS:
    """moto on a loopback port, one request at a time, exported to boto3 through the environment.

    Use it as a context manager, or call `start()` and `stop()`. While it runs, botocore
    refuses any request that is not for loopback (`RealAWSBlocked`). Start and stop
    instances in last-in, first-out order: each `stop()` restores the environment its
    `start()` found. Notebooks use `start_embedded()`, one backend per process.

    `threaded=True` gives each connection a thread (the lock still admits one request at
    a time), so a client that opens a connection and sends nothing, such as a browser's
    speculative connection, cannot stall everyone; the two modes measure about the same.
    """

    def __init__(self, *, region: str = DEFAULT_REGION, port: int = 0, threaded: bool = True):
        self._region = region
        self._port = port
        self._threaded = threaded
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._endpoint_url: str | None = None
        self._saved_env: dict[str, str | None] = {}
        self._empty_config: tempfile.TemporaryDirectory[str] | None = None

    @property
    def region(self) -> str:
        return self._region

    @property
    def endpoint_url(self) -> str:
        if self._endpoint_url is None:
            raise ConfigError("The embedded backend is not running: call start() first.")
        return self._endpoint_url

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> EmbeddedAWS:
        """Serve moto on loopback, export the environment and guard against real AWS."""
        if self._server is not None:
            return self
        server = _build_server(self._port, threaded=self._threaded)
        self._thread = threading.Thread(
            target=server.serve_forever, name="jobcontroller-embedded-aws", daemon=True
        )
        self._thread.start()
        self._server = server
        self._endpoint_url = f"http://{HOST}:{server.socket.getsockname()[1]}"
        self._export_environment()
        _install_guard()
        return self

    def stop(self) -> None:
        """Stop serving, restore the environment and lift the guard (moto's state is kept)."""
        if self._server is None:
            return
        self._server.shutdown()
        if self._thread is not None:
            self._thread.join()
        self._server = self._thread = self._endpoint_url = None
        _remove_guard()
        self._restore_environment()

    def reset(self) -> None:
        """Wipe every resource moto holds (tables, functions, schedules, roles...)."""
        # Bypass any proxy settings: the request is for loopback.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with opener.open(request, timeout=30) as response:
            response.read()

    def environment(self) -> dict[str, str]:
        """The variables that point boto3, a child process or the AWS CLI at this backend."""
        assert self._empty_config is not None
        return exported.environment(self.endpoint_url, self._region, self._empty_config.name)

    def session(self) -> boto3.session.Session:
        """A boto3 session with the dummy credentials and this backend's region."""
        result: boto3.session.Session = exported.session(self._region)
        return result

    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client for `service` bound to this backend's endpoint."""
        return self.session().client(service, endpoint_url=self.endpoint_url, **kwargs)

    def __enter__(self) -> EmbeddedAWS:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self._endpoint_url or "stopped"
        return f"EmbeddedAWS(region={self._region!r}, {where})"

    def _export_environment(self) -> None:
        self._empty_config = tempfile.TemporaryDirectory(prefix="jobcontroller-aws-")
        exported.empty_config(self._empty_config.name)
        self._saved_env = exported.export(self.environment())

    def _restore_environment(self) -> None:
        exported.restore(self._saved_env)
        self._saved_env = {}
        if self._empty_config is not None:
            self._empty_config.cleanup()
            self._empty_config = None


_embedded: EmbeddedAWS | None = None
_embedded_lock = threading.Lock()


def start_embedded(*, region: str | None = None) -> EmbeddedAWS:
    """The process-wide embedded backend, started on first call (later calls return it)."""
    global _embedded
    with _embedded_lock:
        if _embedded is None:
            _embedded = EmbeddedAWS(region=region or DEFAULT_REGION)
        elif region is not None and region != _embedded.region:
            raise ConfigError(
                f"The embedded backend already serves {_embedded.region}, not {region}: "
                "restart the kernel to change region."
            )
        return _embedded.start()


def main(argv: list[str] | None = None) -> int:
    """`python -m jobcontroller.embedded`: serve until Ctrl-C, printing the exports."""
    parser = argparse.ArgumentParser(
        prog="python -m jobcontroller.embedded", description=main.__doc__
    )
    parser.add_argument("--region", default=DEFAULT_REGION)
    parser.add_argument("--port", type=int, default=0, help="0 lets the OS choose (default)")
    args = parser.parse_args(argv)
    with EmbeddedAWS(region=args.region, port=args.port) as aws:
        print("# Paste into another shell to use the embedded backend from there:")
        print("unset AWS_PROFILE")
        for key, value in aws.environment().items():
            print(f"export {key}={value}")
        serve_until_stopped("# Serving; Ctrl-C stops it (and forgets nothing until then).")
    return 0


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def serve_until_stopped(serving: str) -> None:
    """Print `serving`, then return on Ctrl-C (SIGINT) or `kill` (SIGTERM), however the process
    was started, so that what the caller's `with` started is stopped and cleaned up (main
    thread only).

    A shell script's `&` job starts with SIGINT ignored, and Python keeps that: Ctrl-C and
    `kill -INT` would not stop it. A plain `kill` would end it without its clean-up. The
    handlers are in place before `serving` is printed, so a signal sent as soon as the line
    is read is not lost.
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    with contextlib.suppress(KeyboardInterrupt):  # also one that lands while printing
        print(serving, flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    raise SystemExit(main())
