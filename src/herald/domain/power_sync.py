"""The power sync's decision table: what to do when the driver and the record disagree.

One pure function, :func:`decide`, row by row as Nova's ``_sync_instance_power_state``
decides: the hypervisor always wins for ``power_state``; ``vm_state`` is reconciled by
stopping a server that stopped by itself and force-stopping one that runs when compute
says it is stopped.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

from herald.domain.model import PowerState, VmState


class SyncAction(enum.StrEnum):
    NOTHING = "nothing"
    STOP = "stop"  # the normal stop path (checks vm_state), action "stop"
    FORCE_STOP = "force-stop"  # stop whatever the vm_state, action "stop"


@dataclass(frozen=True, slots=True)
class SyncDecision:
    """What one sync does to one server."""

    action: SyncAction
    power_state: int | None = None  # the record's new power_state; None: it already matches
    message: str | None = None  # why, for the log (with the level below)
    level: int = logging.INFO


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


def decide(*, vm_state: str, db_power_state: int, task_state: str | None, driver_power_state: int) -> SyncDecision:
    """The decision for one server, from its record and what the driver reports now."""
    if task_state is not None:
        return SKIP_TASK
    new_power = driver_power_state if driver_power_state != db_power_state else None
    action, message, level = _reconcile(vm_state, driver_power_state)
    return SyncDecision(action, new_power, message, level)


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
