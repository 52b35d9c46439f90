"""The waiter registry: Nova's InstanceEvents / wait_for_instance_event behaviour plus Herald's fixes."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

import pytest

from herald.agent.waiters import Delivery, EventWait, Resolution, Waiter, WaiterRegistry
from herald.domain.errors import EventWaitFailed, EventWaitTimeout, ShuttingDown
from herald.domain.records import EventEnvelope

SERVER = "8c4e9a1e-6a8b-4d1f-9e55-0f0c3c3d8a11"
OTHER = "2f1d7b7c-1d6e-4b57-8a6b-3e5f0a9c2b22"
PLUGGED = "network-vif-plugged"
UNPLUGGED = "network-vif-unplugged"
LOGGER = "herald.agent.waiters"
TTL = 300.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_event(
    tag: str | None = "p1", *, name: str = PLUGGED, status: str = "completed", server: str = SERVER, uuid: str = "e1"
) -> EventEnvelope:
    return EventEnvelope(
        uuid=uuid, request_id="req-1", server_uuid=server, name=name, tag=tag, status=status, host="compute1"
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def registry(clock: FakeClock) -> WaiterRegistry:
    return WaiterRegistry(clock=clock, early_buffer_size=3, early_ttl=TTL)


async def wait_through(
    registry: WaiterRegistry,
    keys: Sequence[tuple[str, str | None]],
    body: Callable[[EventWait], object] = lambda wait: None,
    *,
    timeout: float,  # noqa: ASYNC109 (passed through to wait_for_events)
) -> EventWait:
    """Run ``body`` inside ``wait_for_events`` for SERVER, with the default error callback."""
    async with registry.wait_for_events(SERVER, keys, timeout=timeout) as wait:
        body(wait)
    return wait


def later(action: Callable[[], object]) -> None:
    """Run ``action`` once the current task next yields to the loop (inside a wait)."""
    asyncio.get_running_loop().call_soon(action)


# --- prepare / pop / clear ---------------------------------------------------------------


async def test_prepare_registers_a_pending_waiter(registry: WaiterRegistry) -> None:
    waiter = registry.prepare(SERVER, PLUGGED, "p1")
    assert (waiter.server_uuid, waiter.key, waiter.is_set()) == (SERVER, "network-vif-plugged-p1", False)
    assert registry.pop(SERVER, PLUGGED, "p1") is waiter


async def test_prepare_again_returns_the_same_object(registry: WaiterRegistry) -> None:
    assert registry.prepare(SERVER, PLUGGED, "p1") is registry.prepare(SERVER, PLUGGED, "p1")
    assert registry.prepare(SERVER, PLUGGED, "p2") is not registry.prepare(SERVER, PLUGGED, "p1")


async def test_pop_removes_the_waiter(registry: WaiterRegistry) -> None:
    registry.prepare(SERVER, PLUGGED, "p1")
    assert registry.pop(SERVER, PLUGGED, "p1") is not None
    assert registry.pop(SERVER, PLUGGED, "p1") is None
    assert registry.pop(OTHER, PLUGGED, "p1") is None


async def test_clear_returns_waiters_by_event_key_and_wakes_them(registry: WaiterRegistry) -> None:
    untagged = registry.prepare(SERVER, "test-event", None)
    tagged = registry.prepare(SERVER, PLUGGED, "p1")
    other = registry.prepare(OTHER, PLUGGED, "p1")

    cleared = registry.clear(SERVER)

    assert cleared == {"test-event": untagged, "network-vif-plugged-p1": tagged}  # no Nova "-None"
    for waiter in cleared.values():
        assert waiter.resolution is Resolution.CLEARED
        assert waiter.event is not None
        assert (waiter.event.status, waiter.event.uuid, waiter.event.name) == ("failed", "", waiter.name)
        assert await waiter.wait(0) is waiter.event
    assert registry.pop(SERVER, PLUGGED, "p1") is None
    assert registry.pop(OTHER, PLUGGED, "p1") is other
    assert registry.clear(SERVER) == {}


async def test_clear_drops_the_servers_early_events(registry: WaiterRegistry) -> None:
    mine, theirs = make_event("p1"), make_event("p1", server=OTHER, uuid="e2")
    registry.deliver(mine)
    registry.deliver(theirs)

    registry.clear(SERVER)

    assert registry.prepare(SERVER, PLUGGED, "p1").is_set() is False
    assert registry.prepare(OTHER, PLUGGED, "p1").event == theirs
    assert registry.expire() == [mine]  # reported once, so the agent can journal it
    assert registry.expire() == []


# --- deliver -----------------------------------------------------------------------------


async def test_deliver_wakes_the_matching_waiter_with_the_whole_event(registry: WaiterRegistry) -> None:
    waiter = registry.prepare(SERVER, PLUGGED, "p1")
    event = make_event("p1", status="failed")

    assert registry.deliver(event) is Delivery.WOKE_WAITER

    assert (waiter.event, waiter.resolution) == (event, Resolution.EVENT)
    assert registry.pop(SERVER, PLUGGED, "p1") is None


@pytest.mark.parametrize("task_state", ["deleting", "migrating"])
async def test_unmatched_unplug_during_expected_task_logs_debug(
    clock: FakeClock, caplog: pytest.LogCaptureFixture, task_state: str
) -> None:
    registry = WaiterRegistry(clock=clock, early_buffer_size=0, early_ttl=TTL)
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        registry.deliver(make_event("p1", name=UNPLUGGED), vm_state="active", task_state=task_state)

    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert f"[server {SERVER}] Received event network-vif-unplugged-p1 for instance with task_state {task_state}." in [
        r.getMessage() for r in caplog.records
    ]


async def test_unmatched_event_kept_for_a_waiter_is_not_a_warning(
    registry: WaiterRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        assert registry.deliver(make_event("p1"), vm_state="active", task_state=None) is Delivery.BUFFERED
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_unmatched_event_dropped_logs_the_unexpected_warning(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    registry = WaiterRegistry(clock=clock, early_buffer_size=0, early_ttl=TTL)
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        assert registry.deliver(make_event("p1"), vm_state="active", task_state=None) is Delivery.DISCARDED

    warnings = [(r.levelno, r.getMessage()) for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == [
        (
            logging.WARNING,
            f"[server {SERVER}] Received unexpected event network-vif-plugged-p1 "
            "for instance with vm_state active and task_state None.",
        )
    ]


# --- cancel_all --------------------------------------------------------------------------


async def test_cancel_all_wakes_every_waiter_as_failed_and_is_idempotent(registry: WaiterRegistry) -> None:
    waiters = [registry.prepare(SERVER, PLUGGED, "p1"), registry.prepare(OTHER, "test-event", None)]

    registry.cancel_all()
    registry.cancel_all()

    for waiter in waiters:
        event = await waiter.wait(0.05)
        assert event is not None
        assert (event.status, event.server_uuid, waiter.resolution) == ("failed", waiter.server_uuid, "shutdown")


async def test_after_cancel_all_nothing_new_is_accepted(registry: WaiterRegistry) -> None:
    registry.deliver(make_event("p9"))
    registry.cancel_all()

    with pytest.raises(ShuttingDown):
        registry.prepare(SERVER, PLUGGED, "p1")
    assert registry.pop(SERVER, PLUGGED, "p1") is None
    assert registry.clear(SERVER) == {}
    assert registry.deliver(make_event("p1", uuid="e2")) is Delivery.DISCARDED
    assert [e.uuid for e in registry.expire()] == ["e1"]  # the buffered one is reported, not lost


# --- Waiter: ThreadingEventWithResult semantics ------------------------------------------


async def test_waiter_starts_unset_and_a_wait_timeout_returns_none() -> None:
    waiter = Waiter(SERVER, PLUGGED, "p1")
    assert waiter.is_set() is False
    assert await waiter.wait(0) is None
    assert await waiter.wait(0.01) is None


async def test_waiter_wait_returns_the_result() -> None:
    waiter = Waiter(SERVER, PLUGGED, "p1")
    later(lambda: waiter.set(make_event()))
    assert await waiter.wait(0.05) == make_event()
    assert await waiter.wait() == make_event()


async def test_waiter_same_result_again_is_fine_a_different_one_is_not() -> None:
    waiter = Waiter(SERVER, PLUGGED, "p1")
    waiter.set(make_event())
    waiter.set(make_event())
    with pytest.raises(ValueError, match="different result"):
        waiter.set(make_event(status="failed"))
    assert waiter.event == make_event()


async def test_waiter_wakes_every_task_waiting_on_it() -> None:
    waiter = Waiter(SERVER, PLUGGED, "p1")
    tasks = [asyncio.create_task(waiter.wait(0.05)) for _ in range(3)]
    await asyncio.sleep(0)
    waiter.set(make_event())
    assert await asyncio.gather(*tasks) == [make_event()] * 3


async def test_waiter_racing_setters_exactly_one_wins() -> None:
    waiter = Waiter(SERVER, PLUGGED, "p1")

    async def setter(status: str) -> None:
        waiter.set(make_event(status=status))

    results = await asyncio.gather(setter("completed"), setter("failed"), return_exceptions=True)

    assert [type(r) for r in results].count(ValueError) == 1
    assert waiter.event in (make_event(status="completed"), make_event(status="failed"))


# --- Herald: the early buffer ------------------------------------------------------------


async def test_an_event_before_prepare_is_kept_for_its_waiter(registry: WaiterRegistry, clock: FakeClock) -> None:
    event = make_event("p1")
    assert registry.deliver(event) is Delivery.BUFFERED
    clock.advance(TTL)

    waiter = registry.prepare(SERVER, PLUGGED, "p1")

    assert (waiter.event, waiter.resolution) == (event, Resolution.EVENT)
    assert registry.prepare(SERVER, PLUGGED, "p1").is_set() is False  # the buffered event was consumed
    assert registry.expire() == []


async def test_early_events_expire_after_the_ttl(registry: WaiterRegistry, clock: FakeClock) -> None:
    old, young = make_event("p1", uuid="old"), make_event("p2", uuid="young")
    registry.deliver(old)
    clock.advance(10)
    registry.deliver(young)
    clock.advance(TTL - 5)

    assert registry.expire() == [old]
    assert registry.expire(clock.now + 6) == [young]
    assert registry.prepare(SERVER, PLUGGED, "p1").is_set() is False


async def test_an_expired_early_event_never_resolves_a_waiter(registry: WaiterRegistry, clock: FakeClock) -> None:
    registry.deliver(make_event("p1"))
    clock.advance(TTL + 1)

    assert registry.prepare(SERVER, PLUGGED, "p1").is_set() is False
    assert registry.expire() == [make_event("p1")]


async def test_the_size_bound_evicts_the_oldest_first(registry: WaiterRegistry) -> None:
    events = [make_event(f"p{i}", uuid=f"e{i}", server=SERVER if i % 2 else OTHER) for i in range(5)]
    for event in events:
        assert registry.deliver(event) is Delivery.BUFFERED

    assert registry.expire() == events[:2]
    assert [registry.prepare(e.server_uuid, e.name, e.tag).event for e in events] == [None, None, *events[2:]]


async def test_a_duplicate_early_event_replaces_the_older_one(registry: WaiterRegistry) -> None:
    first, second = make_event("p1", uuid="e1", status="failed"), make_event("p1", uuid="e2")
    registry.deliver(first)
    registry.deliver(second)

    assert registry.prepare(SERVER, PLUGGED, "p1").event == second
    assert registry.expire() == [first]


async def test_buffer_size_zero_discards_unmatched_events(clock: FakeClock) -> None:
    registry = WaiterRegistry(clock=clock, early_buffer_size=0, early_ttl=TTL)
    assert registry.deliver(make_event("p1")) is Delivery.DISCARDED
    assert registry.prepare(SERVER, PLUGGED, "p1").is_set() is False
    assert registry.expire() == []


# --- wait_for_events ---------------------------------------------------------------------

KEYS = [(PLUGGED, "a"), (PLUGGED, "b")]


async def test_wait_registers_before_the_body_and_waits_for_all(registry: WaiterRegistry) -> None:
    called: list[str] = []
    async with registry.wait_for_events(SERVER, KEYS, timeout=0.05, error_callback=lambda k, e: called.append(k)):
        assert registry.prepare(SERVER, PLUGGED, "a").is_set() is False  # already registered
        later(lambda: registry.deliver(make_event("b")))
        later(lambda: registry.deliver(make_event("a")))

    assert called == []
    assert registry.pop(SERVER, PLUGGED, "a") is None
    assert registry.pop(SERVER, PLUGGED, "b") is None


async def test_wait_uses_events_that_came_before_it(registry: WaiterRegistry) -> None:
    registry.deliver(make_event("a"))
    async with registry.wait_for_events(SERVER, KEYS, timeout=0.05):
        registry.deliver(make_event("b"))


async def test_wait_without_events_returns_at_once(registry: WaiterRegistry) -> None:
    async with registry.wait_for_events(SERVER, [], timeout=0.05) as wait:
        assert wait.waiters == {}


async def test_wait_timeout_zero_registers_nothing_and_does_not_wait(registry: WaiterRegistry) -> None:
    async with registry.wait_for_events(SERVER, KEYS, timeout=0) as wait:
        assert registry.pop(SERVER, PLUGGED, "a") is None
    assert wait.waiters == {}


async def test_exit_wait_early_leaves_the_body_and_skips_those_events(registry: WaiterRegistry) -> None:
    reached_end = False
    async with registry.wait_for_events(SERVER, [*KEYS, (PLUGGED, "c")], timeout=0.05) as wait:
        registry.deliver(make_event("c"))
        wait.exit_wait_early([(PLUGGED, "a"), (PLUGGED, "b")])
        reached_end = True  # pragma: no cover

    assert reached_end is False
    assert registry.pop(SERVER, PLUGGED, "a") is None  # not left registered


async def test_wait_timeout_names_each_events_state(
    registry: WaiterRegistry, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    keys = [(PLUGGED, tag) for tag in "abcde"]

    def deliver_b_after_1_5_seconds() -> None:
        clock.advance(1.5)
        registry.deliver(make_event("b"))

    def body(wait: EventWait) -> None:
        registry.deliver(make_event("d"))
        later(deliver_b_after_1_5_seconds)
        wait.exit_wait_early([(PLUGGED, "a")])

    with caplog.at_level(logging.WARNING, logger=LOGGER), pytest.raises(EventWaitTimeout) as err:
        await wait_through(registry, keys, body, timeout=1.55)

    message = (
        "Timeout waiting for [network-vif-plugged-a, network-vif-plugged-b, network-vif-plugged-c, "
        f"network-vif-plugged-d, network-vif-plugged-e] for server {SERVER}. Event states are: "
        "network-vif-plugged-a: received early, network-vif-plugged-b: received after waiting 1.50 seconds, "
        "network-vif-plugged-c: timed out after 1.50 seconds, network-vif-plugged-d: received but not processed, "
        "network-vif-plugged-e: expected but not received"
    )
    assert str(err.value) == message
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [(logging.WARNING, message)]


async def test_one_deadline_for_the_whole_set(registry: WaiterRegistry, clock: FakeClock) -> None:
    def deliver_a_after_the_deadline() -> None:
        clock.advance(11)
        registry.deliver(make_event("a"))

    started = time.monotonic()
    with pytest.raises(EventWaitTimeout, match=r"b: timed out after 11\.00 seconds"):
        async with registry.wait_for_events(SERVER, KEYS, timeout=10):
            later(deliver_a_after_the_deadline)

    assert time.monotonic() - started < 1  # b's deadline had passed: no wait at all


async def test_an_arrived_event_is_taken_even_past_the_deadline(registry: WaiterRegistry, clock: FakeClock) -> None:
    def deliver_both_after_the_deadline() -> None:
        clock.advance(11)
        registry.deliver(make_event("a"))
        registry.deliver(make_event("b"))

    async with registry.wait_for_events(SERVER, KEYS, timeout=10):
        later(deliver_both_after_the_deadline)


async def test_mixed_early_and_completed_events(registry: WaiterRegistry) -> None:
    async with registry.wait_for_events(SERVER, [*KEYS, (PLUGGED, "c")], timeout=0.05) as wait:
        later(lambda: registry.deliver(make_event("c")))
        later(lambda: registry.deliver(make_event("a")))
        wait.exit_wait_early([(PLUGGED, "b")])


async def test_a_failed_event_raises_with_the_default_callback(registry: WaiterRegistry) -> None:
    registry.deliver(make_event("b"))
    with pytest.raises(EventWaitFailed, match="network-vif-plugged-a"):
        await wait_through(registry, KEYS, lambda wait: registry.deliver(make_event("a", status="failed")), timeout=1)


@pytest.mark.parametrize("status", ["failed", "in-progress"])
async def test_the_callback_gets_the_key_and_event_and_none_keeps_waiting(
    registry: WaiterRegistry, status: str
) -> None:
    calls: list[tuple[str, EventEnvelope]] = []
    with pytest.raises(EventWaitTimeout, match="b: timed out"):
        async with registry.wait_for_events(
            SERVER, KEYS, timeout=0.05, error_callback=lambda k, e: calls.append((k, e))
        ):
            registry.deliver(make_event("a", status=status))

    assert calls == [("network-vif-plugged-a", make_event("a", status=status))]


async def test_a_callback_returning_false_stops_the_wait(registry: WaiterRegistry) -> None:
    calls: list[str] = []

    def stop(key: str, event: EventEnvelope) -> bool:
        calls.append(key)
        return False

    async with registry.wait_for_events(SERVER, KEYS, timeout=10, error_callback=stop):
        registry.deliver(make_event("a", status="failed"))

    assert calls == ["network-vif-plugged-a"]
    assert registry.deliver(make_event("b")) is Delivery.LATE_AFTER_TIMEOUT


async def test_at_shutdown_the_callback_is_called_and_the_body_still_runs(registry: WaiterRegistry) -> None:
    registry.cancel_all()
    calls: list[tuple[str, str]] = []
    ran = False

    async with registry.wait_for_events(
        SERVER, [(PLUGGED, "bar")], timeout=10, error_callback=lambda k, e: calls.append((k, e.status))
    ):
        ran = True

    assert ran is True
    assert calls == [("network-vif-plugged-bar", "failed")]


async def test_at_shutdown_the_default_callback_raises_before_the_body(registry: WaiterRegistry) -> None:
    registry.cancel_all()
    with pytest.raises(EventWaitFailed):
        async with registry.wait_for_events(SERVER, [(PLUGGED, "bar")], timeout=10):
            pytest.fail("the body must not run")


async def test_cancel_all_during_a_wait_fails_it(registry: WaiterRegistry) -> None:
    with pytest.raises(EventWaitFailed):
        async with registry.wait_for_events(SERVER, KEYS, timeout=10):
            later(registry.cancel_all)


async def test_clear_wakes_a_wait_instead_of_letting_it_time_out(registry: WaiterRegistry) -> None:
    started = time.monotonic()
    with pytest.raises(EventWaitFailed):
        async with registry.wait_for_events(SERVER, KEYS, timeout=10):
            later(lambda: registry.clear(SERVER))
    assert time.monotonic() - started < 1


# --- Herald: no stale waiters, late events consumed quietly ------------------------------


async def test_a_timed_out_wait_leaves_no_waiter_and_its_late_event_is_consumed(
    registry: WaiterRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(EventWaitTimeout):
        async with registry.wait_for_events(SERVER, KEYS, timeout=0.05):
            registry.deliver(make_event("a"))

    assert registry.pop(SERVER, PLUGGED, "b") is None
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert registry.deliver(make_event("b")) is Delivery.LATE_AFTER_TIMEOUT
        assert registry.deliver(make_event("b", uuid="dup")) is Delivery.LATE_AFTER_TIMEOUT
    assert caplog.records == []
    assert registry.prepare(SERVER, PLUGGED, "b").is_set() is False  # not buffered for a later wait
    assert registry.expire() == []


async def test_late_records_end_with_the_ttl_and_with_a_new_wait(registry: WaiterRegistry, clock: FakeClock) -> None:
    for _ in range(2):
        with pytest.raises(EventWaitTimeout):
            async with registry.wait_for_events(SERVER, [(PLUGGED, "a")], timeout=0.01):
                pass
    clock.advance(TTL + 1)
    assert registry.deliver(make_event("a")) is Delivery.BUFFERED

    with pytest.raises(EventWaitTimeout):
        async with registry.wait_for_events(SERVER, [(PLUGGED, "b")], timeout=0.01):
            pass
    waiter = registry.prepare(SERVER, PLUGGED, "b")  # a new wait owns the key again
    assert registry.deliver(make_event("b")) is Delivery.WOKE_WAITER
    assert waiter.is_set()


async def test_events_exited_early_for_are_consumed_when_they_arrive(registry: WaiterRegistry) -> None:
    async with registry.wait_for_events(SERVER, KEYS, timeout=0.05) as wait:
        registry.deliver(make_event("b"))
        wait.exit_wait_early([(PLUGGED, "a")])

    assert registry.deliver(make_event("a")) is Delivery.LATE_AFTER_TIMEOUT


async def test_an_error_in_the_body_unregisters_the_waiters(registry: WaiterRegistry) -> None:
    with pytest.raises(RuntimeError):
        async with registry.wait_for_events(SERVER, KEYS, timeout=10):
            raise RuntimeError("spawn failed")

    assert registry.pop(SERVER, PLUGGED, "a") is None
    assert registry.deliver(make_event("a")) is Delivery.LATE_AFTER_TIMEOUT


async def test_a_waiter_shared_by_two_waits_stays_until_both_end(registry: WaiterRegistry) -> None:
    first = asyncio.create_task(wait_through(registry, [(PLUGGED, "a")], timeout=0.01))
    await asyncio.sleep(0)
    second = asyncio.create_task(wait_through(registry, [(PLUGGED, "a")], timeout=0.05))
    with pytest.raises(EventWaitTimeout):
        await first  # meanwhile the second wait registers, sharing the first one's waiter

    assert registry.deliver(make_event("a")) is Delivery.WOKE_WAITER
    assert (await second).waiters["network-vif-plugged-a"].event == make_event("a")


BOUND = "accelerator-request-bound"


def test_an_arq_binding_that_came_first_satisfies_the_wait_and_is_reported(registry: WaiterRegistry) -> None:
    satisfied: list[tuple[str, str]] = []
    registry.on_satisfied = lambda server, key: satisfied.append((server, key))
    assert registry.deliver(make_event("arq-1", name=BOUND)) is Delivery.BUFFERED
    assert registry.early(SERVER) == [f"{BOUND}-arq-1"]
    waiter = registry.prepare(SERVER, BOUND, "arq-1")
    assert waiter.is_set()
    assert registry.early(SERVER) == []
    assert satisfied == [(SERVER, f"{BOUND}-arq-1")]


def test_an_event_for_a_registered_waiter_is_reported_satisfied_a_late_one_not(registry: WaiterRegistry) -> None:
    satisfied: list[tuple[str, str]] = []
    registry.on_satisfied = lambda server, key: satisfied.append((server, key))
    registry.prepare(SERVER, BOUND, "arq-1")
    assert registry.deliver(make_event("arq-1", name=BOUND)) is Delivery.WOKE_WAITER
    assert satisfied == [(SERVER, f"{BOUND}-arq-1")]

    async def timed_out() -> None:
        with pytest.raises(EventWaitTimeout):
            async with registry.wait_for_events(SERVER, [(BOUND, "arq-2")], timeout=0.01):
                pass

    asyncio.run(timed_out())
    assert registry.deliver(make_event("arq-2", name=BOUND, uuid="e2")) is Delivery.LATE_AFTER_TIMEOUT
    assert satisfied == [(SERVER, f"{BOUND}-arq-1")]
