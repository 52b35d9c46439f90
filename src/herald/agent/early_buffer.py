"""A bounded, time-limited map keyed by (server uuid, event key), oldest entry first.

The waiter registry keeps two of these: the events that arrived before their waiter
registered (Nova drops them, weakness 2) and the keys whose wait was abandoned, so that a
late event is consumed quietly instead of being buffered for some unrelated later wait.

Entries are kept in arrival order. The registry's clock is monotonic, so arrival order is
also age order and expiry only ever looks at the front.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

V = TypeVar("V")

Slot = tuple[str, str]  # (server uuid, event key)


class EarlyBuffer(Generic[V]):
    """At most ``size`` entries, each kept for ``ttl`` seconds after it was put.

    Values that leave without being taken (expired, evicted by the size bound, replaced
    by a newer value for the same slot, or discarded) are collected and handed out once
    by :meth:`drain_dropped`, when ``keep_dropped`` is set.
    """

    def __init__(self, *, size: int, ttl: float, keep_dropped: bool = True) -> None:
        if size < 0 or ttl < 0:
            raise ValueError("size and ttl must not be negative")
        self.size = size
        self.ttl = ttl
        self._keep_dropped = keep_dropped
        self._entries: OrderedDict[Slot, tuple[V, float]] = OrderedDict()
        self._dropped: list[V] = []

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, slot: object) -> bool:
        return slot in self._entries

    def put(self, slot: Slot, value: V, now: float) -> None:
        """Store ``value`` as the newest entry; a value already in ``slot`` is dropped."""
        if self.size == 0:
            self._drop(value)
            return
        old = self._entries.pop(slot, None)
        if old is not None:
            self._drop(old[0])
        self.expire(now)
        while len(self._entries) >= self.size:
            _, (evicted, _) = self._entries.popitem(last=False)
            self._drop(evicted)
        self._entries[slot] = (value, now)

    def peek(self, slot: Slot) -> V | None:
        """The value in ``slot``, left in place (it may be past its time: ``take`` decides that)."""
        entry = self._entries.get(slot)
        return None if entry is None else entry[0]

    def take(self, slot: Slot, now: float) -> tuple[V, float] | None:
        """Remove and return the live value in ``slot`` with the time it was put."""
        self.expire(now)
        return self._entries.pop(slot, None)

    def slots_of(self, server_uuid: str) -> list[Slot]:
        """The slots one server has entries in, oldest first."""
        return [slot for slot in self._entries if slot[0] == server_uuid]

    def discard_server(self, server_uuid: str) -> None:
        """Drop every entry of one server."""
        for slot in [slot for slot in self._entries if slot[0] == server_uuid]:
            self._drop(self._entries.pop(slot)[0])

    def discard_all(self) -> None:
        while self._entries:
            self._drop(self._entries.popitem(last=False)[1][0])

    def expire(self, now: float) -> None:
        """Drop entries older than ``ttl`` seconds."""
        while self._entries:
            slot, (value, put_at) = next(iter(self._entries.items()))
            if now - put_at <= self.ttl:
                break
            del self._entries[slot]
            self._drop(value)

    def drain_dropped(self) -> list[V]:
        """The values dropped since the last call, in the order they were dropped."""
        dropped, self._dropped = self._dropped, []
        return dropped

    def _drop(self, value: V) -> None:
        if self._keep_dropped:
            self._dropped.append(value)
