"""Herald's exception tree.

HeraldError
├── NotFound
│   ├── ServerNotFound
│   ├── FlavorNotFound
│   ├── ActionNotFound
│   ├── MetadataItemNotFound
│   ├── TagNotFound
│   ├── KeypairNotFound
│   ├── HostNotFound
│   ├── PortNotFound
│   ├── VolumeNotAttached        (the server has no attachment of that volume)
│   └── FlavorExtraSpecNotFound
├── Invalid                      (the caller asked for something malformed)
│   ├── ImageRefInvalid
│   ├── MarkerNotFound           (a listing's marker names nothing listed)
│   ├── InvalidVolume            (the volume cannot be attached: already attached)
│   └── ImageUnacceptable        (an image a server cannot be rebuilt with)
│   ├── CannotMigrateToSameHost
│   ├── CannotResizeToSameFlavor
│   └── NotResized               (confirm or revert without a finished move)
├── Conflict                     (the server's state does not allow it)
│   ├── KeyPairExists
│   ├── InvalidServerState
│   ├── ServerLocked             (locked, and the caller is no admin)
│   ├── ServerNotReady           (it has no host yet)
│   ├── UnshelveInvalidState     (a host or zone named for a server that is not offloaded)
│   ├── UnexpectedTaskState      (a guarded save lost a race)
│   ├── PortInUse                (the port is bound to another server)
│   ├── ServiceUnavailable       (the compute host a move needs is down)
│   └── FlavorExists             (a flavor with that name or id exists)
├── NoValidHost
├── Forbidden
│   ├── TooManyServers           (one request asks for more servers than it may make)
│   ├── KeypairLimitExceeded     (over the key_pairs quota)
│   └── MetadataLimitExceeded    (over the metadata_items quota)
├── EventWaitTimeout             (a waited-for external event did not come in time)
├── EventWaitFailed              (a waited-for external event came with status failed)
├── ShuttingDown                 (no new waiters while the agent stops)
├── BusUnavailable               (the message bus could not take a message)
└── DriverError
    └── NotSupportedByDriver
"""

from __future__ import annotations


class HeraldError(Exception):
    """Base of every error Herald raises on purpose."""

    message = "An unknown error occurred."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)

    @property
    def text(self) -> str:
        return str(self.args[0])


class NotFound(HeraldError):
    message = "Resource could not be found."


class ServerNotFound(NotFound):
    def __init__(self, uuid: str) -> None:
        super().__init__(f"Instance {uuid} could not be found.")


class FlavorNotFound(NotFound):
    def __init__(self, flavor_id: str) -> None:
        super().__init__(f"Flavor {flavor_id} could not be found.")


class ActionNotFound(NotFound):
    def __init__(self, request_id: str, server_uuid: str) -> None:
        super().__init__(f"Action for request_id {request_id} on instance {server_uuid} not found")


class MetadataItemNotFound(NotFound):
    message = "Metadata item was not found"


class TagNotFound(NotFound):
    def __init__(self, uuid: str, tag: str) -> None:
        super().__init__(f"Instance {uuid} has no tag '{tag}'")


class KeypairNotFound(NotFound):
    def __init__(self, name: str, user_id: str) -> None:
        super().__init__(f"Keypair {name} not found for user {user_id}")


class HostNotFound(NotFound):
    def __init__(self, host: str) -> None:
        super().__init__(f"Compute host {host} could not be found.")


class PortNotFound(NotFound):
    def __init__(self, port_id: str) -> None:
        super().__init__(f"Port {port_id} is not attached")


class VolumeNotAttached(NotFound):
    def __init__(self, server_uuid: str, volume_id: str) -> None:
        super().__init__(f"Instance {server_uuid} is not attached to volume {volume_id}")


class Invalid(HeraldError):
    message = "Invalid input."


class ImageRefInvalid(Invalid):
    pass


class ImageUnacceptable(Invalid):
    def __init__(self, image_id: str, reason: str) -> None:
        super().__init__(f"Image {image_id} is unacceptable: {reason}")


class MarkerNotFound(Invalid):
    def __init__(self, marker: str) -> None:
        super().__init__(f"Marker {marker} could not be found.")


class InvalidVolume(Invalid):
    def __init__(self, reason: str) -> None:
        super().__init__(f"Invalid volume: {reason}")


class CannotMigrateToSameHost(Invalid):
    message = "Cannot migrate to the host where the server exists."


class CannotResizeToSameFlavor(Invalid):
    message = "When resizing, instances must change flavor!"


class NotResized(Invalid):
    message = "Instance has not been resized."


class Conflict(HeraldError):
    message = "Conflict."


class KeyPairExists(Conflict):
    def __init__(self, name: str) -> None:
        super().__init__(f"Key pair '{name}' already exists.")


class InvalidServerState(Conflict):
    def __init__(self, uuid: str, attr: str, state: str | None, action: str) -> None:
        super().__init__(f"Cannot '{action}' instance {uuid} while it is in {attr} {state}")


class ServerLocked(Conflict):
    def __init__(self, uuid: str) -> None:
        super().__init__(f"Instance {uuid} is locked")


class ServerNotReady(Conflict):
    def __init__(self, uuid: str) -> None:
        super().__init__(f"Instance {uuid} is not ready")


class UnshelveInvalidState(Conflict):
    def __init__(self, uuid: str, state: str) -> None:
        super().__init__(
            f'Specifying an availability zone or a host when unshelving server "{uuid}" with status '
            f'"{state}" is not supported. The server status must be SHELVED_OFFLOADED.'
        )


class UnexpectedTaskState(Conflict):
    def __init__(self, uuid: str, expected: object, actual: object) -> None:
        super().__init__(
            f"Conflict updating instance {uuid}. Expected: {{'task_state': {expected}}}. "
            f"Actual: {{'task_state': {actual!r}}}"
        )


class PortInUse(Conflict):
    def __init__(self, port_id: str) -> None:
        super().__init__(f"Port {port_id} is still in use.")


class ServiceUnavailable(Conflict):
    message = "Service is unavailable at this time."


class NoValidHost(HeraldError):
    message = "No valid host was found. There are not enough hosts available."


class Forbidden(HeraldError):
    message = "Forbidden."


class TooManyServers(Forbidden):
    def __init__(self, requested: int, allowed: int) -> None:
        super().__init__(
            f"Quota exceeded for instances: Requested {requested}, but already used 0 of {allowed} instances"
        )


class KeypairLimitExceeded(Forbidden):
    message = "Quota exceeded, too many key pairs."


class MetadataLimitExceeded(Forbidden):
    def __init__(self, allowed: int) -> None:
        super().__init__(f"Maximum number of metadata items exceeds {allowed}")


class EventWaitTimeout(HeraldError):
    message = "Timeout waiting for external events."


class EventWaitFailed(HeraldError):
    message = "Instance event failed."


class ShuttingDown(HeraldError):
    message = "In shutdown, no new events can be scheduled."


class DriverError(HeraldError):
    message = "The virt driver failed."


class NotSupportedByDriver(DriverError):
    message = "The virt driver does not support this operation."


class BusUnavailable(HeraldError):
    message = "The message bus is unavailable."


class FlavorExtraSpecNotFound(NotFound):
    def __init__(self, flavor_id: str, key: str) -> None:
        super().__init__(f"Flavor {flavor_id} has no extra specs with key {key}.")


class FlavorExists(Conflict):
    """Nova's FlavorExists / FlavorIdExists texts."""
