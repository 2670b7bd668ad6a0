"""The only module that talks to DynamoDB.

Every write here is a single conditional request (or a single transaction), so it happens
whole or not at all. A refused condition is not an error: it comes back as an outcome that
carries the item that blocked it (`ReturnValuesOnConditionCheckFailure=ALL_OLD`), so no
caller ever compares error-code strings.

Size: longer than the package's other modules on purpose: being the one module that talks to
DynamoDB, it holds every request the package sends (table set-up, the lock, the commit with
its conflict retries, operator actions, the course's read-backs).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import ClientError

from .clock import Clock, SystemClock
from .errors import (
    CommitConflict,
    ControlItemCorrupt,
    ControlItemMissing,
    StoreThrottled,
    TableMissing,
    WriteConflict,
)
from .model import (
    TTL_ATTRIBUTE,
    Drill,
    JobState,
    RunRecord,
    Status,
    finish_transition,
    format_ts,
    job_key,
)

__all__ = [
    "TTL_ATTRIBUTE",
    "Acquired",
    "Blocked",
    "Committed",
    "ControlStore",
    "Fenced",
    "RunRecord",
]

# Throttling and transient errors are retried by botocore itself ("standard" mode retries
# throttles with backoff). A retried conditional write whose first attempt was applied comes
# back as a condition failure; acquire and commit recognise their own run id in the item and
# treat that as success. https://boto3.amazonaws.com/v1/documentation/api/latest/guide/retries.html
MAX_ATTEMPTS = 5  # first try included
_THROTTLING_CODES = frozenset(
    {"ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded"}
)
_CLIENT_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
    connect_timeout=5,
    read_timeout=10,
)

# A commit (or a set-up write) that meets another transaction on the item is refused with
# TransactionConflict, which botocore does not retry. The store sends the same request (same
# token) again this many times in all, waiting a little longer each time on its clock.
# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-conflict-handling
COMMIT_ATTEMPTS = 4
COMMIT_BACKOFF_SECONDS = 0.05  # doubled after each conflict: 0.05, 0.1, 0.2 s

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _to_ddb(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in item.items()}


def _from_ddb(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _deserializer.deserialize(v) for k, v in item.items()}


@dataclass(frozen=True)
class Acquired:
    """This run now holds the lock; `state` is the item as written."""

    state: JobState
    recovered: bool = False  # True when a retried request found its own earlier write


@dataclass(frozen=True)
class Blocked:
    """The conditional write was refused; `state` is the item that blocked it.

    `conflict` is True when DynamoDB refused it because a transaction was writing the item
    at that moment (no item comes back then).
    """

    state: JobState | None
    conflict: bool = False


@dataclass(frozen=True)
class Committed:
    """The outcome (success or failure) was recorded and the lock released."""

    state: JobState
    recovered: bool = False


@dataclass(frozen=True)
class Fenced:
    """The run no longer held the lock, so its outcome was refused; nothing was written."""

    state: JobState | None


class _Expr:
    """Collects `#name` / `:value` placeholders for one request's expressions."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}
        self.sets: list[str] = []

    def name(self, attr: str) -> str:
        self.names[f"#{attr}"] = attr
        return f"#{attr}"

    def value(self, key: str, value: Any) -> str:
        self.values[f":{key}"] = value
        return f":{key}"

    def set(self, attr: str, value: Any) -> None:
        self.sets.append(f"{self.name(attr)} = {self.value(attr, value)}")

    def request(self, condition: str) -> dict[str, Any]:
        return {
            "UpdateExpression": "SET " + ", ".join(self.sets),
            "ConditionExpression": condition,
            "ExpressionAttributeNames": self.names,
            "ExpressionAttributeValues": _to_ddb(self.values),
        }


class ControlStore:
    """A job-control table in DynamoDB: the control items and their run history.

    Pass a boto3 DynamoDB `client` (tests and notebooks do, to count or fault requests), or a
    boto3 `session`; the default is a client from the environment. `clock` paces the retries
    of a commit that met a transaction conflict; `new_token` makes each commit's request token.
    Size: one class holds every request the package sends, so that no other code imports
    boto3 or reads an error code; each method is one request and the code that reads its answer.
    """

    def __init__(
        self,
        table: str,
        *,
        client: Any | None = None,
        session: boto3.session.Session | None = None,
        clock: Clock | None = None,
        new_token: Callable[[], str] | None = None,
    ) -> None:
        if not isinstance(table, str) or not 3 <= len(table) <= 255:
            raise ValueError(f"table name must be 3-255 characters, got {table!r}")
        self.table = table
        if client is None:
            client = (session or boto3.session.Session()).client("dynamodb", config=_CLIENT_CONFIG)
        self.client = client
        # Only waits between resends of a write that met a transaction use the clock.
        self.clock: Clock = clock or SystemClock()
        self.new_token = new_token or _random_token

    # --- table and job set-up ------------------------------------------------------------

    def create_table(self, *, tags: dict[str, str] | None = None, wait: bool = True) -> bool:
        """Create the table (on demand, TTL on `expires_at`); False if it already existed."""
        created = True
        try:
            self.client.create_table(
                TableName=self.table,
                KeySchema=[
                    {"AttributeName": "PK", "KeyType": "HASH"},
                    {"AttributeName": "SK", "KeyType": "RANGE"},
                ],
                AttributeDefinitions=[
                    {"AttributeName": "PK", "AttributeType": "S"},
                    {"AttributeName": "SK", "AttributeType": "S"},
                ],
                BillingMode="PAY_PER_REQUEST",
                Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()],
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceInUseException":
                raise
            created = False
        if wait:
            self.client.get_waiter("table_exists").wait(
                TableName=self.table, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
            )
        ttl = self.client.describe_time_to_live(TableName=self.table)["TimeToLiveDescription"]
        if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            self.client.update_time_to_live(
                TableName=self.table,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
            )
        return created

    def delete_table(self) -> bool:
        """Delete the table and everything in it; False if it was already gone."""
        try:
            self.client.delete_table(TableName=self.table)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
            return False
        return True

    def init_job(self, job: str, *, now: datetime) -> bool:
        """Write the job's IDLE control item; False (and nothing written) if it already exists."""
        state = JobState.new(job, now=now)
        try:
            self._single_write(
                self.client.put_item,
                f"initialising job {job!r}",
                TableName=self.table,
                Item=_to_ddb(state.to_item()),
                # Never overwrite a live item: re-running set-up must not reset a job.
                ConditionExpression="attribute_not_exists(PK)",
            )
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            if code == "ConditionalCheckFailedException":
                return False
            self._raise_package_error(exc)
            raise
        return True

    # --- reading -------------------------------------------------------------------------

    def read(self, job: str) -> JobState:
        """The job's control item (a strongly consistent read, so a just-released lock shows)."""
        key = job_key(job)
        try:
            response = self.client.get_item(
                TableName=self.table, Key=_to_ddb(key), ConsistentRead=True
            )
        except ClientError as exc:
            self._raise_package_error(exc)
            raise
        if "Item" not in response:
            raise ControlItemMissing(
                f"job {job!r} has no control item in table {self.table!r}: "
                f"initialise it first with init_job({job!r}) (or `jobcontroller init`)"
            )
        return JobState.from_item(_from_ddb(response["Item"]), job=job)

    def runs(self, job: str, *, limit: int = 20) -> list[RunRecord]:
        """The job's run history, newest first."""
        try:
            response = self.client.query(
                TableName=self.table,
                KeyConditionExpression="PK = :pk AND begins_with(SK, :run)",
                ExpressionAttributeValues=_to_ddb({":pk": job_key(job)["PK"], ":run": "RUN#"}),
                ScanIndexForward=False,
                Limit=limit,
            )
        except ClientError as exc:
            self._raise_package_error(exc)
            raise
        return [RunRecord.from_item(_from_ddb(i)) for i in response.get("Items", [])]

    # --- the lock ------------------------------------------------------------------------

    def acquire(
        self,
        state: JobState,
        *,
        run_id: str,
        now: datetime,
        lease_until: datetime,
        slot: datetime | None,
        takeover: bool = False,
    ) -> Acquired | Blocked:
        """Take the lock with one conditional write, based on the `state` that was read.

        RUN: the seed's optimistic lock, `status = IDLE AND version = :v`.
        TAKEOVER: the holder's lease has passed and nobody has written since we read.
        """
        expr = _Expr()
        expr.set("status", Status.RUNNING.value)
        expr.set("version", state.version + 1)
        expr.set("run_id", run_id)
        expr.set("lease_expires_at", format_ts(lease_until))
        expr.set("run_slot", None if slot is None else format_ts(slot))
        expr.set("last_run_ts", format_ts(now))
        expr.set("drill", None)  # a drill applies to one run only
        status, version = expr.name("status"), expr.name("version")
        clauses = [f"{version} = {expr.value('expected_version', state.version)}"]
        if takeover:
            expr.set("takeover_count", state.takeover_count + 1)
            expr.set("last_takeover_from", state.run_id)
            # The holder we saw is still the holder...
            clauses.append(f"{status} = {expr.value('running', Status.RUNNING.value)}")
            clauses.append(f"{expr.name('run_id')} = {expr.value('old_run_id', state.run_id)}")
            # ...and its lease has passed by the time this write lands (a lease ending at
            # `now` has passed: the gate and this clause must agree on the boundary).
            clauses.append(
                f"{expr.name('lease_expires_at')} <= {expr.value('now', format_ts(now))}"
            )
        else:
            # Nobody holds the lock (the seed's condition).
            clauses.append(f"{status} = {expr.value('idle', Status.IDLE.value)}")
        try:
            response = self.client.update_item(
                TableName=self.table,
                Key=_to_ddb(job_key(state.job)),
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **expr.request(" AND ".join(clauses)),
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "TransactionConflictException":
                # A commit transaction was writing the item at that moment, so the state we
                # read is already out of date: this invocation lost the race. botocore does
                # not retry this error, and nothing was written.
                # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-conflict-handling
                return Blocked(None, conflict=True)
            blocker = self._blocking_state(exc, state.job)
            # A retry of our own applied write is refused by the version clause; the item
            # then names us as holder, and we hold the lock after all.
            if (
                blocker is not None
                and blocker.run_id == run_id
                and blocker.status is Status.RUNNING
            ):
                return Acquired(blocker, recovered=True)
            return Blocked(blocker)
        return Acquired(JobState.from_item(_from_ddb(response["Attributes"]), job=state.job))

    def finish(
        self,
        held: JobState,
        record: RunRecord,
        *,
        next_allowed_run: datetime | None = None,
    ) -> Committed | Fenced:
        """Record a finished run and release the lock, fenced on this run still holding it.

        One transaction: the control item update and the run-history item, so history never
        disagrees with the counters. The update writes what `finish_transition` changes and
        is conditional on the item still being `held` (status, holder and version); if an
        operator paused or set a drill meanwhile, the transition is derived again from the
        item as it is now. IAM authorises each part as its own UpdateItem / PutItem.
        https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html
        """
        for _ in range(COMMIT_ATTEMPTS):
            new = finish_transition(held, record, next_allowed_run=next_allowed_run)
            sent = self._commit(held, new, record)
            if not isinstance(sent, JobState):
                return sent
            held = sent  # still ours, but an operator's write moved the version on
        raise CommitConflict(
            f"run {record.run_id}: the control item kept changing under the commit "
            f"({COMMIT_ATTEMPTS} tries); the outcome was not recorded. The lock stays held "
            f"until its lease ends at {_ts_or_dash(held.lease_expires_at)}, then the next "
            f"trigger takes over. Look for a process writing the item in a loop."
        )

    def _commit(
        self, held: JobState, new: JobState, record: RunRecord
    ) -> Committed | Fenced | JobState:
        """Send one commit transaction (retried as is on a transaction conflict).

        Returns the refusing item when it still names this run as holder, so that `finish`
        can derive the transition again from it.
        """
        expr = _Expr()
        before, after = held.to_item(), new.to_item()
        for attr, value in after.items():
            if before.get(attr) != value:
                expr.set(attr, value)
        # Fencing: only the run that holds the lock may write its outcome (rule 3), and only
        # on the item it holds (the version), so the transition applies to what is stored.
        condition = " AND ".join(
            (
                f"{expr.name('status')} = {expr.value('running', Status.RUNNING.value)}",
                f"{expr.name('run_id')} = {expr.value('me', record.run_id)}",
                f"{expr.name('version')} = {expr.value('held_version', held.version)}",
            )
        )
        update = {"TableName": self.table, "Key": _to_ddb(job_key(held.job))}
        update.update(expr.request(condition))
        update["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        request = {
            "TransactItems": [
                {"Update": update},
                {"Put": {"TableName": self.table, "Item": _to_ddb(record.to_item())}},
            ],
            # DynamoDB applies a transaction at most once per token (for 10 minutes), so the
            # token must belong to this one request: botocore's retries of it resend it, and
            # no other run or attempt may share it, whatever its run id (the course restarts
            # its run ids). A fresh random token per request does both.
            # https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html#DDB-TransactWriteItems-request-ClientRequestToken
            "ClientRequestToken": self.new_token(),
        }

        def gave_up(exc: ClientError) -> CommitConflict:
            return CommitConflict(
                f"run {record.run_id}: the commit met another transaction on the "
                f"item {COMMIT_ATTEMPTS} times (TransactionConflict) and was not "
                f"recorded. The lock stays held until its lease ends at "
                f"{_ts_or_dash(held.lease_expires_at)}, then the next trigger takes "
                f"over; nothing else needs doing. If this repeats, look for another "
                f"writer of table {self.table!r}."
            )

        try:
            self._through_conflicts(
                self.client.transact_write_items,
                request,
                conflict=_is_transaction_conflict,
                gave_up=gave_up,
            )
        except ClientError as exc:
            return self._refused_commit(exc, held, record)
        return Committed(new)

    def _refused_commit(
        self, exc: ClientError, held: JobState, record: RunRecord
    ) -> Committed | Fenced | JobState:
        blocker = self._blocking_state(exc, held.job)
        if blocker is None:
            return Fenced(None)
        if blocker.status is Status.IDLE and blocker.last_run_id == record.run_id:
            # A retried request whose first attempt was applied (moto ignores the token).
            return Committed(blocker, recovered=True)
        if blocker.status is Status.RUNNING and blocker.run_id == record.run_id:
            return blocker
        return Fenced(blocker)

    # --- operator actions ----------------------------------------------------------------

    def set_paused(self, job: str, paused: bool) -> JobState:
        """Pause or resume a job; a paused job's triggers skip with PAUSED."""
        return self._set_flag(job, "paused", bool(paused))

    def set_drill(self, job: str, drill: Drill | str | None) -> JobState:
        """Course only: make the next run FAIL or CRASH (None clears it)."""
        value = None if drill is None else Drill(drill).value
        return self._set_flag(job, "drill", value)

    def _set_flag(self, job: str, attr: str, value: Any) -> JobState:
        self.read(job)  # validates the item first: bad state is reported, not built upon
        expr = _Expr()
        expr.set(attr, value)
        version = expr.name("version")
        expr.sets.append(f"{version} = {version} + {expr.value('one', 1)}")
        # Never mend an item that lost its version between our read and this write: that is
        # corruption to report, not to paper over (rule 9).
        condition = f"attribute_exists(PK) AND attribute_exists({version})"
        try:
            response = self._single_write(
                self.client.update_item,
                f"setting {attr} of job {job!r}",
                TableName=self.table,
                Key=_to_ddb(job_key(job)),
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **expr.request(condition),
            )
        except ClientError as exc:
            self._raise_package_error(exc)
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                if exc.response.get("Item"):
                    JobState.from_item(_from_ddb(exc.response["Item"]), job=job)  # says why
                    raise ControlItemCorrupt(
                        f"control item of job {job!r} changed under {attr}: try again"
                    ) from None
                raise ControlItemMissing(
                    f"job {job!r} has no control item: initialise it with init_job({job!r})"
                ) from None
            raise
        return JobState.from_item(_from_ddb(response["Attributes"]), job=job)

    def delete_job(self, job: str) -> int:
        """Delete the job's control item and its run history; returns how many items went.

        Production never needs this; the course uses it to start a notebook from scratch.
        """
        pk = job_key(job)["PK"]
        request: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "PK = :pk",
            "ExpressionAttributeValues": _to_ddb({":pk": pk}),
            "ProjectionExpression": "PK, SK",
        }
        deleted = 0
        try:
            while True:
                page = self.client.query(**request)
                for key in page.get("Items", []):
                    self._single_write(
                        self.client.delete_item,
                        f"deleting job {job!r}",
                        TableName=self.table,
                        Key=key,
                    )
                    deleted += 1
                if "LastEvaluatedKey" not in page:
                    return deleted
                request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        except ClientError as exc:
            self._raise_package_error(exc)
            raise

    def raw_item(self, job: str) -> dict[str, Any] | None:
        """The control item exactly as stored, in DynamoDB's typed form, or None.

        Unlike `read`, this never validates: it is for showing an item, even a corrupt one.
        """
        try:
            response = self.client.get_item(
                TableName=self.table, Key=_to_ddb(job_key(job)), ConsistentRead=True
            )
        except ClientError as exc:
            self._raise_package_error(exc)
            raise
        item: dict[str, Any] | None = response.get("Item")
        return item

    def describe_table(self) -> dict[str, Any]:
        """The table's key schema, billing mode and status, as DescribeTable reports them."""
        try:
            table = self.client.describe_table(TableName=self.table)["Table"]
        except ClientError as exc:
            self._raise_package_error(exc)
            raise
        types = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
        return {
            "keys": [
                (k["AttributeName"], k["KeyType"], types[k["AttributeName"]])
                for k in table["KeySchema"]
            ],
            "billing": table.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED"),
            "status": table["TableStatus"],
        }

    def write_unconditionally(self, state: JobState) -> None:
        """Overwrite the control item with no condition at all.

        Only for the course's counter-examples (the naive read-then-write lock): this is
        exactly the write the rest of this module exists to avoid.
        """
        self.client.put_item(TableName=self.table, Item=_to_ddb(state.to_item()))

    # --- errors --------------------------------------------------------------------------

    def _through_conflicts(
        self,
        send: Callable[..., Any],
        request: dict[str, Any],
        *,
        conflict: Callable[[ClientError], bool],
        gave_up: Callable[[ClientError], Exception],
    ) -> Any:
        """Send a write, again (as is, same token) while it meets a transaction on the item.

        DynamoDB refuses a write on an item another transaction is writing, applies nothing,
        and botocore does not retry it; the commit and the set-up writes (set-up, flags,
        deletes) are safe to resend. The acquire does not come here: for it, a conflict means
        the race is lost. Any other error is raised as it came; `gave_up(exc)` is raised after
        COMMIT_ATTEMPTS conflicts.
        https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-conflict-handling
        """
        delay = COMMIT_BACKOFF_SECONDS
        for attempt in range(1, COMMIT_ATTEMPTS + 1):
            try:
                return send(**request)
            except ClientError as exc:
                if not conflict(exc):
                    raise
                if attempt == COMMIT_ATTEMPTS:
                    raise gave_up(exc) from exc
                self.clock.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    def _single_write(self, send: Callable[..., Any], what: str, **request: Any) -> Any:
        """A set-up write (not the acquire), resent through conflicts; WriteConflict at last."""

        def gave_up(exc: ClientError) -> WriteConflict:
            return WriteConflict(
                f"{what} met another transaction on the item {COMMIT_ATTEMPTS} times "
                f"(TransactionConflict) and was not applied; nothing changed. Try "
                f"again; if this repeats, look for another writer of table {self.table!r}."
            )

        return self._through_conflicts(
            send, request, conflict=_is_single_write_conflict, gave_up=gave_up
        )

    def _blocking_state(self, exc: ClientError, job: str) -> JobState | None:
        """The item that failed a condition, from ALL_OLD; re-raise anything else."""
        code = exc.response["Error"]["Code"]
        item = None
        if code == "ConditionalCheckFailedException":
            item = exc.response.get("Item")
        elif code == "TransactionCanceledException":
            reasons = exc.response.get("CancellationReasons") or []
            if not any(r.get("Code") == "ConditionalCheckFailed" for r in reasons):
                raise exc
            item = next((r["Item"] for r in reasons if r.get("Item")), None)
        else:
            self._raise_package_error(exc)
            raise exc
        if item is None:
            return None
        return JobState.from_item(_from_ddb(item), job=job)

    def _raise_package_error(self, exc: ClientError) -> None:
        """Turn the errors a caller can act on into the package's own; return otherwise."""
        code = exc.response["Error"]["Code"]
        if code in _THROTTLING_CODES:
            # botocore already retried it MAX_ATTEMPTS times with backoff; a request refused
            # for throttling was not applied, so nothing changed and the caller may retry.
            # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html
            raise StoreThrottled(
                f"DynamoDB throttled this request to table {self.table!r} on all "
                f"{MAX_ATTEMPTS} attempts ({code}); it was not applied. The next trigger "
                f"tries again; if this repeats, the table or account is over its throughput."
            ) from exc
        if code == "ResourceNotFoundException":
            raise TableMissing(
                f"table {self.table!r} does not exist in region "
                f"{self.client.meta.region_name}: create it with create_table() "
                f"(or deploy the stack) and initialise the job"
            ) from exc


def seed_card_lock(store: ControlStore, job: str, *, expected_version: int, now: datetime) -> None:
    """The design card's lock, as the card writes it: one conditional UpdateItem.

    `SET status = RUNNING, last_run_ts = :now` only if `status = IDLE AND version = :v`.
    For the course's side-by-side with `ControlStore.acquire`: it writes no run id and no
    lease and leaves the version as it was, and a refused condition raises botocore's
    ClientError (ConditionalCheckFailedException) as it would for any boto3 caller.
    """
    store.client.update_item(
        TableName=store.table,
        Key=_to_ddb(job_key(job)),
        UpdateExpression="SET #s = :r, last_run_ts = :now",
        ConditionExpression="#s = :i AND version = :v",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues=_to_ddb(
            {":r": "RUNNING", ":i": "IDLE", ":now": format_ts(now), ":v": expected_version}
        ),
    )


def history_expiry(now: datetime, days: int) -> int:
    """Epoch seconds at which a run record written `now` expires (the TTL attribute's value).

    Pass the wall clock's time: DynamoDB deletes expired items by real time, so a record
    stamped from a simulated clock in the past would be deleted within minutes.
    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/TTL.html
    """
    return int((now + timedelta(days=days)).timestamp())


def _random_token() -> str:
    """A ClientRequestToken (at most 36 characters) that no other request will share."""
    return uuid.uuid4().hex


def _ts_or_dash(when: datetime | None) -> str:
    return "-" if when is None else format_ts(when)


def _is_single_write_conflict(exc: ClientError) -> bool:
    """A single write refused because a transaction was writing its item."""
    return bool(exc.response["Error"]["Code"] == "TransactionConflictException")


def _is_transaction_conflict(exc: ClientError) -> bool:
    """True for a transaction cancelled only because another one was writing the item."""
    if exc.response["Error"]["Code"] != "TransactionCanceledException":
        return False
    codes = {r.get("Code") for r in exc.response.get("CancellationReasons") or []}
    return "TransactionConflict" in codes and "ConditionalCheckFailed" not in codes
