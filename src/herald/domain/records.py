"""Records the service keeps about servers: instance actions and external event deliveries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from herald.domain.events import DeliveryState, event_key


@dataclass(slots=True)
class ActionEvent:
    """One step of an instance action (Nova's instance action event)."""

    event: str
    start_time: datetime
    finish_time: datetime | None = None
    result: str | None = None  # "Success" / "Error"
    traceback: str | None = None
    host: str | None = None
    details: str | None = None


# (server uuid, request id, step): a step to file under the server's action for that request id.
ActionStep = tuple[str, str, ActionEvent]


@dataclass(slots=True)
class ServerAction:
    """Nova's instance action: what was asked of a server, by whom, under which request id."""

    server_uuid: str
    action: str
    request_id: str
    user_id: str | None
    project_id: str | None
    start_time: datetime
    finish_time: datetime | None = None
    message: str | None = None
    events: list[ActionEvent] = field(default_factory=list)
    id: int | None = None


@dataclass(frozen=True, slots=True)
class EventEnvelope:
    """An accepted external event as it travels to one host's agent."""

    uuid: str
    request_id: str
    server_uuid: str
    name: str
    tag: str | None
    status: str
    host: str
    user_id: str | None = None
    project_id: str | None = None
    # The journal row of this delivery (one per event and host): how outcomes find it.
    id: int = 0


@dataclass(slots=True)
class EventRecord:
    """The durable record of one event delivery (what operators query)."""

    uuid: str
    request_id: str
    server_uuid: str
    name: str
    tag: str | None
    status: str
    host: str
    state: str
    accepted_at: datetime
    dispatched_at: datetime | None = None
    handled_at: datetime | None = None
    outcome: str | None = None
    id: int | None = None


def accepted_record(envelope: EventEnvelope, accepted_at: datetime) -> EventRecord:
    """The journal's first record of a delivery: ``accepted`` at ``accepted_at``."""
    return EventRecord(
        envelope.uuid,
        envelope.request_id,
        envelope.server_uuid,
        envelope.name,
        envelope.tag,
        envelope.status,
        envelope.host,
        DeliveryState.ACCEPTED.value,
        accepted_at,
        id=envelope.id,
    )


@dataclass(frozen=True, slots=True)
class EventWaitRecord:
    """An event an operation on ``host`` waits for right now, until its deadline."""

    server_uuid: str
    host: str
    name: str
    tag: str | None
    since: datetime
    until: datetime

    @property
    def key(self) -> str:
        return event_key(self.name, self.tag)
