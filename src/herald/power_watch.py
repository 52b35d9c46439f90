"""``herald power-watch``: Ironic's part for Redfish nodes.

Every ``[power_watch] interval`` seconds it lists the servers through the compute API (as an admin:
``GET /servers/detail?all_tenants=1``), reads the Redfish power of each server's node
(``OS-EXT-SRV-ATTR:hypervisor_hostname``, a Redfish system id) and, when a node is On while the server is
SHUTOFF or Off while it is ACTIVE, posts one ``power-update`` for that server at microversion 2.76, one
event per call, as Ironic's Nova notifier (``ironic/common/nova.py``) does.

It compares with the server's status (compute's vm_state), not its power_state: the periodic power sync
records the machine's power_state as soon as it reads it, so only the status still says whether compute
has been told. It posts once per change: it remembers the tag it got accepted for each server until the
API shows the node's state. A failed post is logged and tried again on the next tick, never in a loop.
Servers with a task in progress or another status, and nodes in a transition (``PoweringOn``/
``PoweringOff``) or without a state, are left for a later tick.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any

from keystoneauth1 import adapter as ks_adapter
from keystoneauth1 import exceptions as ks_exceptions
from keystoneauth1 import loading as ks_loading
from oslo_config import cfg

from herald.adapters.virt.redfish_client import OFF, ON, RedfishClient, RedfishSystemNotFound
from herald.bootstrap import redfish_client
from herald.config import COMPUTE_API_GROUP, Settings
from herald.domain.errors import DriverError
from herald.domain.events import PowerTag

logger = logging.getLogger(__name__)

MICROVERSION = "2.76"  # the first with power-update (Ironic's NOVA_API_MICROVERSION)
TAGS = {ON: PowerTag.POWER_ON, OFF: PowerTag.POWER_OFF}
# The Redfish power a server of each status is expected to have.
STATUS_POWER = {"ACTIVE": ON, "SHUTOFF": OFF}


@dataclass(frozen=True, slots=True)
class WatchedServer:
    """What power-watch reads of a server in the compute API."""

    uuid: str
    node: str | None
    status: str
    task_state: str | None


@dataclass(frozen=True, slots=True)
class PowerUpdate:
    """One ``power-update`` post and whether the API took it (reply and per-event code below 400)."""

    server_uuid: str
    tag: PowerTag
    accepted: bool


class ComputeApi:
    """The compute API through a keystoneauth1 adapter, as Ironic reaches Nova."""

    def __init__(self, adapter: ks_adapter.Adapter, *, page_size: int = 1000) -> None:
        self._adapter = adapter
        self._page_size = page_size

    def servers(self) -> list[WatchedServer]:
        """Every server of every project, following the pages.

        :raises keystoneauth1.exceptions.ClientException: the API could not be reached or refused.
        """
        return [_watched(body) for body in self._pages()]

    def _pages(self) -> Iterator[dict[str, Any]]:
        params: dict[str, Any] = {"all_tenants": 1, "limit": self._page_size}
        while True:
            reply = self._adapter.get("/servers/detail", params=params).json()
            page: list[dict[str, Any]] = reply.get("servers", [])
            yield from page
            if not page or not reply.get("servers_links"):
                return
            params = {**params, "marker": page[-1]["id"]}

    def close(self) -> None:
        self._adapter.session.close()

    def power_update(self, server_uuid: str, tag: PowerTag) -> bool:
        """Post one ``power-update``; True if the API took it. Failures are logged, never raised."""
        event = {"name": "power-update", "server_uuid": server_uuid, "tag": tag.value}
        try:
            resp = self._adapter.post(
                "/os-server-external-events", json={"events": [event]}, microversion=MICROVERSION, raise_exc=False
            )
        except ks_exceptions.ClientException as exc:
            logger.warning("Could not reach the compute API to send power-update for server %s: %s", server_uuid, exc)
            return False
        if resp.status_code >= 400:
            logger.warning(
                "The compute API refused %s for server %s: %s %s", event, server_uuid, resp.status_code, resp.text
            )
            return False
        try:
            code = int(resp.json()["events"][0]["code"])
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            logger.error("Invalid reply %s to power-update for server %s: %s", resp.text, server_uuid, exc)
            return False
        if code >= 400:
            logger.warning("power-update %s for server %s came back with code %s", tag, server_uuid, code)
            return False
        return True


def _watched(body: dict[str, Any]) -> WatchedServer:
    return WatchedServer(
        uuid=body["id"],
        node=body.get("OS-EXT-SRV-ATTR:hypervisor_hostname"),
        status=str(body.get("status") or ""),
        task_state=body.get("OS-EXT-STS:task_state"),
    )


class PowerWatch:
    """Compares nodes' Redfish power with the compute API and reports the differences.

    :param systems: the nodes to watch; empty watches every server's node.
    :param interval: seconds between two ticks of :meth:`run_forever`.
    """

    def __init__(
        self, api: ComputeApi, redfish: RedfishClient, *, systems: Collection[str] = (), interval: float = 10.0
    ) -> None:
        self._api = api
        self._redfish = redfish
        self._systems = frozenset(systems)
        self._interval = interval
        self._reported: dict[str, PowerTag] = {}  # server uuid -> the tag the API last took for it

    def poll_once(self) -> list[PowerUpdate]:
        """One tick: every post it made, accepted or not.

        :raises keystoneauth1.exceptions.ClientException: the servers could not be listed.
        """
        servers = self._api.servers()
        posted: list[PowerUpdate] = []
        for server in servers:
            tag = self._change(server)
            if tag is None:
                continue
            accepted = self._api.power_update(server.uuid, tag)
            if accepted:
                logger.info("Sent power-update %s for server %s (Redfish system %s)", tag, server.uuid, server.node)
                self._reported[server.uuid] = tag
            posted.append(PowerUpdate(server.uuid, tag, accepted))
        listed = {server.uuid for server in servers}
        for gone in self._reported.keys() - listed:
            del self._reported[gone]
        return posted

    def close(self) -> None:
        self._api.close()
        self._redfish.close()

    def run_forever(self, stop: threading.Event) -> None:
        """Tick every ``interval`` seconds until ``stop`` is set."""
        logger.info("power-watch: every %s s, %s", self._interval, ", ".join(sorted(self._systems)) or "every node")
        while not stop.is_set():
            try:
                self.poll_once()
            except ks_exceptions.ClientException as exc:
                logger.warning("power-watch could not list the servers: %s", exc)
            except Exception:
                logger.exception("power-watch tick failed")
            stop.wait(self._interval)

    def _change(self, server: WatchedServer) -> PowerTag | None:
        """The tag to post for ``server``, or None when there is nothing (new) to report."""
        node = server.node
        if node is None or (self._systems and node not in self._systems):
            return None
        if server.task_state is not None or server.status not in STATUS_POWER:
            return None
        power = self._node_power(server.uuid, node)
        if power is None or power not in TAGS:
            return None
        if STATUS_POWER[server.status] == power:
            self._reported.pop(server.uuid, None)
            return None
        tag = TAGS[power]
        return None if self._reported.get(server.uuid) == tag else tag

    def _node_power(self, server_uuid: str, node: str) -> str | None:
        try:
            return self._redfish.power(node)
        except RedfishSystemNotFound:
            logger.debug("Server %s: its node %s is not a Redfish system", server_uuid, node)
        except DriverError as exc:
            logger.warning("Server %s: could not read the power of Redfish system %s: %s", server_uuid, node, exc)
        return None


def compute_api_adapter(conf: cfg.ConfigOpts) -> ks_adapter.Adapter:
    """The keystoneauth1 adapter of ``[compute_api]`` (registers its options; ``conf`` is already parsed).

    ``auth_type = admin_token`` with ``endpoint`` and ``token`` reaches a noauth2 API directly;
    ``auth_type = password`` (and the Keystone options) finds it in the catalog by service type.
    """
    ks_loading.register_session_conf_options(conf, COMPUTE_API_GROUP)
    ks_loading.register_auth_conf_options(conf, COMPUTE_API_GROUP)
    ks_loading.register_adapter_conf_options(conf, COMPUTE_API_GROUP, include_deprecated=False)
    conf.set_default("service_type", "compute", group=COMPUTE_API_GROUP)
    conf.set_default("valid_interfaces", ["internal", "public"], group=COMPUTE_API_GROUP)
    auth = ks_loading.load_auth_from_conf_options(conf, COMPUTE_API_GROUP)
    if auth is None:
        raise ValueError(f"herald power-watch needs [{COMPUTE_API_GROUP}] auth_type")
    session = ks_loading.load_session_from_conf_options(conf, COMPUTE_API_GROUP, auth=auth)
    adapter: ks_adapter.Adapter = ks_loading.load_adapter_from_conf_options(conf, COMPUTE_API_GROUP, session=session)
    return adapter


def build_power_watch(settings: Settings, conf: cfg.ConfigOpts, *, interval: float | None = None) -> PowerWatch:
    """A PowerWatch from ``[redfish]``, ``[power_watch]`` and ``[compute_api]``."""
    return PowerWatch(
        ComputeApi(compute_api_adapter(conf)),
        redfish_client(settings),
        systems=settings.redfish.systems,
        interval=float(settings.power_watch_interval if interval is None else interval),
    )


def run(settings: Settings, conf: cfg.ConfigOpts, *, interval: float | None = None) -> int:
    """The ``herald power-watch`` process: tick until SIGTERM or SIGINT."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    watch = build_power_watch(settings, conf, interval=interval)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        watch.run_forever(stop)
    finally:
        watch.close()
    return 0
