"""The embedded network's contract: ports exist on demand, unbound and inactive; a bound port is in use."""

from __future__ import annotations

import pytest

from herald.adapters.network.memory import AUTO_NETWORK_ID, InMemoryNetwork
from herald.domain.errors import PortInUse


def test_a_named_port_exists_on_demand_unbound_and_inactive() -> None:
    network = InMemoryNetwork()
    assert network.port_owner("p-1") is None
    assert network.bind_port("vm-1", "p-1", None) == {"port_id": "p-1", "network_id": AUTO_NETWORK_ID, "active": False}
    assert network.port_owner("p-1") == "vm-1"


def test_a_bound_port_is_in_use_for_another_server() -> None:
    network = InMemoryNetwork()
    network.bind_port("vm-1", "p-1", None)
    with pytest.raises(PortInUse, match=r"Port p-1 is still in use\."):
        network.bind_port("vm-2", "p-1", None)
    network.unbind_port("vm-2", "p-1")  # not its port: nothing happens
    assert network.port_owner("p-1") == "vm-1"


def test_unbind_keeps_a_named_port_and_deletes_one_made_on_a_network() -> None:
    network = InMemoryNetwork()
    network.bind_port("vm-1", "named", None)
    network.bind_port("vm-1", "made", "net-1")
    assert network.refresh("vm-1", None) == [
        {"port_id": "named", "network_id": AUTO_NETWORK_ID, "active": False},
        {"port_id": "made", "network_id": "net-1", "active": False},
    ]
    network.unbind_port("vm-1", "named")
    network.unbind_port("vm-1", "made")
    assert network.port("named") is not None
    assert network.port_owner("named") is None
    assert network.port("made") is None
