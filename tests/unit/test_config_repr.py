"""Settings get logged: their repr never shows a password."""

from __future__ import annotations

import pytest

from herald.config import NotificationSettings, RedfishSettings, Settings


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql+psycopg://herald:s3cret@db.example:5432/herald",
            "postgresql+psycopg://herald:***@db.example:5432/herald",
        ),
        ("postgresql+psycopg://herald:s3cr@t/x@db/herald", "postgresql+psycopg://herald:***@db/herald"),
        ("sqlite:////var/lib/herald/herald.sqlite", "sqlite:////var/lib/herald/herald.sqlite"),
    ],
)
def test_the_database_password_is_hidden(url: str, shown: str) -> None:
    settings = Settings(
        database_url=url,
        redfish=RedfishSettings(address="https://bmc", username="root", password="s3cret"),
        notifications=NotificationSettings(transport_url="rabbit://guest:s3cret@mq:5672/"),
    )
    for text in (repr(settings), str(settings)):
        assert "s3cr" not in text
        assert f"database_url={shown!r}" in text
        assert "username='root'" in text
    assert settings.database_url == url
