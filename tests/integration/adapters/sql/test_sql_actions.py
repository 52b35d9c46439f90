"""SqlActionRepository: server actions and their events, as Nova records them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Engine, select

from herald.adapters.sql.tables import server_actions
from herald.adapters.sql.uow import SqlUnitOfWork
from herald.domain.records import ActionEvent, ServerAction

UowFactory = Callable[[], SqlUnitOfWork]
T0 = datetime(2025, 1, 2, 3, 4, 5)


def _action(server: str, request_id: str, minutes: int = 0, action: str = "stop") -> ServerAction:
    return ServerAction(server, action, request_id, "u1", "p1", T0 + timedelta(minutes=minutes))


def _start(uow_factory: UowFactory, *actions: ServerAction) -> None:
    with uow_factory() as uow:
        uow.actions.start(actions)
        uow.commit()


def test_start_batch_and_list_is_newest_first(uow_factory: UowFactory) -> None:
    actions = [_action("s1", "req-1", 0), _action("s1", "req-2", 5, "start"), _action("s2", "req-1", 1)]
    _start(uow_factory, *actions)
    with uow_factory() as uow:
        listed = uow.actions.list_for_server("s1")
        assert uow.actions.list_for_server("nope") == []
    assert all(a.id is not None for a in listed)
    assert len({a.id for a in listed}) == 2
    # Actions with no events get no ids back (none is needed): the rest is as stored.
    for action in listed:
        action.id = None
    assert listed == [actions[1], actions[0]]


def test_start_sets_the_ids_of_a_batch_with_events(uow_factory: UowFactory) -> None:
    actions = [_action("s1", "req-1", 0), _action("s2", "req-1", 1)]
    actions[0].events = [ActionEvent("compute_stop_instance", T0, host="c1")]
    _start(uow_factory, *actions)
    assert all(a.id is not None for a in actions)
    assert len({a.id for a in actions}) == 2


def test_start_nothing(uow_factory: UowFactory) -> None:
    _start(uow_factory)
    with uow_factory() as uow:
        assert uow.actions.list_for_server("s1") == []


def test_start_stores_the_actions_events(uow_factory: UowFactory) -> None:
    action = _action("s1", "req-1")
    action.events = [ActionEvent("compute_stop_instance", T0, host="c1")]
    _start(uow_factory, action)
    with uow_factory() as uow:
        assert uow.actions.get("s1", "req-1") == action


def test_get_unknown(uow_factory: UowFactory) -> None:
    _start(uow_factory, _action("s1", "req-1"))
    with uow_factory() as uow:
        assert uow.actions.get("s1", "req-2") is None
        assert uow.actions.get("s2", "req-1") is None


def test_add_event_finish_event_and_get(uow_factory: UowFactory) -> None:
    _start(uow_factory, _action("s1", "req-1"))
    first = ActionEvent("compute_power_update", T0 + timedelta(seconds=1), host="c1")
    second = ActionEvent("compute_extend_volume", T0 + timedelta(seconds=2), host="c1")
    done = T0 + timedelta(seconds=3)
    with uow_factory() as uow:
        uow.actions.add_event("s1", "req-1", first)
        uow.actions.add_event("s1", "req-1", second)
        uow.actions.finish_event(
            "s1", "req-1", ActionEvent("compute_power_update", first.start_time, finish_time=done, result="Success")
        )
        uow.commit()
    with uow_factory() as uow:
        got = uow.actions.get("s1", "req-1")
    assert got is not None
    assert got.message is None
    first.finish_time, first.result = done, "Success"
    assert got.events == [second, first]  # newest first, as Nova lists them


def test_finish_event_error_marks_the_action(uow_factory: UowFactory) -> None:
    _start(uow_factory, _action("s1", "req-1"))
    with uow_factory() as uow:
        uow.actions.add_event("s1", "req-1", ActionEvent("compute_stop_instance", T0))
        uow.actions.finish_event(
            "s1",
            "req-1",
            ActionEvent("compute_stop_instance", T0, finish_time=T0, result="Error", traceback="tb", details="why"),
        )
        uow.commit()
    with uow_factory() as uow:
        got = uow.actions.get("s1", "req-1")
    assert got is not None
    assert got.message == "Error"
    assert got.events == [
        ActionEvent("compute_stop_instance", T0, finish_time=T0, result="Error", traceback="tb", details="why")
    ]


def test_finish_event_touches_only_the_newest_event_of_that_name(uow_factory: UowFactory) -> None:
    _start(uow_factory, _action("s1", "req-1"))
    older = ActionEvent("compute_power_update", T0)
    newer = ActionEvent("compute_power_update", T0 + timedelta(seconds=1))
    with uow_factory() as uow:
        uow.actions.add_event("s1", "req-1", older)
        uow.actions.add_event("s1", "req-1", newer)
        uow.actions.finish_event(
            "s1", "req-1", ActionEvent("compute_power_update", T0, finish_time=T0, result="Success")
        )
        uow.commit()
    with uow_factory() as uow:
        got = uow.actions.get("s1", "req-1")
    assert got is not None
    assert [(e.start_time, e.result) for e in got.events] == [(newer.start_time, "Success"), (T0, None)]


def test_events_for_unknown_actions_are_no_ops(uow_factory: UowFactory) -> None:
    _start(uow_factory, _action("s1", "req-1"))
    with uow_factory() as uow:
        uow.actions.add_event("s1", "req-x", ActionEvent("compute_stop_instance", T0))
        uow.actions.finish_event("s1", "req-x", ActionEvent("compute_stop_instance", T0, finish_time=T0))
        uow.actions.finish_event("s1", "req-1", ActionEvent("never_started", T0, finish_time=T0, result="Error"))
        uow.commit()
    with uow_factory() as uow:
        got = uow.actions.get("s1", "req-1")
    assert got is not None
    assert (got.events, got.message) == ([], None)


def test_newest_action_wins_for_a_repeated_request_id(uow_factory: UowFactory) -> None:
    old, new = _action("s1", "req-1", 0, "stop"), _action("s1", "req-1", 1, "start")
    _start(uow_factory, old, new)
    with uow_factory() as uow:
        uow.actions.add_event("s1", "req-1", ActionEvent("compute_start_instance", T0))
        uow.commit()
    with uow_factory() as uow:
        got = uow.actions.get("s1", "req-1")
    assert got is not None
    assert (got.action, got.start_time, len(got.events)) == ("start", new.start_time, 1)


def test_add_events_of_a_batch_land_in_order_on_each_newest_action(uow_factory: UowFactory, engine: Engine) -> None:
    _start(uow_factory, _action("s1", "req-1"), _action("s2", "req-2"), _action("s2", "req-2", 1, "start"))
    steps = [
        ("s1", "req-1", ActionEvent("compute_power_update", T0 + timedelta(seconds=1), host="c1", details="one")),
        ("s2", "req-2", ActionEvent("compute_power_update", T0 + timedelta(seconds=2), host="c1")),
        ("s9", "req-9", ActionEvent("compute_power_update", T0 + timedelta(seconds=3), host="c1")),
        ("s1", "req-1", ActionEvent("compute_extend_volume", T0 + timedelta(seconds=4), host="c1")),
    ]
    with uow_factory() as uow:
        uow.actions.add_events(steps)
        uow.commit()
    with uow_factory() as uow:
        first, second = uow.actions.get("s1", "req-1"), uow.actions.get("s2", "req-2")
        older = uow.actions.list_for_server("s2")[-1]
        assert older.id is not None
        assert uow.actions.get("s9", "req-9") is None
    assert first is not None
    assert second is not None
    assert first.events == [steps[3][2], steps[0][2]]  # newest first
    assert (second.action, second.events) == ("start", [steps[1][2]])
    with engine.connect() as connection:
        touched = dict(connection.execute(select(server_actions.c.id, server_actions.c.updated_at)).all())
    assert touched == {first.id: steps[3][2].start_time, second.id: steps[1][2].start_time, older.id: None}
