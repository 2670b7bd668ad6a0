"""The embedded backend made to behave like AWS where the course depends on it.

moto answers every call at once and consistently; AWS does not. This layer sits on the botocore
clients the package creates (`Realism.attach`, called by `ops.naming.Target.client`) as event
handlers: `before-call` answers with AWS's own error code and message before the request
reaches moto, `after-call` notes when a resource was created or deleted and rewrites an answer
that AWS would give differently (the tagging index, TTL status). Nothing in moto is patched.

What it reproduces, each for a number of *AWS seconds* after the resource's creation:
- a new IAM role is not yet assumable by Lambda nor by EventBridge Scheduler, and a new role
  policy is not yet visible to Lambda's destination check (IAM is eventually consistent:
  https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency);
- SQS refuses a queue name for 60 s after `DeleteQueue`, and a deleted queue can still be
  found and "deleted" again meanwhile
  (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_DeleteQueue.html);
- the Resource Groups Tagging API lags behind creates and deletes
  (https://docs.aws.amazon.com/resourcegroupstagging/latest/APIReference/API_GetResources.html);
- `DescribeTimeToLive` says `ENABLING` before `ENABLED`
  (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/time-to-live-ttl-how-to.html);
- a function update is `InProgress` for a while, and a second update meanwhile is refused
  (https://docs.aws.amazon.com/lambda/latest/dg/functions-states.html);
- a write on a control item meets a transaction in flight, at the seeded rate of
  `conflicts` (embedded.conflicts, 0 unless set; the embedded server answers it for every
  client, the Lambda's child process included);
- the Scheduler delivers a slot within a FLEXIBLE window, at the slot with OFF
  (`delivery_delay`, added by the schedule driver; "scheduler_window" in DOCS);
- an SQS short poll can miss messages, an empty long poll waits (embedded.polling).
(Lambda destinations apply only to asynchronous invokes: ops.runner's `invoke_async` sends.)

Time: AWS seconds are the layer's clock times `scale` (8 s of AWS time per real second with
JOBCONTROLLER_REALISM=8: a learner waits an eighth of what AWS makes them wait). The default is
`VirtualTime`, which moves only when the code sleeps through `Realism.sleep` (the waits for
AWS do): nothing sleeps for real, the progress lines still say how long AWS would take, and
notebook outputs are the same on every run. JOBCONTROLLER_REALISM=off switches it off.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from botocore.awsrequest import AWSResponse

from jobcontroller.embedded.conflicts import TransactionConflicts
from jobcontroller.embedded.polling import Polls, answer_long_polls_now
from jobcontroller.embedded.server import add_request_hook

__all__ = [
    "DEFAULT_SCALE",
    "DOCS",
    "Delays",
    "RealTime",
    "Realism",
    "VirtualTime",
    "default_layer",
    "disabled",
    "from_environment",
    "install_default",
]

DEFAULT_SCALE = 8.0

DOCS = {
    "iam": "https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency",
    "scheduler": "https://docs.aws.amazon.com/scheduler/latest/UserGuide/setting-up.html#setting-up-execution-role",
    "destination": "https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html",
    "sqs": "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_DeleteQueue.html",
    "tagging": "https://docs.aws.amazon.com/resourcegroupstagging/latest/APIReference/API_GetResources.html",
    "ttl": "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/time-to-live-ttl-how-to.html",
    "update": "https://docs.aws.amazon.com/lambda/latest/dg/functions-states.html",
    "scheduler_window": "https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-schedule-flexible-time-windows.html",
    "polling": "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-short-and-long-polling.html",
}


class TimeSource(Protocol):
    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class RealTime:
    """The machine's monotonic clock and real sleeps."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class VirtualTime:
    """A clock that moves only when something sleeps on it (for tests and replays)."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


@dataclass(frozen=True)
class Delays:
    """How long, in AWS seconds, each behaviour lasts after the resource's creation.

    The IAM figures are typical, not documented (AWS says only "a few seconds" and that
    propagation can take longer; Terraform's AWS provider retries for 2 minutes); the SQS
    figure is documented (60 s); TTL can take up to an hour, shortened here.
    """

    role_for_lambda: float = 10.0
    role_for_scheduler: float = 10.0
    policy_for_destination: float = 20.0
    queue_name_blocked: float = 60.0
    tagging_lag: float = 30.0
    ttl_enabling: float = 60.0
    function_update: float = 5.0


def _error(status: int, code: str, message: str, doc: str) -> tuple[AWSResponse, dict[str, Any]]:
    http = AWSResponse("https://realism.invalid/", status, {}, io.BytesIO(b""))
    parsed = {
        "Error": {"Code": code, "Message": f"{message} (embedded realism; see {doc})"},
        "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": {}},
    }
    return http, parsed


def _ok(body: dict[str, Any]) -> tuple[AWSResponse, dict[str, Any]]:
    http = AWSResponse("https://realism.invalid/", 200, {}, io.BytesIO(b""))
    return http, {**body, "ResponseMetadata": {"HTTPStatusCode": 200, "HTTPHeaders": {}}}


def _role_name(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def _queue_name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


@dataclass
class Realism:
    """AWS's eventual consistency, on the clients it is attached to (see the module docs).

    Size: one class on purpose: each behaviour is a few lines in the same botocore handlers
    over the same resource history, and one request's answer reads best in one place.
    """

    delays: Delays = field(default_factory=Delays)
    scale: float = DEFAULT_SCALE
    time: TimeSource = field(default_factory=RealTime)
    enabled: bool = True
    # What DeleteQueue answers for a queue deleted less than 60 s ago: "ok" (AWS accepts the
    # second delete) or "NonExistentQueue".
    deleted_queue_answer: str = "ok"
    conflicts: TransactionConflicts = field(default_factory=TransactionConflicts)
    # Picks each FLEXIBLE delivery's delay: the same schedule, slot and seed, the same delay.
    delivery_seed: int = 0
    _born: dict[tuple[str, str], float] = field(default_factory=dict, repr=False)
    _gone: dict[tuple[str, str], float] = field(default_factory=dict, repr=False)
    _roles: dict[str, str] = field(default_factory=dict, repr=False)
    _tags: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)
    _urls: dict[str, str] = field(default_factory=dict, repr=False)
    polls: Polls = field(default_factory=Polls, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # --- time ------------------------------------------------------------------------------

    def aws_now(self) -> float:
        """Seconds of AWS time on the layer's clock."""
        return self.time.monotonic() * self.scale

    def sleep(self, aws_seconds: float) -> None:
        """Wait `aws_seconds` of AWS time (a `scale`-th of it on the real clock)."""
        self.time.sleep(aws_seconds / self.scale)

    def reset(self) -> None:
        """Forget every resource's history (the embedded backend was wiped)."""
        with self._lock:
            for table in (self._born, self._gone, self._roles, self._tags, self._urls):
                table.clear()
        self.conflicts.reset()
        self.polls.reset()

    def _note(self, table: dict[tuple[str, str], float], kind: str, key: str) -> None:
        with self._lock:
            table[(kind, key)] = self.aws_now()

    def _younger(
        self, table: dict[tuple[str, str], float], kind: str, key: str, limit: float
    ) -> bool:
        with self._lock:
            when = table.get((kind, key))
        return when is not None and self.aws_now() - when < limit

    def delivery_delay(self, schedule_arn: str, slot: datetime, window: Mapping[str, Any]) -> int:
        """Seconds after `slot` that the Scheduler delivers it: in [0, MaximumWindowInMinutes)
        with the FlexibleTimeWindow FLEXIBLE (AWS documents only the window; the seed fixes the
        point per schedule and slot), 0 with OFF or with the layer off."""
        minutes = int(window.get("MaximumWindowInMinutes") or 0)
        if not self.enabled or window.get("Mode") != "FLEXIBLE" or minutes <= 0:
            return 0
        seed = f"{self.delivery_seed}|{schedule_arn}|{slot.isoformat()}".encode()
        return int.from_bytes(hashlib.sha256(seed).digest()[:8], "big") % (minutes * 60)

    # --- wiring ----------------------------------------------------------------------------

    def attach(self, client: Any) -> Any:
        """Register the layer's handlers on a botocore client; returns the client."""
        events = client.meta.events
        service = client.meta.service_model.service_id.hyphenize()
        region = client.meta.region_name
        events.register(f"before-parameter-build.{service}", _remember_params)
        events.register("before-parameter-build.sqs.ReceiveMessage", answer_long_polls_now)
        events.register(f"before-call.{service}", self._guarded(self._before))
        events.register(
            f"after-call.{service}",
            self._guarded(lambda **kw: self._after(region=region, **kw)),
        )
        return client

    def _guarded(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        def run(**kwargs: Any) -> Any:
            return handler(**kwargs) if self.enabled else None

        return run

    # --- before the call: AWS's refusals -----------------------------------------------------

    def _before(self, *, model: Any, context: dict[str, Any], **_: Any) -> Any:
        params = context.get("realism_params", {})
        op, d = model.name, self.delays
        role = _role_name(params.get("Role", "")) if op.endswith("Function") else ""
        if op == "UpdateFunctionConfiguration":
            role = _role_name(params.get("Role", ""))
        if role and self._younger(self._born, "role", role, d.role_for_lambda):
            return _error(
                400,
                "InvalidParameterValueException",
                "The role defined for the function cannot be assumed by Lambda.",
                DOCS["iam"],
            )
        if op in ("UpdateFunctionCode", "UpdateFunctionConfiguration"):
            name = params.get("FunctionName", "")
            if self._younger(self._born, "update", name, d.function_update):
                return _error(
                    409,
                    "ResourceConflictException",
                    "The operation cannot be performed at this time. An update is in progress "
                    f"for resource: {name}",
                    DOCS["update"],
                )
        if op == "PutFunctionEventInvokeConfig":
            role = self._roles.get(params.get("FunctionName", ""), "")
            destination = (
                params.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination", "")
            )
            young = self._younger(self._born, "policy", role, d.policy_for_destination)
            if destination.startswith("arn:aws:sqs:") and young:
                return _error(
                    400,
                    "InvalidParameterValueException",
                    "The function execution role does not have permissions to call SendMessage "
                    f"on {destination}",
                    DOCS["destination"],
                )
        if op in ("CreateSchedule", "UpdateSchedule"):
            role = _role_name(params.get("Target", {}).get("RoleArn", ""))
            if self._younger(self._born, "role", role, d.role_for_scheduler):
                return _error(
                    400,
                    "ValidationException",
                    "The execution role you provide must allow AWS EventBridge Scheduler to "
                    "assume the role.",
                    DOCS["scheduler"],
                )
        return self._before_sqs(op, params)

    def _before_sqs(self, op: str, params: dict[str, Any]) -> Any:
        limit = self.delays.queue_name_blocked
        if op == "CreateQueue" and self._younger(self._gone, "queue", params["QueueName"], limit):
            return _error(
                400,
                "AWS.SimpleQueueService.QueueDeletedRecently",
                "You must wait 60 seconds after deleting a queue before you can create another "
                "with the same name.",
                DOCS["sqs"],
            )
        if op == "GetQueueUrl" and self._younger(self._gone, "queue", params["QueueName"], limit):
            with self._lock:
                url = self._urls.get(params["QueueName"])
            if url:  # the deleted queue can still be found for a while
                return _ok({"QueueUrl": url})
        if op in ("DeleteQueue", "ListQueueTags"):
            name = _queue_name(params.get("QueueUrl", ""))
            if self._younger(self._gone, "queue", name, limit):
                if op == "ListQueueTags":
                    return _ok({})
                if self.deleted_queue_answer == "ok":
                    return _ok({})
                return _error(
                    400,
                    "AWS.SimpleQueueService.NonExistentQueue",
                    "The specified queue does not exist.",
                    DOCS["sqs"],
                )
        return None

    # --- after the call: what was made, and answers AWS gives differently --------------------

    def _after(
        self, *, model: Any, parsed: dict[str, Any], context: dict[str, Any], region: str, **_: Any
    ) -> None:
        if (
            parsed.get("Error")
            or parsed.get("ResponseMetadata", {}).get("HTTPStatusCode", 200) >= 300
        ):
            return
        params = context.get("realism_params", {})
        op = model.name
        if op in ("CreateRole", "UpdateAssumeRolePolicy"):
            self._note(self._born, "role", params["RoleName"])
        elif op == "PutRolePolicy":
            self._note(self._born, "policy", params["RoleName"])
        elif op == "CreateFunction":
            self._roles[params["FunctionName"]] = _role_name(params["Role"])
            self._created(parsed.get("FunctionArn", ""), params.get("Tags", {}))
        elif op in ("UpdateFunctionCode", "UpdateFunctionConfiguration"):
            self._note(self._born, "update", params["FunctionName"])
        elif op in ("GetFunctionConfiguration", "GetFunction"):
            config = parsed.get("Configuration", parsed)
            name = params.get("FunctionName", "")
            if self._younger(self._born, "update", name, self.delays.function_update):
                config["LastUpdateStatus"] = "InProgress"
        elif op == "CreateTable":
            tags = {t["Key"]: t["Value"] for t in params.get("Tags", [])}
            self._created(parsed["TableDescription"]["TableArn"], tags)
        elif (
            op == "TagResource" and "ResourceArn" in params and isinstance(params.get("Tags"), list)
        ):
            self._created(params["ResourceArn"], {t["Key"]: t["Value"] for t in params["Tags"]})
        elif op == "UpdateTimeToLive":
            self._note(self._born, "ttl", params["TableName"])
        elif op == "DescribeTimeToLive":
            ttl = parsed.get("TimeToLiveDescription", {})
            young = self._younger(self._born, "ttl", params["TableName"], self.delays.ttl_enabling)
            if young and ttl.get("TimeToLiveStatus") == "ENABLED":
                ttl["TimeToLiveStatus"] = "ENABLING"
        else:
            self._after_more(op, params, parsed, region)

    def _after_more(
        self, op: str, params: dict[str, Any], parsed: dict[str, Any], region: str
    ) -> None:
        if op == "CreateQueue":
            name = params["QueueName"]
            with self._lock:
                self._urls[name] = parsed["QueueUrl"]
            account = parsed["QueueUrl"].rstrip("/").rsplit("/", 2)[-2]
            self._created(f"arn:aws:sqs:{region}:{account}:{name}", params.get("tags", {}))
        elif op == "DeleteQueue":
            name = _queue_name(params["QueueUrl"])
            self._note(self._gone, "queue", name)
            account = params["QueueUrl"].rstrip("/").rsplit("/", 2)[-2]
            self._note(self._gone, "arn", f"arn:aws:sqs:{region}:{account}:{name}")
        elif op == "DeleteTable":
            self._note(self._gone, "arn", parsed["TableDescription"]["TableArn"])
        elif op == "DeleteFunction":
            for arn in list(self._tags):
                if arn.endswith(f":function:{params['FunctionName']}"):
                    self._note(self._gone, "arn", arn)
        elif op == "GetResources":
            self._lag_tagging(params, parsed)
        elif op == "ReceiveMessage":
            self.polls.answer(params, parsed, self.sleep)

    def _created(self, arn: str, tags: dict[str, str]) -> None:
        if not arn:
            return
        with self._lock:
            self._tags.setdefault(arn, {}).update(tags)
            self._born[("arn", arn)] = self.aws_now()
            self._gone.pop(("arn", arn), None)

    def _lag_tagging(self, params: dict[str, Any], parsed: dict[str, Any]) -> None:
        """New resources appear late; deleted ones stay listed for a while."""
        lag = self.delays.tagging_lag
        listed = parsed.get("ResourceTagMappingList", [])
        kept = [r for r in listed if not self._younger(self._born, "arn", r["ResourceARN"], lag)]
        have = {r["ResourceARN"] for r in kept}
        filters = params.get("TagFilters", [])
        with self._lock:
            ghosts = [(arn, dict(tags)) for arn, tags in self._tags.items()]
        for arn, tags in ghosts:
            matches = all(
                tags.get(f["Key"]) in f.get("Values", [tags.get(f["Key"])]) for f in filters
            )
            if arn not in have and matches and self._younger(self._gone, "arn", arn, lag):
                kept.append(
                    {"ResourceARN": arn, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
                )
        parsed["ResourceTagMappingList"] = kept


def _remember_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    # before-call sees only the serialized request; keep the API parameters for it (as the
    # caller gave them: `answer_long_polls_now` may have run first and changed one).
    context.setdefault("realism_params", dict(params))


# --- the process-wide layer the package's clients get -----------------------------------------

REALISM_ENV = "JOBCONTROLLER_REALISM"


def from_environment(env: dict[str, str] | None = None) -> Realism:
    """The layer JOBCONTROLLER_REALISM asks for: `virtual` (the default: AWS's delays pass
    only while the code waits for them, so notebook outputs stay the same on every run),
    a number (real waiting, that many AWS seconds per second, e.g. `8`), or `off`."""
    value = (os.environ if env is None else env).get(REALISM_ENV, "virtual").strip().lower()
    if value == "off":
        return Realism(time=VirtualTime(), enabled=False)
    if value == "virtual":
        return Realism(time=VirtualTime())
    try:
        scale = float(value)
    except ValueError:
        raise ValueError(
            f"{REALISM_ENV}={value!r}: use 'virtual', 'off' or AWS seconds per second (e.g. 8)"
        ) from None
    if scale <= 0:
        raise ValueError(f"{REALISM_ENV}={value!r}: the scale must be positive, e.g. 8")
    return Realism(time=RealTime(), scale=scale)


_DEFAULT = from_environment()


def _answer(target: str, body: bytes, agent: str) -> Any:  # asked by the embedded server
    return _DEFAULT.conflicts.answer(target, body, agent) if _DEFAULT.enabled else None


add_request_hook(_answer)


def default_layer() -> Realism:
    """The layer `Target` attaches to every embedded client (one per process)."""
    return _DEFAULT


def install_default(layer: Realism) -> Realism:
    """Make `layer` the default (tests install one on `VirtualTime`); returns the old one."""
    global _DEFAULT
    old, _DEFAULT = _DEFAULT, layer
    return old


@contextmanager
def disabled(layer: Realism | None = None) -> Iterator[None]:
    """Switch the layer off for a block (a test that wants moto's instant answers)."""
    layer = layer or _DEFAULT
    was, layer.enabled = layer.enabled, False
    try:
        yield
    finally:
        layer.enabled = was


def scaled(layer: Realism, scale: float) -> Realism:
    """A copy of `layer` with another time scale (its history is not shared)."""
    return replace(layer, scale=scale, _born={}, _gone={}, _roles={}, _tags={}, _urls={})
