"""What each external event does on its host: the {EventName: handler} table.

A handler's ``prepare`` (when it has one) calls the driver on a worker thread, with no
transaction and no lock held; its ``apply`` then runs in the writer's transaction, where
the effect, the instance-action step and the event's ``handled`` mark commit together.
Events that only wake a waiter (``WAITER_EVENTS``) are delivered on the agent's loop instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from herald.agent.context import Backends, EventContext, Outcome, Prepared
from herald.agent.power_update import apply_power_update, power_update_basis, prepare_power_update
from herald.domain.errors import DriverError, NotFound, NotSupportedByDriver
from herald.domain.events import EventName
from herald.domain.model import Server, Vif
from herald.domain.records import EventEnvelope

logger = logging.getLogger(__name__)

Apply = Callable[[EventContext, EventEnvelope, Server, Prepared | None], Outcome]


@dataclass(frozen=True, slots=True)
class EventHandler:
    """``apply`` records the effect; ``prepare`` and ``basis`` come together, for events that call the driver."""

    apply: Apply
    prepare: Callable[[Backends, EventEnvelope, Server], Prepared] | None = None
    basis: Callable[[EventEnvelope, Server], object] | None = None


WAITER_EVENTS = frozenset(
    {
        EventName.NETWORK_VIF_PLUGGED,
        EventName.NETWORK_VIF_UNPLUGGED,
        EventName.ACCELERATOR_REQUEST_BOUND,
        EventName.VOLUME_REIMAGED,
    }
)


def apply_network_changed(
    ctx: EventContext, event: EventEnvelope, server: Server, prepared: Prepared | None
) -> Outcome:
    """Refresh the server's network info cache (one port's entry, or all of them)."""
    # The device tag is compute's, not the network's: it stays with the port's entry.
    tags = {vif.port_id: vif.tag for vif in server.vifs}
    fresh = [
        Vif(str(v["port_id"]), bool(v["active"]), str(v["network_id"]), tags.get(str(v["port_id"])))
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


def _attached_port(event: EventEnvelope, server: Server) -> bool:
    return any(v.port_id == event.tag for v in server.vifs)


def prepare_vif_deleted(backends: Backends, event: EventEnvelope, server: Server) -> Prepared:
    """Detach the deleted port from the machine, if the server has it."""
    if event.tag is None or not _attached_port(event, server):
        return Prepared(False)
    logger.info("Neutron deleted interface %s; detaching it from instance %s", event.tag, server.uuid)
    try:
        backends.driver.detach_interface(server, event.tag)
    except NotSupportedByDriver:
        pass
    except DriverError as exc:
        logger.warning("Detach interface failed, port_id=%s, reason: %s (instance %s)", event.tag, exc, server.uuid)
        return Prepared(True, f"detach failed: {exc}")
    return Prepared(True)


def apply_vif_deleted(ctx: EventContext, event: EventEnvelope, server: Server, prepared: Prepared | None) -> Outcome:
    """Drop the detached port from the cache."""
    if prepared is None or not prepared.basis:
        return Outcome.handled(f"port {event.tag} is not attached; nothing to do")
    if prepared.error is not None:
        return Outcome.failed(prepared.error)
    server.vifs = [v for v in server.vifs if v.port_id != event.tag]
    ctx.uow.servers.save(server)
    return Outcome.handled(f"port {event.tag} detached")


def _attached_volume(event: EventEnvelope, server: Server) -> bool:
    return event.tag is not None and any(a.volume_id == event.tag for a in server.volumes)


@dataclass(frozen=True, slots=True)
class _Extended:
    size_gb: int | None  # None: the volume service does not know the volume
    supported: bool


def prepare_volume_extended(backends: Backends, event: EventEnvelope, server: Server) -> Prepared:
    """Ask the volume service for the new size and let the guest see it."""
    if event.tag is None or not _attached_volume(event, server):
        return Prepared(False)
    try:
        size_gb = backends.volumes.get_size_gb(event.tag)
    except NotFound as exc:
        return Prepared(True, exc.text, _Extended(None, True))
    if not backends.driver.supports_extend_volume:
        return Prepared(True, None, _Extended(size_gb, False))
    try:
        backends.driver.extend_volume(server, event.tag, size_gb * 1024**3)
    except DriverError as exc:
        logger.warning("Extend volume failed for instance %s: %s", server.uuid, exc)
        return Prepared(True, exc.text, _Extended(size_gb, True))
    return Prepared(True, None, _Extended(size_gb, True))


def apply_volume_extended(
    ctx: EventContext, event: EventEnvelope, server: Server, prepared: Prepared | None
) -> Outcome:
    """Record the volume's new size and the step."""
    step = "compute_extend_volume"
    attachment = next((a for a in server.volumes if a.volume_id == event.tag), None)
    if attachment is None or prepared is None or not isinstance(prepared.value, _Extended):
        logger.warning("Extend volume failed, volume %s is not attached to instance %s.", event.tag, server.uuid)
        ctx.record_action_event(server.uuid, event.request_id, step, "Error", "volume is not attached")
        return Outcome.failed(f"volume {event.tag} is not attached")
    extended = prepared.value
    if extended.size_gb is None:
        text = prepared.error or "volume not found"
        ctx.record_action_event(server.uuid, event.request_id, step, "Error", text)
        return Outcome.failed(text)
    attachment.size_gb = extended.size_gb
    ctx.uow.servers.save(server)
    if not extended.supported:
        message = "Volume size extension is not supported by the hypervisor."
        ctx.record_action_event(server.uuid, event.request_id, step, "Error", message)
        return Outcome.failed(message)
    if prepared.error is not None:
        ctx.record_action_event(server.uuid, event.request_id, step, "Error", prepared.error)
        return Outcome.failed(prepared.error)
    ctx.record_action_event(server.uuid, event.request_id, step, "Success")
    return Outcome.handled(f"volume {event.tag} is now {extended.size_gb} GiB")


EVENT_HANDLERS: dict[EventName, EventHandler] = {
    EventName.NETWORK_CHANGED: EventHandler(apply_network_changed),
    EventName.NETWORK_VIF_DELETED: EventHandler(apply_vif_deleted, prepare_vif_deleted, _attached_port),
    EventName.VOLUME_EXTENDED: EventHandler(apply_volume_extended, prepare_volume_extended, _attached_volume),
    EventName.POWER_UPDATE: EventHandler(apply_power_update, prepare_power_update, power_update_basis),
}
