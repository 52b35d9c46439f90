"""``addSecurityGroup`` / ``removeSecurityGroup`` without a security group service.

Only the project's ``default`` group exists (as on create), and a server's groups are those
of its ports, so a server without ports has none to change, with the 404s Nova answers.
"""

from __future__ import annotations

from datetime import datetime

from herald.domain.errors import NotFound
from herald.service.common import Caller, Outcome, load_server
from herald.service.ports import UnitOfWork

DEFAULT_GROUP = "default"


def _check(caller: Caller, server_uuid: str, name: str, ports: int) -> None:
    if name != DEFAULT_GROUP:
        raise NotFound(f"Security group {name} is not found for project {caller.project_id}")
    if not ports:
        raise NotFound(f"instance_id {server_uuid} could not be found as device id on any ports")


def add_security_group(uow: UnitOfWork, caller: Caller, uuid: str, name: str, *, now: datetime) -> Outcome:
    """:raises NotFound: no such group, or the server has no ports."""
    with uow:
        server = load_server(uow, caller, uuid, for_update=True)
        _check(caller, uuid, name, len(server.vifs))
        if name not in server.security_groups:
            server.security_groups = [*server.security_groups, name]
            server.updated_at = now
            uow.servers.save(server)
            uow.commit()
    return Outcome(server)


def remove_security_group(uow: UnitOfWork, caller: Caller, uuid: str, name: str, *, now: datetime) -> Outcome:
    """:raises NotFound: no such group, the server has no ports, or the group is not on them."""
    with uow:
        server = load_server(uow, caller, uuid, for_update=True)
        _check(caller, uuid, name, len(server.vifs))
        if name not in server.security_groups:
            raise NotFound(f"Security group {name} not associated with the instance {uuid}")
        server.security_groups = [g for g in server.security_groups if g != name]
        server.updated_at = now
        uow.servers.save(server)
        uow.commit()
    return Outcome(server)
