"""Run a few calls at the same moment, each in its own thread, and lose no result or error.

The schedule driver delivers racing copies of one event with it, and the course races
contenders for the lock with it. A worker's exception is raised in the caller (after every
worker has finished), never left on stderr with its result missing from the list.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

__all__ = ["run_together"]

T = TypeVar("T")


def run_together(tasks: Sequence[Callable[[], T]]) -> list[T]:
    """Call every task in its own thread, all released at once; their results, in order.

    The threads wait behind a barrier until all of them have started, so the calls really
    overlap (a race that one thread finishes before the next starts proves nothing). If
    tasks raise, the first failing task's exception (in task order) is raised here once all
    have finished, with a note counting any other failures.
    """
    if not tasks:
        return []
    barrier = threading.Barrier(len(tasks))

    def released(task: Callable[[], T]) -> T:
        barrier.wait()
        return task()

    # One worker per task: fewer would leave the barrier waiting for tasks that never start.
    with ThreadPoolExecutor(max_workers=len(tasks), thread_name_prefix="together") as pool:
        futures = [pool.submit(released, task) for task in tasks]
    # Leaving the block waited for every future, so none of these calls blocks.
    errors = [error for future in futures if (error := future.exception()) is not None]
    if errors:
        first = errors[0]
        if len(errors) > 1:
            others = ", ".join(repr(error) for error in errors[1:])
            first.add_note(f"{len(errors) - 1} other concurrent task(s) failed too: {others}")
        raise first
    return [future.result() for future in futures]
