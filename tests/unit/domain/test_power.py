"""power-update's transition table (Nova 34 with Ironic), with Herald's one widening."""

from __future__ import annotations

import pytest

from herald.domain.events import PowerTag
from herald.domain.model import PowerState as P
from herald.domain.model import VmState as V
from herald.domain.power import power_update_transition

ON, OFF = PowerTag.POWER_ON, PowerTag.POWER_OFF


@pytest.mark.parametrize(
    ("target", "vm_state", "power", "expected"),
    [
        (OFF, V.ACTIVE, P.RUNNING, (V.STOPPED, P.SHUTDOWN)),
        (ON, V.STOPPED, P.SHUTDOWN, (V.ACTIVE, P.RUNNING)),
        # Herald: a sync already recorded the machine's new power; vm_state follows the event.
        (OFF, V.ACTIVE, P.SHUTDOWN, (V.STOPPED, P.SHUTDOWN)),
        (ON, V.STOPPED, P.RUNNING, (V.ACTIVE, P.RUNNING)),
        # Already there, or elsewhere: no-op.
        (OFF, V.STOPPED, P.SHUTDOWN, None),
        (ON, V.ACTIVE, P.RUNNING, None),
        (OFF, V.ACTIVE, P.PAUSED, None),
        (ON, V.STOPPED, P.CRASHED, None),
        *[
            (t, vm, p, None)
            for t in (ON, OFF)
            for vm in (V.ERROR, V.PAUSED, V.SUSPENDED, V.SHELVED, V.BUILDING)
            for p in (P.RUNNING, P.SHUTDOWN)
        ],
    ],
)
def test_transition(target: PowerTag, vm_state: V, power: P, expected: tuple[V, P] | None) -> None:
    transition = power_update_transition(target, vm_state=vm_state, power_state=power, task_state=None)
    if expected is None:
        assert transition is None
    else:
        assert transition is not None
        assert (transition.vm_state, transition.power_state) == expected


@pytest.mark.parametrize("task_state", ["powering-off", "powering-on", "spawning", "migrating"])
def test_any_task_makes_it_a_noop(task_state: str) -> None:
    assert power_update_transition(OFF, vm_state=V.ACTIVE, power_state=P.RUNNING, task_state=task_state) is None
    assert power_update_transition(ON, vm_state=V.STOPPED, power_state=P.SHUTDOWN, task_state=task_state) is None
