"""[DEFAULT] transport_url as operators write it, and the TLS context of [oslo_messaging_rabbit]."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import pytest

from herald.adapters.bus.transport_url import (
    Broker,
    TlsOptions,
    TransportUrlError,
    is_memory,
    parse_rabbit_url,
    ssl_context,
)


def test_several_hosts_as_oslo_messaging_takes_them() -> None:
    transport = parse_rabbit_url("rabbit://nova:s3cret@rmq1:5672,nova:s3cret@rmq2:5673,rmq3/nova")
    assert transport.brokers == (
        Broker("rmq1", 5672, "nova", "s3cret", "nova"),
        Broker("rmq2", 5673, "nova", "s3cret", "nova"),
        Broker("rmq3", 5672, "nova", "s3cret", "nova"),
    )
    assert not transport.tls
    assert transport.amqp_url(transport.brokers[1]) == "amqp://nova:s3cret@rmq2:5673/nova"


def test_defaults_and_quoting() -> None:
    transport = parse_rabbit_url("amqp://u%40x:p%2Fw@[::1]/")
    (broker,) = transport.brokers
    assert (broker.host, broker.port, broker.username, broker.password, broker.virtual_host) == (
        "::1",
        5672,
        "u@x",
        "p/w",
        "/",
    )
    assert transport.amqp_url(broker) == "amqp://u%40x:p%2Fw@[::1]:5672/"


def test_tls_by_scheme_or_option() -> None:
    assert parse_rabbit_url("amqps://u:p@h/").tls
    assert parse_rabbit_url("amqps://u:p@h/").brokers[0].port == 5671
    assert parse_rabbit_url("rabbit://u:p@h:5671/", TlsOptions(enabled=True)).tls


def test_the_password_is_never_displayed() -> None:
    (broker,) = parse_rabbit_url("rabbit://nova:hunter2@rmq1:5672/").brokers
    assert "hunter2" not in broker.display
    assert "hunter2" not in repr(broker)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("kafka://h/", "not supported"),
        ("rabbit:///", "no broker host"),
        ("rabbit://u:hunter2@h:99999/", "invalid port"),
        ("rabbit://u:hunter2@:5672/", "no host"),
    ],
)
def test_bad_urls(url: str, reason: str) -> None:
    with pytest.raises(TransportUrlError, match=reason) as info:
        parse_rabbit_url(url)
    assert "hunter2" not in str(info.value)


def test_memory_urls() -> None:
    assert is_memory("memory://")
    assert is_memory(None)
    assert not is_memory("rabbit://h/")


def test_ssl_context_verifies_the_broker() -> None:
    context = ssl_context(TlsOptions(enabled=True))
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname


def test_ssl_context_with_ca_and_client_certificate(tmp_path: Path) -> None:
    key, cert = tmp_path / "client.key", tmp_path / "client.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=herald", "-days", "1",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    context = ssl_context(TlsOptions(enabled=True, ca_file=str(cert), cert_file=str(cert), key_file=str(key)))
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "herald"),),)]


def test_ssl_context_with_a_missing_ca_file_fails(tmp_path: Path) -> None:
    with pytest.raises(OSError):  # noqa: PT011 - ssl's FileNotFoundError
        ssl_context(TlsOptions(enabled=True, ca_file=str(tmp_path / "missing.pem")))
