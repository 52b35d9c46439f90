"""decide_row: the power sync's per-row decision, with its shortcut for servers whose record matches."""

from __future__ import annotations

from datetime import datetime

import pytest

from herald.agent.power_sync import decide_row, needs_write
from herald.domain.model import PowerState, VmState
from herald.domain.power_sync import Disagreement, PowerClass, PowerObservation, SyncRow, decide

NOW = datetime(2026, 12, 1, 12, 0, 0)
VM_STATES = [state.value for state in VmState] + ["not-a-vm-state"]


@pytest.mark.parametrize("grace", [0.0, 120.0])
@pytest.mark.parametrize("vm_state", VM_STATES)
@pytest.mark.parametrize("power", [int(p) for p in PowerState])
def test_the_shortcut_decides_as_decide(vm_state: str, power: int, grace: float) -> None:
    row = SyncRow("s1", "compute-1", "n1", vm_state, power, None)
    expected = decide(
        vm_state=vm_state,
        db_power_state=power,
        task_state=None,
        driver_power_state=power,
        watched=None,
        now=NOW,
        grace=grace,
    )
    assert decide_row(row, power, None, "compute-1", NOW, grace) == expected


def test_a_watch_kept_by_another_host_is_not_this_hosts_and_ends() -> None:
    row = SyncRow("s1", "compute-1", "n1", VmState.ACTIVE.value, int(PowerState.RUNNING), None)
    kept = PowerObservation("s1", "compute-2", "req-1", Disagreement("active", PowerClass.OFF, NOW))
    decision = decide_row(row, int(PowerState.RUNNING), kept, "compute-1", NOW, 120.0)
    assert decision.watched is None
    assert needs_write(kept, decision, "compute-1")
    assert not needs_write(None, decision, "compute-1")


def test_a_watch_that_goes_on_writes_nothing() -> None:
    row = SyncRow("s1", "compute-1", "n1", VmState.ACTIVE.value, int(PowerState.SHUTDOWN), None)
    kept = PowerObservation("s1", "compute-1", "req-1", Disagreement("active", PowerClass.OFF, NOW))
    decision = decide_row(row, int(PowerState.SHUTDOWN), kept, "compute-1", NOW, 120.0)
    assert decision.watched == kept.disagreement
    assert not needs_write(kept, decision, "compute-1")
