"""The power sync decision table, row by row (reference section 6.3)."""

from __future__ import annotations

import pytest

from herald.domain.model import PowerState as P
from herald.domain.model import VmState as V
from herald.domain.power_sync import SyncAction, decide

ALL_POWERS = [P.NOSTATE, P.RUNNING, P.PAUSED, P.SHUTDOWN, P.CRASHED, P.SUSPENDED]
NOTHING, STOP, FORCE = SyncAction.NOTHING, SyncAction.STOP, SyncAction.FORCE_STOP


@pytest.mark.parametrize(
    ("vm_state", "driver", "action"),
    [
        *[(vm, p, NOTHING) for vm in (V.BUILDING, V.RESCUED, V.RESIZED, V.SUSPENDED, V.ERROR) for p in ALL_POWERS],
        (V.ACTIVE, P.RUNNING, NOTHING),
        (V.ACTIVE, P.SHUTDOWN, STOP),
        (V.ACTIVE, P.CRASHED, STOP),
        (V.ACTIVE, P.SUSPENDED, STOP),
        (V.ACTIVE, P.PAUSED, NOTHING),
        (V.ACTIVE, P.NOSTATE, NOTHING),
        (V.STOPPED, P.RUNNING, FORCE),
        (V.STOPPED, P.PAUSED, FORCE),
        (V.STOPPED, P.SUSPENDED, FORCE),
        (V.STOPPED, P.NOSTATE, NOTHING),
        (V.STOPPED, P.SHUTDOWN, NOTHING),
        (V.STOPPED, P.CRASHED, NOTHING),
        (V.PAUSED, P.SHUTDOWN, FORCE),
        (V.PAUSED, P.CRASHED, FORCE),
        *[(V.PAUSED, p, NOTHING) for p in (P.NOSTATE, P.RUNNING, P.PAUSED, P.SUSPENDED)],
        *[(vm, p, NOTHING) for vm in (V.SOFT_DELETED, V.DELETED) for p in ALL_POWERS],
        *[(vm, p, NOTHING) for vm in (V.SHELVED, V.SHELVED_OFFLOADED) for p in ALL_POWERS],
    ],
)
def test_decision_table(vm_state: V, driver: P, action: SyncAction) -> None:
    for db_power in ALL_POWERS:
        decision = decide(vm_state=vm_state, db_power_state=db_power, task_state=None, driver_power_state=driver)
        assert decision.action is action
        # The hypervisor always wins for power_state.
        assert decision.power_state == (None if db_power == driver else driver)


@pytest.mark.parametrize("task_state", ["powering-off", "powering-on", "spawning", "deleting"])
def test_a_pending_task_skips_the_server(task_state: str) -> None:
    decision = decide(vm_state=V.ACTIVE, db_power_state=P.RUNNING, task_state=task_state, driver_power_state=P.SHUTDOWN)
    assert decision.action is NOTHING
    assert decision.power_state is None


@pytest.mark.parametrize(
    ("vm_state", "driver", "message"),
    [
        (V.ACTIVE, P.SHUTDOWN, "Instance shutdown by itself. Calling the stop API."),
        (V.ACTIVE, P.SUSPENDED, "Instance is suspended unexpectedly. Calling the stop API."),
        (V.ACTIVE, P.PAUSED, "Instance is paused unexpectedly. Ignore."),
        (V.ACTIVE, P.NOSTATE, "Instance is unexpectedly not found. Ignore."),
        (V.STOPPED, P.RUNNING, "Instance is not stopped. Calling the stop API."),
        (V.PAUSED, P.CRASHED, "Paused instance shutdown by itself. Calling the stop API."),
        (V.SOFT_DELETED, P.RUNNING, "Instance is not (soft-)deleted."),
    ],
)
def test_warnings_say_why(vm_state: V, driver: P, message: str) -> None:
    decision = decide(vm_state=vm_state, db_power_state=P.RUNNING, task_state=None, driver_power_state=driver)
    assert decision.message == message
