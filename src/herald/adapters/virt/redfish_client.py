"""RedfishClient: read and set the power of Redfish systems through sushy, with credentials kept out of errors."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import sushy
from sushy import auth as sushy_auth
from sushy import connector as sushy_connector
from sushy import exceptions as sushy_exceptions

from herald.domain.errors import DriverError

logger = logging.getLogger(__name__)

# Redfish ComputerSystem PowerState values and the ResetType that reaches each steady one (Ironic's choice).
ON = "On"
OFF = "Off"
POWERING_ON = "PoweringOn"
POWERING_OFF = "PoweringOff"
RESET_TYPES = {ON: sushy.ResetType.ON, OFF: sushy.ResetType.FORCE_OFF}

_AUTH_TYPES = {
    "auto": sushy_auth.SessionOrBasicAuth,
    "session": sushy_auth.SessionAuth,
    "basic": sushy_auth.BasicAuth,
}
_URL_USERINFO = re.compile(r"//[^/@\s]+@")


class _NoAuth(sushy_auth.AuthBase):  # type: ignore[misc]
    """For a service without authentication: send no credentials at all."""

    def _do_authenticate(self) -> None:
        pass

    def can_refresh_session(self) -> bool:
        return False


class RedfishSystemNotFound(DriverError):
    """The Redfish service has no system with that id (HTTP 404)."""


class RedfishClient:
    """Blocking access to one Redfish service (a BMC, or a Redfish front end to many machines).

    The connection is opened on first use and opened again after a connection or
    authentication failure. Every sushy error becomes a :class:`DriverError` whose message
    names the system but never the username, the password or a URL's user part.

    :param address: service root URL; its path, if any, is the root prefix (default ``/redfish/v1/``).
    :param username: without one, no credentials are sent.
    :param auth_type: ``auto`` (a Redfish session, else basic), ``session`` or ``basic``.
    :param verify: as requests takes it: True, False or a CA bundle path.
    """

    def __init__(
        self,
        *,
        address: str,
        username: str | None = None,
        password: str | None = None,
        auth_type: str = "auto",
        verify: bool | str = True,
    ) -> None:
        parts = urlsplit(address)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError("The Redfish address must be an http:// or https:// URL")
        path = parts.path.rstrip("/")
        self._base_url = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
        self._root_prefix = (path or "/redfish/v1") + "/"
        self._username = username
        self._password = password
        self._auth_type = _AUTH_TYPES[auth_type]
        self._verify = verify
        self._root: Any = None  # sushy.Sushy, built on first use
        self._connector: Any = None  # its sushy Connector (HTTP connections), ours to close
        self._lock = threading.Lock()

    def power(self, system_id: str) -> str | None:
        """The system's Redfish ``PowerState`` (``On``, ``Off``, ``PoweringOn``, ...), None if it reports none.

        :raises RedfishSystemNotFound: no such system.
        :raises DriverError: the service could not be reached or refused the request.
        """
        with self._errors(system_id, "read the power state of"):
            state = self._system(system_id).power_state
            return None if state is None else str(state.value)

    def reset(self, system_id: str, power: str) -> None:
        """Ask the system to go ``On`` (ResetType ``On``) or ``Off`` (``ForceOff``); it may take a while.

        :raises RedfishSystemNotFound: no such system.
        :raises DriverError: the service could not be reached or refused the reset.
        """
        with self._errors(system_id, f"power {power}"):
            self._system(system_id).reset_system(RESET_TYPES[power])

    def close(self) -> None:
        """Close the connections; the next call opens new ones. Sushy ends its Redfish session, if any."""
        with self._lock:
            connector, self._connector = self._connector, None
            self._root = None  # NOTE: sushy's Sushy.__del__ logs out of its session (sushy has no close).
        if connector is not None:
            connector.close()

    def _system(self, system_id: str) -> Any:
        root = self._connect()
        path = system_id if system_id.startswith("/") else f"{self._root_prefix}Systems/{quote(system_id, safe='')}"
        return root.get_system(path)

    def _connect(self) -> Any:
        with self._lock:
            if self._root is None:
                auth = (
                    self._auth_type(username=self._username, password=self._password) if self._username else _NoAuth()
                )
                connector = sushy_connector.Connector(self._base_url, verify=self._verify)
                try:
                    self._root = sushy.Sushy(
                        self._base_url, root_prefix=self._root_prefix, auth=auth, connector=connector
                    )
                except BaseException:
                    connector.close()
                    raise
                self._connector = connector
            return self._root

    @contextmanager
    def _errors(self, system_id: str, doing: str) -> Iterator[None]:
        try:
            yield
        # NOTE: `from None` everywhere: a chained library exception could echo what was sent.
        except sushy_exceptions.ResourceNotFoundError:
            raise RedfishSystemNotFound(f"Redfish system {system_id} was not found") from None
        except sushy_exceptions.AccessError as exc:
            self.close()  # NOTE: authenticate again next time (the password may have been fixed).
            raise DriverError(
                f"Could not {doing} Redfish system {system_id}: access denied, check the [redfish] username and "
                f"password: {self.scrub(str(exc))}"
            ) from None
        except sushy_exceptions.ConnectionError as exc:
            self.close()
            raise DriverError(f"Could not {doing} Redfish system {system_id}: {self.scrub(str(exc))}") from None
        except sushy_exceptions.SushyError as exc:
            raise DriverError(f"Could not {doing} Redfish system {system_id}: {self.scrub(str(exc))}") from None

    def scrub(self, text: str) -> str:
        """``text`` without the credentials (used on every message built from a library error)."""
        for secret in (self._password, self._username):
            if secret:
                text = text.replace(secret, "***")
        return _URL_USERINFO.sub("//***@", text)
