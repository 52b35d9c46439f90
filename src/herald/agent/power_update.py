"""power-update on the agent: follow a power change made outside compute.

Herald decides on the server row read in this transaction, under the server's lock
(Nova decides on the copy serialized at API time), so a power sync that ran first is
seen, and the effect, the instance-action step and the event's mark commit together.
"""

from __future__ import annotations

import logging

from herald.agent.context import EventContext, Outcome
from herald.domain.errors import DriverError
from herald.domain.events import PowerTag
from herald.domain.model import PowerState, Server
from herald.domain.power import power_update_transition
from herald.domain.records import EventEnvelope

logger = logging.getLogger(__name__)

STEP = "compute_power_update"


def handle_power_update(ctx: EventContext, event: EventEnvelope, server: Server) -> Outcome:
    target = PowerTag(event.tag or "")
    transition = power_update_transition(
        target, vm_state=server.vm_state, power_state=server.power_state, task_state=server.task_state
    )
    if transition is None:
        message = (
            f"The power-update {target} event for instance {server.uuid} is a no-op since the instance is in "
            f"vm_state {server.vm_state}, task_state {server.task_state} and power_state "
            f"{_power_name(server.power_state)}."
        )
        logger.info("%s", message)
        # NOTE: recorded as a no-op, not as Nova's "Success": nothing was started or stopped.
        ctx.record_action_event(server.uuid, event.request_id, STEP, "No-op", message)
        return Outcome.handled("no-op: " + message)
    logger.info("Power update called for instance %s with target power state %s.", server.uuid, target)
    try:
        ctx.driver.power_update_event(server, target.value)
    except DriverError as exc:
        logger.warning("power-update %s failed for instance %s: %s", target, server.uuid, exc)
        ctx.record_action_event(server.uuid, event.request_id, STEP, "Error", exc.text)
        return Outcome.failed(f"driver refused power-update: {exc.text}")
    server.vm_state = transition.vm_state.value
    server.power_state = transition.power_state.value
    server.task_state = None
    server.updated_at = ctx.now
    ctx.uow.servers.save(server)
    ctx.record_action_event(server.uuid, event.request_id, STEP, "Success")
    return Outcome.handled(f"{target}: vm_state {server.vm_state}, power_state {server.power_state}")


def _power_name(value: int) -> str:
    try:
        return PowerState(value).name
    except ValueError:
        return str(value)
