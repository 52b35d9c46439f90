"""Host liveness and the simple scheduler: an enabled, up host with the fewest servers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from herald.domain.errors import Invalid, NoValidHost
from herald.domain.model import ComputeHost
from herald.service.ports import UnitOfWork


@dataclass(frozen=True, slots=True)
class HostStatus:
    """A compute host as the API shows it: its record plus whether it is up right now."""

    host: ComputeHost
    up: bool


def is_up(host: ComputeHost, now: datetime, service_down_time: int) -> bool:
    """Nova's DB servicegroup rule: not forced down and heard from within ``service_down_time`` seconds."""
    if host.forced_down or host.last_seen_up is None:
        return False
    return abs((now - host.last_seen_up).total_seconds()) <= service_down_time


def host_statuses(uow: UnitOfWork, now: datetime, service_down_time: int) -> list[HostStatus]:
    return [HostStatus(h, is_up(h, now, service_down_time)) for h in uow.hosts.list()]


def pick_host(uow: UnitOfWork, now: datetime, service_down_time: int, *, exclude: str | None = None) -> str:
    """The enabled, up host with the fewest servers (ties by name).

    :raises NoValidHost: no host qualifies.
    """
    candidates = [
        status.host.host
        for status in host_statuses(uow, now, service_down_time)
        if status.up and not status.host.disabled and status.host.host != exclude
    ]
    if not candidates:
        raise NoValidHost()
    return min(candidates, key=lambda name: (len(uow.servers.list(host=name)), name))


def check_requested_host(uow: UnitOfWork, now: datetime, service_down_time: int, host: str) -> str:
    """A host the caller named (2.74 create, 2.91 unshelve): it must exist, be enabled and up.

    :raises Invalid: there is no such host (Nova answers its ComputeHostNotFound with 400).
    :raises NoValidHost: it exists but cannot take the server now.
    """
    record = uow.hosts.get(host)
    if record is None:
        raise Invalid(f"Compute host {host} could not be found.")
    if record.disabled or not is_up(record, now, service_down_time):
        raise NoValidHost()
    return record.host
