"""run_together: calls at the same moment, every result kept, a worker's error raised here."""

from __future__ import annotations

import threading
from functools import partial

import pytest

from jobcontroller.ops.parallel import run_together

# A safety net only: a barrier that is never completed fails the test instead of hanging it.
WAIT = 30


def test_results_come_back_in_task_order():
    """Each task's result is at its task's index, whatever order the threads finish in."""
    assert run_together([lambda i=i: i * i for i in range(8)]) == [0, 1, 4, 9, 16, 25, 36, 49]


def test_all_tasks_run_at_the_same_time():
    """Every task is running while the others are: a barrier only all of them can pass."""
    meeting = threading.Barrier(5, timeout=WAIT)
    idents = run_together([lambda: (meeting.wait(), threading.get_ident())[1]] * 5)
    assert len(set(idents)) == 5  # five threads, none of them this one
    assert threading.get_ident() not in idents


def test_a_workers_error_is_raised_once_every_worker_has_finished():
    """One task raises; the caller gets its exception, after the other tasks have finished."""
    failed = threading.Event()
    finished = []

    def fail():
        failed.set()
        raise ValueError("task 0 failed")

    def finish_after_the_failure(index):
        assert failed.wait(WAIT)
        finished.append(index)
        return index

    with pytest.raises(ValueError, match="task 0 failed"):
        run_together([fail, *(partial(finish_after_the_failure, i) for i in (1, 2))])
    assert sorted(finished) == [1, 2]


def test_with_several_failures_the_first_is_raised_and_the_others_noted():
    """The first failing task's error is raised; a note names the others."""

    def fail(message):
        raise RuntimeError(message)

    with pytest.raises(RuntimeError, match="first") as caught:
        run_together([lambda: 1, lambda: fail("first"), lambda: fail("second")])
    assert caught.value.__notes__ == [
        "1 other concurrent task(s) failed too: RuntimeError('second')"
    ]


def test_no_tasks_no_results():
    """An empty list of tasks gives an empty list of results."""
    assert run_together([]) == []
