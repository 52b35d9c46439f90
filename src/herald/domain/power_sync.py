"""The power sync's decision table: what to do when the driver and the record disagree.

One pure function, :func:`decide`, row by row as Nova's ``_sync_instance_power_state``
decides: the hypervisor always wins for ``power_state``; ``vm_state`` is reconciled by
stopping a server that stopped by itself and force-stopping one that runs when compute
says it is stopped.

Unlike Nova, an action that changes the machine can wait: Herald's ``grace`` lets a
disagreement (the record's vm_state against the machine's power class) be watched until it
has lasted that long, so that the bare-metal service's power-update, which knows who changed
the power, can arrive first. A grace of 0 is Nova's behaviour.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, replace
from datetime import datetime

from herald.domain.model import PowerState, VmState


class SyncAction(enum.StrEnum):
    NOTHING = "nothing"
    STOP = "stop"  # the normal stop path (checks vm_state), action "stop"
    FORCE_STOP = "force-stop"  # stop whatever the vm_state, action "stop"
    WAIT = "wait"  # a stop or force stop is due, but the disagreement is younger than the grace


class PowerClass(enum.StrEnum):
    """What the machine's power means for a disagreement: two readings of one class are one disagreement."""

    ON = "on"
    OFF = "off"
    UNKNOWN = "unknown"


def power_class(power: int) -> PowerClass:
    if power in _OFF:
        return PowerClass.OFF
    if power == PowerState.NOSTATE:
        return PowerClass.UNKNOWN
    return PowerClass.ON


@dataclass(frozen=True, slots=True)
class Disagreement:
    """A disagreement the sync would act on, and when it was first seen (the sync's clock)."""

    vm_state: str
    power_class: PowerClass
    since: datetime

    def same_as(self, other: Disagreement) -> bool:
        return (self.vm_state, self.power_class) == (other.vm_state, other.power_class)

    def age(self, now: datetime) -> float:
        return (now - self.since).total_seconds()


@dataclass(frozen=True, slots=True)
class PowerObservation:
    """A watched disagreement as kept for one server: which host watches it, and the action that shows it."""

    server_uuid: str
    host: str
    request_id: str  # the server's instance action that says the disagreement is watched
    disagreement: Disagreement


@dataclass(frozen=True, slots=True)
class SyncDecision:
    """What one sync does to one server."""

    action: SyncAction
    power_state: int | None = None  # the record's new power_state; None: it already matches
    message: str | None = None  # why, for the log (with the level below)
    level: int = logging.INFO
    # The disagreement to keep watching after this pass; None: nothing is watched (any watch ends).
    watched: Disagreement | None = None


SKIP_TASK = SyncDecision(SyncAction.NOTHING, message="pending task; skipped")
_OFF = frozenset({PowerState.SHUTDOWN, PowerState.CRASHED})
_NOT_RUNNING = frozenset({PowerState.NOSTATE, PowerState.SHUTDOWN, PowerState.CRASHED})
# vm_states the sync records the power of but never acts on.
_HANDS_OFF = frozenset(
    {
        VmState.BUILDING,
        VmState.RESCUED,
        VmState.RESIZED,
        VmState.SUSPENDED,
        VmState.ERROR,
        VmState.SHELVED,
        VmState.SHELVED_OFFLOADED,
    }
)


def decide(
    *,
    vm_state: str,
    db_power_state: int,
    task_state: str | None,
    driver_power_state: int,
    watched: Disagreement | None,
    now: datetime,
    grace: float,
) -> SyncDecision:
    """The decision for one server, from its record, what the driver reports now and what is watched.

    :param watched: the disagreement kept from earlier passes, if any.
    :param now: this pass's time, on the clock ``watched.since`` was taken from.
    :param grace: seconds a disagreement must have lasted before the sync stops the machine; 0 acts at once.
    """
    if task_state is not None:
        # The task will change the record; what is watched is judged again on the next pass.
        return replace(SKIP_TASK, watched=watched)
    new_power = driver_power_state if driver_power_state != db_power_state else None
    action, message, level = _reconcile(vm_state, driver_power_state)
    if action not in (SyncAction.STOP, SyncAction.FORCE_STOP):
        return SyncDecision(action, new_power, message, level)
    seen = Disagreement(vm_state, power_class(driver_power_state), now)
    if watched is not None and watched.same_as(seen):
        seen = watched
    if seen.age(now) >= grace:
        return SyncDecision(action, new_power, message, level)
    why = (message or "").removesuffix(" Calling the stop API.")
    since = seen.since.isoformat()
    wait = f"{why} Not stopping it before the disagreement has lasted {grace:g} s (seen since {since})."
    return SyncDecision(SyncAction.WAIT, new_power, wait, logging.INFO, seen)


def _reconcile(vm_state: str, power: int) -> tuple[SyncAction, str | None, int]:
    state = VmState(vm_state) if vm_state in VmState._value2member_map_ else None
    if state is None or state in _HANDS_OFF:
        return SyncAction.NOTHING, None, logging.DEBUG
    if state is VmState.ACTIVE:
        return _active(power)
    if state is VmState.STOPPED:
        if power not in _NOT_RUNNING:
            return SyncAction.FORCE_STOP, "Instance is not stopped. Calling the stop API.", logging.WARNING
        return SyncAction.NOTHING, None, logging.DEBUG
    if state is VmState.PAUSED:
        if power in _OFF:
            return SyncAction.FORCE_STOP, "Paused instance shutdown by itself. Calling the stop API.", logging.WARNING
        return SyncAction.NOTHING, None, logging.DEBUG
    if state in (VmState.SOFT_DELETED, VmState.DELETED) and power not in (PowerState.NOSTATE, PowerState.SHUTDOWN):
        return SyncAction.NOTHING, "Instance is not (soft-)deleted.", logging.WARNING
    return SyncAction.NOTHING, None, logging.DEBUG


def _active(power: int) -> tuple[SyncAction, str | None, int]:
    if power in _OFF:
        return SyncAction.STOP, "Instance shutdown by itself. Calling the stop API.", logging.WARNING
    if power == PowerState.SUSPENDED:
        return SyncAction.STOP, "Instance is suspended unexpectedly. Calling the stop API.", logging.WARNING
    if power == PowerState.PAUSED:
        return SyncAction.NOTHING, "Instance is paused unexpectedly. Ignore.", logging.WARNING
    if power == PowerState.NOSTATE:
        return SyncAction.NOTHING, "Instance is unexpectedly not found. Ignore.", logging.WARNING
    return SyncAction.NOTHING, None, logging.DEBUG


@dataclass(frozen=True, slots=True)
class SyncRow:
    """What the power sync reads of one server's record: only the columns it decides on."""

    uuid: str
    host: str | None
    node: str | None
    vm_state: str
    power_state: int
    task_state: str | None


@dataclass(frozen=True, slots=True)
class SyncChange:
    """What the power sync writes back to one server's record."""

    uuid: str
    power_state: int
    task_state: str | None
    updated_at: datetime
