"""The per-server way to read many machines' power: what a driver without a batched read does."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from herald.domain.power_sync import SyncRow


def one_by_one(read: Callable[[SyncRow], int], servers: Sequence[SyncRow]) -> dict[str, int | Exception]:
    """Read each server's power in turn; a failed read maps the server to its error, the others go on."""
    powers: dict[str, int | Exception] = {}
    for server in servers:
        try:
            powers[server.uuid] = read(server)
        except Exception as exc:  # NOTE: one machine's failure is that server's alone
            powers[server.uuid] = exc
    return powers
