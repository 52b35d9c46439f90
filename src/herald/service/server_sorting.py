"""``GET /servers`` ordering: Nova's ``sort_key``/``sort_dir`` over the fields Herald keeps."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from functools import cmp_to_key

from herald.domain.model import Server

# Nova's sort key -> the server's value. Keys Nova accepts for fields Herald does not model
# compare equal (every server has the same empty value), as Nova's would for such servers.
_VALUES: dict[str, Callable[[Server], object]] = {
    "access_ip_v4": lambda s: s.access_ip_v4,
    "access_ip_v6": lambda s: s.access_ip_v6,
    "auto_disk_config": lambda s: s.auto_disk_config,
    "config_drive": lambda s: s.config_drive,
    "created_at": lambda s: s.created_at,
    "display_description": lambda s: s.description,
    "display_name": lambda s: s.name,
    "host": lambda s: s.host,
    "hostname": lambda s: s.hostname,
    "image_ref": lambda s: s.image_ref,
    "instance_type_id": lambda s: s.flavor_id,
    "key_name": lambda s: s.key_name,
    "launch_index": lambda s: s.launch_index,
    "launched_at": lambda s: s.launched_at,
    "locked": lambda s: s.locked,
    "locked_by": lambda s: s.locked_by,
    "node": lambda s: s.node,
    "power_state": lambda s: s.power_state,
    "project_id": lambda s: s.project_id,
    "task_state": lambda s: s.task_state,
    "terminated_at": lambda s: s.terminated_at,
    "updated_at": lambda s: s.updated_at,
    "user_id": lambda s: s.user_id,
    "uuid": lambda s: s.uuid,
    "vm_state": lambda s: s.vm_state,
}


def _compare(a: object, b: object) -> int:
    """None sorts first ascending, as NULL does in Nova's queries on MySQL."""
    if a == b:
        return 0
    if a is None:
        return -1
    if b is None:
        return 1
    if isinstance(a, datetime) and isinstance(b, datetime):
        return -1 if a < b else 1
    if isinstance(a, int) and isinstance(b, int):  # bool is an int
        return -1 if a < b else 1
    return -1 if str(a) < str(b) else 1


def sort_servers(servers: Sequence[Server], keys: Sequence[tuple[str, bool]]) -> list[Server]:
    """``servers`` ordered by ``keys`` (key, descending), ties broken by creation then uuid."""
    order = list(keys)
    named = {key for key, _ in order}
    descending = order[0][1] if order else True
    order += [(key, descending) for key in ("created_at", "uuid") if key not in named]

    def compare(a: Server, b: Server) -> int:
        for key, desc in order:
            value = _VALUES.get(key)
            if value is None:
                continue
            result = _compare(value(a), value(b))
            if result:
                return -result if desc else result
        return 0

    return sorted(servers, key=cmp_to_key(compare))
