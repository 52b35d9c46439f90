"""What the server use cases share: the caller, their outcome, loading a server the caller may see."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from herald.domain.errors import ServerNotFound
from herald.domain.messages import AgentMessage
from herald.domain.model import Server
from herald.domain.records import ActionEvent, ServerAction
from herald.domain.uuids import is_uuid_like
from herald.service.ports import UnitOfWork


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asks: Nova's context ``user_id``, ``project_id`` and ``is_admin``."""

    user_id: str | None
    project_id: str | None
    is_admin: bool = False


@dataclass(frozen=True, slots=True)
class Dispatch:
    """An agent message to publish to ``host`` once the use case's transaction has committed."""

    host: str
    message: AgentMessage
    # The command's outbox row, once recorded (see commit_with).
    id: int | None = None


@dataclass(slots=True)
class Outcome:
    """A use case's result: the server as committed and what to tell the agents."""

    server: Server
    dispatch: list[Dispatch] = field(default_factory=list)


def load_server(uow: UnitOfWork, caller: Caller, uuid: str, *, for_update: bool = False) -> Server:
    """The non-deleted server, if the caller may see it.

    Non-admins only see their project's servers; anyone else's is "not found", as Nova's
    project-only database queries make it.

    :raises ServerNotFound: no such server, or not the caller's; or ``uuid`` is no UUID.
    """
    if not is_uuid_like(uuid):
        raise ServerNotFound(uuid)
    server = uow.servers.get(uuid, for_update=for_update)
    if server is None or not visible(caller, server):
        raise ServerNotFound(uuid)
    return server


def visible(caller: Caller, server: Server) -> bool:
    return caller.is_admin or server.project_id == caller.project_id


def start_action(
    uow: UnitOfWork,
    caller: Caller,
    server: Server,
    action: str,
    request_id: str,
    now: datetime,
    events: tuple[ActionEvent, ...] = (),
) -> None:
    """Record the instance action Nova's compute API records when it starts ``action``."""
    record = ServerAction(
        server_uuid=server.uuid,
        action=action,
        request_id=request_id,
        user_id=caller.user_id,
        project_id=caller.project_id,
        start_time=now,
        # As Nova's finish_event: an event that failed marks its action's message.
        message="Error" if any(event.result == "Error" for event in events) else None,
        events=list(events),
    )
    uow.actions.start([record])


def commit_with(uow: UnitOfWork, dispatch: list[Dispatch], now: datetime) -> list[Dispatch]:
    """Record the commands in the outbox and commit them with the use case's changes.

    Either the state change and its commands are both durable, or neither: a command nobody
    published yet (the transport is down, the process died) waits for the command relay.

    :returns: the commands, each with its outbox row id.
    """
    ids = uow.commands.add([(d.host, d.message) for d in dispatch], now)
    uow.commit()
    return [replace(d, id=row_id) for d, row_id in zip(dispatch, ids, strict=True)]
