"""What each external event does on its host: the {EventName: handler} table.

Handlers run inside one transaction per event batch (``EventContext.uow``); the
effect and the event's ``handled`` mark are committed together. Events that only
wake a waiter (``WAITER_EVENTS``) are delivered on the agent's loop instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from herald.agent.context import EventContext, Outcome
from herald.agent.power_update import handle_power_update
from herald.domain.errors import DriverError, NotFound, NotSupportedByDriver
from herald.domain.events import EventName
from herald.domain.model import Server, Vif
from herald.domain.records import EventEnvelope

logger = logging.getLogger(__name__)

EventHandler = Callable[[EventContext, EventEnvelope, Server], Outcome]

WAITER_EVENTS = frozenset(
    {
        EventName.NETWORK_VIF_PLUGGED,
        EventName.NETWORK_VIF_UNPLUGGED,
        EventName.ACCELERATOR_REQUEST_BOUND,
        EventName.VOLUME_REIMAGED,
    }
)


def handle_network_changed(ctx: EventContext, event: EventEnvelope, server: Server) -> Outcome:
    """Refresh the server's network info cache (one port's entry, or all of them)."""
    fresh = [
        Vif(str(v["port_id"]), bool(v["active"]), str(v["network_id"]))
        for v in ctx.network.refresh(server.uuid, event.tag)
    ]
    if event.tag is None:
        server.vifs = fresh
    else:
        # NOTE: a port that left the server stays cached: a later unplug still needs it (as Nova does).
        by_port = {vif.port_id: vif for vif in server.vifs}
        by_port.update({vif.port_id: vif for vif in fresh})
        server.vifs = list(by_port.values())
    ctx.uow.servers.save(server)
    return Outcome.handled(f"network info refreshed for {event.tag or 'all ports'}")


def handle_vif_deleted(ctx: EventContext, event: EventEnvelope, server: Server) -> Outcome:
    """Detach the deleted port from the machine and drop it from the cache."""
    vif = next((v for v in server.vifs if v.port_id == event.tag), None)
    if vif is None:
        return Outcome.handled(f"port {event.tag} is not attached; nothing to do")
    logger.info("Neutron deleted interface %s; detaching it from instance %s", event.tag, server.uuid)
    try:
        ctx.driver.detach_interface(server, vif.port_id)
    except NotSupportedByDriver:
        pass
    except DriverError as exc:
        logger.warning("Detach interface failed, port_id=%s, reason: %s (instance %s)", vif.port_id, exc, server.uuid)
        return Outcome.failed(f"detach failed: {exc}")
    server.vifs = [v for v in server.vifs if v.port_id != vif.port_id]
    ctx.uow.servers.save(server)
    return Outcome.handled(f"port {vif.port_id} detached")


def handle_volume_extended(ctx: EventContext, event: EventEnvelope, server: Server) -> Outcome:
    """Record the volume's new size and let the guest see it."""
    step = "compute_extend_volume"
    attachment = next((a for a in server.volumes if a.volume_id == event.tag), None)
    if attachment is None or event.tag is None:
        logger.warning("Extend volume failed, volume %s is not attached to instance %s.", event.tag, server.uuid)
        ctx.record_action_event(server.uuid, event.request_id, step, "Error", "volume is not attached")
        return Outcome.failed(f"volume {event.tag} is not attached")
    try:
        size_gb = ctx.volumes.get_size_gb(event.tag)
    except NotFound as exc:
        ctx.record_action_event(server.uuid, event.request_id, step, "Error", exc.text)
        return Outcome.failed(exc.text)
    attachment.size_gb = size_gb
    ctx.uow.servers.save(server)
    if not ctx.driver.supports_extend_volume:
        message = "Volume size extension is not supported by the hypervisor."
        ctx.record_action_event(server.uuid, event.request_id, step, "Error", message)
        return Outcome.failed(message)
    try:
        ctx.driver.extend_volume(server, event.tag, size_gb * 1024**3)
    except DriverError as exc:
        logger.warning("Extend volume failed for instance %s: %s", server.uuid, exc)
        ctx.record_action_event(server.uuid, event.request_id, step, "Error", exc.text)
        return Outcome.failed(exc.text)
    ctx.record_action_event(server.uuid, event.request_id, step, "Success")
    return Outcome.handled(f"volume {event.tag} is now {size_gb} GiB")


EVENT_HANDLERS: dict[EventName, EventHandler] = {
    EventName.NETWORK_CHANGED: handle_network_changed,
    EventName.NETWORK_VIF_DELETED: handle_vif_deleted,
    EventName.VOLUME_EXTENDED: handle_volume_extended,
    EventName.POWER_UPDATE: handle_power_update,
}
