"""The gate: may this trigger run now? A pure function of state, trigger and time.

No I/O and no clock of its own, so it can be tested over every state and replayed in a
notebook. The store's conditional write re-checks what matters (status, version, lease) at
write time; the gate's job is to make the common "no" cost one read and no write.
"""

from __future__ import annotations

from datetime import datetime

from .model import Action, Decision, JobConfig, JobState, Reason, Status, Trigger, format_ts

__all__ = ["decide", "next_allowed_run_after"]


def decide(state: JobState, trigger: Trigger, now: datetime, *, config: JobConfig) -> Decision:
    """Return RUN, TAKEOVER or SKIP(reason) for `trigger` arriving at `now`.

    The checks run in this order, and the first that applies wins:
    PAUSED, RUNNING (a live lease), SLOT_DONE, COOLDOWN, then TAKEOVER (an expired lease) or RUN.
    An expired lease is only taken over by a trigger that would be allowed to run anyway.
    """
    if state.paused:
        return Decision(Action.SKIP, Reason.PAUSED, "the job is paused; resume it to run again")

    lease_left = state.lease_remaining(now)
    if lease_left is not None and lease_left.total_seconds() > 0:
        return Decision(
            Action.SKIP,
            Reason.RUNNING,
            f"run {state.run_id} holds the lock until {_ts(state.lease_expires_at)}",
        )

    # Rule 4: the scheduled time is the idempotency key. `<=` also refuses a stale slot
    # older than one that already succeeded (a late duplicate from before).
    if trigger.slot is not None and state.last_slot is not None and trigger.slot <= state.last_slot:
        return Decision(
            Action.SKIP,
            Reason.SLOT_DONE,
            f"slot {format_ts(trigger.slot)} is not after the last successful slot "
            f"{format_ts(state.last_slot)}",
        )

    # Rule 5: compare the trigger's *slot* (not its arrival time) with a next_allowed_run
    # that was itself computed from a slot, so late deliveries and long runs do not push
    # the schedule back. Manual triggers have no slot and use their arrival time.
    if state.next_allowed_run is not None:
        when = trigger.slot if trigger.slot is not None else now
        if when < state.next_allowed_run - config.cooldown_slack:
            return Decision(
                Action.SKIP,
                Reason.COOLDOWN,
                f"next run allowed from {format_ts(state.next_allowed_run)}; "
                f"this trigger counts as {format_ts(when)}",
            )

    if state.status is Status.RUNNING:
        return Decision(
            Action.TAKEOVER,
            None,
            f"run {state.run_id}'s lease expired at {_ts(state.lease_expires_at)}",
        )
    return Decision(Action.RUN, None, "idle, not paused, slot not done, cooldown over")


def _ts(when: datetime | None) -> str:
    return "-" if when is None else format_ts(when)


def next_allowed_run_after(
    slot: datetime | None, started: datetime, *, config: JobConfig
) -> datetime:
    """Rule 5: the next run is allowed one interval after the *slot* this run served.

    A manual trigger has no slot, so its start time stands in. Never the finish time: with
    the cooldown measured from completion, an hourly schedule whose triggers land a little
    late finds every other slot still cooling down.
    """
    return (slot if slot is not None else started) + config.interval
