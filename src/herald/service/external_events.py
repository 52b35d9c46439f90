"""The external events use case as the API calls it: accept through the writer, then hand off."""

from __future__ import annotations

from herald.service.accept import AcceptEvents, AcceptRequest, AcceptResult
from herald.service.ports import Clock
from herald.service.relay import Relay
from herald.service.writer import Unavailable, Writer


class HostsBusy(Unavailable):
    """A request names a server whose host has too many events waiting: nothing of it was recorded."""


class ExternalEventsService:
    """``await accept(request)`` returns once the request's accepted events are committed."""

    def __init__(self, writer: Writer, clock: Clock, relay: Relay) -> None:
        self._writer = writer
        self._relay = relay
        self._job = AcceptEvents(clock, has_room=relay.has_room)

    async def accept(self, request: AcceptRequest, *, commit_wait: float | None = None) -> AcceptResult:
        """:param commit_wait: seconds to wait for the commit at most (None: as long as it takes).
        :raises Unavailable: nothing was recorded: the writer is overloaded, the database did not
            commit in time, or a named server's host has too many events waiting."""
        if commit_wait is None:
            result = await self._writer.submit(self._job, request)
        else:
            result = await self._writer.submit_within(self._job, request, seconds=commit_wait)
        if result.busy_hosts:
            raise HostsBusy("Too many events are waiting for delivery to the servers' hosts.")
        if result.deliveries:
            self._relay.hand_off(result.deliveries)
        return result
