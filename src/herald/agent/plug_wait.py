"""Starting a guest while waiting for ``network-vif-plugged`` of its ports (boot, rebuild, hard reboot).

As Nova's libvirt driver: the waiters are registered before the guest starts, the guest is
started under the server's operation lock, then the events are awaited (lock released) under
one ``vif_plugging_timeout`` deadline. A port whose ``completed`` event came in is plugged:
the operation marks it active; one that timed out or failed stays inactive, so the next
operation that starts the guest waits for it again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from herald.agent.current_waits import CurrentWaits
from herald.agent.operation import OperationTools
from herald.agent.waiters import EventWait, WaiterRegistry
from herald.domain.errors import EventWaitFailed, EventWaitTimeout
from herald.domain.events import EventName, EventStatus
from herald.domain.model import Server
from herald.domain.records import EventEnvelope

logger = logging.getLogger(__name__)

PLUGGED = EventName.NETWORK_VIF_PLUGGED.value


@dataclass(frozen=True, slots=True)
class PlugPolicy:
    vif_plugging_timeout: int
    vif_plugging_is_fatal: bool


@dataclass(slots=True)
class PlugResult:
    """How the wait ended: ``ended`` (the work gave up), else which ports were plugged and whether that was enough."""

    ended: bool = False
    waited: bool = False  # a wait was set up (timeout > 0 and ports to wait for)
    plugged: set[str] = field(default_factory=set)
    problem: str | None = None  # a timeout or a failed event
    fatal: bool = False  # the problem fails the operation (vif_plugging_is_fatal)


def inactive_ports(server: Server) -> list[str]:
    """The ports Nova's libvirt driver waits for: those whose cached state is not active."""
    return [vif.port_id for vif in server.vifs if not vif.active]


def mark_plugged(server: Server, result: PlugResult) -> None:
    """Ports whose plug event came are active (all of them when nothing was waited for)."""
    for vif in server.vifs:
        if not result.waited or vif.port_id in result.plugged:
            vif.active = True


class _WorkEnded(Exception):
    """Leaves the wait without waiting: the work said the operation is over."""


async def start_waiting_for_plugs(
    *,
    tools: OperationTools,
    waiters: WaiterRegistry,
    policy: PlugPolicy,
    server_uuid: str,
    ports: Sequence[str],
    work: Callable[[], Awaitable[bool]],
    current_waits: CurrentWaits | None = None,
) -> PlugResult:
    """Register waiters for ``ports``, run ``work`` under the operation lock, then wait for the events.

    ``work`` returns False when the operation is over (it recorded why); the wait is then skipped.
    With ``current_waits``, the wait is also recorded for ``GET /os-server-external-events?state=waiting``.
    """
    timeout = policy.vif_plugging_timeout
    keys = [(PLUGGED, port) for port in dict.fromkeys(ports)] if timeout else []
    result = PlugResult(waited=bool(keys))
    failed: list[str] = []

    def on_failed_event(key: str, event: EventEnvelope) -> bool | None:
        logger.error("Neutron reported failure on event %s for instance %s", key, server_uuid)
        failed.append(key)
        return False if policy.vif_plugging_is_fatal else None

    handle: EventWait | None = None
    try:
        opened = (
            waiters.wait_for_events(server_uuid, keys, timeout=float(timeout), error_callback=on_failed_event)
            if current_waits is None
            else current_waits.waiting(server_uuid, keys, timeout=float(timeout), error_callback=on_failed_event)
        )
        async with opened as wait:
            handle = wait
            async with tools.hold(server_uuid):
                if not await work():
                    raise _WorkEnded
    except _WorkEnded:
        result.ended = True
        return result
    except (EventWaitTimeout, EventWaitFailed) as exc:
        result.problem = str(exc)
    if failed and result.problem is None:
        result.problem = f"Neutron reported failure on event(s) {', '.join(failed)} for instance {server_uuid}"
    result.fatal = result.problem is not None and policy.vif_plugging_is_fatal
    if result.problem is not None and not result.fatal:
        logger.warning("Instance %s goes on without all its plug events: %s", server_uuid, result.problem)
    if handle is not None:
        result.plugged = {
            waiter.tag
            for waiter in handle.waiters.values()
            if waiter.tag is not None and waiter.event is not None and waiter.event.status == EventStatus.COMPLETED
        }
    return result


async def power_off_after_failure(tools: OperationTools, server_uuid: str, operation: str) -> None:
    """As Nova's driver after a failed plug wait: the guest the operation started is powered off
    (its disk is kept); a failure to do so is logged, the operation's own failure is what counts."""
    server = await tools.load(server_uuid)
    if server is None:
        return
    try:
        await asyncio.to_thread(tools.driver.power_off, server)
    except Exception:
        logger.exception("Could not power off instance %s after its failed %s", server_uuid, operation)
