"""The local runner's child process: Lambda's runtime loop for one execution environment.

`LocalLambdaRunner` runs this file *by path*, not as `-m jobcontroller.ops.bootstrap`:

    python -I -S -B .../jobcontroller/ops/bootstrap.py

isolated (no PYTHON* variables, no user site, and neither the current directory nor this
file's directory on `sys.path`), without site-packages (only what the request puts on
`sys.path`) and without writing bytecode into the extracted code (Lambda's /var/task is
read-only too). Running it as a module would import this package's `jobcontroller` first, and
the handler would then come from the installed package instead of the deployment zip; by
path, `sys.path` is the standard library, then the extracted zip, then the runtime's boto3,
so `jobcontroller.handler` can only come from the zip.

So this module imports the standard library only (botocore, for recording calls, comes from
the runtime's site once `sys.path` is set), and runs on the function's interpreter, which may
be another Python version than the one that started it.

The protocol is JSON lines (`serve`): the runner writes the init and then one request per
invocation to the child's stdin; the child answers each on its stdout. Like Lambda's runtime
it imports the handler once (init) and then serves invocation after invocation (warm), with
whatever the function keeps at module level surviving in between; the runner decides when an
environment is retired (ops.environments).
https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from types import ModuleType
from typing import IO, Any

__all__ = [
    "Context",
    "Function",
    "HandlerImportError",
    "SimulatedClock",
    "inject",
    "main",
    "record_calls",
    "run",
    "serve",
]


class SimulatedClock:
    """The handler's clock in a replay: it starts at the simulated time and moves only when
    the handler sleeps, at once instead of waiting (as ManualClock does). So a replayed day
    does not wait for its workloads, and the times it stores do not depend on how busy this
    machine is (a clock that also ran on with the process's own time stored 18:00:02 instead
    of 18:00:01 under load). The workload measures its lease on this same clock; the real
    timeout still kills a run that never returns."""

    def __init__(self, start: datetime) -> None:
        self.start, self._slept = start, 0.0

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self._slept)

    def sleep(self, seconds: float) -> None:
        self._slept += max(float(seconds), 0.0)


class Context:
    """The parts of Lambda's context object that handlers use.

    The remaining time counts down to the request's deadline, on the wall clock: the parent
    set it when it started this process, so start-up counts against the timeout, as it does
    for the parent's kill. In a replay (`simulated`), it counts down from the configured
    timeout on the simulated clock instead, from when that clock started (just before the
    handler is called): the lease the handler derives from it is then the same on every run,
    however long this process took to start, and the workload's simulated sleeps use it up
    as real ones would.
    """

    def __init__(
        self,
        request: Mapping[str, Any],
        *,
        simulated: SimulatedClock | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        function = request["function"]
        self.function_name: str = function["name"]
        self.function_version = "$LATEST"
        self.invoked_function_arn: str = function["arn"]
        self.memory_limit_in_mb: int = function["memory_mb"]
        self.aws_request_id: str = request["request_id"]
        self.log_group_name = "/aws/lambda/" + function["name"]
        self.log_stream_name = "local/" + request["request_id"]
        self._deadline: float = request["deadline"]
        self._timeout = timedelta(seconds=function["timeout_seconds"])
        self._simulated = simulated
        self._wall_clock = wall_clock

    def get_remaining_time_in_millis(self) -> int:
        if self._simulated is not None:
            end = self._simulated.start + self._timeout
            left = (end - self._simulated.now()).total_seconds()
        else:
            left = self._deadline - self._wall_clock()
        return max(0, int(left * 1000))


class NoInjectionPoint(RuntimeError):
    """The handler module lacks the `clock` or `new_run_id` the request wants to set."""


def inject(module: ModuleType, request: Mapping[str, Any]) -> SimulatedClock | None:
    """Set the handler module's injection points (jobcontroller.handler.clock and
    .new_run_id) for a simulated time or a fixed run id. The zip's code is unchanged.
    Returns the simulated clock it set, if any."""
    wanted = {"clock": request.get("now"), "new_run_id": request.get("run_id")}
    missing = [n for n, value in wanted.items() if value is not None and not hasattr(module, n)]
    if missing:
        raise NoInjectionPoint(
            f"handler module {module.__name__!r} has no injection point "
            f"{', '.join(missing)}: leave out now=/run_id= for this function"
        )
    injected: dict[str, Any] = {}
    clock = None
    if request.get("now") is not None:
        clock = injected["clock"] = SimulatedClock(datetime.fromisoformat(request["now"]))
        if hasattr(module, "wall_clock"):
            # A simulated day stamps its history's TTL on simulated time too, so the lab's
            # stored outputs stay the same (moto never expires items).
            injected["wall_clock"] = clock
    run_id = request.get("run_id")
    if run_id is not None:
        injected["new_run_id"] = lambda: run_id
    vars(module).update(injected)  # module globals, looked up by the handler at each call
    return clock


def record_calls(where: Callable[[], str | None]) -> None:
    """Append every AWS API call (service, operation, parameters) to the file `where()` names
    at the time of the call (the current invocation's; None records nothing)."""
    from botocore.client import BaseClient  # the runtime's botocore, on sys.path by now

    original = BaseClient._make_api_call

    def recorded(self: BaseClient, operation_name: str, params: dict[str, Any]) -> Any:
        path = where()
        if path is not None:
            entry = {
                "service": self.meta.service_model.service_name,
                "operation": operation_name,
                "params": params,
            }
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(entry, default=str) + "\n")
        return original(self, operation_name, params)

    BaseClient._make_api_call = recorded  # recording every request is this module's job


def _error(error_type: str, message: str, stack: list[str]) -> dict[str, Any]:
    return {
        "status": "error",
        "error": {"errorType": error_type, "errorMessage": message, "stackTrace": stack},
    }


class HandlerImportError(Exception):
    """The configured handler cannot be imported: Lambda's Runtime.ImportModuleError."""

    def __init__(self, answer: dict[str, Any]) -> None:
        super().__init__(answer["error"]["errorMessage"])
        self.answer = answer


# The handler module's globals that `inject` may set for one invocation. They are put back
# before each invocation, so one request's simulated clock or fixed run id never leaks into
# the next one the same (warm) environment serves.
_INJECTION_POINTS = ("clock", "new_run_id", "wall_clock")


class Function:
    """The handler, imported once per execution environment (Lambda's init phase) and called
    once per invocation (the invoke phase). Everything else at module level in the function's
    code (clients, caches, counters) stays as the last invocation left it, as on Lambda."""

    def __init__(self, handler: str) -> None:
        module_name, _, function_name = handler.rpartition(".")
        try:
            self.module = importlib.import_module(module_name)
            self.handler = getattr(self.module, function_name)
        except Exception as exc:
            raise HandlerImportError(
                _error(
                    "Runtime.ImportModuleError",
                    f"Unable to import module {module_name!r}: {exc}",
                    traceback.format_exc().splitlines(),
                )
            ) from exc
        found = vars(self.module)
        self._originals = {name: found[name] for name in _INJECTION_POINTS if name in found}

    def invoke(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Call the handler on the request's event: the answer, as the runner reads it
        (`status` ok with `result`, or error with Lambda's errorType/Message/stackTrace)."""
        vars(self.module).update(self._originals)
        try:
            simulated = inject(self.module, request)
        except NoInjectionPoint as exc:
            return _error("LocalRunner.NoInjectionPoint", str(exc), [])
        try:
            result = self.handler(request["event"], Context(request, simulated=simulated))
            json.dumps(result)  # Lambda fails a response it cannot serialise
        except Exception as exc:
            # An unhandled exception is the invocation's error, not the environment's end: the
            # Python runtime catches it and serves the next invocation (only an exit or a
            # timeout resets the environment).
            traceback.print_exc()  # to the invocation's log, as the Lambda runtime does
            return _error(type(exc).__name__, str(exc), traceback.format_exc().splitlines())
        return {"status": "ok", "result": result}


def run(request: Mapping[str, Any]) -> dict[str, Any]:
    """Import the handler and call it once (an environment that serves one invocation)."""
    try:
        function = Function(request["handler"])
    except HandlerImportError as exc:
        return exc.answer
    return function.invoke(request)


def _send(answers: IO[str], message: Mapping[str, Any]) -> None:
    # json.dumps writes no newline inside a value, so one message is one line.
    answers.write(json.dumps(message, default=str) + "\n")
    answers.flush()


def _keep_logs(path: str | None) -> None:
    """No log redirection (serve's default, e.g. when tested inside another process)."""


def _log_to(path: str | None) -> None:
    """Send file descriptors 1 and 2 (print, tracebacks, child processes) to `path`."""
    sys.stdout.flush()
    sys.stderr.flush()
    if path is None:
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def serve(
    requests: IO[str],
    answers: IO[str],
    *,
    redirect: Callable[[str | None], None] = _keep_logs,
) -> None:
    """Lambda's runtime loop for one execution environment.

    The first line of `requests` is the init: `path` (put first on sys.path), `handler`,
    `record` (whether to record AWS calls). The init phase imports the handler and answers
    `{"ready": true}`, or `{"ready": false, ...the import error...}` and ends. Every further
    line is one invocation's request (as `Context` and `inject` read it, plus `log`, the file
    its output goes to, and `record`, the file its calls go to); each gets one answer line.
    The loop ends when `requests` does (the runner closed the pipe).
    """
    init = json.loads(requests.readline() or "null")
    if not isinstance(init, dict):
        return  # the runner went away before the init: nothing to do
    sys.path[:0] = init["path"]
    recording: list[str | None] = [None]
    if init.get("record"):
        record_calls(lambda: recording[0])
    try:
        function = Function(init["handler"])
    except HandlerImportError as exc:
        print("\n".join(exc.answer["error"]["stackTrace"]), file=sys.stderr, flush=True)
        _send(answers, {"ready": False, **exc.answer})
        return
    _send(answers, {"ready": True})
    for line in requests:
        request = json.loads(line)
        recording[0] = request.get("record")
        redirect(request.get("log"))
        try:
            answer = function.invoke(request)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        _send(answers, answer)


def main(argv: Sequence[str]) -> None:
    """Serve requests from stdin, answer on stdout, the function's own output to the log."""
    if argv:
        raise SystemExit("usage: bootstrap.py (requests on stdin, answers on stdout)")
    # The protocol keeps private copies of stdin and stdout; descriptor 0 then reads nothing
    # and descriptor 1 writes where 2 does (the init log, later each invocation's log), so
    # nothing the function prints or reads can break the protocol.
    requests = os.fdopen(os.dup(0), "r", encoding="utf-8")
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    nothing = os.open(os.devnull, os.O_RDONLY)
    os.dup2(nothing, 0)
    os.close(nothing)
    os.dup2(2, 1)
    serve(requests, answers, redirect=_log_to)


if __name__ == "__main__":
    main(sys.argv[1:])
