"""RedfishVirtDriver against a real Redfish service: the sushy-tools emulator with fake systems."""

from __future__ import annotations

import base64
import logging
import uuid
from collections.abc import Iterator
from unittest.mock import create_autospec

import pytest

from herald.adapters.virt.redfish import RedfishVirtDriver
from herald.adapters.virt.redfish_client import RedfishClient
from herald.domain.errors import DriverError, NotSupportedByDriver, NoValidHost
from herald.domain.model import PowerState, Server
from tests.redfish_emulator import REDFISH_PASSWORD, REDFISH_USER, RedfishEmulator

# The emulator applies a reset 1 to 2 s after it is asked (tests/redfish_emulator.py).
TIMEOUT = 15.0


@pytest.fixture
def clients() -> Iterator[list[RedfishClient]]:
    """Clients made by the test, closed after it."""
    made: list[RedfishClient] = []
    yield made
    for client in made:
        client.close()


def _driver(emulator: RedfishEmulator, clients: list[RedfishClient], **kwargs: float) -> RedfishVirtDriver:
    clients.append(RedfishClient(address=emulator.url))
    options = {"power_state_change_timeout": TIMEOUT, "power_poll_interval": 0.1, **kwargs}
    return RedfishVirtDriver(clients[-1], systems=emulator.system_ids, **options)


def _server(node: str | None) -> Server:
    return Server(str(uuid.uuid4()), "bm", "p", "u", "1", "image", host="compute-1", node=node)


def test_allocate_node_takes_the_first_free_system(
    redfish_emulator: RedfishEmulator, clients: list[RedfishClient]
) -> None:
    driver = _driver(redfish_emulator, clients)
    first, second, third = redfish_emulator.system_ids
    assert driver.allocate_node(_server(None), set()) == first
    assert driver.allocate_node(_server(None), {first}) == second
    assert driver.allocate_node(_server(None), {first, second, "elsewhere"}) == third
    with pytest.raises(NoValidHost, match="No free Redfish system"):
        driver.allocate_node(_server(None), {first, second, third})


def test_spawn_powers_on_and_waits(redfish_emulator: RedfishEmulator, clients: list[RedfishClient]) -> None:
    driver = _driver(redfish_emulator, clients)
    server = _server(redfish_emulator.system_ids[0])
    assert redfish_emulator.power_of(server.node or "") == "Off"
    assert driver.get_power_state(server) == PowerState.SHUTDOWN

    driver.spawn(server)

    assert redfish_emulator.power_of(server.node or "") == "On"
    assert driver.get_power_state(server) == PowerState.RUNNING


def test_power_off_and_on_wait_for_the_state(redfish_emulator: RedfishEmulator, clients: list[RedfishClient]) -> None:
    driver = _driver(redfish_emulator, clients)
    server = _server(redfish_emulator.system_ids[2])  # starts On
    assert driver.get_power_state(server) == PowerState.RUNNING

    driver.power_off(server)
    assert redfish_emulator.power_of(server.node or "") == "Off"
    assert driver.get_power_state(server) == PowerState.SHUTDOWN

    driver.power_on(server)
    assert redfish_emulator.power_of(server.node or "") == "On"
    driver.power_on(server)  # already on: no reset, returns at once
    assert driver.get_power_state(server) == PowerState.RUNNING


def test_destroy_powers_off_and_ignores_missing_machines(
    redfish_emulator: RedfishEmulator, clients: list[RedfishClient]
) -> None:
    driver = _driver(redfish_emulator, clients)
    server = _server(redfish_emulator.system_ids[2])

    driver.destroy(server)

    assert redfish_emulator.power_of(server.node or "") == "Off"
    driver.destroy(_server("no-such-system"))
    driver.destroy(_server(None))


def test_a_missing_system_has_no_state(redfish_emulator: RedfishEmulator, clients: list[RedfishClient]) -> None:
    driver = _driver(redfish_emulator, clients)
    assert driver.get_power_state(_server("no-such-system")) == PowerState.NOSTATE
    assert driver.get_power_state(_server(None)) == PowerState.NOSTATE
    with pytest.raises(DriverError, match="Redfish system no-such-system was not found"):
        driver.power_on(_server("no-such-system"))
    with pytest.raises(DriverError, match="has no Redfish system"):
        driver.spawn(_server(None))


def test_a_power_change_that_does_not_land_in_time_is_a_driver_error(
    redfish_emulator: RedfishEmulator, clients: list[RedfishClient]
) -> None:
    driver = _driver(redfish_emulator, clients, power_state_change_timeout=0.3)
    server = _server(redfish_emulator.system_ids[0])

    with pytest.raises(DriverError, match=r"did not power on within 0.3 s \(it reports Off\)"):
        driver.spawn(server)

    redfish_emulator.wait_power(server.node or "", "On")  # the request was taken; it lands late


def test_power_update_event_leaves_the_machine_alone(
    redfish_emulator: RedfishEmulator, clients: list[RedfishClient]
) -> None:
    driver = _driver(redfish_emulator, clients)
    server = _server(redfish_emulator.system_ids[2])

    driver.power_update_event(server, "POWER_OFF")

    assert redfish_emulator.power_of(server.node or "") == "On"


def test_volumes_and_interfaces_are_not_supported(
    redfish_emulator: RedfishEmulator, clients: list[RedfishClient]
) -> None:
    driver = _driver(redfish_emulator, clients)
    server = _server(redfish_emulator.system_ids[2])
    assert driver.supports_extend_volume is False
    with pytest.raises(NotSupportedByDriver):
        driver.extend_volume(server, "vol", 1 << 30)
    with pytest.raises(NotSupportedByDriver):
        driver.detach_interface(server, "port")


def test_credentials_are_used_and_never_logged(
    redfish_emulator_with_auth: RedfishEmulator, clients: list[RedfishClient], caplog: pytest.LogCaptureFixture
) -> None:
    emulator = redfish_emulator_with_auth
    caplog.set_level(logging.DEBUG)
    client = RedfishClient(address=emulator.url, username=REDFISH_USER, password=REDFISH_PASSWORD)
    clients.append(client)
    driver = RedfishVirtDriver(client, systems=emulator.system_ids, power_poll_interval=0.1)
    server = _server(emulator.system_ids[0])

    driver.spawn(server)
    assert driver.get_power_state(server) == PowerState.RUNNING

    wrong = RedfishClient(address=emulator.url, username=REDFISH_USER, password="wrong-" + REDFISH_PASSWORD)
    clients.append(wrong)
    with pytest.raises(DriverError, match="access denied, check the \\[redfish\\] username and password") as info:
        RedfishVirtDriver(wrong, systems=emulator.system_ids).get_power_state(server)
    assert REDFISH_PASSWORD not in str(info.value)
    assert info.value.__cause__ is None
    assert REDFISH_PASSWORD not in caplog.text
    assert base64.b64encode(f"{REDFISH_USER}:{REDFISH_PASSWORD}".encode()).decode() not in caplog.text


def test_messages_never_carry_credentials() -> None:
    client = RedfishClient(address="https://bmc.example.com", username="operator", password="hunter2")
    text = "GET https://operator:hunter2@bmc.example.com/redfish/v1 failed for operator (hunter2)"
    assert client.scrub(text) == "GET https://***@bmc.example.com/redfish/v1 failed for *** (***)"


@pytest.mark.parametrize(
    ("redfish", "expected"),
    [
        ("On", PowerState.RUNNING),
        ("PoweringOn", PowerState.RUNNING),
        ("Off", PowerState.SHUTDOWN),
        ("PoweringOff", PowerState.SHUTDOWN),
        ("Paused", PowerState.NOSTATE),
        (None, PowerState.NOSTATE),
    ],
)
def test_power_state_mapping(redfish: str | None, expected: PowerState) -> None:
    # NOTE: the emulator never reports transitions, so these states come from a stand-in client.
    client = create_autospec(RedfishClient, instance=True, spec_set=True)
    client.power.return_value = redfish
    driver = RedfishVirtDriver(client, systems=["n1"])
    assert driver.get_power_state(_server("n1")) == expected


def test_a_batched_read_asks_node_by_node(redfish_emulator: RedfishEmulator, clients: list[RedfishClient]) -> None:
    from herald.domain.power_sync import SyncRow

    driver = _driver(redfish_emulator, clients)
    assert not driver.batches_power_reads
    first = redfish_emulator.system_ids[0]
    driver.spawn(_server(first))
    rows = [SyncRow(f"s{i}", "compute-1", node, "active", 1, None) for i, node in enumerate([first, "gone", None])]
    assert driver.get_power_states(rows) == {
        "s0": PowerState.RUNNING,
        "s1": PowerState.NOSTATE,
        "s2": PowerState.NOSTATE,
    }
