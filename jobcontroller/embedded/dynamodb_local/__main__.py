"""`python -m jobcontroller.embedded.dynamodb_local install | where | serve`."""

from __future__ import annotations

import argparse
import os
import sys

from jobcontroller.embedded.server import serve_until_stopped
from jobcontroller.errors import ConfigError

from .engine import DEFAULT_REGION, DynamoDBLocal
from .install import ENV_DIR, find_engine, find_java, install


def main(argv: list[str] | None = None) -> int:
    """`python -m jobcontroller.embedded.dynamodb_local install | where | serve`."""
    parser = argparse.ArgumentParser(
        prog="python -m jobcontroller.embedded.dynamodb_local",
        description="Install, locate or serve Amazon's DynamoDB Local.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    installing = commands.add_parser("install", help="fetch the engine if it is missing")
    installing.add_argument("--target", help="folder to install into (default: the cache)")
    installing.add_argument("--force", action="store_true", help="fetch it again")
    commands.add_parser("where", help="print the engine's folder, or why it is missing")
    serving = commands.add_parser("serve", help="serve until Ctrl-C, printing the exports")
    serving.add_argument("--region", default=DEFAULT_REGION)
    serving.add_argument("--port", type=int, default=0, help="0 picks a free one (default)")
    args = parser.parse_args(argv)
    try:
        if args.command == "install":
            if args.target is None and os.environ.get(ENV_DIR):
                args.target = os.environ[ENV_DIR]
            print(f"DynamoDB Local: {install(target=args.target, force=args.force)}")
        elif args.command == "where":
            print(find_engine())
            find_java()
        else:
            with DynamoDBLocal(region=args.region, port=args.port) as engine:
                print("# Paste into another shell to use DynamoDB Local from there:")
                print("unset AWS_PROFILE")
                for key, value in engine.environment().items():
                    print(f"export {key}={value}")
                # `kill` stops it as cleanly as Ctrl-C: the engine must not outlive us.
                serve_until_stopped(f"# Log: {engine.log_path}. Serving; Ctrl-C stops it.")
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
