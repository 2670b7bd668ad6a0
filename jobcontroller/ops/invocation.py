"""What invoking the deployed function gives back, on either backend, and the runner protocol.

`LocalLambdaRunner` (ops.runner) and `RemoteLambdaRunner` (ops.remote) both answer in these
shapes, so the schedule driver and the course do not care which one they hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from jobcontroller.errors import ConfigError

__all__ = [
    "AsyncResult",
    "AwsCall",
    "FunctionConfig",
    "FunctionRunner",
    "Invocation",
    "as_utc",
]


def as_utc(when: datetime) -> datetime:
    """`when` in UTC; a naive datetime is refused (the runner and driver never guess a zone)."""
    if when.tzinfo is None:
        raise ConfigError("times must be timezone-aware, e.g. datetime(..., tzinfo=UTC)")
    return when.astimezone(UTC)


@dataclass(frozen=True)
class AwsCall:
    """One AWS API call the handler made (recorded in the child process)."""

    service: str  # botocore's service name, e.g. "dynamodb"
    operation: str  # e.g. "UpdateItem"
    params: dict[str, Any]


@dataclass(frozen=True)
class Invocation:
    """How one invocation ended, in the shape Lambda's Invoke API reports it.

    `status` is `ok` (the handler returned `result`), `error` (it raised: `error` holds
    errorType, errorMessage and stackTrace), `crashed` (the process died without an answer,
    as on Lambda's `Runtime.ExitError`) or `timeout` (killed at the configured timeout).

    `cold` says whether the execution environment was started for this invocation (None:
    not known); `init_duration_ms` is its init phase, given on a cold start only, as in
    Lambda's REPORT line; `environment` names the execution environment that served it.
    """

    request_id: str
    status: str
    result: Any = None
    error: dict[str, Any] | None = None
    duration_ms: int = 0
    log: str = ""
    calls: tuple[AwsCall, ...] = ()
    cold: bool | None = None
    init_duration_ms: int | None = None
    environment: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def summary(self) -> str:
        if self.ok and isinstance(self.result, dict):
            reason = self.result.get("reason")
            return str(self.result.get("outcome", "ok")) + (f" ({reason})" if reason else "")
        if self.error:
            return f"{self.status}: {self.error.get('errorType')}"
        return self.status


@dataclass(frozen=True)
class AsyncResult:
    """An asynchronous invocation: its attempts and where a final failure was sent."""

    attempts: tuple[Invocation, ...]
    sent_to: str | None = None  # the on-failure destination's ARN, if it got a record
    # When each attempt started on the replay's clock (empty when the runner keeps no clock).
    started: tuple[datetime, ...] = ()

    @property
    def last(self) -> Invocation | None:
        return self.attempts[-1] if self.attempts else None


@dataclass(frozen=True)
class FunctionConfig:
    """The parts of a function's configuration the runner uses, as the Lambda API reports it."""

    name: str
    arn: str
    handler: str
    runtime: str
    timeout_seconds: int
    memory_mb: int
    environment: dict[str, str]
    code_sha256: str

    @classmethod
    def from_api(cls, config: Mapping[str, Any]) -> FunctionConfig:
        return cls(
            name=config["FunctionName"],
            arn=config["FunctionArn"],
            handler=config["Handler"],
            runtime=config["Runtime"],
            timeout_seconds=int(config["Timeout"]),
            memory_mb=int(config.get("MemorySize", 128)),
            environment=dict(config.get("Environment", {}).get("Variables", {})),
            code_sha256=config["CodeSha256"],
        )


class FunctionRunner(Protocol):
    """Invoke the deployed function: locally on the embedded backend, via Lambda on AWS."""

    simulates_time: bool

    def now(self) -> datetime:
        """The time on the function's clock (the gate's clock, not necessarily this laptop's)."""
        ...

    def invoke(
        self, event: Any, *, now: datetime | None = None, run_id: str | None = None
    ) -> Invocation: ...

    def invoke_async(
        self, event: Any, *, now: datetime | None = None, run_id: str | None = None
    ) -> AsyncResult: ...
