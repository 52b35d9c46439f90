"""Recognising a copy of a server command the agent already carried out.

A command relay may send a command again (it published it, but its process died before it
could remove it from the outbox; or the broker took it but its confirm was lost). Most
commands are guarded by the task state they expect, which their first run cleared. Attach
and detach set no task state: their copy is recognised by their instance-action step, which
the first run recorded under the command's request id.
"""

from __future__ import annotations

import asyncio
import logging

from herald.domain.messages import ServerCommand
from herald.service.ports import UnitOfWorkFactory

logger = logging.getLogger(__name__)


class CommandCopies:
    """Counts and logs the copies an agent suppressed.

    :param read_uow_factory: read-only units of work (the instance actions).
    """

    def __init__(self, read_uow_factory: UnitOfWorkFactory) -> None:
        self._read_uow_factory = read_uow_factory
        self.suppressed = 0

    async def seen(self, command: ServerCommand, step: str) -> bool:
        """Whether ``step`` of the command's request is already recorded (then the copy is logged)."""
        done = await asyncio.to_thread(self._step_recorded, command, step)
        if done:
            self.suppressed += 1
            logger.warning(
                "Duplicate command %s of instance %s (request %s) suppressed: %s is already recorded",
                type(command).__name__,
                command.server_uuid,
                command.request_id,
                step,
            )
        return done

    def _step_recorded(self, command: ServerCommand, step: str) -> bool:
        with self._read_uow_factory() as uow:
            action = uow.actions.get(command.server_uuid, command.request_id)
        return action is not None and any(e.event == step and e.finish_time is not None for e in action.events)
