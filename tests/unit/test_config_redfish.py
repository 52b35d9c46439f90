"""The [redfish], [power_watch] and [compute_api] options: parsing into Settings, and the sample."""

from __future__ import annotations

from pathlib import Path

import pytest

from herald import cli
from herald.config import RedfishSettings, load_settings, new_conf, parse_verify


def test_redfish_options_become_settings(tmp_path: Path) -> None:
    path = tmp_path / "herald.conf"
    path.write_text(
        "[DEFAULT]\ncompute_driver = redfish\n"
        "[redfish]\naddress = https://bmc.example.com\nusername = ops\npassword = hunter2\n"
        "verify_ca = /etc/ssl/bmc-ca.pem\nsystems = a, b ,,c\npower_state_change_timeout = 90\n"
        "[power_watch]\ninterval = 3\n"
    )
    settings = load_settings(new_conf(), config_files=[str(path)])
    assert settings.compute_driver == "redfish"
    assert settings.redfish == RedfishSettings(
        address="https://bmc.example.com",
        username="ops",
        password="hunter2",
        verify="/etc/ssl/bmc-ca.pem",
        systems=("a", "b", "c"),
        power_state_change_timeout=90.0,
    )
    assert settings.power_watch_interval == 3
    assert "hunter2" not in repr(settings)


@pytest.mark.parametrize(
    ("value", "expected"), [("True", True), ("yes", True), ("false", False), ("0", False), ("/ca.pem", "/ca.pem")]
)
def test_verify_ca_is_a_boolean_or_a_path(value: str, expected: bool | str) -> None:
    assert parse_verify(value) == expected


def test_the_sample_documents_redfish_power_watch_and_compute_api(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["config", "sample"]) == 0
    out = capsys.readouterr().out
    for section in ("[redfish]", "[power_watch]", "[compute_api]"):
        assert f"\n{section}\n" in out
    for option in ("#systems =", "#power_state_change_timeout = 60", "#auth_type = <None>", "#endpoint = <None>"):
        assert option in out
