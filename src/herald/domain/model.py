"""Servers, hosts and their states, with Nova's names and numbers."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from herald.domain.flavors import Flavor


class VmState(enum.StrEnum):
    ACTIVE = "active"
    BUILDING = "building"
    PAUSED = "paused"
    SUSPENDED = "suspended"
    STOPPED = "stopped"
    RESCUED = "rescued"
    RESIZED = "resized"
    SOFT_DELETED = "soft-delete"
    DELETED = "deleted"
    ERROR = "error"
    SHELVED = "shelved"
    SHELVED_OFFLOADED = "shelved_offloaded"


class PowerState(enum.IntEnum):
    """Nova's power states; the API shows the integer."""

    NOSTATE = 0
    RUNNING = 1
    PAUSED = 3
    SHUTDOWN = 4
    CRASHED = 6
    SUSPENDED = 7


class TaskState(enum.StrEnum):
    SCHEDULING = "scheduling"
    SPAWNING = "spawning"
    NETWORKING = "networking"
    BLOCK_DEVICE_MAPPING = "block_device_mapping"
    POWERING_OFF = "powering-off"
    POWERING_ON = "powering-on"
    DELETING = "deleting"
    MIGRATING = "migrating"
    SHELVING = "shelving"
    SHELVING_OFFLOADING = "shelving_offloading"
    UNSHELVING = "unshelving"
    REBOOTING = "rebooting"
    REBUILDING = "rebuilding"
    REBUILD_SPAWNING = "rebuild_spawning"
    RESIZE_PREP = "resize_prep"
    RESIZE_MIGRATING = "resize_migrating"
    RESIZE_MIGRATED = "resize_migrated"
    RESIZE_FINISH = "resize_finish"
    RESIZE_REVERTING = "resize_reverting"
    REBOOT_PENDING = "reboot_pending"
    REBOOT_STARTED = "reboot_started"
    REBOOTING_HARD = "rebooting_hard"
    REBOOT_PENDING_HARD = "reboot_pending_hard"
    REBOOT_STARTED_HARD = "reboot_started_hard"
    REBUILD_BLOCK_DEVICE_MAPPING = "rebuild_block_device_mapping"
    SOFT_DELETING = "soft-deleting"
    RESTORING = "restoring"


_REBUILD = {
    TaskState.REBUILDING: "REBUILD",
    TaskState.REBUILD_BLOCK_DEVICE_MAPPING: "REBUILD",
    TaskState.REBUILD_SPAWNING: "REBUILD",
}
_REBOOT = {
    TaskState.REBOOTING: "REBOOT",
    TaskState.REBOOT_PENDING: "REBOOT",
    TaskState.REBOOT_STARTED: "REBOOT",
    TaskState.REBOOTING_HARD: "HARD_REBOOT",
    TaskState.REBOOT_PENDING_HARD: "HARD_REBOOT",
    TaskState.REBOOT_STARTED_HARD: "HARD_REBOOT",
}
_RESIZE = {
    TaskState.RESIZE_PREP: "RESIZE",
    TaskState.RESIZE_MIGRATING: "RESIZE",
    TaskState.RESIZE_MIGRATED: "RESIZE",
    TaskState.RESIZE_FINISH: "RESIZE",
}
# (vm_state -> (default status, {task_state: status})), as the compute API reports it.
_STATUS_TABLE: dict[VmState, tuple[str, dict[TaskState, str]]] = {
    VmState.ACTIVE: (
        "ACTIVE",
        {**_REBOOT, TaskState.MIGRATING: "MIGRATING", **_REBUILD, **_RESIZE},
    ),
    VmState.BUILDING: ("BUILD", {}),
    VmState.STOPPED: ("SHUTOFF", {**_RESIZE, **_REBUILD}),
    VmState.RESIZED: ("VERIFY_RESIZE", {TaskState.RESIZE_REVERTING: "REVERT_RESIZE"}),
    VmState.PAUSED: ("PAUSED", {TaskState.MIGRATING: "MIGRATING"}),
    VmState.SUSPENDED: ("SUSPENDED", {}),
    VmState.RESCUED: ("RESCUE", {}),
    VmState.ERROR: ("ERROR", dict(_REBUILD)),
    VmState.DELETED: ("DELETED", {}),
    VmState.SOFT_DELETED: ("SOFT_DELETED", {}),
    VmState.SHELVED: ("SHELVED", {}),
    VmState.SHELVED_OFFLOADED: ("SHELVED_OFFLOADED", {}),
}


def server_status(vm_state: str, task_state: str | None) -> str:
    """The API ``status`` derived from vm_state and task_state, as Nova derives it."""
    try:
        default, by_task = _STATUS_TABLE[VmState(vm_state)]
    except ValueError:
        return "UNKNOWN"
    if task_state is None:
        return default
    try:
        return by_task.get(TaskState(task_state), default)
    except ValueError:
        return default


@dataclass(slots=True)
class Vif:
    """A port attached to a server (the network info cache entry)."""

    port_id: str
    active: bool = False
    network_id: str | None = None
    tag: str | None = None  # the device tag given when it was attached (2.49)


@dataclass(slots=True)
class VolumeAttachment:
    volume_id: str
    size_gb: int
    device_name: str | None = None
    tag: str | None = None  # 2.49
    delete_on_termination: bool = False  # 2.79
    attachment_id: str | None = None  # the volume service's attachment (2.89)
    bdm_uuid: str | None = None  # 2.89


@dataclass(slots=True)
class Server:
    uuid: str
    name: str
    project_id: str
    user_id: str
    flavor_id: str
    image_ref: str
    vm_state: str = VmState.BUILDING.value
    power_state: int = PowerState.NOSTATE.value
    task_state: str | None = TaskState.SCHEDULING.value
    host: str | None = None
    node: str | None = None
    vifs: list[Vif] = field(default_factory=list)
    volumes: list[VolumeAttachment] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)
    fault: dict[str, object] | None = None
    migration_id: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    launched_at: datetime | None = None
    terminated_at: datetime | None = None
    deleted: bool = False
    description: str | None = None
    access_ip_v4: str | None = None
    access_ip_v6: str | None = None
    auto_disk_config: bool = False  # the API's OS-DCF:diskConfig AUTO
    tags: list[str] = field(default_factory=list)  # 2.26, in the order they were added
    hostname: str | None = None  # 2.90; None: derived from the name it was created with
    key_name: str | None = None
    locked: bool = False
    locked_by: str | None = None  # "owner" or "admin": who may unlock without the override rule
    locked_reason: str | None = None  # 2.73
    reservation_id: str | None = None  # shared by the servers of one create request
    launch_index: int = 0  # the server's place among them
    user_data: str | None = None  # base64, as the request gave it
    config_drive: bool = False
    trusted_image_certificates: list[str] | None = None  # 2.63
    scheduler_hints: dict[str, list[object]] = field(default_factory=dict)  # each value a list, as Nova keeps them
    # The security groups of its ports, by name (there is no security group service: only "default" exists).
    security_groups: list[str] = field(default_factory=lambda: ["default"])
    deleted_at: datetime | None = None  # when a deferred delete (SOFT_DELETED) began; the reclaim counts from it
    flavor: Flavor | None = None  # the copy made at create (Nova's instance.flavor); None: unknown flavor_id
    accelerator_requests: list[str] = field(default_factory=list)  # ARQ uuids made for the boot

    @property
    def status(self) -> str:
        return server_status(self.vm_state, self.task_state)


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A user's public key (``ssh`` or ``x509``), by name; ``id`` is set once stored."""

    user_id: str
    name: str
    type: str
    fingerprint: str
    public_key: str
    created_at: datetime
    id: int = 0


class MigrationStatus(enum.StrEnum):
    """The statuses a cold move's record walks through, with Nova's names."""

    PRE_MIGRATING = "pre-migrating"  # scheduled; the destination prepares
    MIGRATING = "migrating"  # the source powers off and sends the disk
    POST_MIGRATING = "post-migrating"  # the destination now holds the server
    FINISHED = "finished"  # VERIFY_RESIZE: waiting for confirm or revert
    CONFIRMING = "confirming"
    CONFIRMED = "confirmed"
    REVERTING = "reverting"
    REVERTED = "reverted"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Migration:
    id: int
    server_uuid: str
    source_compute: str
    dest_compute: str
    migration_type: str  # "migration" (same flavor) or "resize"
    status: str
    uuid: str = ""
    source_node: str | None = None
    dest_node: str | None = None
    old_flavor_id: str | None = None
    new_flavor_id: str | None = None
    old_vm_state: str | None = None  # the vm_state to return to (a stopped server stays stopped)
    user_id: str | None = None
    project_id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ComputeHost:
    host: str
    disabled: bool
    disabled_reason: str | None
    last_seen_up: datetime | None
    forced_down: bool = False
    id: int = 0
