"""The power sync decision table, row by row (Nova's _sync_instance_power_state)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from herald.domain.model import PowerState as P
from herald.domain.model import VmState as V
from herald.domain.power_sync import Disagreement, PowerClass, SyncAction, SyncDecision, decide

ALL_POWERS = [P.NOSTATE, P.RUNNING, P.PAUSED, P.SHUTDOWN, P.CRASHED, P.SUSPENDED]
NOTHING, STOP, FORCE, WAIT = SyncAction.NOTHING, SyncAction.STOP, SyncAction.FORCE_STOP, SyncAction.WAIT
T0 = datetime(2026, 12, 1, 6, 0, 0)
GRACE = 120.0


def _decide(
    vm_state: str,
    driver: int,
    *,
    db_power: int = P.RUNNING,
    task_state: str | None = None,
    watched: Disagreement | None = None,
    now: datetime = T0,
    grace: float = 0,
) -> SyncDecision:
    return decide(
        vm_state=vm_state,
        db_power_state=db_power,
        task_state=task_state,
        driver_power_state=driver,
        watched=watched,
        now=now,
        grace=grace,
    )


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
    """With grace 0, Nova's table exactly: nothing is ever watched, even with an old observation kept."""
    old = Disagreement(vm_state, PowerClass.ON, T0 - timedelta(seconds=5))
    for db_power in ALL_POWERS:
        for watched in (None, old):
            decision = _decide(vm_state, driver, db_power=db_power, watched=watched)
            assert decision.action is action
            # The hypervisor always wins for power_state.
            assert decision.power_state == (None if db_power == driver else driver)
            assert decision.watched is None


@pytest.mark.parametrize("task_state", ["powering-off", "powering-on", "spawning", "deleting"])
def test_a_pending_task_skips_the_server(task_state: str) -> None:
    watched = Disagreement(V.ACTIVE, PowerClass.OFF, T0 - timedelta(seconds=5))
    for kept in (None, watched):
        decision = _decide(V.ACTIVE, P.SHUTDOWN, task_state=task_state, watched=kept, grace=GRACE)
        assert decision.action is NOTHING
        assert decision.power_state is None
        # The task will change the record: what is watched stays as it is until the next pass judges it.
        assert decision.watched is kept


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
    decision = _decide(vm_state, driver)
    assert decision.message == message


# The acting rows (STOP / FORCE_STOP above), each with the power class that names its disagreement.
ACTING = [
    (V.ACTIVE, P.SHUTDOWN, PowerClass.OFF, STOP),
    (V.ACTIVE, P.CRASHED, PowerClass.OFF, STOP),
    (V.ACTIVE, P.SUSPENDED, PowerClass.ON, STOP),
    (V.STOPPED, P.RUNNING, PowerClass.ON, FORCE),
    (V.STOPPED, P.PAUSED, PowerClass.ON, FORCE),
    (V.STOPPED, P.SUSPENDED, PowerClass.ON, FORCE),
    (V.PAUSED, P.SHUTDOWN, PowerClass.OFF, FORCE),
    (V.PAUSED, P.CRASHED, PowerClass.OFF, FORCE),
]


@pytest.mark.parametrize(("vm_state", "driver", "klass", "action"), ACTING)
def test_a_new_disagreement_is_watched_from_now_and_not_acted_on(
    vm_state: V, driver: P, klass: PowerClass, action: SyncAction
) -> None:
    decision = _decide(vm_state, driver, db_power=P.NOSTATE, grace=GRACE)
    assert decision.action is WAIT
    assert decision.watched == Disagreement(vm_state, klass, T0)
    assert decision.power_state == driver  # recorded at once all the same
    assert decision.message is not None
    assert "Calling the stop API" not in decision.message


@pytest.mark.parametrize(("vm_state", "driver", "klass", "action"), ACTING)
@pytest.mark.parametrize(
    ("age", "acts"),
    [(0.0, False), (1.0, False), (GRACE - 0.001, False), (GRACE, True), (GRACE + 1, True), (10 * GRACE, True)],
)
def test_the_same_disagreement_is_acted_on_once_it_has_lasted_the_grace(
    vm_state: V, driver: P, klass: PowerClass, action: SyncAction, age: float, acts: bool
) -> None:
    watched = Disagreement(vm_state, klass, T0)
    later = T0 + timedelta(seconds=age)
    decision = _decide(vm_state, driver, db_power=driver, watched=watched, now=later, grace=GRACE)
    if acts:
        assert decision.action is action
        assert decision.watched is None  # acting ends the watch
    else:
        assert decision.action is WAIT
        assert decision.watched is watched  # the first sighting is kept, not moved
        assert decision.power_state is None


@pytest.mark.parametrize(
    ("vm_state", "driver", "old"),
    [
        # The record changed (another vm_state), the machine did not.
        (V.ACTIVE, P.SHUTDOWN, Disagreement(V.PAUSED, PowerClass.OFF, T0)),
        (V.STOPPED, P.RUNNING, Disagreement(V.ACTIVE, PowerClass.ON, T0)),
        # The machine changed class under the same record.
        (V.ACTIVE, P.SHUTDOWN, Disagreement(V.ACTIVE, PowerClass.ON, T0)),
        (V.STOPPED, P.RUNNING, Disagreement(V.STOPPED, PowerClass.UNKNOWN, T0)),
    ],
)
def test_another_disagreement_starts_the_grace_again(vm_state: V, driver: P, old: Disagreement) -> None:
    now = T0 + timedelta(seconds=10 * GRACE)
    decision = _decide(vm_state, driver, watched=old, now=now, grace=GRACE)
    assert decision.action is WAIT
    assert decision.watched is not None
    assert (decision.watched.vm_state, decision.watched.since) == (vm_state, now)


@pytest.mark.parametrize(
    ("vm_state", "first", "then", "action"),
    [
        (V.STOPPED, P.RUNNING, P.PAUSED, FORCE),
        (V.STOPPED, P.RUNNING, P.SUSPENDED, FORCE),
        (V.ACTIVE, P.SHUTDOWN, P.CRASHED, STOP),
        (V.PAUSED, P.CRASHED, P.SHUTDOWN, FORCE),
    ],
)
def test_two_readings_of_one_class_are_the_same_disagreement(
    vm_state: V, first: P, then: P, action: SyncAction
) -> None:
    watched = _decide(vm_state, first, grace=GRACE).watched
    assert watched is not None
    decision = _decide(vm_state, then, watched=watched, now=T0 + timedelta(seconds=GRACE), grace=GRACE)
    assert decision.action is action


@pytest.mark.parametrize(
    ("vm_state", "driver"),
    [(V.ACTIVE, P.RUNNING), (V.STOPPED, P.SHUTDOWN), (V.STOPPED, P.NOSTATE), (V.PAUSED, P.PAUSED)],
)
def test_a_disagreement_that_went_away_is_no_longer_watched(vm_state: V, driver: P) -> None:
    watched = Disagreement(V.STOPPED, PowerClass.ON, T0)
    decision = _decide(vm_state, driver, watched=watched, now=T0 + timedelta(seconds=10 * GRACE), grace=GRACE)
    assert decision.action is NOTHING
    assert decision.watched is None


@pytest.mark.parametrize(("vm_state", "driver"), [(V.ACTIVE, P.PAUSED), (V.ACTIVE, P.NOSTATE), (V.ERROR, P.RUNNING)])
def test_rows_that_never_act_are_never_watched(vm_state: V, driver: P) -> None:
    decision = _decide(vm_state, driver, grace=GRACE)
    assert decision.action is NOTHING
    assert decision.watched is None
