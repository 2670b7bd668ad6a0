"""Notebook 07's look at warm starts: what a function keeps in memory between invocations.

`memory_demo` deploys a tiny function of the learner's own (`MEMORY_DEMO` by default) next to
the course's stack, sends it a few deliveries through the local runner (one after another,
two at the same moment, one after a configuration change), shows what its module-level state
said each time, and deletes the function again. The runner's execution environments behave
as Lambda's do (ops.environments), so the table is what Lambda would show, without timings:
which environment served each delivery and whether it had to start (cold) or was reused
(warm). Course tooling only: the Lambda never imports this module.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from jobcontroller.clock import SequentialIds
from jobcontroller.course.display import Table
from jobcontroller.errors import ConfigError
from jobcontroller.ops import retry
from jobcontroller.ops.invocation import Invocation
from jobcontroller.ops.runner import LocalLambdaRunner

if TYPE_CHECKING:
    from jobcontroller.course.lab import Lab
    from jobcontroller.course.lab_day import Day

__all__ = ["MEMORY_DEMO", "memory_demo", "show_environments"]

# The demo's handler: a counter and a list of the slots it has seen, both at module level.
MEMORY_DEMO = """\
invocations = 0  # module level: set once, when the environment starts (the init phase)
seen_slots = []  # a "cache" of the slots this function has handled


def handler(event, context):
    global invocations
    invocations += 1
    slot = event["slot"]
    duplicate = slot in seen_slots  # an idempotency check kept in memory
    seen_slots.append(slot)
    return {"invocations": invocations, "duplicate": duplicate, "seen_slots": seen_slots}
"""

_MODULE = "memory"
_SUFFIX = "memory-demo"


def _zip(source: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        # A fixed timestamp, so the same source gives the same CodeSha256 on every run.
        archive.writestr(zipfile.ZipInfo(f"{_MODULE}.py", (1980, 1, 1, 0, 0, 0)), source)
    return buffer.getvalue()


def _row(delivery: str, event: Mapping[str, Any], invocation: Invocation) -> tuple[str, ...]:
    start = "cold (started)" if invocation.cold else "warm (reused)"
    if not invocation.ok or not isinstance(invocation.result, dict):
        error = (invocation.error or {}).get("errorMessage", invocation.status)
        return (delivery, event["slot"], invocation.environment or "-", start, "-", "-", error)
    result = invocation.result
    return (
        delivery,
        event["slot"],
        invocation.environment or "-",
        start,
        str(result.get("invocations", "-")),
        "yes" if result.get("duplicate") else "no",
        ", ".join(str(s) for s in result.get("seen_slots", ())) or "-",
    )


def memory_demo(lab: Lab, source: str = MEMORY_DEMO) -> Table:
    """Deploy `source` (a module with `handler(event, context)`) as `<prefix>-memory-demo`,
    deliver slots to it as described in the module docstring, delete it, and show each
    delivery: the environment, cold or warm, and what the module-level state answered."""
    if not lab.embedded:
        return Table(
            ("note",),
            (
                (
                    "the memory demo runs on the embedded backend only (its local runner decides "
                    "when an environment is reused); switch the notebook to it to run it",
                ),
            ),
            "what a function keeps in memory",
        )
    if "def handler(" not in source:
        raise ConfigError("the demo's source must define handler(event, context)")
    lam = lab.target.client("lambda")
    name = f"{lab.names.prefix}-{_SUFFIX}"
    role = lab.target.client("iam").get_role(RoleName=lab.names.function_role)["Role"]["Arn"]
    code = _zip(source)
    retry.until_consistent(
        lab.target,
        partial(
            lam.create_function,
            FunctionName=name,
            Runtime="python3.12",
            Role=role,
            Handler=f"{_MODULE}.handler",
            Code={"ZipFile": code},
            Timeout=10,
            Environment={"Variables": {"DEMO_SETTING": "1"}},
        ),
        waits_for=[retry.ROLE_NOT_ASSUMABLE_BY_LAMBDA],
        what=name,
    )
    rows = []
    try:
        with LocalLambdaRunner(
            lab.target, name, code=code, request_ids=SequentialIds("demo-")
        ) as runner:
            for delivery, slot in (("first", "09:00"), ("next", "10:00"), ("again", "10:00")):
                event = {"slot": slot}
                rows.append(_row(delivery, event, runner.invoke(event)))
            together = [{"slot": "11:00"}, {"slot": "11:00"}]
            for event, invocation in zip(together, runner.invoke_together(together), strict=True):
                rows.append(_row("two at once", event, invocation))
            # Any change of the configuration retires every environment, as on Lambda.
            retry.until_consistent(
                lab.target,
                partial(
                    lam.update_function_configuration,
                    FunctionName=name,
                    Environment={"Variables": {"DEMO_SETTING": "2"}},
                ),
                waits_for=[retry.UPDATE_IN_PROGRESS],
                what=name,
            )
            event = {"slot": "10:00"}
            rows.append(_row("after a config change", event, runner.invoke(event)))
    finally:
        lam.delete_function(FunctionName=name)
    return Table(
        (
            "delivery",
            "slot",
            "environment",
            "start",
            "invocations",
            "duplicate?",
            "seen_slots (in this environment's memory)",
        ),
        tuple(rows),
        f"what {name} kept in memory, delivery by delivery",
        (f"the function {name} is deleted again",),
    )


def show_environments(day: Day) -> Table:
    """The execution environments that served the day's deliveries, in the order they started:
    which slots each served, and whether it is still warm or its process ended."""
    served: dict[str, list[Any]] = {}
    for step in day.steps:
        if step.environment is not None:
            served.setdefault(step.environment, []).append(step)
    rows = []
    for environment, steps in served.items():
        last = steps[-1]
        if last.status in ("crashed", "timeout"):
            ended = f"retired: its process ended in the {last.slot:%H:%M} run ({last.status})"
        else:
            ended = "still warm at the end of the day"
        rows.append(
            (
                environment,
                f"{steps[0].slot:%H:%M}" + (" (cold start)" if steps[0].cold else ""),
                f"{steps[0].slot:%H:%M} to {last.slot:%H:%M}",
                str(len(steps)),
                ended,
            )
        )
    return Table(
        ("environment", "started for", "slots served", "deliveries", "then"),
        tuple(rows),
        "the execution environments that served the day",
        () if rows else ("no delivery says which environment served it (real AWS)",),
    )
