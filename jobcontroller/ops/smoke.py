"""The instructor's smoke test: the whole real-AWS path once, the day before a workshop.

Deploy a throw-away prefix, invoke the function once through Lambda, wait for one real
scheduled delivery (a one-off `at()` schedule a few minutes ahead), tear down and prove that
nothing is left; each step is timed and the report says what passed. The teardown runs even
when an earlier step failed, so a failed smoke test leaves nothing behind either.

On the embedded backend (tests) there is no scheduler to deliver the one-off schedule, so the
schedule driver delivers it at its time on the function's simulated clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from jobcontroller.model import Status
from jobcontroller.ops.deploy import FunctionSettings, deploy, leftovers, schedule_once, teardown
from jobcontroller.ops.driver import ScheduleDriver, wait_for_state
from jobcontroller.ops.invocation import FunctionRunner
from jobcontroller.ops.naming import Names, Target
from jobcontroller.ops.runner import LocalLambdaRunner, runner_for
from jobcontroller.store import ControlStore

__all__ = ["SmokeReport", "SmokeStep", "smoke_test"]


@dataclass(frozen=True)
class SmokeStep:
    """One step: its name, whether it passed, how long it took, and what it saw."""

    name: str
    passed: bool
    seconds: float
    detail: str


@dataclass(frozen=True)
class SmokeReport:
    """Every step of one smoke test; `passed` only if all of them did."""

    prefix: str
    target: str
    steps: tuple[SmokeStep, ...]

    @property
    def passed(self) -> bool:
        return bool(self.steps) and all(s.passed for s in self.steps)

    def text(self) -> str:
        lines = [f"smoke test of prefix {self.prefix!r} on {self.target}"]
        for s in self.steps:
            verdict = "ok  " if s.passed else "FAIL"
            lines.append(f"  {verdict} {s.name:<28} {s.seconds:7.1f} s  {s.detail}")
        lines.append("PASSED" if self.passed else "FAILED: see FAIL above")
        return "\n".join(lines)


def smoke_test(
    target: Target,
    *,
    prefix: str = "smoke",
    minutes_ahead: float = 3,
    timeout: float = 900,
    say: Callable[[str], None] | None = print,
    monotonic: Callable[[], float] = time.monotonic,
) -> SmokeReport:
    """Run the smoke test on `target` for a throw-away `prefix` (see the module docs)."""
    say = say or (lambda _message: None)
    names = Names(prefix)
    steps: list[SmokeStep] = []

    def step(name: str, action: Callable[[], str]) -> bool:
        started = monotonic()
        say(f"{name} ...")
        try:
            detail, passed = action(), True
        except Exception as exc:  # the report names every failure; teardown still runs
            detail, passed = f"{type(exc).__name__}: {exc}", False
        steps.append(SmokeStep(name, passed, monotonic() - started, detail))
        say(f"{name}: {'ok' if passed else 'FAILED'}: {detail}")
        return passed

    runner: FunctionRunner | None = None  # built after the deploy

    def do_deploy() -> str:
        # A short timeout: the smoke test's runs have no workload to speak of.
        done = deploy(target, names, function=FunctionSettings(workload_seconds=0), say=say)
        return done.function_arn

    def invoke_once() -> str:
        nonlocal runner
        runner = runner_for(target, names)
        # The slot an hour before this one: its cooldown ends at this hour's start, so the
        # scheduled delivery a few minutes from now is due and runs.
        slot = runner.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
        invocation = runner.invoke(ScheduleDriver(target, names, runner).render(slot))
        if not invocation.ok:
            raise RuntimeError(f"the function answered {invocation.status}: {invocation.error}")
        return f"{invocation.summary()} in {invocation.duration_ms} ms"

    def scheduled_delivery() -> str:
        assert runner is not None
        store = ControlStore(names.table, client=target.client("dynamodb"))
        before = store.read(names.job)
        _arn, when = schedule_once(
            target, names, minutes_ahead=minutes_ahead, clock=_Clock(runner.now)
        )
        if target.embedded:  # no scheduler here: deliver it at its time
            once = names.once_schedule(when)
            ScheduleDriver(target, names, runner, schedule_name=once).fire(when)
        state = wait_for_state(
            target,
            names,
            lambda s: s.status is Status.IDLE and s.version > before.version,
            timeout=timeout,
            every=10,
            sleep=target.sleep,
            monotonic=target.monotonic,
        )
        return f"at({when:%H:%M:%S}) delivered; run_count {before.run_count} -> {state.run_count}"

    def do_teardown() -> str:
        report = teardown(target, names, say=say)
        return f"{len(report.deleted)} deleted"

    def nothing_left() -> str:
        left = leftovers(target, prefix)
        if left:
            raise RuntimeError(f"still there: {', '.join(left)}")
        return "nothing tagged or named with the prefix"

    if step("deploy", do_deploy) and step("invoke once", invoke_once):
        step("one scheduled delivery", scheduled_delivery)
    step("teardown", do_teardown)
    step("nothing left", nothing_left)
    if isinstance(runner, LocalLambdaRunner):
        runner.close()
    return SmokeReport(prefix, target.describe(), tuple(steps))


class _Clock:
    """A Clock from a `now` function (the function's clock, for the one-off schedule)."""

    def __init__(self, now: Callable[[], datetime]) -> None:
        self._now = now

    def now(self) -> datetime:
        return self._now().astimezone(UTC)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)
