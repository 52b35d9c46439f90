"""Creating a server: flavor, volumes, ports, a host from the scheduler, and the agent's BuildServer."""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from herald.domain.errors import Invalid, NotFound, NoValidHost, TooManyServers
from herald.domain.flavors import Flavor
from herald.domain.messages import BuildServer
from herald.domain.model import PowerState, Server, TaskState, Vif, VmState, VolumeAttachment
from herald.domain.naming import hostname, reservation_id
from herald.domain.records import ActionEvent
from herald.service import scheduler
from herald.service.common import Caller, Dispatch, Outcome, commit_with, start_action
from herald.service.flavors import get_flavor
from herald.service.ports import AcceleratorBackend, NetworkBackend, UnitOfWork, VolumeBackend

SCHEDULE_EVENT = "conductor_schedule_and_build_instances"
# Herald has no instance quota; one request still makes a bounded number of servers.
MAX_SERVERS_PER_REQUEST = 100
NO_VALID_HOST_FAULT = NoValidHost.message
_DEVICE_LETTERS = "abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True, slots=True)
class RequestedVolume:
    """One ``block_device_mapping_v2`` entry with a volume destination."""

    volume_id: str | None  # an existing volume; None asks for a new one of ``size_gb``
    size_gb: int | None = None
    boot_index: int | None = None


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """What a ``POST /servers`` asks for, parsed and validated by the API."""

    name: str
    image_ref: str
    flavor_id: str
    # "auto", "none", or one {"port": id} / {"uuid": network} dict per requested NIC.
    networks: str | tuple[Mapping[str, str], ...] = "auto"
    volumes: tuple[RequestedVolume, ...] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)
    requested_host: str | None = None  # 2.74 host / hypervisor_hostname: must exist, be enabled and up
    forced_host: str | None = None  # availability_zone "zone:host": must exist, nothing else is checked
    description: str | None = None  # 2.19
    access_ip_v4: str | None = None
    access_ip_v6: str | None = None
    auto_disk_config: bool = False
    tags: tuple[str, ...] = ()  # 2.52
    hostname: str | None = None  # 2.90
    key_name: str | None = None  # one of the caller's key pairs
    user_data: str | None = None
    config_drive: bool = False
    trusted_image_certificates: tuple[str, ...] | None = None  # 2.63
    scheduler_hints: Mapping[str, object] = field(default_factory=dict)
    count: int = 1  # max_count: that many servers, named NAME-1 … NAME-N when more than one


@dataclass(frozen=True, slots=True)
class CreatePolicy:
    service_down_time: int


def create_server(
    uow: UnitOfWork,
    network: NetworkBackend,
    volumes: VolumeBackend,
    caller: Caller,
    request_id: str,
    spec: ServerSpec,
    *,
    now: datetime,
    policy: CreatePolicy,
    accelerators: AcceleratorBackend | None = None,
) -> Outcome:
    """Record a new server and send it to a host, or put it in ERROR when no host can take it.

    The server keeps a copy of its flavor. A flavor with a device profile gets its accelerator
    requests made here, before the transaction (Nova's conductor makes them), so that their
    binding may complete, and its event come, before the build on the host waits for it.

    :raises FlavorNotFound: no such flavor.
    :raises Invalid: a volume, port or named host does not exist.
    """
    _check_count(spec)
    with uow:
        flavor = get_flavor(uow, spec.flavor_id, admin=caller.is_admin)
    attachments = _attachments(volumes, spec.volumes)
    uuids = [str(uuidlib.uuid4()) for _ in range(spec.count)]
    servers = [_new_server(caller, spec, flavor, attachments, now, uuid, index) for index, uuid in enumerate(uuids)]
    for server in servers:
        server.reservation_id = reservation_id(uuids[0])
    _request_accelerators(accelerators, flavor, servers)
    try:
        outcome = _record(uow, network, caller, request_id, spec, servers, now, policy)
    except BaseException:
        _release_accelerators(accelerators, servers)
        raise
    _release_accelerators(accelerators, [server for server in servers if server.host is None])
    return outcome


def _request_accelerators(accelerators: AcceleratorBackend | None, flavor: Flavor, servers: list[Server]) -> None:
    """The accelerator requests of the flavor's device profile, for each server.

    :raises Invalid: the flavor asks for accelerators and there is no accelerator service.
    """
    profile = flavor.device_profile
    if profile is None:
        return
    if accelerators is None:
        raise Invalid(f"Flavor {flavor.flavorid} asks for device profile {profile}, but no accelerator service is set.")
    try:
        for server in servers:
            server.accelerator_requests = [arq.uuid for arq in accelerators.create_for_server(server.uuid, profile)]
    except BaseException:
        _release_accelerators(accelerators, servers)
        raise


def _release_accelerators(accelerators: AcceleratorBackend | None, servers: list[Server]) -> None:
    """Delete the requests of servers that will not be built (Nova's conductor does so on failure)."""
    for server in servers:
        if accelerators is not None and server.accelerator_requests:
            accelerators.delete_for_server(server.uuid)
            server.accelerator_requests = []


def _record(
    uow: UnitOfWork,
    network: NetworkBackend,
    caller: Caller,
    request_id: str,
    spec: ServerSpec,
    servers: list[Server],
    now: datetime,
    policy: CreatePolicy,
) -> Outcome:
    dispatch: list[Dispatch] = []
    with uow:
        if spec.key_name is not None and uow.keypairs.get(caller.user_id or "", spec.key_name) is None:
            raise Invalid("Invalid key_name provided.")
        try:
            for server in servers:
                host = _schedule(uow, network, server, spec, now, policy)
                uow.servers.add(server)
                event = ActionEvent(SCHEDULE_EVENT, now, now, "Error" if host is None else "Success")
                start_action(uow, caller, server, "create", request_id, now, (event,))
                if host is not None:
                    dispatch.append(Dispatch(host, BuildServer(server.uuid, request_id)))
            dispatch = commit_with(uow, dispatch, now)
        except BaseException:
            for server in servers:
                network.deallocate_for_server(server.uuid)
            raise
    return Outcome(servers[0], dispatch)


def _check_count(spec: ServerSpec) -> None:
    """Nova's refusals for a request that makes several servers from one set of ports, volumes or hostname."""
    if spec.count <= 1:
        return
    if spec.count > MAX_SERVERS_PER_REQUEST:
        raise TooManyServers(spec.count, MAX_SERVERS_PER_REQUEST)
    if not isinstance(spec.networks, str) and any(item.get("port") for item in spec.networks):
        raise Invalid(
            "Failed to launch instances: Unable to launch multiple instances with a single configured port ID. "
            "Please launch your instance one by one with different ports."
        )
    if any(volume.volume_id is not None for volume in spec.volumes):
        raise Invalid("Cannot attach one or more volumes to multiple instances")
    if spec.hostname:
        raise Invalid("Unable to allocate a single hostname to multiple instances")


def _schedule(
    uow: UnitOfWork, network: NetworkBackend, server: Server, spec: ServerSpec, now: datetime, policy: CreatePolicy
) -> str | None:
    """Give ``server`` a host and its ports, or ERROR when no host can take it; returns the host."""
    host = _choose_host(uow, spec, now, policy)
    if host is None:
        _no_valid_host(server, now)
    else:
        server.host = server.node = host
        server.vifs = _allocate(network, server.uuid, spec.networks)
    return host


def _new_server(
    caller: Caller,
    spec: ServerSpec,
    flavor: Flavor,
    attachments: list[VolumeAttachment],
    now: datetime,
    uuid: str,
    index: int,
) -> Server:
    """Server ``index`` of the request; with several, Nova suffixes name and hostname with ``-N``."""
    several = spec.count > 1
    name = f"{spec.name}-{index + 1}" if several else spec.name
    derived = hostname(spec.name)
    return Server(
        uuid=uuid,
        name=name,
        project_id=caller.project_id or "",
        user_id=caller.user_id or "",
        flavor_id=flavor.flavorid,
        flavor=flavor,
        image_ref=spec.image_ref,
        vm_state=VmState.BUILDING.value,
        power_state=PowerState.NOSTATE.value,
        task_state=TaskState.SCHEDULING.value,
        volumes=list(attachments),
        metadata=dict(spec.metadata),
        created_at=now,
        updated_at=now,
        description=spec.description,
        access_ip_v4=spec.access_ip_v4,
        access_ip_v6=spec.access_ip_v6,
        auto_disk_config=spec.auto_disk_config,
        tags=list(dict.fromkeys(spec.tags)),
        hostname=spec.hostname or (f"{derived}-{index + 1}" if several else derived),
        key_name=spec.key_name,
        launch_index=index,
        user_data=spec.user_data,
        config_drive=spec.config_drive,
        trusted_image_certificates=None
        if spec.trusted_image_certificates is None
        else list(spec.trusted_image_certificates),
        scheduler_hints={k: list(v) if isinstance(v, list) else [v] for k, v in spec.scheduler_hints.items()},
    )


def _choose_host(uow: UnitOfWork, spec: ServerSpec, now: datetime, policy: CreatePolicy) -> str | None:
    """The host for a new server, or None when none qualifies (the server then goes to ERROR)."""
    if spec.forced_host is not None:
        record = uow.hosts.get(spec.forced_host)
        if record is None:
            raise Invalid(f"Compute host {spec.forced_host} could not be found.")
        return record.host
    try:
        if spec.requested_host is not None:
            return scheduler.check_requested_host(uow, now, policy.service_down_time, spec.requested_host)
        return scheduler.pick_host(uow, now, policy.service_down_time)
    except NoValidHost:
        return None


def _no_valid_host(server: Server, now: datetime) -> None:
    """What Nova's conductor does when scheduling fails: ERROR, no host, a fault."""
    server.vm_state = VmState.ERROR.value
    server.task_state = None
    server.fault = {"code": 500, "message": NO_VALID_HOST_FAULT, "created": now.strftime("%Y-%m-%dT%H:%M:%SZ")}


def _allocate(network: NetworkBackend, server_uuid: str, networks: str | Sequence[Mapping[str, str]]) -> list[Vif]:
    if isinstance(networks, str):
        if networks == "none":
            return []
        requested = [{"auto": ""}]
    else:
        requested = [dict(item) for item in networks]
    try:
        vifs = network.allocate_for_server(server_uuid, requested)
    except BaseException:
        network.deallocate_for_server(server_uuid)
        raise
    return [
        Vif(
            port_id=str(vif["port_id"]),
            active=bool(vif.get("active", False)),
            network_id=None if vif.get("network_id") is None else str(vif["network_id"]),
        )
        for vif in vifs
    ]


def _attachments(volumes: VolumeBackend, requested: Sequence[RequestedVolume]) -> list[VolumeAttachment]:
    """The server's volumes, the boot volume (boot_index 0) first as /dev/vda.

    :raises Invalid: a new volume has no size.
    """
    ordered = sorted(requested, key=lambda v: (v.boot_index is None or v.boot_index < 0, v.boot_index or 0))
    attachments: list[VolumeAttachment] = []
    for index, wanted in enumerate(ordered):
        device = f"/dev/vd{_DEVICE_LETTERS[index % len(_DEVICE_LETTERS)]}"
        attachments.append(
            VolumeAttachment(
                *_volume(volumes, wanted),
                device_name=device,
                attachment_id=str(uuidlib.uuid4()),
                bdm_uuid=str(uuidlib.uuid4()),
            )
        )
    return attachments


def _volume(volumes: VolumeBackend, wanted: RequestedVolume) -> tuple[str, int]:
    if wanted.volume_id is None:
        if wanted.size_gb is None:
            raise Invalid("Block Device Mapping is Invalid: You specified a new volume without volume_size.")
        return str(uuidlib.uuid4()), wanted.size_gb
    if wanted.size_gb is not None:
        try:
            return wanted.volume_id, volumes.get_size_gb(wanted.volume_id)
        except NotFound:
            return wanted.volume_id, wanted.size_gb
    # NOTE: a volume the block storage does not know exists on demand (the embedded backends' contract).
    return wanted.volume_id, volumes.reserve(wanted.volume_id)
