"""The local runner's child process: Lambda's runtime loop for one invocation.

`LocalLambdaRunner` runs this file *by path*, not as `-m jobcontroller.ops.bootstrap`:

    python -I -S -B .../jobcontroller/ops/bootstrap.py request.json

isolated (no PYTHON* variables, no user site, and neither the current directory nor this
file's directory on `sys.path`), without site-packages (only what the request puts on
`sys.path`) and without writing bytecode into the extracted code (Lambda's /var/task is
read-only too). Running it as a module would import this package's `jobcontroller` first, and
the handler would then come from the installed package instead of the deployment zip; by
path, `sys.path` is the standard library, then the extracted zip, then the runtime's boto3,
so `jobcontroller.handler` can only come from the zip.

So this module imports the standard library only (botocore, for recording calls, comes from
the runtime's site once `sys.path` is set), and runs on the function's interpreter, which may
be another Python version than the one that started it. The request (a JSON file) says what
to run; the answer is written to the file the request names. The runner reads both.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from types import ModuleType
from typing import Any

__all__ = ["Context", "SimulatedClock", "inject", "main", "record_calls", "run"]


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


def record_calls(path: str) -> None:
    """Append every AWS API call (service, operation, parameters) to `path` as it is made."""
    from botocore.client import BaseClient  # the runtime's botocore, on sys.path by now

    original = BaseClient._make_api_call

    def recorded(self: BaseClient, operation_name: str, params: dict[str, Any]) -> Any:
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


def run(request: Mapping[str, Any]) -> dict[str, Any]:
    """Import the handler, set its injection points, call it: the answer, as the runner
    reads it (`status` ok with `result`, or error with Lambda's errorType/Message/stackTrace).
    """
    module_name, _, function_name = request["handler"].rpartition(".")
    try:
        module = importlib.import_module(module_name)
        handler = getattr(module, function_name)
    except Exception as exc:
        return _error(
            "Runtime.ImportModuleError",
            f"Unable to import module {module_name!r}: {exc}",
            traceback.format_exc().splitlines(),
        )
    try:
        simulated = inject(module, request)
    except NoInjectionPoint as exc:
        return _error("LocalRunner.NoInjectionPoint", str(exc), [])
    try:
        result = handler(request["event"], Context(request, simulated=simulated))
        json.dumps(result)  # Lambda fails a response it cannot serialise
    except Exception as exc:
        traceback.print_exc()  # to the invocation's log, as the Lambda runtime does
        return _error(type(exc).__name__, str(exc), traceback.format_exc().splitlines())
    return {"status": "ok", "result": result}


def main(argv: Sequence[str]) -> None:
    """Read the request at argv[0], put its code first on sys.path, run, write the answer."""
    (request_path,) = argv
    with open(request_path, encoding="utf-8") as handle:
        request = json.load(handle)
    sys.path[:0] = request["path"]
    if request.get("record"):
        record_calls(request["record"])
    answer = run(request)
    with open(request["result"], "w", encoding="utf-8") as handle:
        json.dump(answer, handle, default=str)


if __name__ == "__main__":
    main(sys.argv[1:])
