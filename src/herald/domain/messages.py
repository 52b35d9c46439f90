"""Messages carried to a compute host's agent: commands (imperative) and event batches."""

from __future__ import annotations

from dataclasses import dataclass

from herald.domain.records import EventEnvelope


@dataclass(frozen=True, slots=True)
class DeliverEvents:
    """Accepted external events for one host, in acceptance order.

    ``redelivery`` is set when the relay re-sends events it may have sent before: the agent
    then checks the journal so that a delivery already finished has no second effect.
    """

    events: tuple[EventEnvelope, ...]
    redelivery: bool = False


@dataclass(frozen=True, slots=True)
class ServerCommand:
    """Base of the commands an agent runs on one of its servers."""

    server_uuid: str
    request_id: str


@dataclass(frozen=True, slots=True)
class BuildServer(ServerCommand):
    pass


@dataclass(frozen=True, slots=True)
class StopServer(ServerCommand):
    # The periodic power sync asked for it: a power-update accepted meanwhile wins.
    from_power_sync: bool = False


@dataclass(frozen=True, slots=True)
class StartServer(ServerCommand):
    pass


@dataclass(frozen=True, slots=True)
class ShelveServer(ServerCommand):
    offload: bool = True


@dataclass(frozen=True, slots=True)
class ShelveOffloadServer(ServerCommand):
    pass


@dataclass(frozen=True, slots=True)
class UnshelveServer(ServerCommand):
    pass


@dataclass(frozen=True, slots=True)
class DeleteServer(ServerCommand):
    pass


@dataclass(frozen=True, slots=True)
class AttachInterface(ServerCommand):
    """Bind ``port_id`` (created on ``network_id`` when the request named a network) and plug it."""

    port_id: str
    network_id: str | None = None
    tag: str | None = None


@dataclass(frozen=True, slots=True)
class DetachInterface(ServerCommand):
    port_id: str


@dataclass(frozen=True, slots=True)
class AttachVolume(ServerCommand):
    """Connect a volume whose attachment the API already recorded (with its device name)."""

    volume_id: str


@dataclass(frozen=True, slots=True)
class DetachVolume(ServerCommand):
    volume_id: str


AgentMessage = (
    DeliverEvents
    | BuildServer
    | StopServer
    | StartServer
    | ShelveServer
    | ShelveOffloadServer
    | UnshelveServer
    | DeleteServer
    | AttachInterface
    | DetachInterface
    | AttachVolume
    | DetachVolume
)
