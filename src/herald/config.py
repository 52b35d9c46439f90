"""Configuration: oslo.config options (Nova's names where Nova has them) -> frozen Settings.

The options are read once, at start-up, into :class:`Settings`; nothing below the
composition root reads ``cfg.CONF``.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

from oslo_config import cfg, types

DEFAULT_OPTS: list[cfg.Opt] = [
    cfg.StrOpt(
        "host",
        default=socket.gethostname(),
        sample_default="<current_hostname>",
        help="Name of this compute host (the agent's queue and the servers it owns).",
    ),
    cfg.StrOpt("osapi_compute_listen", default="0.0.0.0", help="IP address on which the API listens."),
    cfg.PortOpt("osapi_compute_listen_port", default=8774, help="Port on which the API listens."),
    cfg.IntOpt("osapi_compute_workers", min=1, default=1, help="Number of API worker processes (herald api)."),
    cfg.StrOpt(
        "transport_url",
        secret=True,
        default="memory://",
        help="Message bus between the API and the agents: rabbit://USER:PASS@HOST:PORT[,USER:PASS@HOST2:PORT]/VHOST "
        "(herald api and herald agent; amqps:// for TLS), or memory:// (herald serve, one process).",
    ),
    cfg.IntOpt(
        "vif_plugging_timeout",
        default=300,
        min=0,
        deprecated_group="compute",
        help="Seconds to wait for network-vif-plugged events during a boot; 0 disables the wait.",
    ),
    cfg.BoolOpt(
        "vif_plugging_is_fatal",
        default=True,
        deprecated_group="compute",
        help="Fail the boot (ERROR) when a VIF plug event times out or fails.",
    ),
    cfg.IntOpt(
        "sync_power_state_interval",
        default=600,
        deprecated_group="compute",
        help="Seconds between power-state syncs with the virt driver; negative disables.",
    ),
    cfg.IntOpt(
        "sync_power_state_pool_size",
        default=5,
        min=1,
        deprecated_group="compute",
        help="How many driver reads the power sync runs at once: one server's each for a driver that asks a "
        "BMC per node (Redfish), a chunk of servers each for one that reads many machines at once (fake).",
    ),
    cfg.IntOpt(
        "power_state_change_grace",
        default=120,
        min=0,
        help="Seconds a disagreement between a server's vm_state and its machine's power must have lasted, "
        "seen by power syncs that far apart, before the sync stops the machine. Meanwhile the record's "
        "power_state still follows the machine, and a power-update from the bare-metal service (which knows "
        "who changed the power) wins. The default is twice the bare-metal service's usual poll; 0 stops at "
        "once, as Nova does.",
    ),
    cfg.IntOpt("report_interval", default=10, min=1, help="Seconds between agent heartbeats."),
    cfg.IntOpt("service_down_time", default=60, min=1, help="A host not heard from for this long is down."),
    cfg.StrOpt(
        "compute_driver",
        default="fake",
        choices=[("fake", "machines in memory"), ("redfish", "bare-metal machines through Redfish ([redfish])")],
        help="Virt driver for the agents.",
    ),
    cfg.IntOpt(
        "shelved_offload_time",
        default=0,
        min=-1,
        help="Seconds a shelved server stays on its host before it is offloaded: 0 offloads at once, "
        "-1 never (only shelveOffload does). Positive values keep it shelved (no periodic offload yet).",
    ),
    cfg.IntOpt(
        "reclaim_instance_interval",
        default=0,
        help="Seconds a deleted server stays SOFT_DELETED (restorable with the restore action) before its host "
        "reclaims it; 0 or less deletes at once. The reclaim runs every this many seconds.",
    ),
    cfg.IntOpt(
        "reimage_timeout_per_gb",
        default=20,
        min=1,
        help="Seconds per GiB of a volume-backed server's root volume that a rebuild (2.93) waits for the "
        "volume-reimaged event (at least one GiB's worth, also for an empty volume).",
    ),
    cfg.IntOpt(
        "arq_binding_timeout",
        default=300,
        min=1,
        help="Seconds a boot waits for accelerator-request-bound of each accelerator request its flavor's "
        "device profile made; a timeout or a failed binding fails the boot (ERROR).",
    ),
]

# Nova's vnic types, as its [workarounds] option accepts them.
VNIC_TYPES = (
    "normal",
    "direct",
    "macvtap",
    "baremetal",
    "direct-physical",
    "virtio-forwarder",
    "smart-nic",
    "vdpa",
    "accelerator-direct",
    "accelerator-direct-physical",
    "remote-managed",
)
WORKAROUNDS_OPTS: list[cfg.Opt] = [
    cfg.ListOpt(
        "wait_for_vif_plugged_event_during_hard_reboot",
        item_type=types.String(choices=VNIC_TYPES),
        default=[],
        help="vnic types whose ports a hard reboot waits for network-vif-plugged of, whatever their state. "
        "Empty (default): a hard reboot waits only for the ports still inactive (their plug event never came). "
        "Every port of the embedded network is of type normal.",
    ),
]

DATABASE_OPTS: list[cfg.Opt] = [
    cfg.StrOpt(
        "connection",
        secret=True,
        default="sqlite:///herald.sqlite",
        help="SQLAlchemy URL: sqlite:///PATH (embedded) or postgresql+psycopg://USER:PASS@HOST/DB.",
    ),
    cfg.StrOpt(
        "sqlite_synchronous",
        default="FULL",
        choices=["FULL", "NORMAL"],
        help="SQLite synchronous mode. FULL makes every commit (and so every 200) survive power loss.",
    ),
]

API_OPTS: list[cfg.Opt] = [
    cfg.StrOpt(
        "auth_strategy",
        default="keystone",
        choices=["keystone", "noauth2"],
        help="keystone validates tokens; noauth2 trusts 'X-Auth-Token: user:project' (testing only).",
    ),
    cfg.BoolOpt(
        "allow_noauth_remote",
        default=False,
        help="Allow noauth2 on a non-loopback bind address. Anyone who can reach the port is admin.",
    ),
    cfg.StrOpt("compute_link_prefix", help="Base URL to use in links instead of the request's own."),
    cfg.FloatOpt(
        "commit_timeout",
        default=5.0,
        min=0.1,
        help="Seconds POST /os-server-external-events waits for the database to commit its events. Past it "
        "the answer is 503 with Retry-After and nothing of the request is recorded (a commit already under way "
        "is waited for and answered). Requests are also answered 503 at once while the database writer's queue "
        "is full ([herald] writer_queue_rows) or a named server's host has too many events waiting "
        "([herald] host_queue_events).",
    ),
]

MIDDLEWARE_OPTS: list[cfg.Opt] = [
    cfg.IntOpt("max_request_body_size", default=114688, help="Largest request body accepted, in bytes."),
]

NOTIFICATIONS_OPTS: list[cfg.Opt] = [
    cfg.StrOpt(
        "notification_format",
        default="unversioned",
        choices=[
            ("both", "the legacy and the versioned notifications (Herald sends the versioned ones)"),
            ("versioned", "only the versioned notifications"),
            ("unversioned", "only the legacy notifications, which Herald does not have: nothing is sent"),
        ],
        deprecated_group="DEFAULT",
        help="Nova's option. Herald sends only Nova's versioned notifications (instance.power_on/power_off "
        ".start/.end), so with Nova's default, unversioned, it sends none.",
    ),
    cfg.ListOpt(
        "versioned_notifications_topics",
        default=["versioned_notifications"],
        help="Topics the versioned notifications are sent to (one copy per topic).",
    ),
    cfg.BoolOpt(
        "bdms_in_notifications",
        default=False,
        help="Include the server's volume attachments (block_devices) in the versioned notification payload.",
    ),
]

# NOTE: oslo.messaging registers and reads the rest of this group (retry, topics) and [DEFAULT]
# transport_url itself, from the same configuration files, once notifications are on.
OSLO_MESSAGING_NOTIFICATIONS_OPTS: list[cfg.Opt] = [
    cfg.MultiStrOpt(
        "driver",
        default=[],
        help="oslo.messaging notification drivers: messagingv2 (to the message bus), messaging, log, routing, "
        "noop. Empty (the default, as in Nova) sends nothing, and oslo.messaging is not even loaded.",
    ),
    cfg.StrOpt(
        "transport_url",
        secret=True,
        help="Message bus for notifications; unset, the [DEFAULT] transport_url one.",
    ),
]

HERALD_OPTS: list[cfg.Opt] = [
    cfg.ListOpt(
        "hosts",
        default=["compute-1", "compute-2"],
        help="Embedded mode: the compute hosts that get an in-process agent.",
    ),
    cfg.IntOpt(
        "early_event_buffer_size",
        default=1024,
        min=0,
        help="Events per agent kept for a waiter that has not registered yet.",
    ),
    cfg.IntOpt(
        "early_event_ttl", default=300, min=0, help="Seconds an early event is kept for its waiter before it expires."
    ),
    cfg.IntOpt(
        "relay_interval",
        default=5,
        min=1,
        help="Seconds between relay passes that re-dispatch undelivered events and server commands.",
    ),
    cfg.FloatOpt(
        "commit_gather_delay",
        default=0.0005,
        min=0,
        help="Seconds the database writer waits for more work when a commit would carry little "
        "(fewer, fuller commits under load); 0 commits at once.",
    ),
    cfg.IntOpt(
        "writer_pass_rows",
        default=5000,
        min=1,
        help="Most rows (events, marks) the database writer puts in one commit; a request with more goes alone.",
    ),
    cfg.IntOpt(
        "writer_queue_rows",
        default=20000,
        min=1,
        help="Rows waiting for the database writer beyond which new event requests are answered 503 (Retry-After) "
        "instead of queued.",
    ),
    cfg.IntOpt(
        "host_queue_events",
        default=10000,
        min=1,
        help="Embedded shape: events queued for one host's agent beyond which requests with events for that host's "
        "servers are answered 503 (Retry-After); events for other hosts still go through.",
    ),
    cfg.IntOpt(
        "api_threads",
        default=4,
        min=1,
        help="Worker threads for the API's database work (reads, server creates and actions, the events listing).",
    ),
    cfg.IntOpt(
        "driver_threads",
        default=8,
        min=1,
        help="Worker threads for the compute agents' operations and virt driver calls (power sync included): a "
        "slow or hung driver holds only these, never the API's.",
    ),
    cfg.IntOpt(
        "relay_resend_after",
        default=60,
        min=1,
        help="Seconds after which a relay's claim on an undelivered event lapses: an event accepted by a worker "
        "that died before publishing it, or published but not handled (its agent lost it), is sent again by the "
        "next relay pass. Agents recognise a delivery they already handled, so a re-send has no second effect. "
        "The same lease holds for the server commands in the command outbox.",
    ),
]

# NOTE: the TLS options of oslo.messaging's rabbit driver, with its names, for Herald's own RabbitMQ client.
OSLO_MESSAGING_RABBIT_OPTS: list[cfg.Opt] = [
    cfg.BoolOpt("ssl", default=False, help="Connect to RabbitMQ over TLS (also implied by an amqps:// URL)."),
    cfg.StrOpt("ssl_ca_file", default="", help="CA bundle to verify the broker's certificate (default: the system's)."),
    cfg.StrOpt("ssl_cert_file", default="", help="Client certificate (PEM) to present to the broker."),
    cfg.StrOpt("ssl_key_file", default="", help="Private key of the client certificate."),
]

REDFISH_OPTS: list[cfg.Opt] = [
    cfg.StrOpt(
        "address",
        help="Redfish service root URL, e.g. https://bmc.example.com (the service root is /redfish/v1 unless "
        "the URL has a path). Required with compute_driver = redfish.",
    ),
    cfg.StrOpt("username", help="Redfish user."),
    cfg.StrOpt("password", secret=True, help="Redfish password."),
    cfg.StrOpt(
        "auth_type",
        default="auto",
        choices=[("auto", "a session, else basic"), ("session", "Redfish sessions"), ("basic", "HTTP basic")],
        help="How to authenticate to the Redfish service (Ironic's redfish_auth_type).",
    ),
    cfg.StrOpt(
        "verify_ca",
        default="True",
        help="True or False to verify the service's TLS certificate or not, or the path of a CA bundle file or "
        "directory to verify it against.",
    ),
    cfg.ListOpt(
        "systems",
        default=[],
        help="Redfish system ids (the <id> of /redfish/v1/Systems/<id>) this compute host may use as nodes, "
        "in the order they are allocated.",
    ),
    cfg.IntOpt(
        "power_state_change_timeout",
        default=60,
        min=1,
        help="Seconds to wait for a system to reach the requested power state (Ironic's default).",
    ),
    cfg.FloatOpt("power_poll_interval", default=1.0, min=0.05, help="Seconds between power-state reads while waiting."),
]

POWER_WATCH_OPTS: list[cfg.Opt] = [
    cfg.IntOpt(
        "interval",
        default=10,
        min=1,
        help="herald power-watch: seconds between two reads of every watched node's Redfish power state.",
    ),
]

# herald power-watch reaches the compute API with keystoneauth1 (session, auth and adapter options).
COMPUTE_API_GROUP = "compute_api"


def _herald_opts() -> list[tuple[str, list[cfg.Opt]]]:
    return [
        ("DEFAULT", DEFAULT_OPTS),
        ("database", DATABASE_OPTS),
        ("api", API_OPTS),
        ("oslo_middleware", MIDDLEWARE_OPTS),
        ("herald", HERALD_OPTS),
        ("notifications", NOTIFICATIONS_OPTS),
        ("oslo_messaging_notifications", OSLO_MESSAGING_NOTIFICATIONS_OPTS),
        ("oslo_messaging_rabbit", OSLO_MESSAGING_RABBIT_OPTS),
        ("redfish", REDFISH_OPTS),
        ("power_watch", POWER_WATCH_OPTS),
        ("workarounds", WORKAROUNDS_OPTS),
    ]


def list_opts() -> list[tuple[str, list[cfg.Opt]]]:
    """For oslo-config-generator (the ``oslo.config.opts`` entry point)."""
    # NOTE: imported here: only the sample and power-watch need keystoneauth1 (power_watch.py registers them).
    from keystoneauth1 import loading as ks_loading

    # The options of the two auth plugins power-watch is documented with, once each (as Ironic lists "password").
    plugins = {
        opt.dest: opt for name in ("password", "admin_token") for opt in ks_loading.get_auth_plugin_conf_options(name)
    }
    compute_api = [
        *ks_loading.get_session_conf_options(),
        *ks_loading.get_auth_common_conf_options(),
        *plugins.values(),
        *ks_loading.get_adapter_conf_options(include_deprecated=False),
    ]
    return [*_herald_opts(), (COMPUTE_API_GROUP, compute_api)]


@dataclass(frozen=True, slots=True)
class RedfishSettings:
    """The ``[redfish]`` group. The password is left out of ``repr`` (Settings get logged)."""

    address: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    auth_type: str = "auto"
    verify: bool | str = True
    systems: tuple[str, ...] = ()
    power_state_change_timeout: float = 60.0
    power_poll_interval: float = 1.0


def parse_verify(value: str) -> bool | str:
    """``verify_ca``: a boolean word, else the path of a CA bundle (as requests takes it)."""
    word = value.strip().lower()
    if word in {"true", "yes", "on", "1"}:
        return True
    if word in {"false", "no", "off", "0"}:
        return False
    return value


@dataclass(frozen=True, slots=True)
class NotificationSettings:
    """``[notifications]`` and what Herald reads of ``[oslo_messaging_notifications]``."""

    notification_format: str = "unversioned"
    drivers: tuple[str, ...] = ()
    topics: tuple[str, ...] = ("versioned_notifications",)
    transport_url: str | None = field(default=None, repr=False)  # may hold a password
    bdms_in_notifications: bool = False


@dataclass(frozen=True, slots=True)
class RabbitSettings:
    """``[oslo_messaging_rabbit]`` TLS options (empty strings: not set)."""

    ssl: bool = False
    ssl_ca_file: str | None = None
    ssl_cert_file: str | None = None
    ssl_key_file: str | None = None


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "compute-1"
    listen: str = "127.0.0.1"
    port: int = 8774
    workers: int = 1
    transport_url: str = field(default="memory://", repr=False)  # may hold a password
    database_url: str = "sqlite:///herald.sqlite"
    sqlite_synchronous: str = "FULL"
    auth_strategy: str = "noauth2"
    allow_noauth_remote: bool = False
    compute_link_prefix: str | None = None
    commit_timeout: float = 5.0
    max_request_body_size: int = 114688
    hosts: tuple[str, ...] = ("compute-1", "compute-2")
    vif_plugging_timeout: int = 300
    vif_plugging_is_fatal: bool = True
    sync_power_state_interval: int = 600
    sync_power_state_pool_size: int = 5
    power_state_change_grace: int = 120
    report_interval: int = 10
    service_down_time: int = 60
    compute_driver: str = "fake"
    shelved_offload_time: int = 0
    early_event_buffer_size: int = 1024
    early_event_ttl: int = 300
    relay_interval: int = 5
    commit_gather_delay: float = 0.0005
    writer_pass_rows: int = 5000
    writer_queue_rows: int = 20000
    host_queue_events: int = 10000
    api_threads: int = 4
    driver_threads: int = 8
    policy_file: str | None = None
    config_files: tuple[str, ...] = field(default_factory=tuple)
    notifications: NotificationSettings = field(default_factory=NotificationSettings)
    redfish: RedfishSettings = field(default_factory=RedfishSettings)
    power_watch_interval: int = 10
    rabbit: RabbitSettings = field(default_factory=RabbitSettings)
    reclaim_instance_interval: int = 0
    reimage_timeout_per_gb: int = 20
    wait_for_vif_plugged_event_during_hard_reboot: tuple[str, ...] = ()
    relay_resend_after: int = 60
    arq_binding_timeout: int = 300

    def __repr__(self) -> str:
        # NOTE: Settings get logged, and a database URL may hold a password.
        shown = {f.name: getattr(self, f.name) for f in fields(self) if f.repr}
        shown["database_url"] = hide_password(self.database_url)
        return f"Settings({', '.join(f'{name}={value!r}' for name, value in shown.items())})"


# scheme://user:password@ (up to the last "@": a password may hold an unescaped one).
_URL_PASSWORD = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^:/@]*):.*@")


def hide_password(url: str) -> str:
    """``url`` with its password, if it has one, replaced by ``***``."""
    return _URL_PASSWORD.sub(r"\1:***@", url, count=1)


def new_conf() -> cfg.ConfigOpts:
    conf = cfg.ConfigOpts()
    for group, opts in _herald_opts():
        conf.register_opts(opts, group=None if group == "DEFAULT" else group)
    return conf


def load_settings(conf: cfg.ConfigOpts, args: Sequence[str] = (), config_files: Sequence[str] = ()) -> Settings:
    """Parse ``config_files`` (oslo.config INI) into a Settings object."""
    conf(list(args), project="herald", default_config_files=list(config_files), validate_default_values=True)
    return settings_from_conf(conf)


def settings_from_conf(conf: cfg.ConfigOpts) -> Settings:
    policy_file: str | None = None
    if "oslo_policy" in conf and "policy_file" in conf.oslo_policy:
        policy_file = conf.oslo_policy.policy_file
    return Settings(
        host=conf.host,
        listen=conf.osapi_compute_listen,
        port=conf.osapi_compute_listen_port,
        workers=conf.osapi_compute_workers,
        transport_url=conf.transport_url,
        database_url=conf.database.connection,
        sqlite_synchronous=conf.database.sqlite_synchronous,
        auth_strategy=conf.api.auth_strategy,
        allow_noauth_remote=conf.api.allow_noauth_remote,
        compute_link_prefix=conf.api.compute_link_prefix,
        commit_timeout=conf.api.commit_timeout,
        max_request_body_size=conf.oslo_middleware.max_request_body_size,
        hosts=tuple(conf.herald.hosts),
        vif_plugging_timeout=conf.vif_plugging_timeout,
        vif_plugging_is_fatal=conf.vif_plugging_is_fatal,
        sync_power_state_interval=conf.sync_power_state_interval,
        sync_power_state_pool_size=conf.sync_power_state_pool_size,
        power_state_change_grace=conf.power_state_change_grace,
        report_interval=conf.report_interval,
        service_down_time=conf.service_down_time,
        compute_driver=conf.compute_driver,
        shelved_offload_time=conf.shelved_offload_time,
        early_event_buffer_size=conf.herald.early_event_buffer_size,
        early_event_ttl=conf.herald.early_event_ttl,
        relay_interval=conf.herald.relay_interval,
        commit_gather_delay=conf.herald.commit_gather_delay,
        writer_pass_rows=conf.herald.writer_pass_rows,
        writer_queue_rows=conf.herald.writer_queue_rows,
        host_queue_events=conf.herald.host_queue_events,
        api_threads=conf.herald.api_threads,
        driver_threads=conf.herald.driver_threads,
        policy_file=policy_file,
        config_files=tuple(conf.config_file or ()),
        notifications=_notification_settings(conf),
        redfish=_redfish_settings(conf),
        power_watch_interval=conf.power_watch.interval,
        rabbit=RabbitSettings(
            ssl=conf.oslo_messaging_rabbit.ssl,
            ssl_ca_file=conf.oslo_messaging_rabbit.ssl_ca_file or None,
            ssl_cert_file=conf.oslo_messaging_rabbit.ssl_cert_file or None,
            ssl_key_file=conf.oslo_messaging_rabbit.ssl_key_file or None,
        ),
        reclaim_instance_interval=conf.reclaim_instance_interval,
        reimage_timeout_per_gb=conf.reimage_timeout_per_gb,
        wait_for_vif_plugged_event_during_hard_reboot=tuple(
            conf.workarounds.wait_for_vif_plugged_event_during_hard_reboot
        ),
        relay_resend_after=conf.herald.relay_resend_after,
        arq_binding_timeout=conf.arq_binding_timeout,
    )


def _redfish_settings(conf: cfg.ConfigOpts) -> RedfishSettings:
    group = conf.redfish
    return RedfishSettings(
        address=group.address,
        username=group.username,
        password=group.password,
        auth_type=group.auth_type,
        verify=parse_verify(group.verify_ca),
        systems=tuple(s.strip() for s in group.systems if s.strip()),
        power_state_change_timeout=float(group.power_state_change_timeout),
        power_poll_interval=group.power_poll_interval,
    )


def _notification_settings(conf: cfg.ConfigOpts) -> NotificationSettings:
    return NotificationSettings(
        notification_format=conf.notifications.notification_format,
        drivers=tuple(conf.oslo_messaging_notifications.driver),
        topics=tuple(conf.notifications.versioned_notifications_topics),
        transport_url=conf.oslo_messaging_notifications.transport_url,
        bdms_in_notifications=conf.notifications.bdms_in_notifications,
    )
