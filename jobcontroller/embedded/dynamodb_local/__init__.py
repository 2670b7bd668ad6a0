"""Amazon's DynamoDB Local on a loopback port, in memory, started and stopped by the package.

moto is the default backend; DynamoDB Local is Amazon's own engine, and it differs from moto
exactly where this project depends on DynamoDB's semantics (request tokens, comparisons of
mixed types, TTL deletion, transaction conflicts). The suite runs its contract tests on both.

`install` finds or fetches the engine (a Java program, Java 17+), `engine` runs it, and
`python -m jobcontroller.embedded.dynamodb_local install | where | serve` is the command line.
Only the standard library and the package root are imported (boto3 only when a client is
asked for), so tooling can find, install and start the engine before anything else.
"""

from __future__ import annotations

from .engine import DEFAULT_REGION, DynamoDBLocal, start_dynamodb_local
from .install import (
    ENGINE_PACKAGE,
    ENV_DIR,
    DynamoDBLocalFailed,
    DynamoDBLocalMissing,
    default_cache_dir,
    find_engine,
    find_java,
    install,
    install_command,
)

__all__ = [
    "DEFAULT_REGION",
    "ENGINE_PACKAGE",
    "ENV_DIR",
    "DynamoDBLocal",
    "DynamoDBLocalFailed",
    "DynamoDBLocalMissing",
    "default_cache_dir",
    "find_engine",
    "find_java",
    "install",
    "install_command",
    "start_dynamodb_local",
]
