"""The external events use case as the API calls it: group-committed accept, then relay."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from herald.service.accept import AcceptRequest, AcceptResult, accept_external_events
from herald.service.group_commit import GroupCommitter
from herald.service.ports import Clock, UnitOfWorkFactory
from herald.service.relay import Relay


class ExternalEventsService:
    """``await accept(request)`` returns once the request's accepted events are committed."""

    def __init__(self, uow_factory: UnitOfWorkFactory, clock: Clock, relay: Relay) -> None:
        self._uow_factory = uow_factory
        self._clock = clock
        self._relay = relay
        self._loop: asyncio.AbstractEventLoop | None = None
        self._committer: GroupCommitter[AcceptRequest, AcceptResult] = GroupCommitter(
            self._accept_batch, name="herald-accept"
        )

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._committer.start()

    def stop(self) -> None:
        self._committer.stop()

    async def accept(self, request: AcceptRequest) -> AcceptResult:
        return await self._committer.submit(request)

    def _accept_batch(self, requests: Sequence[AcceptRequest]) -> list[AcceptResult]:
        batch = accept_external_events(self._uow_factory(), requests, self._clock.now())
        if batch.by_host and self._loop is not None:
            self._loop.call_soon_threadsafe(self._relay.hand_off, batch.by_host)
        return batch.results
