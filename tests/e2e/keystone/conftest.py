"""Fixtures for the tests against a real Keystone: tokens for each user and a keystone-auth ``herald serve``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.keystone.identity import Keystone, User, keystone_from_env
from tests.e2e.stack.process import HeraldProcess
from tests.redfish_emulator import redfish_emulator

__all__ = ["redfish_emulator"]


@pytest.fixture(scope="session")
def keystone() -> Keystone:
    return keystone_from_env()


@pytest.fixture(scope="session")
def tokens(keystone: Keystone) -> dict[User, str]:
    """A project-scoped token of each user, from Keystone through keystoneauth1."""
    found: dict[User, str] = {}
    for user in User:
        token = keystone.session(user).get_token()
        assert token
        found[user] = token
    return found


@pytest.fixture(scope="module")
def herald_keystone(keystone: Keystone, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HeraldProcess]:
    """``herald serve`` (embedded shape, SQLite) with ``[api] auth_strategy = keystone``."""
    tmp = tmp_path_factory.mktemp("herald-keystone")
    conf = keystone.write_herald_conf(tmp / "herald.conf")
    with HeraldProcess(f"sqlite:///{tmp / 'herald.sqlite'}", tmp / "herald.log", config_file=conf) as process:
        yield process
