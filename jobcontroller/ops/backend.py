"""Which backend the course and the command line talk to: one variable, read in one place.

`JOBCONTROLLER_BACKEND` is `embedded` (the default: moto on loopback), `dynamodb-local`
(Amazon's DynamoDB Local on loopback, for the notebooks that need only DynamoDB) or `aws`
(a real account, which still needs the account confirmed before anything changes). The older
`JOBCONTROLLER_REAL_AWS=1` stays accepted as another spelling of `aws`. Every entry point asks
`chosen_backend()`, so no two parts of the course can disagree about where they are.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal

from jobcontroller.errors import ConfigError

__all__ = [
    "AWS",
    "BACKENDS",
    "BACKEND_ENV",
    "DYNAMODB_LOCAL",
    "EMBEDDED",
    "REAL_AWS_ENV",
    "Backend",
    "chosen_backend",
]

BACKEND_ENV = "JOBCONTROLLER_BACKEND"
REAL_AWS_ENV = "JOBCONTROLLER_REAL_AWS"

Backend = Literal["embedded", "dynamodb-local", "aws"]
EMBEDDED: Backend = "embedded"
DYNAMODB_LOCAL: Backend = "dynamodb-local"
AWS: Backend = "aws"
BACKENDS: tuple[Backend, ...] = (EMBEDDED, DYNAMODB_LOCAL, AWS)


def chosen_backend(env: Mapping[str, str] | None = None) -> Backend:
    """The backend `env` (default: the process environment) asks for; `embedded` if none.

    A value that is not one of the three, or the old real-AWS switch contradicting the new
    variable, raises ConfigError naming the values, before anything is started or changed.
    """
    env = os.environ if env is None else env
    raw = env.get(BACKEND_ENV, "")
    old_says_aws = env.get(REAL_AWS_ENV) == "1"
    if not raw.strip():
        return AWS if old_says_aws else EMBEDDED
    value = raw.strip().lower()
    if value not in BACKENDS:
        raise ConfigError(
            f"{BACKEND_ENV}={raw!r} is not a backend: use one of "
            f"{', '.join(BACKENDS)} (or leave it unset for {EMBEDDED})"
        )
    if old_says_aws and value != AWS:
        raise ConfigError(
            f"{BACKEND_ENV}={value} and {REAL_AWS_ENV}=1 disagree: unset {REAL_AWS_ENV} "
            f"(it is the old spelling of {BACKEND_ENV}={AWS})"
        )
    return value
