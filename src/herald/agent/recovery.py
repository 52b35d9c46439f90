"""What an agent does at start with servers an earlier run left half-way (Nova's ``init_host``).

The in-process bus keeps nothing across a restart, and an operation running when the
process died never finished: a build still waiting for its ports, a stop half done.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from herald.domain.messages import DeleteServer, RebootServer, ServerCommand, StartServer, StopServer
from herald.domain.model import MigrationStatus, PowerState, TaskState, VmState
from herald.service.ids import new_uuid4
from herald.service.ports import UnitOfWork

logger = logging.getLogger(__name__)

BUILD_INTERRUPTED = "The compute host restarted while the instance was being built."
REBUILD_INTERRUPTED = "The compute host restarted while the instance was being rebuilt."
# Nova's init_host puts a server whose rebuild was cut short in ERROR: its disk is in an unknown state.
REBUILD_STATES = frozenset({TaskState.REBUILDING, TaskState.REBUILD_BLOCK_DEVICE_MAPPING, TaskState.REBUILD_SPAWNING})
MOVE_INTERRUPTED = "The compute host restarted while the instance was being moved."
MOVE_TASK_STATES = frozenset(
    {
        TaskState.RESIZE_PREP,
        TaskState.RESIZE_MIGRATING,
        TaskState.RESIZE_MIGRATED,
        TaskState.RESIZE_FINISH,
        TaskState.RESIZE_REVERTING,
    }
)


# Nova's init_host asks again for a power operation a restart cut short, under the action the user
# started it with: the command may also still be on its way (the outbox, the host's queue), and then
# finds it done. (action name, the command asking for it again)
RETRIED: dict[TaskState, tuple[str, Callable[[str, str], ServerCommand]]] = {
    TaskState.POWERING_OFF: ("stop", StopServer),
    TaskState.POWERING_ON: ("start", StartServer),
    **{
        state: ("reboot", lambda uuid, request_id: RebootServer(uuid, request_id, hard=False))
        for state in (TaskState.REBOOTING, TaskState.REBOOT_PENDING, TaskState.REBOOT_STARTED)
    },
    **{
        state: ("reboot", lambda uuid, request_id: RebootServer(uuid, request_id, hard=True))
        for state in (TaskState.REBOOTING_HARD, TaskState.REBOOT_PENDING_HARD, TaskState.REBOOT_STARTED_HARD)
    },
}


class RecoverHost:
    """The write job run once at agent start; returns the commands to run again."""

    def __init__(self, host: str) -> None:
        self._host = host

    def run(self, uow: UnitOfWork, items: Sequence[datetime]) -> list[list[ServerCommand]]:
        (now,) = items
        again: list[ServerCommand] = []
        for server in uow.servers.list(host=self._host):
            if server.vm_state == VmState.BUILDING:
                logger.warning(
                    "Instance %s was building when host %s restarted; setting it to ERROR", server.uuid, self._host
                )
                server.vm_state = VmState.ERROR.value
                server.power_state = PowerState.NOSTATE.value
                server.task_state = None
                server.fault = {"code": 500, "message": BUILD_INTERRUPTED}
            elif server.task_state in REBUILD_STATES:
                logger.warning("Instance %s was being rebuilt when host %s restarted; ERROR", server.uuid, self._host)
                server.vm_state = VmState.ERROR.value
                server.task_state = None
                server.fault = {"code": 500, "message": REBUILD_INTERRUPTED}
            elif server.task_state in MOVE_TASK_STATES:
                # NOTE: the step under way is lost (it ran in the background); clearing the task alone
                # would leave a server half on each host, so it is put in ERROR for an operator.
                logger.warning(
                    "Instance %s was being moved when host %s restarted; setting it to ERROR", server.uuid, self._host
                )
                server.vm_state = VmState.ERROR.value
                server.task_state = None
                server.fault = {"code": 500, "message": MOVE_INTERRUPTED}
                _move_failed(uow, server.migration_id)
            elif server.task_state == TaskState.DELETING:
                again.append(DeleteServer(server.uuid, f"req-{new_uuid4()}"))
                continue
            elif server.task_state in RETRIED:
                action, command = RETRIED[TaskState(server.task_state)]
                logger.info(
                    "Instance %s in transitional state %s at start-up; asking for %s again",
                    server.uuid,
                    server.task_state,
                    action,
                )
                again.append(command(server.uuid, _request_id(uow, server.uuid, action)))
                continue
            elif server.task_state is not None:
                # NOTE: the power sync then reconciles vm_state and power_state with the machine.
                logger.info("Instance %s: clearing task_state %s left by a restart", server.uuid, server.task_state)
                server.task_state = None
            else:
                continue
            server.updated_at = now
            uow.servers.save(server)
        return [again]


def _request_id(uow: UnitOfWork, server_uuid: str, action: str) -> str:
    """The request id of the server's newest ``action`` (its steps go under it), or a new one."""
    for record in uow.actions.list_for_server(server_uuid):
        if record.action == action:
            return record.request_id
    return f"req-{new_uuid4()}"


def _move_failed(uow: UnitOfWork, migration_id: int | None) -> None:
    migration = uow.migrations.get(migration_id) if migration_id is not None else None
    if migration is not None:
        uow.migrations.save(dataclasses.replace(migration, status=MigrationStatus.ERROR.value))
