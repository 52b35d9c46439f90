"""External event vocabulary and the API-side acceptance rule.

Every event type's API rule lives here, once: which microversion introduced the
name, whether it needs a tag, and which instance action it starts.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class EventName(enum.StrEnum):
    NETWORK_CHANGED = "network-changed"  # Neutron refreshed a port; tag = port id (optional)
    NETWORK_VIF_PLUGGED = "network-vif-plugged"  # a port is wired; tag = port id
    NETWORK_VIF_UNPLUGGED = "network-vif-unplugged"  # a port is unwired; tag = port id
    NETWORK_VIF_DELETED = "network-vif-deleted"  # a port was deleted; tag = port id
    VOLUME_EXTENDED = "volume-extended"  # Cinder grew an attached volume; tag = volume id (2.51)
    POWER_UPDATE = "power-update"  # bare metal changed power; tag = POWER_ON / POWER_OFF (2.76)
    ACCELERATOR_REQUEST_BOUND = "accelerator-request-bound"  # Cyborg bound an ARQ; tag = ARQ uuid (2.82)
    VOLUME_REIMAGED = "volume-reimaged"  # Cinder re-imaged a root volume; tag = volume id (2.93)


class EventStatus(enum.StrEnum):
    FAILED = "failed"
    COMPLETED = "completed"
    IN_PROGRESS = "in-progress"


class PowerTag(enum.StrEnum):
    POWER_ON = "POWER_ON"
    POWER_OFF = "POWER_OFF"


class DeliveryState(enum.StrEnum):
    """Where an accepted event is in its life (one row per event and target host)."""

    ACCEPTED = "accepted"  # committed; the API answered 200 for it
    DISPATCHED = "dispatched"  # handed to the host's bus queue
    HANDLED = "handled"  # the agent applied it (or decided it is a no-op) and committed
    FAILED = "failed"  # the agent's handler raised; the reason is in the record
    EXPIRED = "expired"  # a waiter event nobody waited for within the buffer window


@dataclass(frozen=True, slots=True)
class EventSpec:
    """The API-side facts of one event name."""

    name: EventName
    since: tuple[int, int]
    tag_required: bool = False
    # Instance action started at the API, by tag (None: for any tag).
    actions: tuple[tuple[str | None, str], ...] = ()


EVENT_SPECS: dict[EventName, EventSpec] = {
    spec.name: spec
    for spec in (
        EventSpec(EventName.NETWORK_CHANGED, (2, 0)),
        EventSpec(EventName.NETWORK_VIF_PLUGGED, (2, 0)),
        EventSpec(EventName.NETWORK_VIF_UNPLUGGED, (2, 0)),
        EventSpec(EventName.NETWORK_VIF_DELETED, (2, 0)),
        EventSpec(EventName.VOLUME_EXTENDED, (2, 51), tag_required=True, actions=((None, "extend_volume"),)),
        EventSpec(
            EventName.POWER_UPDATE,
            (2, 76),
            tag_required=True,
            actions=((PowerTag.POWER_ON.value, "start"), (PowerTag.POWER_OFF.value, "stop")),
        ),
        EventSpec(EventName.ACCELERATOR_REQUEST_BOUND, (2, 82), tag_required=True),
        # NOTE: Nova does not require a tag here although only a tagged event can match a waiter.
        EventSpec(EventName.VOLUME_REIMAGED, (2, 93)),
    )
}

# The microversions at which the set of accepted names changes, oldest first.
SCHEMA_VERSIONS: tuple[tuple[int, int], ...] = tuple(sorted({spec.since for spec in EVENT_SPECS.values()}))


def names_for_version(version: tuple[int, int]) -> list[str]:
    """Event names accepted by the request schema at ``version``, in declaration order."""
    return [spec.name.value for spec in EVENT_SPECS.values() if spec.since <= version]


def event_key(name: str, tag: str | None) -> str:
    """Nova's event key: ``name-tag``, or ``name`` alone when there is no tag."""
    return f"{name}-{tag}" if tag is not None else name


@dataclass(frozen=True, slots=True)
class Verdict:
    """The per-event answer the API gives (one row of the acceptance table)."""

    code: int
    status: EventStatus
    action: str | None = None  # instance action to record when accepted

    @property
    def accepted(self) -> bool:
        return self.code == 200


NOT_FOUND = Verdict(404, EventStatus.FAILED)
TAG_MISSING = Verdict(400, EventStatus.FAILED)
BAD_POWER_TAG = Verdict(400, EventStatus.FAILED)
NO_HOST = Verdict(422, EventStatus.FAILED)


def judge_event(name: EventName, tag: str | None, *, server_found: bool, server_host: str | None) -> Verdict:
    """Decide one event's code, applying Nova's rules in Nova's order.

    ``tag`` is None when the caller sent no ``tag`` key (an empty string is a tag).
    One deliberate deviation: a ``power-update`` with a tag other than POWER_ON/POWER_OFF
    gets 400 here, where Nova answers 200 and silently drops it.
    """
    if not server_found:
        return NOT_FOUND
    spec = EVENT_SPECS[name]
    if spec.tag_required and tag is None:
        return TAG_MISSING
    action: str | None = None
    if spec.actions:
        action = next((act for want, act in spec.actions if want is None or want == tag), None)
        if action is None:
            return BAD_POWER_TAG
    if not server_host:
        return NO_HOST
    return Verdict(200, EventStatus.COMPLETED, action)
