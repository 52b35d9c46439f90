"""The herald command line: db upgrade, config sample, policy sample, and the serve settings helper."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from herald import cli
from herald.adapters.sql import migrate


def test_db_upgrade_with_database_flag(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sub' / 'h.sqlite'}"
    assert cli.main(["db", "upgrade", "--database", url]) == 0
    assert migrate.current(url) == migrate.head()


def test_db_upgrade_from_config_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.sqlite'}"
    conf = tmp_path / "herald.conf"
    conf.write_text(f"[database]\nconnection = {url}\n")
    assert cli.main(["db", "upgrade", "--config-file", str(conf)]) == 0
    assert migrate.current(url) == migrate.head()


def test_config_sample(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["config", "sample"]) == 0
    out = capsys.readouterr().out
    for section in ("[DEFAULT]", "[database]", "[api]", "[herald]", "[keystone_authtoken]", "[oslo_policy]"):
        assert f"\n{section}\n" in f"\n{out}"
    assert "#connection = sqlite:///herald.sqlite" in out


def test_config_sample_to_file(tmp_path: Path) -> None:
    path = tmp_path / "herald.conf.sample"
    assert cli.main(["config", "sample", "--output-file", str(path)]) == 0
    assert "[database]" in path.read_text()


def test_policy_sample(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["policy", "sample"]) == 0
    assert '"os_compute_api:os-server-external-events:create"' in capsys.readouterr().out


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main([])
    with pytest.raises(SystemExit):
        cli.main(["db"])


def _server_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_server_arguments(parser)
    return parser.parse_args(argv)


def test_settings_from_args_applies_overrides_after_config_files(tmp_path: Path) -> None:
    conf = tmp_path / "herald.conf"
    conf.write_text("[DEFAULT]\nosapi_compute_listen_port = 9000\n[herald]\nhosts = a, b\n[database]\nconnection = x\n")
    base = cli.settings_from_args(_server_args(["--config-file", str(conf)]))
    assert (base.port, base.hosts, base.database_url) == (9000, ("a", "b"), "x")
    assert base.config_files == (str(conf),)
    flags = ["--bind", "127.0.0.2", "--port", "9100", "--hosts", "h1, h2,", "--database", "y"]
    over = cli.settings_from_args(_server_args(["--config-file", str(conf), *flags]))
    assert (over.listen, over.port, over.hosts, over.database_url) == ("127.0.0.2", 9100, ("h1", "h2"), "y")


def test_settings_from_args_without_server_flags() -> None:
    settings = cli.settings_from_args(argparse.Namespace())
    assert settings.port == 8774


def test_power_state_change_grace_is_documented_and_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["config", "sample"]) == 0
    out = capsys.readouterr().out
    assert "#power_state_change_grace = 120" in out
    assert cli.settings_from_args(argparse.Namespace()).power_state_change_grace == 120
    conf = tmp_path / "herald.conf"
    conf.write_text("[DEFAULT]\npower_state_change_grace = 0\n")
    assert cli.settings_from_args(_server_args(["--config-file", str(conf)])).power_state_change_grace == 0
    conf.write_text("[DEFAULT]\npower_state_change_grace = -1\n")
    with pytest.raises(ValueError, match="power_state_change_grace"):
        cli.settings_from_args(_server_args(["--config-file", str(conf)]))


def _distributed_conf(tmp_path: Path, transport_url: str) -> str:
    conf = tmp_path / "herald.conf"
    url = f"sqlite:///{tmp_path / 'h.sqlite'}"
    conf.write_text(f"[DEFAULT]\ntransport_url = {transport_url}\n[database]\nconnection = {url}\n")
    return str(conf)


@pytest.mark.parametrize("command", [["agent", "--host", "compute-1"], ["api", "--bind", "127.0.0.1"]])
def test_the_distributed_commands_refuse_the_in_memory_bus(tmp_path: Path, command: list[str]) -> None:
    with pytest.raises(SystemExit, match="transport_url must name RabbitMQ"):
        cli.main([*command, "--config-file", _distributed_conf(tmp_path, "memory://")])


@pytest.mark.parametrize("command", [["agent", "--host", "compute-1"], ["api", "--bind", "127.0.0.1"]])
def test_a_bad_transport_url_is_named_without_its_password(tmp_path: Path, command: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main([*command, "--config-file", _distributed_conf(tmp_path, "rabbit://nova:hunter2@rmq:99999/")])
    assert "invalid port" in str(info.value)
    assert "hunter2" not in str(info.value)


def test_an_agent_needs_the_schema(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="herald db upgrade"):
        cli.main(["agent", "--host", "c1", "--config-file", _distributed_conf(tmp_path, "rabbit://u:p@127.0.0.1/")])


def test_api_workers_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="at least 1"):
        cli.main(["api", "--workers", "0", "--config-file", _distributed_conf(tmp_path, "rabbit://u:p@127.0.0.1/")])


def test_noauth2_on_every_address_is_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "herald.conf"
    conf.write_text(
        "[DEFAULT]\ntransport_url = rabbit://u:p@127.0.0.1/\n"
        f"[database]\nconnection = sqlite:///{tmp_path / 'h.sqlite'}\n[api]\nauth_strategy = noauth2\n"
    )
    assert cli.main(["db", "upgrade", "--config-file", str(conf)]) == 0
    assert cli.main(["api", "--bind", "0.0.0.0", "--config-file", str(conf)]) == 2
    said = capsys.readouterr().err
    assert said.startswith("herald: [api] auth_strategy = noauth2")
    assert "Traceback" not in said
