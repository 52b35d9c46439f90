"""Flavors: Nova's classic ``m1.*`` set with their original ids "1".."5" (seeded), and those made through the API.

A server keeps a copy of its flavor from the moment it was created (Nova's ``instance.flavor``),
so that changing or deleting the flavor later leaves the server as it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

# The extra spec that asks for accelerators at boot (a Cyborg device profile name).
DEVICE_PROFILE_SPEC = "accel:device_profile"


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

    @property
    def device_profile(self) -> str | None:
        """The accelerator device profile the flavor asks for, if any."""
        return self.extra_specs.get(DEVICE_PROFILE_SPEC)


# Seeded into the flavors table by the migration that made it.
FLAVORS: tuple[Flavor, ...] = (
    Flavor("1", "m1.tiny", memory_mb=512, vcpus=1, root_gb=1),
    Flavor("2", "m1.small", memory_mb=2048, vcpus=1, root_gb=20),
    Flavor("3", "m1.medium", memory_mb=4096, vcpus=2, root_gb=40),
    Flavor("4", "m1.large", memory_mb=8192, vcpus=4, root_gb=80),
    Flavor("5", "m1.xlarge", memory_mb=16384, vcpus=8, root_gb=160),
)


def flavor_to_dict(flavor: Flavor) -> dict[str, Any]:
    """The JSON a server's flavor copy is stored as."""
    return {
        "flavorid": flavor.flavorid,
        "name": flavor.name,
        "memory_mb": flavor.memory_mb,
        "vcpus": flavor.vcpus,
        "root_gb": flavor.root_gb,
        "ephemeral_gb": flavor.ephemeral_gb,
        "swap": flavor.swap,
        "rxtx_factor": flavor.rxtx_factor,
        "is_public": flavor.is_public,
        "disabled": flavor.disabled,
        "description": flavor.description,
        "extra_specs": dict(flavor.extra_specs),
    }


def flavor_from_dict(data: Mapping[str, Any]) -> Flavor:
    values = dict(data)
    values["extra_specs"] = MappingProxyType(dict(values.get("extra_specs") or {}))
    return Flavor(**values)
