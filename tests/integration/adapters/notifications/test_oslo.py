"""The notifier adapters: configuration reaches oslo.messaging; no configuration, no oslo.messaging."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from herald import bootstrap
from herald.adapters.notifications import NullNotifier, make_notifier
from herald.adapters.notifications.oslo import OsloMessagingNotifier
from herald.config import load_settings, new_conf

PAYLOAD = {"nova_object.name": "InstanceActionPayload", "nova_object.data": {"uuid": "u-1"}}


def _conf(tmp_path: Path, body: str) -> str:
    path = tmp_path / "herald.conf"
    path.write_text(textwrap.dedent(body))
    return str(path)


def test_log_driver_from_the_config_file_logs_the_envelope(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = _conf(
        tmp_path,
        """
        [DEFAULT]
        transport_url = fake://
        [notifications]
        notification_format = versioned
        [oslo_messaging_notifications]
        driver = log
        driver = noop
        """,
    )
    settings = load_settings(new_conf(), config_files=[config])
    assert settings.notifications.drivers == ("log", "noop")
    notifier = bootstrap.build_notifier(settings)
    assert isinstance(notifier, OsloMessagingNotifier)
    try:
        with caplog.at_level(logging.INFO, logger="oslo.messaging.notification"):
            notifier.notify(
                "instance.power_off.start", PAYLOAD, publisher_id="nova-compute:compute-1", context={"request_id": "r"}
            )
    finally:
        notifier.close()
    (record,) = [r for r in caplog.records if r.name == "oslo.messaging.notification.instance.power_off.start"]
    assert record.levelno == logging.INFO
    envelope = json.loads(record.getMessage())
    assert {k: envelope[k] for k in ("event_type", "priority", "publisher_id", "payload")} == {
        "event_type": "instance.power_off.start",
        "priority": "INFO",
        "publisher_id": "nova-compute:compute-1",
        "payload": PAYLOAD,
    }
    assert {"message_id", "timestamp"} <= envelope.keys()


@pytest.mark.parametrize(
    ("notification_format", "drivers"),
    [
        ("unversioned", ("messagingv2",)),  # Nova's default format: only legacy notifications, which Herald lacks
        ("versioned", ()),  # Nova's default driver: none
        ("both", ("noop",)),
    ],
)
def test_nothing_to_send_is_the_null_notifier(notification_format: str, drivers: tuple[str, ...]) -> None:
    notifier = make_notifier(
        notification_format=notification_format,
        drivers=drivers,
        topics=("versioned_notifications",),
        transport_url=None,
        config_files=(),
    )
    assert isinstance(notifier, NullNotifier)
    assert not notifier.enabled


_PROBE = """
import sys
from herald import bootstrap
from herald.config import load_settings, new_conf
settings = load_settings(new_conf(), config_files=sys.argv[1:])
deps = bootstrap.build_embedded(settings)
deps.notifier.close()
deps.engine.dispose()
print(type(deps.notifier).__name__, "oslo_messaging" in sys.modules, "eventlet" in sys.modules)
"""


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("", "NullNotifier False False"),
        ("[notifications]\nnotification_format = versioned\n", "NullNotifier False False"),
        (
            "[notifications]\nnotification_format = versioned\n[oslo_messaging_notifications]\ndriver = log\n",
            "OsloMessagingNotifier True True",
        ),
    ],
)
def test_oslo_messaging_is_imported_only_when_notifications_are_on(tmp_path: Path, body: str, expected: str) -> None:
    config = _conf(tmp_path, f"[database]\nconnection = sqlite:///{tmp_path / 'h.sqlite'}\n{body}")
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, config], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.strip().splitlines()[-1] == expected
