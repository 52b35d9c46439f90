"""Request schemas of ``os-interface`` and ``os-volume_attachments``, per microversion (Nova's)."""

from __future__ import annotations

import copy
from typing import Any

from herald.api.schemas.servers import BOOLEAN, IP_ADDRESS, TAG, UUID

interface_create: dict[str, Any] = {
    "type": "object",
    "properties": {
        "interfaceAttachment": {
            "type": "object",
            "properties": {
                "net_id": UUID,
                "port_id": UUID,
                "fixed_ips": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 1,
                    "items": {
                        "type": "object",
                        "properties": {"ip_address": IP_ADDRESS},
                        "required": ["ip_address"],
                        "additionalProperties": False,
                    },
                },
            },
            "additionalProperties": False,
        },
    },
    "additionalProperties": False,
}
interface_create_v249 = copy.deepcopy(interface_create)
interface_create_v249["properties"]["interfaceAttachment"]["properties"]["tag"] = TAG

volume_create: dict[str, Any] = {
    "type": "object",
    "properties": {
        "volumeAttachment": {
            "type": "object",
            "properties": {
                "volumeId": UUID,
                # Nova's block_device.match_device pattern.
                "device": {"type": ["string", "null"], "pattern": "(^/dev/x{0,1}[a-z]{0,1}d{0,1})([a-z]+)[0-9]*$"},
            },
            "required": ["volumeId"],
            "additionalProperties": False,
        },
    },
    "required": ["volumeAttachment"],
    "additionalProperties": False,
}
volume_create_v249 = copy.deepcopy(volume_create)
volume_create_v249["properties"]["volumeAttachment"]["properties"]["tag"] = TAG
volume_create_v279 = copy.deepcopy(volume_create_v249)
volume_create_v279["properties"]["volumeAttachment"]["properties"]["delete_on_termination"] = BOOLEAN
