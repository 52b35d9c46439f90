"""power-update's transition rule (Nova with a bare-metal driver)."""

from __future__ import annotations

from dataclasses import dataclass

from herald.domain.events import PowerTag
from herald.domain.model import PowerState, TaskState, VmState


@dataclass(frozen=True, slots=True)
class PowerTransition:
    """The states a power-update moves a server through."""

    task_state: TaskState  # set while the driver is told
    vm_state: VmState
    power_state: PowerState


# target -> (required vm_state, power_states it may have, transition)
_TRANSITIONS: dict[PowerTag, tuple[VmState, frozenset[PowerState], PowerTransition]] = {
    PowerTag.POWER_ON: (
        VmState.STOPPED,
        frozenset({PowerState.SHUTDOWN, PowerState.RUNNING}),
        PowerTransition(TaskState.POWERING_ON, VmState.ACTIVE, PowerState.RUNNING),
    ),
    PowerTag.POWER_OFF: (
        VmState.ACTIVE,
        frozenset({PowerState.RUNNING, PowerState.SHUTDOWN}),
        PowerTransition(TaskState.POWERING_OFF, VmState.STOPPED, PowerState.SHUTDOWN),
    ),
}


def power_update_transition(
    target: PowerTag, *, vm_state: str, power_state: int, task_state: str | None
) -> PowerTransition | None:
    """The transition ``target`` causes from these states, or None when the event is a no-op.

    Only a server at rest (no task) in the opposite vm_state moves: POWER_OFF takes active to
    stopped/SHUTDOWN, POWER_ON takes stopped to active/RUNNING. Nova also requires the record's
    power_state to be the opposite one; Herald also accepts the target power_state there,
    because that is what a power sync that ran just before the event recorded (the hypervisor
    wins for power_state): refusing would leave vm_state disagreeing with the machine.
    """
    need_vm, powers, transition = _TRANSITIONS[target]
    if task_state is None and vm_state == need_vm and power_state in powers:
        return transition
    return None
