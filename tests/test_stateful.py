"""The controller against a small reference model of its rules, driven by hypothesis.

Hypothesis chooses sequences of triggers (scheduled, duplicate, old, manual), crashes,
failures, pauses and clock moves; after each step the controller's answer and the stored
item must agree with what the model, written independently from the rules, predicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from jobcontroller import (
    ControlStore,
    JobConfig,
    JobController,
    ManualClock,
    Outcome,
    Reason,
    SequentialIds,
    Status,
    Trigger,
    WorkloadCrash,
    placeholder,
)
from jobcontroller.embedded.memory import MemoryDynamoDB

JOB = "hourly_processor"
CONFIG = JobConfig()
HOUR = timedelta(seconds=CONFIG.interval_seconds)


@dataclass
class Model:
    """What the rules say the control item holds."""

    running: bool = False
    lease_until: datetime | None = None
    paused: bool = False
    last_slot: datetime | None = None
    next_allowed: datetime | None = None
    runs: int = 0
    failures: int = 0
    takeovers: int = 0

    def predict(self, slot: datetime | None, now: datetime) -> tuple[Outcome, Reason | None]:
        if self.paused:
            return Outcome.SKIPPED, Reason.PAUSED
        if self.running and self.lease_until is not None and self.lease_until > now:
            return Outcome.SKIPPED, Reason.RUNNING
        if slot is not None and self.last_slot is not None and slot <= self.last_slot:
            return Outcome.SKIPPED, Reason.SLOT_DONE
        counted_as = slot if slot is not None else now
        if self.next_allowed is not None and counted_as < self.next_allowed - timedelta(
            seconds=CONFIG.cooldown_slack_seconds
        ):
            return Outcome.SKIPPED, Reason.COOLDOWN
        return Outcome.SUCCEEDED, None  # a run; the workload decides how it ends


class ControllerMachine(RuleBasedStateMachine):
    """Random sequences of the things that happen to a job, checked step by step."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock("2026-01-05T09:00:00Z")
        self.store = ControlStore("job_control", client=MemoryDynamoDB())
        self.store.create_table()
        self.store.init_job(JOB, now=self.clock.now())
        self.controller = JobController(
            self.store, JOB, config=CONFIG, clock=self.clock, new_run_id=SequentialIds()
        )
        self.model = Model()

    def _hour(self) -> datetime:
        return self.clock.now().replace(minute=0, second=0, microsecond=0)

    def _invoke(self, slot: datetime | None, *, ending: str) -> None:
        now = self.clock.now()
        expected, reason = self.model.predict(slot, now)
        trigger = Trigger(JOB, slot=slot, source="manual" if slot is None else "scheduler")
        work = placeholder(seconds=0, fail=ending == "fail", crash=ending == "crash")
        try:
            result = self.controller.invoke(trigger, work)
        except WorkloadCrash:
            assert expected is Outcome.SUCCEEDED, "a gated trigger started the workload"
            assert ending == "crash"
            self._took_lock(now)
            self.model.running = True
            self.model.lease_until = now + timedelta(seconds=CONFIG.default_lease_seconds)
            return
        if expected is Outcome.SKIPPED:
            assert (result.outcome, result.reason) == (Outcome.SKIPPED, reason), result
            return
        self._took_lock(now)
        self.model.running = False
        self.model.lease_until = None
        if ending == "fail":
            assert result.outcome is Outcome.FAILED, result
            self.model.failures += 1
        else:
            assert result.outcome is Outcome.SUCCEEDED, result
            self.model.runs += 1
            if slot is not None:
                self.model.last_slot = slot
            self.model.next_allowed = (slot if slot is not None else now) + HOUR

    def _took_lock(self, now: datetime) -> None:
        if self.model.running and self.model.lease_until is not None:
            assert self.model.lease_until <= now
            self.model.takeovers += 1

    @rule(hours_back=st.integers(0, 2), ending=st.sampled_from(["ok", "ok", "fail", "crash"]))
    def scheduled(self, hours_back: int, ending: str) -> None:
        """A scheduled delivery of this hour's slot, or of one or two hours ago."""
        self._invoke(self._hour() - hours_back * HOUR, ending=ending)

    @rule(ending=st.sampled_from(["ok", "fail", "crash"]))
    def manual(self, ending: str) -> None:
        """A manual trigger: no slot, keyed by when it arrives."""
        self._invoke(None, ending=ending)

    @rule(seconds=st.integers(1, 5400))
    def time_passes(self, seconds: int) -> None:
        """Anything from a second to an hour and a half goes by."""
        self.clock.advance(seconds)

    @precondition(lambda self: not self.model.paused)
    @rule()
    def pause(self) -> None:
        """An operator pauses the job."""
        self.store.set_paused(JOB, True)
        self.model.paused = True

    @precondition(lambda self: self.model.paused)
    @rule()
    def resume(self) -> None:
        """An operator resumes it."""
        self.store.set_paused(JOB, False)
        self.model.paused = False

    @invariant()
    def stored_item_matches_the_model(self) -> None:
        """Status, counters, slot and pause flag in the table are what the model says."""
        state = self.store.read(JOB)
        model = self.model
        assert state.status is (Status.RUNNING if model.running else Status.IDLE)
        assert state.run_count == model.runs
        assert state.failure_count == model.failures
        assert state.takeover_count == model.takeovers
        assert state.last_slot == model.last_slot
        assert state.paused is model.paused
        if model.running:
            assert state.lease_expires_at == model.lease_until


TestController = ControllerMachine.TestCase
TestController.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
