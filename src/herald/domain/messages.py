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


@dataclass(frozen=True, slots=True)
class RebootServer(ServerCommand):
    hard: bool = False


@dataclass(frozen=True, slots=True)
class RebuildServer(ServerCommand):
    # A stopped server is rebuilt and left stopped, as Nova brings it back to its original state.
    was_stopped: bool = False
    # 2.93, volume-backed: the root volume the block-storage service re-images, and its size (the wait's timeout).
    reimage_volume_id: str | None = None
    reimage_size_gb: int = 0


@dataclass(frozen=True, slots=True)
class SoftDeleteServer(ServerCommand):
    pass


@dataclass(frozen=True, slots=True)
class RestoreServer(ServerCommand):
    pass


@dataclass(frozen=True, slots=True)
class MoveCommand(ServerCommand):
    """A step of a cold move (migrate or resize), on one end of its migration record."""

    migration_id: int = 0


@dataclass(frozen=True, slots=True)
class PrepResize(MoveCommand):
    """To the destination: get ready to take the server, then hand over to the source."""


@dataclass(frozen=True, slots=True)
class ResizeInstance(MoveCommand):
    """To the source: power the machine off and send its disk; the destination now holds the server."""


@dataclass(frozen=True, slots=True)
class FinishResize(MoveCommand):
    """To the destination: start the machine with the new flavor (VERIFY_RESIZE)."""


@dataclass(frozen=True, slots=True)
class ConfirmResize(MoveCommand):
    """To the source: remove the machine left behind (then, for a delete, hand it to the destination)."""

    then_delete: bool = False


@dataclass(frozen=True, slots=True)
class RevertResize(MoveCommand):
    """To the destination: remove the new machine, then hand back to the source."""


@dataclass(frozen=True, slots=True)
class FinishRevertResize(MoveCommand):
    """To the source: start the old machine again with the old flavor."""


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
    | RebootServer
    | RebuildServer
    | SoftDeleteServer
    | RestoreServer
    | PrepResize
    | ResizeInstance
    | FinishResize
    | ConfirmResize
    | RevertResize
    | FinishRevertResize
)
