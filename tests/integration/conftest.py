"""Fixtures for the integration tests: a real Redfish service (tests/redfish_emulator.py)."""

from tests.redfish_emulator import redfish_emulator, redfish_emulator_with_auth

__all__ = ["redfish_emulator", "redfish_emulator_with_auth"]
