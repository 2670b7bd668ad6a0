"""Concurrency: many triggers for one slot at once run it exactly once; the naive lock does not."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest

from jobcontroller import ControlStore, JobConfig, JobController, SequentialIds, Trigger
from jobcontroller.course.counterexamples import naive_acquire
from jobcontroller.course.races import race_processes, race_threads

pytestmark = pytest.mark.every_backend

JOB = "hourly_processor"
ROUNDS = 20


@pytest.mark.slow
def test_64_threads_one_run_per_round(store, clock):
    """64 threads firing the same slot together: exactly one run in each of 20 rounds.

    Slow: 1,280 invocations, each a read and a conditional write through a backend that
    serves one request at a time; every round is a fresh chance for a second winner.
    """
    start = clock.now()
    reasons = Counter()
    for round_no in range(ROUNDS):
        slot = start + timedelta(hours=round_no)
        clock.set(slot + timedelta(seconds=5))

        def make(index, round_no=round_no):
            ids = SequentialIds(prefix=f"r{round_no}-t{index}-")
            return JobController(store, JOB, clock=clock, new_run_id=ids)

        results = race_threads(make, Trigger(JOB, slot=slot, source="scheduler"), contenders=64)
        outcomes = Counter(r.outcome for r in results)
        assert outcomes["SUCCEEDED"] == 1, (round_no, outcomes)
        assert outcomes["SKIPPED"] == 63
        reasons.update(r.reason for r in results if r.reason)
    assert store.read(JOB).run_count == ROUNDS
    # The race was real: some contenders read IDLE and were stopped by the conditional
    # write itself, not by the gate.
    assert reasons["LOST_RACE"] > 0, reasons
    assert set(reasons) <= {"LOST_RACE", "RUNNING", "SLOT_DONE"}


def test_a_contenders_error_reaches_the_caller(store, clock):
    """If one contender raises, race_threads raises its error instead of returning the rest."""
    slot = clock.now()
    clock.set(slot + timedelta(seconds=5))

    class Broken:
        def invoke(self, trigger, workload):
            raise RuntimeError("contender 3 broke")

    def make(index):
        if index == 3:
            return Broken()
        return JobController(store, JOB, clock=clock, new_run_id=SequentialIds(f"t{index}-"))

    with pytest.raises(RuntimeError, match="contender 3 broke"):
        race_threads(make, Trigger(JOB, slot=slot, source="scheduler"), contenders=4)
    assert store.read(JOB).run_count == 1  # the other three still raced, and one ran


@pytest.mark.slow
def test_8_processes_one_run_per_round(store, clock):
    """8 separate processes firing the same slot together: exactly one run in each of 20 rounds.

    Slow: 8 fresh interpreters, each importing boto3 and the package before the first round.
    """
    results = race_processes(
        store.table, JOB, first_slot=clock.now(), processes=8, rounds=ROUNDS, config=JobConfig()
    )
    assert len(results) == 8 * ROUNDS
    for round_no in range(ROUNDS):
        outcomes = Counter(r.outcome for r in results if r.round == round_no)
        assert outcomes == {"SUCCEEDED": 1, "SKIPPED": 7}, (round_no, outcomes)
    assert store.read(JOB).run_count == ROUNDS


def test_naive_read_then_write_lock_runs_more_than_once(store, clock):
    """With every reader reading before anyone writes, the naive lock lets all 8 'acquire'."""
    contenders = 8
    barrier = threading.Barrier(contenders)
    won = [False] * contenders

    def contend(index):
        won[index] = naive_acquire(
            ControlStore(store.table, client=store.client),
            JOB,
            run_id=f"naive-{index}",
            now=clock.now(),
            between_read_and_write=barrier.wait,
        )

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(won) == contenders
    # ...and the item names only the last writer: the others' runs left no trace.
    assert store.read(JOB).run_id in {f"naive-{i}" for i in range(contenders)}
    assert store.read(JOB).version == 1


def test_the_conditional_lock_under_the_same_interleaving_admits_one(store, clock):
    """The same forced interleaving against the package's acquire: exactly one holder."""
    contenders = 8
    state = store.read(JOB)  # every contender read this same version before anyone wrote
    barrier = threading.Barrier(contenders)
    outcomes = [None] * contenders

    def contend(index):
        barrier.wait()
        outcomes[index] = store.acquire(
            state, run_id=f"c-{index}", now=clock.now(), lease_until=clock.now(), slot=None
        )

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [o for o in outcomes if type(o).__name__ == "Acquired"]
    assert len(winners) == 1
    assert store.read(JOB).run_id == winners[0].state.run_id
