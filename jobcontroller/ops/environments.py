"""Lambda's execution environments on this machine: a child process each, reused while warm.

Lambda runs a function in an execution environment. Its init phase (start the runtime, import
the handler, run the code at module level) happens once; then the environment serves one
invocation at a time, frozen in between, for as long as Lambda keeps it, and whatever the
code keeps at module level (clients, caches, counters) survives from one invocation to the
next. A crash or a timeout resets the environment; an update of the function's code or
configuration retires all of them.
https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html

`EnvironmentPool` does the same with ops.bootstrap child processes (the JSON-lines protocol
is described there). An idle environment started from the same `Spec` serves the next
invocation (warm); with none idle a new one starts (cold: the answer carries the init
duration, as Lambda's REPORT line has "Init Duration" only on a cold start); invocations that
overlap each get their own environment; one that timed out or whose process died is stopped
and dropped; a new `Spec` (other code, configuration or interpreter) retires the rest. Every
environment is stopped by `close()` or, at the latest, when this interpreter exits, and each
stopped process is waited for, so none is left behind as a zombie.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import threading
import time
import weakref
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["INIT_LIMIT_SECONDS", "EnvironmentPool", "ExecutionEnvironment", "Served", "Spec"]

# Lambda gives the init phase 10 s; past that it tries the init again within the function's
# timeout. Here a slow init simply goes on, for at most this plus the function's timeout.
INIT_LIMIT_SECONDS = 10.0

# How long a process that was asked to end (its stdin closed) gets before it is killed.
_STOP_GRACE_SECONDS = 2.0


@dataclass(frozen=True)
class Spec:
    """What an environment is started with. An environment serves only its own spec: Lambda
    retires every environment when the function's code or configuration changes."""

    command: tuple[str, ...]
    env: tuple[tuple[str, str], ...]  # the process's whole environment, sorted
    cwd: str  # where each environment gets its own working directory
    init: str  # the init line (JSON): the code's path, the handler, whether to record calls
    config: Any = None  # the function's configuration (ops.invocation.FunctionConfig)


@dataclass(frozen=True)
class Served:
    """How one invocation through an environment ended (ops.runner turns it into an
    Invocation). `answer` is the child's (`status` ok/error); status `crashed` means the
    process ended without answering, `timeout` that it was killed at the deadline."""

    status: str
    environment: str
    cold: bool
    duration_ms: int
    log: str = ""
    answer: dict[str, Any] | None = None
    exit_code: int | None = None
    init_ms: int | None = None


class ExecutionEnvironment:
    """One child process running ops.bootstrap: started at its first invocation (cold),
    then serving one invocation at a time (warm) until it is stopped."""

    def __init__(self, spec: Spec, number: int, log_dir: Path, epoch: int) -> None:
        self.spec = spec
        self.number = number
        self.name = f"env-{number}"
        self.epoch = epoch  # the pool's generation it belongs to
        self.invocations = 0
        self._log_dir = log_dir
        self._process: subprocess.Popen[bytes] | None = None
        self._buffer = b""

    @property
    def started(self) -> bool:
        return self._process is not None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def _start(self) -> Path:
        self._log_dir.mkdir(parents=True, exist_ok=True)
        # Its own empty working directory, as each Lambda environment has its own /tmp.
        cwd = Path(self.spec.cwd) / self.name
        shutil.rmtree(cwd, ignore_errors=True)
        cwd.mkdir(parents=True)
        init_log = self._log_dir / f"{self.name}-init.log"
        with init_log.open("wb") as log:
            self._process = subprocess.Popen(
                list(self.spec.command),
                cwd=cwd,
                env=dict(self.spec.env),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,  # the init phase's output; the child moves stdout there too
                start_new_session=True,  # so stopping it ends every process it started
            )
        self._send(self.spec.init)
        return init_log

    def _send(self, line: str) -> bool:
        assert self._process is not None and self._process.stdin is not None
        try:
            self._process.stdin.write(line.encode("utf-8") + b"\n")
            self._process.stdin.flush()
        except (BrokenPipeError, ValueError):
            return False  # the process is gone; reading its answer will say so
        return True

    def _receive(self, deadline: float) -> tuple[dict[str, Any] | None, str]:
        """The next answer line, or (None, "timeout") at `deadline` (time.monotonic), or
        (None, "exited") when the process closed its end."""
        assert self._process is not None and self._process.stdout is not None
        fd = self._process.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None, "timeout"
            readable, _, _ = select.select([fd], [], [], left)
            if not readable:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                return None, "exited"
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        message: dict[str, Any] = json.loads(line)
        return message, "ok"

    def _ended(self, how: str, cold: bool, started: float, log: str, init_ms: int | None) -> Served:
        """The environment's end during an invocation: killed at the timeout, or exited."""
        if how == "timeout":
            self.stop(kill=True)
            exit_code = None
        else:
            exit_code = self.stop(kill=False)
        return Served(
            "timeout" if how == "timeout" else "crashed",
            self.name,
            cold,
            _ms_since(started),
            log,
            exit_code=exit_code,
            init_ms=init_ms,
        )

    def invoke(self, request: dict[str, Any], *, timeout: float) -> Served:
        """Serve one invocation: `request` plus its `deadline` and `log`, set here."""
        cold = not self.started
        started = time.monotonic()
        init_log: Path | None = None
        init_ms = None
        head = ""
        if cold:
            init_log = self._start()
            ready, how = self._receive(started + INIT_LIMIT_SECONDS + timeout)
            init_ms = _ms_since(started)
            head = _read_log(init_log)
            init_log.unlink(missing_ok=True)  # later output goes to each invocation's log
            if ready is None:
                return self._ended(how, cold, started, head, init_ms)
            if not ready.pop("ready", False):  # the handler could not be imported
                self.stop(kill=False)
                return Served(
                    "error", self.name, cold, _ms_since(started), head, ready, init_ms=init_ms
                )
        self.invocations += 1
        log_path = self._log_dir / f"{self.name}-{self.invocations}.log"
        sent = time.time()
        # The context counts down to this wall-clock deadline in the child; the kill below
        # uses the monotonic clock, which the wall clock's steps cannot move.
        request = {**request, "deadline": sent + timeout, "log": str(log_path)}
        self._send(json.dumps(request, default=str))
        answer, how = self._receive(time.monotonic() + timeout)
        log = head + _read_log(log_path)
        log_path.unlink(missing_ok=True)
        if answer is None:
            return self._ended(how, cold, started, log, init_ms)
        duration = _ms_since(started)
        return Served(answer["status"], self.name, cold, duration, log, answer, init_ms=init_ms)

    def stop(self, *, kill: bool = False) -> int | None:
        """End the process (ask first unless `kill`), wait for it, return its exit code."""
        process, self._process = self._process, None
        if process is None:
            return None
        if not kill and process.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                process.stdin.close()  # end of requests: the child's loop returns
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=_STOP_GRACE_SECONDS)
        # Then the whole process group: the child if it is still there, and anything the
        # function started (a process that outlives the environment would be a leak).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        code = process.wait()
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                with contextlib.suppress(BrokenPipeError):
                    stream.close()
        return code


class EnvironmentPool:
    """The execution environments of one function, as Lambda keeps them (see the module).

    `reuse=False` stops every environment after one invocation (each one cold)."""

    def __init__(self, log_dir: Path, *, reuse: bool = True) -> None:
        self.log_dir = log_dir
        self.reuse = reuse
        self.started = 0  # environments started so far (cold starts)
        self._idle: list[ExecutionEnvironment] = []
        self._busy: set[ExecutionEnvironment] = set()
        self._spec: Spec | None = None
        self._epoch = 0
        self._lock = threading.Lock()
        _POOLS.add(self)

    def idle(self) -> list[str]:
        """The names of the environments waiting for an invocation, oldest first."""
        with self._lock:
            return [e.name for e in sorted(self._idle, key=lambda e: e.number)]

    def _take(self, spec: Spec, count: int) -> list[ExecutionEnvironment]:
        """`count` environments for `spec` at once: idle ones (oldest first), then new ones."""
        with self._lock:
            stale: list[ExecutionEnvironment] = []
            if spec != self._spec:
                stale, self._idle = self._idle, []
                self._spec = spec
                self._epoch += 1
            self._idle.sort(key=lambda e: e.number)
            taken = self._idle[:count]
            del self._idle[:count]
            while len(taken) < count:
                self.started += 1
                taken.append(ExecutionEnvironment(spec, self.started, self.log_dir, self._epoch))
            self._busy.update(taken)
        for environment in stale:
            environment.stop()
        return taken

    def _give_back(self, environment: ExecutionEnvironment, served: Served | None) -> None:
        healthy = served is not None and served.status in ("ok", "error") and environment.started
        with self._lock:
            self._busy.discard(environment)
            keep = healthy and self.reuse and environment.epoch == self._epoch
            if keep:
                self._idle.append(environment)
        if not keep:
            environment.stop()

    def _serve(
        self, environment: ExecutionEnvironment, request: dict[str, Any], timeout: float
    ) -> Served:
        served = None
        try:
            served = environment.invoke(request, timeout=timeout)
        finally:
            self._give_back(environment, served)
        return served

    def invoke(self, spec: Spec, request: dict[str, Any], *, timeout: float) -> Served:
        """One invocation, in an idle environment of `spec` if there is one."""
        (environment,) = self._take(spec, 1)
        return self._serve(environment, request, timeout)

    def invoke_together(
        self, spec: Spec, requests: Sequence[dict[str, Any]], *, timeout: float
    ) -> list[Served]:
        """Invocations that arrive at the same moment: each gets its own environment (taken
        before any of them runs), as concurrent requests do on Lambda; answers in order."""
        environments = self._take(spec, len(requests))
        if len(requests) <= 1:  # no thread needed
            return [self._serve(e, r, timeout) for e, r in zip(environments, requests, strict=True)]
        with ThreadPoolExecutor(max_workers=len(requests)) as threads:
            futures = [
                threads.submit(self._serve, environment, request, timeout)
                for environment, request in zip(environments, requests, strict=True)
            ]
        return [future.result() for future in futures]

    def close(self) -> None:
        """Stop the idle environments now, and the busy ones as they finish."""
        with self._lock:
            idle, self._idle = self._idle, []
            self._spec = None
            self._epoch += 1
        for environment in idle:
            environment.stop()


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _read_log(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


# Every pool still open when this interpreter exits stops its environments then, so a
# notebook kernel or a test run that forgot close() leaves no processes behind.
_POOLS: weakref.WeakSet[EnvironmentPool] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for pool in list(_POOLS):
        pool.close()
