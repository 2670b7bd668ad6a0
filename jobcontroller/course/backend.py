"""Where the notebooks run: one connect path for `setup()`, the checkers and the labs.

`JOBCONTROLLER_BACKEND` (read by `ops.backend.chosen_backend`) picks the backend:
- `embedded` (the default): moto on loopback, one request at a time; every notebook runs.
- `dynamodb-local`: Amazon's DynamoDB Local on loopback, started once per kernel (in memory,
  its log in a file, stopped when the kernel exits). It serves DynamoDB only, so notebooks
  00-05's DynamoDB work runs on it; whatever needs Lambda, IAM, SQS or the Scheduler (05's
  retry replays, 06-09) stays on the embedded backend and says so (`lab_backend`).
- `aws`: a real account, shown and confirmed first (`ops.naming.connect`); every name the
  course creates there carries the participant's prefix, the table included.

Course tooling only: the Lambda never imports this module.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jobcontroller.embedded.dynamodb_local import DynamoDBLocal, DynamoDBLocalMissing
from jobcontroller.embedded.server import EmbeddedAWS
from jobcontroller.errors import ConfigError
from jobcontroller.ops.backend import (
    AWS,
    BACKEND_ENV,
    DYNAMODB_LOCAL,
    EMBEDDED,
    Backend,
    chosen_backend,
)
from jobcontroller.ops.naming import Names

__all__ = [
    "DEFAULT_PREFIX",
    "LABELS",
    "NEVER_EXPIRES",
    "Connection",
    "connect",
    "connect_local",
    "lab_backend",
    "prefixed_table",
]

# The prefix notebooks 06-08 deploy under unless the learner picks another (06's PREFIX).
DEFAULT_PREFIX = "learner"

# What the environment table and Course's repr show. The two local labels are the only text
# that differs between the backends' stored outputs; tests/nbval-sanitize.cfg names them. Both
# are shorter than the course clock's 20 characters, so the environment table's text column
# is as wide on either backend (a longer label would widen it and move every ruler).
LABELS: dict[Backend, str] = {
    EMBEDDED: "embedded (moto)",
    DYNAMODB_LOCAL: "DynamoDB Local",
    AWS: "real AWS",
}

INSTALL_TASK = "python3 tasks.py dynamodb-local"

# Where run history may carry the course's fixed time as its TTL: moto never expires items.
# DynamoDB Local, like AWS, deletes expired items (within seconds here): history stamped from
# the course's fixed day, January 2026, is past its TTL a week later and would vanish while a
# notebook reads it. Elsewhere real time stamps it; the TTL is never shown, so no output moves.
# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/howitworks-ttl.html
NEVER_EXPIRES: frozenset[Backend] = frozenset({EMBEDDED})


@dataclass(frozen=True)
class Connection:
    """A backend the course is connected to: which one, a session on it, and its handle.

    `local` is the running local backend (`EmbeddedAWS` or `DynamoDBLocal`), None on AWS.
    """

    kind: Backend
    session: Any
    local: EmbeddedAWS | DynamoDBLocal | None = None

    @property
    def label(self) -> str:
        return LABELS[self.kind]

    def client(self, service: str = "dynamodb", **kwargs: Any) -> Any:
        """A boto3 client on this backend (a local one's endpoint, or the account's)."""
        if self.local is not None:
            return self.local.client(service, **kwargs)
        return self.session.client(service, **kwargs)


_started_lock = threading.Lock()
_guarded = False


def _dynamodb_local() -> DynamoDBLocal:
    """The kernel's DynamoDB Local, started on first use, guarded like the embedded backend."""
    from jobcontroller.embedded.dynamodb_local import start_dynamodb_local
    from jobcontroller.embedded.server import guard_real_aws

    global _guarded
    with _started_lock:
        try:
            # One engine per process, stopped at exit (the engine registers that itself).
            engine = start_dynamodb_local()
        except DynamoDBLocalMissing as missing:
            raise DynamoDBLocalMissing(
                f"{BACKEND_ENV}={DYNAMODB_LOCAL} needs Amazon's DynamoDB Local: {missing} "
                f"From the project folder, `{INSTALL_TASK}` installs it; or unset "
                f"{BACKEND_ENV} to use the embedded backend."
            ) from None
        if not _guarded:
            # DynamoDB Local has no guard of its own: without this a learner's client aimed
            # at real AWS would go there, where on the embedded backend it is refused.
            guard_real_aws()
            _guarded = True
    return engine


def connect_local(*, purpose: str, kind: Backend | None = None) -> Connection:
    """The chosen local backend; on `aws` a ConfigError saying `purpose` runs only locally."""
    kind = chosen_backend() if kind is None else kind
    if kind == AWS:
        raise ConfigError(
            f"{purpose} runs on a backend on this machine only, never in an AWS account: "
            f"start Jupyter with {BACKEND_ENV}={EMBEDDED} (or {DYNAMODB_LOCAL}, or unset) "
            "to use it."
        )
    if kind == DYNAMODB_LOCAL:
        engine = _dynamodb_local()
        return Connection(kind, engine.session(), engine)
    from jobcontroller.embedded.server import start_embedded

    aws = start_embedded()
    return Connection(kind, aws.session(), aws)


def connect(*, confirm_account: str | None = None) -> Connection:
    """The backend JOBCONTROLLER_BACKEND chooses; on AWS only after the account is confirmed.

    On AWS the account, region and identity are shown first and nothing is returned unless
    `confirm_account` names that account (`RealAWSNotConfirmed`), as in notebooks 06-08.
    """
    kind = chosen_backend()
    if kind != AWS:
        return connect_local(purpose="this", kind=kind)
    from jobcontroller.ops.naming import connect as connect_aws

    target = connect_aws(confirm=confirm_account)
    return Connection(kind, target.session)


def prefixed_table(table: str, *, prefix: str, job: str) -> str:
    """`table` under the participant's prefix, as `Names` names the deployed stack's table.

    `Names` checks the prefix (and the job) with the same rules as notebooks 06-08, so an
    unusable prefix is refused here before anything is created.
    """
    names = Names(prefix, job)
    return f"{names.prefix}-{table}"


def lab_backend(*, say: Callable[[str], None] | None = print) -> Backend:
    """The backend a lab (Lambda, IAM, SQS, Scheduler) uses: `aws` or `embedded`.

    DynamoDB Local serves DynamoDB only, so with `dynamodb-local` chosen the labs use the
    embedded backend for everything (their table included) and say so through `say`.
    """
    kind = chosen_backend()
    if kind == DYNAMODB_LOCAL and say is not None:
        say(
            f"{BACKEND_ENV}={DYNAMODB_LOCAL}: DynamoDB Local serves no Lambda, IAM, SQS or "
            "Scheduler, so this part runs on the embedded backend (moto), its table included."
        )
    return AWS if kind == AWS else EMBEDDED
