"""The deployed function on real AWS, through Lambda's Invoke API.

The same calls as the local runner (ops.runner), in the same shapes (ops.invocation); time
cannot be simulated there, so `now` is refused rather than ignored.
"""

from __future__ import annotations

import base64
import json
import re
import time
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from botocore.config import Config

from jobcontroller.errors import ConfigError
from jobcontroller.ops.deploy import Target
from jobcontroller.ops.invocation import AsyncResult, FunctionConfig, Invocation

__all__ = ["RemoteLambdaRunner", "cold_start"]

_INIT_DURATION = re.compile(r"\bInit Duration: ([0-9.]+) ms")


def cold_start(log: str) -> tuple[bool | None, int | None]:
    """Whether the invocation whose log tail this is started its execution environment, and
    the init duration: Lambda's REPORT line has "Init Duration" on a cold start only. Without
    a REPORT line in the tail (it keeps the last 4 KB) it is not known.
    https://docs.aws.amazon.com/lambda/latest/dg/python-logging.html
    """
    found = _INIT_DURATION.search(log)
    if found:
        return True, round(float(found.group(1)))
    return (False, None) if "REPORT RequestId:" in log else (None, None)


class RemoteLambdaRunner:
    """The same calls against real Lambda (Invoke API); time cannot be simulated there."""

    simulates_time = False

    def __init__(
        self, target: Target, function_name: str, *, timeout_seconds: int | None = None
    ) -> None:
        self.target = target
        self.function_name = function_name
        self.timeout_seconds = timeout_seconds  # None: read from the function's configuration
        self._invoker: Any = None
        self._skew: timedelta | None = None

    def now(self) -> datetime:
        """AWS's clock, as the function's gate sees it: this machine's clock corrected by the
        difference to the `Date` header of Lambda's answers (a laptop's clock can be off by
        minutes; comparing a lease with it would call a lease over too early or too late).
        The header has whole seconds, so this errs up to 1 s early: waits end late, not early.
        """
        if self._skew is None:
            self._note_skew(
                self.target.client("lambda").get_function_configuration(
                    FunctionName=self.function_name
                )
            )
        return datetime.now(UTC) + (self._skew or timedelta(0))

    def _note_skew(self, response: dict[str, Any]) -> None:
        date = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
        if date:
            self._skew = parsedate_to_datetime(date) - datetime.now(UTC)

    def invoker(self) -> Any:
        """The Lambda client for synchronous invokes: it waits longer than the function may
        run, and never re-sends. botocore's default read timeout is 60 s and it retries a
        timed-out call, so a run longer than that would be delivered again while the first
        is still running.
        https://docs.aws.amazon.com/lambda/latest/dg/invocation-retries.html
        """
        if self._invoker is None:
            timeout = self.timeout_seconds or self.configuration().timeout_seconds
            self._invoker = self.target.session.client(
                "lambda",
                region_name=self.target.region,
                config=Config(
                    read_timeout=timeout + 30,
                    connect_timeout=10,
                    retries={"total_max_attempts": 1, "mode": "standard"},
                ),
            )
        return self._invoker

    def configuration(self) -> FunctionConfig:
        lam = self.target.client("lambda")
        return FunctionConfig.from_api(
            lam.get_function_configuration(FunctionName=self.function_name)
        )

    def _check_now(self, now: datetime | None) -> None:
        if now is not None:
            raise ConfigError(
                "real Lambda runs on real time: `now` can only be simulated on the embedded "
                "backend; leave it out"
            )

    def invoke(self, event: Any, *, now: datetime | None = None, **_: Any) -> Invocation:
        """Invoke synchronously (RequestResponse) and return the result or the error."""
        self._check_now(now)
        started = time.monotonic()
        response = self.invoker().invoke(
            FunctionName=self.function_name,
            InvocationType="RequestResponse",
            LogType="Tail",
            Payload=json.dumps(event).encode(),
        )
        self._note_skew(response)
        payload = json.loads(response["Payload"].read() or b"null")
        log = base64.b64decode(response.get("LogResult", "")).decode("utf-8", "replace")
        request_id = response.get("ResponseMetadata", {}).get("RequestId", "")
        duration_ms = int((time.monotonic() - started) * 1000)
        cold, init_ms = cold_start(log)
        if "FunctionError" in response:
            timed_out = "timed out" in str(payload)
            return Invocation(
                request_id,
                "timeout" if timed_out else "error",
                error=payload,
                duration_ms=duration_ms,
                log=log,
                cold=cold,
                init_duration_ms=init_ms,
            )
        return Invocation(
            request_id,
            "ok",
            result=payload,
            duration_ms=duration_ms,
            log=log,
            cold=cold,
            init_duration_ms=init_ms,
        )

    def invoke_async(self, event: Any, *, now: datetime | None = None, **_: Any) -> AsyncResult:
        """Queue an asynchronous invocation (as the Scheduler does); Lambda reports nothing."""
        self._check_now(now)
        response = self.target.client("lambda").invoke(
            FunctionName=self.function_name,
            InvocationType="Event",
            Payload=json.dumps(event).encode(),
        )
        request_id = response.get("ResponseMetadata", {}).get("RequestId", "")
        return AsyncResult((Invocation(request_id, "queued"),))
