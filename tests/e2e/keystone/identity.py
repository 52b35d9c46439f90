"""The Keystone that ``scripts/test-services`` starts: its URL, its users and their tokens.

The users and projects are created by ``scripts/test-services`` (``create_keystone_users``);
they all have the password ``HERALD_TEST_KEYSTONE_PASSWORD``. Keystone's bootstrap makes
``admin`` imply ``member`` and ``member`` imply ``reader``, so tokens carry the implied roles too.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from keystoneauth1 import session
from keystoneauth1.identity import v3


class User(enum.Enum):
    """A test user: (name, project)."""

    SERVICE = ("herald-service", "service")  # role service only, as Neutron's user
    IRONIC = ("herald-ironic", "service")  # roles service and admin, as Ironic's user is usually set up
    ADMIN = ("herald-admin", "herald")
    MEMBER = ("herald-member", "herald")
    READER = ("herald-reader", "herald")
    OTHER = ("herald-other", "herald-other")  # a member of another project

    @property
    def username(self) -> str:
        return self.value[0]

    @property
    def project(self) -> str:
        return self.value[1]


@dataclass(frozen=True)
class Keystone:
    """Where the test Keystone answers (``url`` ends in ``/v3``) and the users' password."""

    url: str
    password: str

    def session(self, user: User, *, system_scope: bool = False) -> session.Session:
        """A session of ``user``, scoped to its project, or to the system (only ``User.ADMIN`` has a system role)."""
        scope = {"project_name": user.project, "project_domain_id": "default"}
        if system_scope:
            scope = {"system_scope": "all"}
        auth = v3.Password(
            auth_url=self.url, username=user.username, password=self.password, user_domain_id="default", **scope
        )
        return session.Session(auth=auth)

    def auth_options(self, user: User) -> str:
        """keystoneauth1's password options for ``user``, as lines of an oslo.config section."""
        return (
            f"auth_type = password\nauth_url = {self.url}\nusername = {user.username}\n"
            f"password = {self.password}\nproject_name = {user.project}\n"
            "user_domain_id = default\nproject_domain_id = default\n"
        )

    def write_herald_conf(self, path: Path, extra: str = "") -> Path:
        """A herald.conf for ``[api] auth_strategy = keystone``; the service user validates tokens."""
        path.write_text(
            f"[api]\nauth_strategy = keystone\n{extra}"
            f"[keystone_authtoken]\nwww_authenticate_uri = {self.url}\ninterface = public\n"
            f"{self.auth_options(User.SERVICE)}"
        )
        return path


def keystone_from_env() -> Keystone:
    """The test Keystone; skips without one, or fails under ``CI`` / ``HERALD_REQUIRE_PG=1``."""
    url = os.environ.get("HERALD_TEST_KEYSTONE_URL")
    password = os.environ.get("HERALD_TEST_KEYSTONE_PASSWORD")
    if url and password:
        return Keystone(url, password)
    message = 'HERALD_TEST_KEYSTONE_URL and _PASSWORD are not set: run `eval "$(scripts/test-services)"` first'
    if os.environ.get("CI") or os.environ.get("HERALD_REQUIRE_PG") == "1":
        pytest.fail(message)
    pytest.skip(message)
