"""power-update on the agent: follow a power change made outside compute.

Herald decides on the server's row (Nova decides on the copy serialized at API time):
the driver is told on a worker thread, outside any transaction, then the effect, the
instance-action step and the event's mark commit together in the writer's transaction,
under the server's lock, if the row still calls for the same transition (otherwise the
delivery decides again), so a power sync that ran first is seen.

Nova's versioned notifications ``instance.power_on|power_off.start`` (before the driver
is told) and ``.end`` (after it accepted) are built here but returned in the outcome, not
sent: this runs on the process's writer thread inside a transaction that may still roll
back or be retried, and a broker that is down would stall every write of the process.
The agent sends them once the outcome is committed, start then end; a driver failure
sends the start alone, a no-op sends none (Nova's ``test_power_update*``).
"""

from __future__ import annotations

import dataclasses
import logging

from herald.agent.context import Backends, EventContext, Outcome, Prepared
from herald.domain.errors import DriverError
from herald.domain.events import PowerTag
from herald.domain.model import PowerState, Server
from herald.domain.power import PowerTransition, power_update_transition
from herald.domain.records import EventEnvelope
from herald.service.notifications import Initiator, Notification, NotificationAction, Phase

logger = logging.getLogger(__name__)

STEP = "compute_power_update"
NOTIFICATION_ACTIONS = {
    PowerTag.POWER_ON: NotificationAction.POWER_ON,
    PowerTag.POWER_OFF: NotificationAction.POWER_OFF,
}


def power_update_basis(event: EventEnvelope, server: Server) -> PowerTransition | None:
    return power_update_transition(
        PowerTag(event.tag or ""),
        vm_state=server.vm_state,
        power_state=server.power_state,
        task_state=server.task_state,
    )


def prepare_power_update(backends: Backends, event: EventEnvelope, server: Server) -> Prepared:
    """Tell the driver, when the event moves the server."""
    transition = power_update_basis(event, server)
    if transition is None:
        return Prepared(None)
    target = PowerTag(event.tag or "")
    logger.info("Power update called for instance %s with target power state %s.", server.uuid, target)
    try:
        backends.driver.power_update_event(server, target.value)
    except DriverError as exc:
        logger.warning("power-update %s failed for instance %s: %s", target, server.uuid, exc)
        return Prepared(transition, exc.text)
    return Prepared(transition)


def apply_power_update(ctx: EventContext, event: EventEnvelope, server: Server, prepared: Prepared | None) -> Outcome:
    target = PowerTag(event.tag or "")
    transition = power_update_basis(event, server)
    if transition is None or prepared is None:
        message = (
            f"The power-update {target} event for instance {server.uuid} is a no-op since the instance is in "
            f"vm_state {server.vm_state}, task_state {server.task_state} and power_state "
            f"{_power_name(server.power_state)}."
        )
        logger.info("%s", message)
        # NOTE: recorded as a no-op, not as Nova's "Success": nothing was started or stopped.
        ctx.record_action_event(server.uuid, event.request_id, STEP, "No-op", message)
        return Outcome.handled("no-op: " + message)
    action = NOTIFICATION_ACTIONS[target]
    initiator = Initiator(event.request_id, event.user_id, event.project_id)
    # NOTE: Nova saves the task state (powering-on/off) before its start notification; Herald
    # writes no intermediate row, so the start payload shows the server with that task state.
    notes: tuple[Notification, ...] = ()
    if ctx.notifications.enabled:
        starting = dataclasses.replace(server, task_state=transition.task_state.value)
        notes = ctx.notifications.action(starting, action, Phase.START, initiator)
    if prepared.error is not None:
        ctx.record_action_event(server.uuid, event.request_id, STEP, "Error", prepared.error)
        return Outcome.failed(f"driver refused power-update: {prepared.error}", notes)
    server.vm_state = transition.vm_state.value
    server.power_state = transition.power_state.value
    server.task_state = None
    server.updated_at = ctx.now
    ctx.save_states(server)
    ctx.record_action_event(server.uuid, event.request_id, STEP, "Success")
    notes += ctx.notifications.action(server, action, Phase.END, initiator)
    return Outcome.handled(f"{target}: vm_state {server.vm_state}, power_state {server.power_state}", notes)


def _power_name(value: int) -> str:
    try:
        return PowerState(value).name
    except ValueError:
        return str(value)
