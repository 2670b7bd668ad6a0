"""The designs the benchmark compares, each deciding for one trigger whether the job runs.

- `card`: the design card's as written (`jobcontroller.embedded.designs.CardDesign`);
- `controller`: this package's JobController and ControlStore (`designs.Design`);
- `powertools`: the real `aws_lambda_powertools.utilities.idempotency` utility with its
  `DynamoDBPersistenceLayer`, keyed on the slot;
- `shedlock`: a ShedLock-style lock: one conditional UpdateItem with a lease
  (`lockUntil`, `lockedAt`, `lockedBy`), released by an UpdateItem that keeps it until
  `lockAtLeastFor` has passed.

All of them get the same `Env` (see `jobcontroller.embedded.designs.Env`) and return an
`InvocationResult`, so one driver runs them alike.
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, cast

from botocore.exceptions import ClientError

from jobcontroller.clock import Clock
from jobcontroller.controller import InvocationResult, Outcome
from jobcontroller.embedded.designs import (
    JOB,
    LAMBDA_TIMEOUT_MS,
    TABLE,
    CardDesign,
    Design,
    Env,
    _ran,
    _skipped,
)
from jobcontroller.model import Reason, Trigger, format_ts
from jobcontroller.workload import WorkloadContext

__all__ = ["CONTENDERS", "Contender", "PowertoolsDesign", "ShedLockDesign"]


class Contender(Design):
    """A design plus what the benchmark needs around it: a clock it may have to be given."""

    @contextlib.contextmanager
    def clocked(self, clock: Clock) -> Iterator[None]:
        """Run this design's invocations on `clock` (the package's designs take it from Env)."""
        yield


class ControllerDesign(Contender, Design):
    """This package's controller, as the fault simulation drives it."""

    name = "controller"


class CardContender(Contender, CardDesign):
    """The design card's lock as written (no lease, no slot key, cooldown from completion)."""

    name = "card"

    def setup(self, client: Any) -> None:
        """The table, and the control item as the card initialises it: the seed's fields."""
        super().setup(client)
        client.put_item(
            TableName=TABLE,
            Item={
                "PK": {"S": f"JOB#{JOB}"},
                "SK": {"S": "STATE"},
                "status": {"S": "IDLE"},
                "version": {"N": "0"},
                "run_count": {"N": "0"},
                **{
                    name: {"NULL": True}
                    for name in ("last_run_ts", "last_success_ts", "next_allowed_run", "last_error")
                },
            },
        )


class _LambdaContext:
    """The one method of Lambda's context object that Powertools' idempotency reads."""

    def __init__(self, remaining_ms: int) -> None:
        self._remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self._remaining_ms


class PowertoolsDesign(Contender):
    """Powertools' idempotency utility: write first (PutItem INPROGRESS), then save the result.

    Keyed on the slot (`event_key_jmespath="slot"`), its records in their own table with the
    utility's default layout (partition key `id`). The Lambda context it is given says
    LAMBDA_TIMEOUT_MS remain, so an INPROGRESS record of a crashed run expires when a Lambda
    with that timeout would have been killed.
    """

    name = "powertools"
    keeps_history = False
    supports_pause = False
    TABLE = "idempotency"

    def setup(self, client: Any) -> None:
        client.create_table(
            TableName=self.TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )

    @contextlib.contextmanager
    def clocked(self, clock: Clock) -> Iterator[None]:
        """Point Powertools' `datetime.now()` calls at `clock` for as long as this lasts.

        The utility reads the wall clock directly (`dt.datetime.now()` in `idempotency/base.py`
        and in `persistence/base.py`, `datarecord.py` and `dynamodb.py`) and has no
        clock to inject, so the benchmark swaps the `dt` module those files see for one whose
        `datetime.now()` is `clock.now()`: the INPROGRESS record's expiry then passes on the
        benchmark's virtual time, as a lease does for the other designs.
        """
        from aws_lambda_powertools.utilities.idempotency import base
        from aws_lambda_powertools.utilities.idempotency.persistence import base as pbase
        from aws_lambda_powertools.utilities.idempotency.persistence import datarecord, dynamodb

        class _Now(datetime):
            @classmethod
            def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
                now = clock.now()
                return now if tz is None else now.astimezone(tz)

        shim = types.SimpleNamespace(datetime=_Now, timedelta=timedelta)
        modules = (base, pbase, datarecord, dynamodb)
        # `dt` is each module's own import of datetime, not part of its typed interface.
        saved = [getattr(m, "dt") for m in modules]  # noqa: B009
        for module in modules:
            setattr(module, "dt", shim)  # noqa: B010
        try:
            yield
        finally:
            for module, original in zip(modules, saved, strict=True):
                setattr(module, "dt", original)  # noqa: B010

    def invoke(self, env: Env, trigger: Trigger) -> InvocationResult:
        from aws_lambda_powertools.utilities.idempotency import (
            DynamoDBPersistenceLayer,
            IdempotencyConfig,
            idempotent_function,
        )
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyAlreadyInProgressError,
        )

        persistence = DynamoDBPersistenceLayer(table_name=self.TABLE, boto3_client=env.client)
        config = IdempotencyConfig(event_key_jmespath="slot", raise_on_no_idempotency_key=True)
        config.register_lambda_context(cast(Any, _LambdaContext(LAMBDA_TIMEOUT_MS)))
        ran: list[str] = []

        def hourly_job(event: dict[str, Any]) -> dict[str, Any]:
            run_id = env.new_run_id()
            ran.append(run_id)
            deadline = env.clock.now() + timedelta(milliseconds=LAMBDA_TIMEOUT_MS)
            env.workload()(WorkloadContext(JOB, run_id, trigger.slot, deadline, env.clock))
            return {"slot": event["slot"], "run_id": run_id}

        job = idempotent_function(
            data_keyword_argument="event", persistence_store=persistence, config=config
        )(hourly_job)
        assert trigger.slot is not None
        try:
            job(event={"job": JOB, "slot": format_ts(trigger.slot)})
        except IdempotencyAlreadyInProgressError:
            return _skipped(trigger, Reason.RUNNING, "an INPROGRESS record holds the slot")
        if not ran:
            return _skipped(trigger, Reason.SLOT_DONE, "the slot's saved result was returned")
        return _ran(trigger, ran[0], Outcome.SUCCEEDED, None)


class ShedLockDesign(Contender):
    """ShedLock's DynamoDB lock: take it with one conditional UpdateItem, hold it by time.

    Taken when `lockUntil` is absent or has passed, for `lock_at_most` (the lease); released
    by setting `lockUntil` to the later of now and `lockedAt + lock_at_least`, so a duplicate
    delivered within `lock_at_least` of the start is refused. ShedLock keys the lock by name
    only: it knows nothing of slots.
    """

    name = "shedlock"
    keeps_history = False
    supports_pause = False
    TABLE = "shedLock"
    # The same lease as the controller's: the Lambda's timeout less its 10 s margin.
    lock_at_most = timedelta(milliseconds=LAMBDA_TIMEOUT_MS, seconds=-10)
    # Half the interval: long enough to refuse a slot's duplicates, never the next slot.
    lock_at_least = timedelta(minutes=30)

    def setup(self, client: Any) -> None:
        client.create_table(
            TableName=self.TABLE,
            KeySchema=[{"AttributeName": "_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )

    def invoke(self, env: Env, trigger: Trigger) -> InvocationResult:
        client, now = env.client, env.clock.now()
        run_id = env.new_run_id()
        key = {"_id": {"S": JOB}}
        try:
            client.update_item(
                TableName=self.TABLE,
                Key=key,
                UpdateExpression="SET lockUntil = :until, lockedAt = :at, lockedBy = :by",
                ConditionExpression="attribute_not_exists(lockUntil) OR lockUntil <= :at",
                ExpressionAttributeValues={
                    ":until": {"S": _iso(now + self.lock_at_most)},
                    ":at": {"S": _iso(now)},
                    ":by": {"S": run_id},
                },
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return _skipped(trigger, Reason.RUNNING, "lockUntil has not passed")
        deadline = now + self.lock_at_most
        env.workload()(WorkloadContext(JOB, run_id, trigger.slot, deadline, env.clock))
        until = max(env.clock.now(), now + self.lock_at_least)
        client.update_item(
            TableName=self.TABLE,
            Key=key,
            UpdateExpression="SET lockUntil = :until",
            ExpressionAttributeValues={":until": {"S": _iso(until)}},
        )
        return _ran(trigger, run_id, Outcome.SUCCEEDED, None)


def _iso(when: datetime) -> str:
    """ShedLock's stored form: ISO-8601 in UTC with milliseconds."""
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


CONTENDERS: dict[str, type[Contender]] = {
    d.name: d for d in (CardContender, ControllerDesign, PowertoolsDesign, ShedLockDesign)
}
