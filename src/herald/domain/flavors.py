"""The built-in flavors: Nova's classic ``m1.*`` set with their original ids "1".."5"."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType

from herald.domain.errors import FlavorNotFound


@dataclass(frozen=True, slots=True)
class Flavor:
    flavorid: str
    name: str
    memory_mb: int
    vcpus: int
    root_gb: int
    ephemeral_gb: int = 0
    swap: int = 0
    rxtx_factor: float = 1.0
    is_public: bool = True
    disabled: bool = False
    description: str | None = None
    extra_specs: MappingProxyType[str, str] = field(default_factory=lambda: MappingProxyType({}))


FLAVORS: tuple[Flavor, ...] = (
    Flavor("1", "m1.tiny", memory_mb=512, vcpus=1, root_gb=1),
    Flavor("2", "m1.small", memory_mb=2048, vcpus=1, root_gb=20),
    Flavor("3", "m1.medium", memory_mb=4096, vcpus=2, root_gb=40),
    Flavor("4", "m1.large", memory_mb=8192, vcpus=4, root_gb=80),
    Flavor("5", "m1.xlarge", memory_mb=16384, vcpus=8, root_gb=160),
)
_BY_ID = {flavor.flavorid: flavor for flavor in FLAVORS}


def get_flavor(flavor_id: str) -> Flavor:
    """:raises FlavorNotFound: no built-in flavor has that id."""
    try:
        return _BY_ID[flavor_id]
    except KeyError:
        raise FlavorNotFound(flavor_id) from None


def list_flavors(*, min_ram: int = 0, min_disk: int = 0) -> list[Flavor]:
    """The flavors with at least ``min_ram`` MB and ``min_disk`` GB, by id (Nova's default sort)."""
    return [f for f in FLAVORS if f.memory_mb >= min_ram and f.root_gb >= min_disk]
