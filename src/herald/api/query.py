"""Query parameters shared by list APIs, checked the way Nova's query schemas check them."""

from __future__ import annotations

from datetime import UTC, datetime

from oslo_utils import timeutils

from herald.api.edge import ApiRequest
from herald.api.faults import ApiFault


def changes_time(req: ApiRequest, name: str) -> datetime | None:
    """``changes-since`` / ``changes-before``: an ISO 8601 time as naive UTC, or None when absent.

    :raises ApiFault: 400 with Nova's query-parameter message when it is not a date-time.
    """
    raw = req.query.get(name)
    if raw is None:
        return None
    try:
        parsed = timeutils.parse_isotime(raw)
    except ValueError:
        raise ApiFault(
            400, f"Invalid input for query parameters {name}. Value: {raw}. '{raw}' is not a 'date-time'"
        ) from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


# Nova's valid server sort keys; the second set is accepted and ignored (2.73 makes "locked" valid).
SORT_KEYS = frozenset(
    {
        "access_ip_v4",
        "access_ip_v6",
        "auto_disk_config",
        "availability_zone",
        "config_drive",
        "created_at",
        "display_description",
        "display_name",
        "host",
        "hostname",
        "image_ref",
        "instance_type_id",
        "kernel_id",
        "key_name",
        "launch_index",
        "launched_at",
        "locked_by",
        "node",
        "power_state",
        "progress",
        "project_id",
        "ramdisk_id",
        "root_device_name",
        "task_state",
        "terminated_at",
        "updated_at",
        "user_id",
        "uuid",
        "vm_state",
    }
)
IGNORED_SORT_KEYS = frozenset(
    {
        "architecture",
        "cell_name",
        "cleaned",
        "default_ephemeral_device",
        "default_swap_device",
        "deleted",
        "deleted_at",
        "disable_terminate",
        "ephemeral_gb",
        "ephemeral_key_uuid",
        "id",
        "key_data",
        "launched_on",
        "locked",
        "memory_mb",
        "os_type",
        "reservation_id",
        "root_gb",
        "shutdown_terminate",
        "user_data",
        "vcpus",
        "vm_mode",
    }
)
ADMIN_SORT_KEYS = frozenset({"host", "node"})


def server_sort(req: ApiRequest, *, admin: bool, locked_is_a_key: bool) -> tuple[tuple[str, bool], ...]:
    """Nova's ``sort_key``/``sort_dir`` (each may repeat): (key, descending) pairs, validated.

    Keys Nova ignores are dropped, as Nova drops them (``host`` and ``node`` for non-admins too).

    :raises ApiFault: 400 for an unknown key or direction, or more directions than keys.
    """
    keys = [key.strip() for key in req.query.getlist("sort_key")]
    dirs = [direction.strip() for direction in req.query.getlist("sort_dir")]
    valid = SORT_KEYS | ({"locked"} if locked_is_a_key else set())
    for key in keys:
        if key not in valid and key not in IGNORED_SORT_KEYS:
            raise ApiFault(
                400, f"Invalid input for query parameters sort_key. Value: {key}. '{key}' is not a valid key"
            )
    for direction in dirs:
        if direction not in ("asc", "desc"):
            raise ApiFault(400, "Invalid input received: Unknown sort direction, must be 'desc' or 'asc'")
    if len(dirs) > len(keys):
        raise ApiFault(400, "Invalid input received: Sort direction size exceeds sort key size")
    default = dirs[0] if dirs else "desc"
    dirs += [default] * (len(keys) - len(dirs))
    return tuple(
        (key, direction == "desc")
        for key, direction in zip(keys, dirs, strict=True)
        if key in valid and (admin or key not in ADMIN_SORT_KEYS)
    )
