"""Changing what a server is called and labelled: PUT /servers/{id}, its metadata and its tags.

Each use case is one transaction on the locked row. None of them involves the compute host:
they change the record only, as Nova's API-side updates do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from herald.domain.errors import (
    Invalid,
    InvalidServerState,
    MetadataItemNotFound,
    MetadataLimitExceeded,
    TagNotFound,
)
from herald.domain.model import Server, VmState
from herald.service.common import Caller, load_server
from herald.service.ports import UnitOfWork
from herald.service.server_actions import check_lock, check_state

# Nova's [quota] metadata_items default and its per-server tag limit.
MAX_METADATA_ITEMS = 128
MAX_TAGS = 50
# Nova's API-side metadata and tag changes need a settled server in one of these states.
_LABEL_STATES = (VmState.ACTIVE, VmState.PAUSED, VmState.SUSPENDED, VmState.STOPPED)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ServerUpdate:
    """The fields a ``PUT /servers/{id}`` sets; ``None`` leaves a field as it is."""

    name: str | None = None
    access_ip_v4: str | None = None
    access_ip_v6: str | None = None
    auto_disk_config: bool | None = None
    # 2.19: a null description removes it, so whether it was given is its own field.
    sets_description: bool = False
    description: str | None = None
    hostname: str | None = None  # 2.90


def _change(
    uow: UnitOfWork, caller: Caller, uuid: str, now: datetime, change: Callable[[Server], T]
) -> tuple[Server, T]:
    with uow:
        server = load_server(uow, caller, uuid, for_update=True)
        result = change(server)
        server.updated_at = now
        uow.servers.save(server)
        uow.commit()
    return server, result


def update_server(uow: UnitOfWork, caller: Caller, uuid: str, update: ServerUpdate, *, now: datetime) -> Server:
    """Nova's ``update_instance``: no state check, the record only."""

    def change(server: Server) -> None:
        if update.name is not None:
            server.name = update.name
        if update.access_ip_v4 is not None:
            server.access_ip_v4 = update.access_ip_v4 or None
        if update.access_ip_v6 is not None:
            server.access_ip_v6 = update.access_ip_v6 or None
        if update.auto_disk_config is not None:
            server.auto_disk_config = update.auto_disk_config
        if update.sets_description:
            server.description = update.description
        if update.hostname is not None:
            server.hostname = update.hostname

    return _change(uow, caller, uuid, now, change)[0]


# --- metadata ------------------------------------------------------------------------------


def update_metadata(
    uow: UnitOfWork,
    caller: Caller,
    uuid: str,
    items: Mapping[str, str],
    *,
    replace: bool,
    now: datetime,
) -> dict[str, str]:
    """Merge ``items`` into the server's metadata (or make them all of it, with ``replace``).

    :raises InvalidServerState: the server is not settled in a state that allows it.
    :raises MetadataLimitExceeded: more items than the quota allows.
    :returns: the server's metadata after the change.
    """

    def change(server: Server) -> dict[str, str]:
        check_lock(server, caller)
        check_state(server, "update metadata", _LABEL_STATES)
        metadata = dict(items) if replace else {**server.metadata, **items}
        if len(metadata) > MAX_METADATA_ITEMS:
            raise MetadataLimitExceeded(MAX_METADATA_ITEMS)
        server.metadata = metadata
        return dict(metadata)

    return _change(uow, caller, uuid, now, change)[1]


def delete_metadata_item(uow: UnitOfWork, caller: Caller, uuid: str, key: str, *, now: datetime) -> None:
    """:raises MetadataItemNotFound: the server has no such key (checked before its state, as Nova)."""

    def change(server: Server) -> None:
        if key not in server.metadata:
            raise MetadataItemNotFound()
        check_lock(server, caller)
        check_state(server, "delete metadata", _LABEL_STATES)
        server.metadata = {k: v for k, v in server.metadata.items() if k != key}

    _change(uow, caller, uuid, now, change)


# --- tags ----------------------------------------------------------------------------------


def _labelable(server: Server, action: str) -> None:
    """The tag APIs check vm_state only (no task or launch check), as Nova's tags controller does."""
    if server.vm_state not in _LABEL_STATES:
        raise InvalidServerState(server.uuid, "vm_state", server.vm_state, action)


def set_tags(uow: UnitOfWork, caller: Caller, uuid: str, tags: Sequence[str], *, now: datetime) -> list[str]:
    """Replace every tag (duplicates kept once, first position wins)."""

    def change(server: Server) -> list[str]:
        _labelable(server, "update tags")
        server.tags = list(dict.fromkeys(tags))
        return list(server.tags)

    return _change(uow, caller, uuid, now, change)[1]


def add_tag(uow: UnitOfWork, caller: Caller, uuid: str, tag: str, *, now: datetime) -> bool:
    """Add one tag; returns False when the server already had it.

    :raises Invalid: the server already has the most tags it may have.
    """

    def change(server: Server) -> bool:
        _labelable(server, "update tag")
        if len(server.tags) >= MAX_TAGS:
            raise Invalid(f"The number of tags exceeded the per-server limit {MAX_TAGS}")
        if tag in server.tags:
            return False
        server.tags = [*server.tags, tag]
        return True

    return _change(uow, caller, uuid, now, change)[1]


def delete_tag(uow: UnitOfWork, caller: Caller, uuid: str, tag: str, *, now: datetime) -> None:
    """:raises TagNotFound: the server does not have ``tag``."""

    def change(server: Server) -> None:
        _labelable(server, "delete tag")
        if tag not in server.tags:
            raise TagNotFound(uuid, tag)
        server.tags = [t for t in server.tags if t != tag]

    _change(uow, caller, uuid, now, change)


def delete_all_tags(uow: UnitOfWork, caller: Caller, uuid: str, *, now: datetime) -> None:
    def change(server: Server) -> None:
        _labelable(server, "delete tags")
        server.tags = []

    _change(uow, caller, uuid, now, change)
