"""The external events use case as the API calls it: accept through the writer, then hand off."""

from __future__ import annotations

from herald.service.accept import AcceptEvents, AcceptRequest, AcceptResult
from herald.service.ports import Clock
from herald.service.relay import Relay
from herald.service.writer import Writer


class ExternalEventsService:
    """``await accept(request)`` returns once the request's accepted events are committed."""

    def __init__(self, writer: Writer, clock: Clock, relay: Relay) -> None:
        self._writer = writer
        self._relay = relay
        self._job = AcceptEvents(clock, handed_off=relay.hands_off_at_commit)

    async def accept(self, request: AcceptRequest) -> AcceptResult:
        result = await self._writer.submit(self._job, request)
        if result.deliveries:
            self._relay.hand_off(result.deliveries)
        return result
