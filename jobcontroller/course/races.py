"""Fire many triggers for the same slot at once: threads, or separate processes.

The course and the tests use these to show that the conditional write admits exactly one
run however the contenders interleave. Contenders start together behind a barrier so the
race is real (threads: ops.parallel.run_together); results come back sorted, so printed
output is the same on every run.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from jobcontroller.clock import ManualClock, SequentialIds
from jobcontroller.controller import InvocationResult, JobController
from jobcontroller.course.display import Table, cell
from jobcontroller.course.forced import RaceCourse
from jobcontroller.model import JobConfig, Outcome, Trigger, format_ts
from jobcontroller.ops.parallel import run_together
from jobcontroller.store import ControlStore
from jobcontroller.workload import placeholder

__all__ = ["Contender", "processes_table", "race_processes", "race_threads", "rounds_table"]


@dataclass(frozen=True)
class Contender:
    """What one contender did in one round."""

    round: int
    contender: int
    outcome: str
    reason: str | None
    run_id: str | None


def _summary(round_no: int, contender: int, result: InvocationResult) -> Contender:
    return Contender(
        round_no,
        contender,
        result.outcome.value,
        None if result.reason is None else result.reason.value,
        result.run_id,
    )


def race_threads(
    make_controller: Callable[[int], JobController],
    trigger: Trigger,
    *,
    contenders: int = 64,
    round_no: int = 0,
    seconds: float = 0.0,
) -> list[Contender]:
    """`contenders` threads invoke `trigger` at once, each with its own controller.

    A contender's exception is raised here, once every contender has finished.
    """
    controllers = [make_controller(index) for index in range(contenders)]

    def contend(index: int) -> Contender:
        result = controllers[index].invoke(trigger, placeholder(seconds=seconds))
        return _summary(round_no, index, result)

    return run_together([partial(contend, index) for index in range(contenders)])


def _process_worker(
    index: int,
    table: str,
    job: str,
    first_slot: str,
    rounds: int,
    config: JobConfig,
    barrier: multiprocessing.synchronize.Barrier,
    out: multiprocessing.queues.Queue,
) -> None:
    start = ManualClock(first_slot).now()
    # Every worker stands after the last slot: the slots, not the clock, decide each round.
    clock = ManualClock(start + timedelta(seconds=config.interval_seconds * rounds))
    controller = JobController(
        ControlStore(table),
        job,
        config=config,
        clock=clock,
        new_run_id=SequentialIds(prefix=f"p{index}-"),
    )
    for round_no in range(rounds):
        slot = start + timedelta(seconds=config.interval_seconds * round_no)
        barrier.wait()
        try:
            trigger = Trigger(job, slot=slot, source="scheduler")
            result = controller.invoke(trigger, placeholder(seconds=0))
            out.put(_summary(round_no, index, result))
        except Exception as exc:
            out.put(("error", index, repr(exc)))
        barrier.wait()  # the round is over for everybody before the next slot


def race_processes(
    table: str,
    job: str,
    *,
    first_slot: datetime,
    processes: int = 8,
    rounds: int = 20,
    config: JobConfig | None = None,
    timeout: float = 120.0,
) -> list[Contender]:
    """`processes` separate OS processes fire slot after slot together, `rounds` times.

    Each process has its own boto3 client and reaches the backend through the environment
    (AWS_ENDPOINT_URL on the embedded backend), exactly as separate Lambdas would.
    """
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(processes)
    out = ctx.Queue()
    settings = (table, job, format_ts(first_slot), rounds, config or JobConfig())
    workers = [
        ctx.Process(target=_process_worker, args=(i, *settings, barrier, out))
        for i in range(processes)
    ]
    for worker in workers:
        worker.start()
    results: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while len(results) < processes * rounds:
            try:
                results.append(out.get(timeout=0.5))
            except queue.Empty:
                # A worker that died (e.g. spawned from a script without a __main__ guard)
                # would leave the others waiting at the barrier: say so instead of hanging.
                dead = [w.exitcode for w in workers if w.exitcode not in (None, 0)]
                if dead or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"contending processes stopped early (exit codes {dead}) or took "
                        f"longer than {timeout:g} s; run the race from a module or a notebook, "
                        "or under `if __name__ == '__main__':` in a script"
                    ) from None
    finally:
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.kill()
    errors = [r for r in results if isinstance(r, tuple)]
    if errors:
        raise RuntimeError(f"contending processes failed: {errors}")
    return sorted(results, key=lambda c: (c.round, c.contender))


# --- the course's tables of them (notebook 03) ---------------------------------------------


def rounds_table(course: RaceCourse, *, rounds: int = 10, contenders: int = 8) -> Table:
    """Free-running threads (no forced order), one slot per round: runs per round.

    Which contender wins, and whether a loser was stopped by the gate or by the
    conditional write, changes from run to run; so this reports only the counts.
    """
    first = course.slot_now()
    before = course.state().run_count
    per_round = []
    for round_no in range(rounds):
        slot = first + course.config.interval * round_no
        course.clock.set(max(course.clock.now(), slot + timedelta(seconds=5)))

        def make(index: int, round_no: int = round_no) -> JobController:
            ids = SequentialIds(prefix=f"free-r{round_no:02d}-c{index:02d}-")
            return course.controller(new_run_id=ids)

        trigger = Trigger(course.job, slot=slot, source="scheduler")
        results = race_threads(make, trigger, contenders=contenders, round_no=round_no)
        per_round.append(sum(1 for r in results if r.outcome == Outcome.SUCCEEDED))
    after = course.state().run_count
    rows = (
        ("rounds", str(rounds)),
        ("threads per round", str(contenders)),
        ("rounds with exactly one run", str(per_round.count(1))),
        ("rounds with more than one run", str(sum(1 for n in per_round if n > 1))),
        ("run_count before -> after", f"{before} -> {after}"),
    )
    return Table(("free-running threads", "result"), rows)


def processes_table(course: RaceCourse, *, processes: int = 4, rounds: int = 3) -> Table:
    """Separate OS processes (each its own boto3 client) fire the same slots together."""
    first = course.slot_now()
    before = course.state().run_count
    results = race_processes(
        course.table,
        course.job,
        first_slot=first,
        processes=processes,
        rounds=rounds,
        config=course.config,
    )
    # The processes' clocks stand after the last slot; catch ours up with them.
    last = first + course.config.interval * rounds
    course.clock.set(max(course.clock.now(), last))
    rows = []
    for round_no in range(rounds):
        outcomes = Counter(r.outcome for r in results if r.round == round_no)
        slot = first + course.config.interval * round_no
        summary = ", ".join(f"{k} x{outcomes[k]}" for k in sorted(outcomes))
        rows.append((cell(slot), summary))
    after = course.state().run_count
    note = f"{processes} processes per slot; run_count {before} -> {after}"
    return Table(("slot", "outcomes"), tuple(rows), "separate processes", (note,))
