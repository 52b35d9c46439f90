"""What every server operation of an agent uses: its server's operation lock, guarded records, node claims.

An operation holds its server's operation lock, calls the driver on a worker thread with
no transaction and no record lock held, then records its outcome through the writer as a
:class:`~herald.agent.transitions.Transition` guarded by the task state it expects. An
operation that still cannot record its outcome after the retries puts the server in
ERROR with a fault rather than leave a task state nobody will finish.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AbstractAsyncContextManager

from herald.agent.context import OperationLocks, ServerLocks
from herald.agent.transitions import Applied, ApplyTransitions, IsTransient, Status, Step, Transition, retrying
from herald.domain.errors import NoValidHost
from herald.domain.messages import ServerCommand
from herald.domain.model import Server, VmState
from herald.service.ports import Clock, UnitOfWork, UnitOfWorkFactory, VirtDriver
from herald.service.writer import Writer

logger = logging.getLogger(__name__)


class OperationTools:
    """One host's shared means for its server operations (see the module docstring)."""

    def __init__(
        self,
        *,
        host: str,
        writer: Writer,
        read_uow_factory: UnitOfWorkFactory,
        clock: Clock,
        driver: VirtDriver,
        locks: ServerLocks,
        is_transient: IsTransient,
    ) -> None:
        self.host = host
        self.clock = clock
        self.driver = driver
        self._writer = writer
        self.read_uow_factory = read_uow_factory
        self._apply = ApplyTransitions(host=host, clock=clock, locks=locks)
        self._op_locks = OperationLocks()
        # NOTE: choosing a node and recording it are one step per host, as Nova's resource claim.
        self._claim = asyncio.Lock()
        self._is_transient = is_transient

    def hold(self, server_uuid: str) -> AbstractAsyncContextManager[None]:
        """The server's operation lock, for one step of an operation."""
        return self._op_locks.hold(server_uuid)

    def busy(self, server_uuid: str) -> bool:
        """Whether an operation on the server is under way or waiting for one."""
        return self._op_locks.busy(server_uuid)

    async def record(self, transition: Transition, what: str) -> Applied:
        """Submit ``transition`` to the writer, again while the database fails transiently."""
        applied = await retrying(
            lambda: self._writer.submit(self._apply, transition),
            self._is_transient,
            f"{what} of instance {transition.server_uuid}",
        )
        if applied.status is Status.UNEXPECTED and applied.server is not None:
            logger.info(
                "%s of instance %s not recorded: task_state is %s, expected %s",
                what,
                transition.server_uuid,
                applied.server.task_state,
                " or ".join(str(t) for t in transition.expected),
            )
        return applied

    async def load(self, server_uuid: str) -> Server | None:
        return await asyncio.to_thread(self._read, server_uuid)

    def _read(self, server_uuid: str) -> Server | None:
        with self.read_uow_factory() as uow:
            return uow.servers.get(server_uuid)

    def _nodes_in_use(self, server_uuid: str) -> set[str]:
        with self.read_uow_factory() as uow:
            return {s.node for s in uow.servers.list(host=self.host) if s.node and s.uuid != server_uuid}

    async def claim_node(
        self, server_uuid: str, expected: tuple[str | None, ...], task_state: str | None
    ) -> Server | str | None:
        """Choose a node and record it (with ``task_state``): the server, why none is free, or None (gone)."""
        async with self._claim:
            server = await self.load(server_uuid)
            if server is None or server.task_state not in expected:
                return None
            in_use = await asyncio.to_thread(self._nodes_in_use, server_uuid)
            try:
                node = await asyncio.to_thread(self.driver.allocate_node, server, in_use)
            except NoValidHost as exc:
                return exc.text

            def change(uow: UnitOfWork, server: Server) -> None:
                server.host = self.host
                server.node = node
                server.task_state = task_state

            applied = await self.record(Transition(server_uuid, expected, change), "Node claim")
        return applied.server if applied.done else None

    async def failed(
        self, command: ServerCommand, step: str, expected: tuple[str | None, ...], exc: Exception, message: str
    ) -> None:
        """An operation that could not finish: ERROR with ``message`` as its fault, unless another one took over."""
        logger.error("%s of instance %s failed: %r", step, command.server_uuid, exc, exc_info=exc)

        def change(uow: UnitOfWork, server: Server) -> None:
            server.vm_state = VmState.ERROR.value
            server.task_state = None
            server.fault = {"code": 500, "message": message}

        step_record = Step(command.request_id, step, self.clock.now(), "Error", message)
        try:
            await self.record(Transition(command.server_uuid, expected, change, step_record), step)
        except Exception:
            # NOTE: the start-up recovery finishes what is left in a transitional task state.
            logger.exception("Could not put instance %s in ERROR after %s failed", command.server_uuid, step)
