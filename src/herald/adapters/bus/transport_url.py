"""``[DEFAULT] transport_url`` as oslo.messaging reads it, and the TLS options of ``[oslo_messaging_rabbit]``.

``rabbit://user:pass@host1:5672,user:pass@host2:5672/vhost`` names several brokers of one
cluster: a client connects to the first it can reach. ``amqp://`` is taken as ``rabbit://``,
``amqps://`` as ``rabbit://`` over TLS; ``memory://`` is the in-process bus. A host given
without credentials uses the previous host's (oslo.messaging's rule).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit

from herald.domain.errors import HeraldError

DEFAULT_PORT = 5672
DEFAULT_TLS_PORT = 5671
RABBIT_SCHEMES = frozenset({"rabbit", "amqp", "amqps"})


class TransportUrlError(HeraldError):
    """A transport URL Herald cannot use (the message never holds the password)."""


@dataclass(frozen=True, slots=True)
class Broker:
    """One broker of the transport URL."""

    host: str
    port: int
    username: str
    password: str = field(repr=False)
    virtual_host: str

    @property
    def display(self) -> str:
        """Where it is, for logs and errors: never the password."""
        vhost = "" if self.virtual_host == "/" else self.virtual_host
        return f"{self.username}@{self.host}:{self.port}/{vhost}"


@dataclass(frozen=True, slots=True)
class TlsOptions:
    """``[oslo_messaging_rabbit] ssl``, ``ssl_ca_file``, ``ssl_cert_file``, ``ssl_key_file``."""

    enabled: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None


@dataclass(frozen=True, slots=True)
class RabbitTransport:
    brokers: tuple[Broker, ...]
    tls: bool

    def amqp_url(self, broker: Broker) -> str:
        """The URL aio-pika connects to (holds the password: never log it)."""
        scheme = "amqps" if self.tls else "amqp"
        user, password = quote(broker.username, safe=""), quote(broker.password, safe="")
        host = f"[{broker.host}]" if ":" in broker.host else broker.host
        vhost = "" if broker.virtual_host == "/" else quote(broker.virtual_host, safe="")
        return f"{scheme}://{user}:{password}@{host}:{broker.port}/{vhost}"


def is_memory(url: str | None) -> bool:
    return url is None or url.strip() in {"", "memory://", "fake://"}


def parse_rabbit_url(url: str, tls: TlsOptions = TlsOptions()) -> RabbitTransport:
    """:raises TransportUrlError: not a RabbitMQ URL, or no host in it."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        raise TransportUrlError("the transport URL cannot be parsed") from None
    scheme = parts.scheme.lower()
    if scheme not in RABBIT_SCHEMES:
        raise TransportUrlError(f"transport URL scheme {scheme!r} is not supported (rabbit://, amqp://, amqps://)")
    use_tls = scheme == "amqps" or tls.enabled
    # NOTE: urlsplit keeps "a:b@h1:1,c:d@h2:2" whole in netloc; oslo.messaging splits it on commas.
    netloc = url.strip().split("//", 1)[1].split("/", 1)[0].split("?", 1)[0]
    virtual_host = unquote(parts.path[1:]) if parts.path.startswith("/") else ""
    brokers: list[Broker] = []
    username, password = "guest", "guest"
    for item in netloc.split(","):
        if not item:
            continue
        credentials, _, address = item.rpartition("@")
        if credentials:
            user, _, secret = credentials.partition(":")
            username, password = unquote(user), unquote(secret)
        host, port = _host_port(address, DEFAULT_TLS_PORT if use_tls else DEFAULT_PORT)
        brokers.append(Broker(host, port, username, password, virtual_host or "/"))
    if not brokers:
        raise TransportUrlError("the transport URL names no broker host")
    return RabbitTransport(tuple(brokers), use_tls)


def _host_port(address: str, default_port: int) -> tuple[str, int]:
    if address.startswith("["):  # [IPv6]:port
        host, _, rest = address[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port_text = address.partition(":")
    if not host:
        raise TransportUrlError("a broker in the transport URL has no host")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise TransportUrlError(f"broker {host} has an invalid port")
    return host, int(port_text)


def ssl_context(tls: TlsOptions) -> ssl.SSLContext:
    """A client context that verifies the broker (against ``ca_file`` if given) and presents a client
    certificate when ``cert_file`` is set."""
    context = ssl.create_default_context(cafile=tls.ca_file)
    if tls.cert_file:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    return context
