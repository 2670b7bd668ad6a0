"""The `jobcontroller` command line, for instructors and terminals.

    jobcontroller embedded                        # serve the embedded backend; prints exports
    jobcontroller deploy --prefix ann --prefix bob
    jobcontroller deploy --participants room.txt  # one prefix a line, '#' comments
    jobcontroller init --prefix ann               # the IDLE control item (deploy does it too)
    jobcontroller state --prefix ann
    jobcontroller doctor --prefix ann             # check a deployed stack; exit 1 if WRONG
    jobcontroller trigger --prefix ann
    jobcontroller pause --prefix ann ; jobcontroller resume --prefix ann
    jobcontroller teardown --participants room.txt
    jobcontroller package --out-dir build         # the zip `aws cloudformation package` uploads

Commands talk to wherever boto3 points: the embedded backend when AWS_ENDPOINT_URL is a
loopback address (`jobcontroller embedded` prints it), otherwise real AWS, which needs
JOBCONTROLLER_BACKEND=aws and `--confirm-account <id>`. Bad arguments print the usage and
exit 2; an AWS or configuration error prints one line and exits 1; never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import fields
from datetime import datetime
from pathlib import Path
from typing import Any

__all__ = ["main"]


def _participants(path: str) -> list[str]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise argparse.ArgumentTypeError(
            f"cannot read participants file {path!r}: {exc.strerror or exc}"
        ) from None
    prefixes = []
    for line in text.splitlines():
        entry = line.split("#", 1)[0].strip()
        if entry:
            prefixes.append(entry)
    if not prefixes:
        raise argparse.ArgumentTypeError(f"participants file {path!r} lists no prefix")
    return prefixes


class _Once(argparse.Action):
    """Store an option that may be given only once (a second --prefix would be ignored)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        if getattr(namespace, self.dest, None) is not None:
            parser.error(f"{option_string} is given twice: this command takes one")
        setattr(namespace, self.dest, values)


def _parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = argparse.ArgumentParser(
        prog="jobcontroller",
        description="Deploy, inspect and tear down jobcontroller stacks (one per prefix).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def common(sub: argparse.ArgumentParser, *, many: bool) -> None:
        if many:
            who = sub.add_mutually_exclusive_group(required=True)
            who.add_argument(
                "--prefix",
                action="append",
                dest="prefixes",
                metavar="P",
                help="a participant's prefix (repeat for several)",
            )
            who.add_argument(
                "--participants",
                type=_participants,
                dest="prefix_file",
                metavar="FILE",
                help="a file with one prefix a line",
            )
        else:
            sub.add_argument(
                "--prefix", required=True, metavar="P", action=_Once, help="the participant"
            )
        sub.add_argument("--job", default=None, help="job name (default: hourly_processor)")
        sub.add_argument(
            "--confirm-account",
            metavar="ID",
            default=None,
            help="real AWS only: the account id you mean (with JOBCONTROLLER_BACKEND=aws)",
        )

    deploy = commands.add_parser("deploy", help="deploy a stack per prefix (idempotent)")
    common(deploy, many=True)
    deploy.add_argument(
        "--schedule",
        default=None,
        metavar="EXPR",
        help="schedule expression (default: cron(0 * * * ? *), hourly on the hour)",
    )
    teardown = commands.add_parser("teardown", help="delete each prefix's stack (repeatable)")
    common(teardown, many=True)
    teardown.add_argument("--keep-table", action="store_true", help="keep the state table")
    state = commands.add_parser("state", help="show a job's control item and recent runs")
    common(state, many=False)
    state.add_argument("--runs", type=int, default=5, metavar="N", help="recent runs to show")
    doctor = commands.add_parser(
        "doctor", help="check a deployed stack's settings (exit 1 when one is WRONG)"
    )
    common(doctor, many=False)
    init = commands.add_parser("init", help="write a job's IDLE control item if it is missing")
    common(init, many=False)
    package = commands.add_parser("package", help="build the Lambda deployment zip")
    package.add_argument("--out-dir", default="build", help="where to write it (default: build)")
    smoke = commands.add_parser(
        "smoke",
        help="instructor's check: deploy a throw-away prefix, invoke, one scheduled delivery, "
        "tear down, prove nothing is left (about 10 minutes on real AWS)",
    )
    common(smoke, many=False)
    smoke.add_argument(
        "--minutes-ahead", type=float, default=3, metavar="M", help="the one-off schedule's lead"
    )
    trigger = commands.add_parser("trigger", help="invoke the function once (manual trigger)")
    common(trigger, many=False)
    for name, text in (("pause", "pause a job (its triggers skip)"), ("resume", "resume it")):
        common(commands.add_parser(name, help=text), many=False)
    embedded = commands.add_parser(
        "embedded", help="serve the embedded backend for other terminals until Ctrl-C"
    )
    embedded.add_argument("--region", default=None)
    embedded.add_argument("--port", type=int, default=None)
    from jobcontroller.embedded import chaos

    simulate = commands.add_parser(
        "simulate", help="the randomized fault simulation: invariants checked, violations found"
    )
    chaos.add_arguments(simulate)
    return parser, dict(commands.choices)


def _names(parser: argparse.ArgumentParser, prefixes: Sequence[str], job: str | None) -> list:
    from jobcontroller.errors import ConfigError
    from jobcontroller.ops.deploy import DEFAULT_JOB, Names

    result = []
    for prefix in prefixes:
        try:
            result.append(Names(prefix, job or DEFAULT_JOB))
        except ConfigError as exc:
            parser.error(str(exc))
    if len({n.prefix for n in result}) != len(result):
        parser.error("a prefix is listed twice: list each participant once")
    return result


def _show(value: Any) -> str:
    from jobcontroller.model import format_ts

    if isinstance(value, datetime):
        return format_ts(value)
    if hasattr(value, "value"):
        return str(value.value)
    return "-" if value is None else str(value)


def _each(names: list, action: Callable[[Any], None], out: Callable[[str], None]) -> int:
    failed = []
    for name in names:
        try:
            action(name)
        except Exception as exc:  # one participant's failure must not stop the room
            if not _expected(exc):
                raise
            out(f"{name.prefix}: FAILED: {exc}")
            failed.append(name.prefix)
    if failed:
        out(f"failed for: {', '.join(failed)} (run the same command again to retry)")
        return 1
    return 0


def _expected(exc: BaseException) -> bool:
    from botocore.exceptions import BotoCoreError, ClientError

    from jobcontroller.errors import JobControllerError

    return isinstance(exc, JobControllerError | BotoCoreError | ClientError)


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from jobcontroller.ops import deploy as d

    out = print
    if args.command == "embedded":
        from jobcontroller.embedded import server as local

        argv = []
        if args.region:
            argv += ["--region", args.region]
        if args.port is not None:
            argv += ["--port", str(args.port)]
        return local.main(argv)
    if args.command == "simulate":
        from jobcontroller.embedded import chaos

        return chaos.run(args)
    if args.command == "package":
        from jobcontroller.ops.packaging import build_zip, inspect_zip

        report = inspect_zip(build_zip(out_dir=args.out_dir))
        out(f"{report.path}: {report.size_bytes} bytes, sha256 {report.sha256}")
        return 0

    prefixes = getattr(args, "prefixes", None) or getattr(args, "prefix_file", None)
    if prefixes is None:
        prefixes = [args.prefix]
    names = _names(parser, prefixes, args.job)
    target = d.connect(confirm=args.confirm_account, say=out)

    if args.command == "deploy":
        schedule = d.ScheduleSettings(expression=args.schedule) if args.schedule else None

        def deploy_one(n: Any) -> None:
            # Each step, and each wait for AWS to catch up, gets a line.
            done = d.deploy(target, n, schedule=schedule, say=lambda m: out(f"{n.prefix}: {m}"))
            out(f"{n.prefix}: deployed {done.function_arn} (schedule {n.schedule})")

        return _each(names, deploy_one, out)

    if args.command == "teardown":

        def teardown_one(n: Any) -> None:
            report = d.teardown(target, n, keep_table=args.keep_table)
            out(f"{n.prefix}: deleted {len(report.deleted)} resources; nothing tagged is left")

        return _each(names, teardown_one, out)

    if args.command == "smoke":
        from jobcontroller.ops.smoke import smoke_test

        (n,) = names
        smoke = smoke_test(target, prefix=n.prefix, minutes_ahead=args.minutes_ahead, say=out)
        out(smoke.text())
        return 0 if smoke.passed else 1

    from jobcontroller.store import ControlStore

    (n,) = names
    store = ControlStore(n.table, client=target.client("dynamodb"))
    if args.command == "state":
        state = store.read(n.job)
        width = max(len(f.name) for f in fields(state))
        for f in fields(state):
            out(f"{f.name:<{width}}  {_show(getattr(state, f.name))}")
        runs = store.runs(n.job, limit=args.runs) if args.runs > 0 else []
        if runs:
            out("recent runs:")
            for run in runs:
                out("  " + "  ".join(_show(getattr(run, f.name)) for f in fields(run)))
        return 0
    if args.command == "doctor":
        from jobcontroller.ops import doctor

        checks = doctor.doctor(target, n)
        out(doctor.report(checks))
        return 0 if all(c.ok for c in checks) else 1
    if args.command == "init":
        created = d.init_job(target, n)
        out(f"{n.prefix}: job {n.job} {'initialised' if created else 'was already initialised'}")
        return 0
    if args.command in ("pause", "resume"):
        state = store.set_paused(n.job, args.command == "pause")
        out(f"{n.prefix}: job {n.job} {'paused' if state.paused else 'resumed'}")
        return 0
    if args.command == "trigger":
        from jobcontroller.ops.runner import runner_for

        runner = runner_for(target, n)
        invocation = runner.invoke({"job": n.job})
        out(f"{n.prefix}: {invocation.summary()}")
        if invocation.result is not None:
            out(str(invocation.result))
        if invocation.error is not None:
            out(str(invocation.error.get("errorMessage")))
        return 0 if invocation.ok else 1
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover - argparse checks
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 failed, 2 bad arguments)."""
    parser, subparsers = _parser()
    args = parser.parse_args(argv)
    try:
        # Errors in values argparse cannot check (a bad prefix) get that command's usage.
        return _run(args, subparsers[args.command])
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if not _expected(exc):
            raise
        print(f"jobcontroller {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
