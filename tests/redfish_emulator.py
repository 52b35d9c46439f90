"""A real Redfish service for tests: sushy-tools' emulator with its fake systems driver, in a subprocess.

The fake driver (``sushy_tools/emulator/resources/systems/fakedriver.py``) keeps its systems in a SQLite
file under ``SUSHY_EMULATOR_STATE_DIR`` and applies a ``ComputerSystem.Reset`` only after a delay: it records
a pending power state due ``int(time.time()) + random.randint(1, 11)`` seconds later and applies it on the
next read. So tests poll with a deadline; they never sleep a fixed time. By default the launcher pins that
``randint`` to :data:`DEFAULT_POWER_DELAY` (a change lands 1 to 2 s after the request) to keep the suite
quick; ``power_delay=None`` keeps the emulator's own 1 to 11 s.

Reuse from another test package: import the fixtures into its ``conftest.py``::

    from tests.redfish_emulator import redfish_emulator, redfish_emulator_with_auth  # noqa: F401
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import httpx
import pytest

from tests.e2e.stack.process import free_port

DEFAULT_POWER_DELAY = 2


@dataclass(frozen=True, slots=True)
class FakeSystem:
    """One machine of the emulator: its Redfish id (the fake driver uses the uuid) and initial power."""

    id: str
    name: str
    power: str = "Off"


SYSTEMS: tuple[FakeSystem, ...] = (
    FakeSystem("5a1c2c57-8f33-4ab8-9a7e-0c1d2e3f4a01", "node-0", "Off"),
    FakeSystem("5a1c2c57-8f33-4ab8-9a7e-0c1d2e3f4a02", "node-1", "Off"),
    FakeSystem("5a1c2c57-8f33-4ab8-9a7e-0c1d2e3f4a03", "node-2", "On"),
)

# Runs in the emulator's process: pin the fake driver's delay (only its module's `random`), then start it.
_LAUNCHER = """
import sys, types
delay = int(sys.argv.pop(1))
if delay > 0:
    from sushy_tools.emulator.resources.systems import fakedriver
    fakedriver.random = types.SimpleNamespace(randint=lambda low, high: delay)
from sushy_tools.emulator.main import main
sys.argv[0] = "sushy-emulator"
sys.exit(main())
"""


def _config(systems: Sequence[FakeSystem], state_dir: Path, auth_file: Path | None) -> str:
    fake_systems = [
        {"uuid": s.id, "name": s.name, "power_state": s.power, "external_notifier": False, "nics": []} for s in systems
    ]
    lines = [
        "SUSHY_EMULATOR_LISTEN_IP = '127.0.0.1'",
        "SUSHY_EMULATOR_FAKE_DRIVER = True",
        f"SUSHY_EMULATOR_FAKE_SYSTEMS = {fake_systems!r}",
        f"SUSHY_EMULATOR_STATE_DIR = {str(state_dir)!r}",
    ]
    if auth_file is not None:
        lines.append(f"SUSHY_EMULATOR_AUTH_FILE = {str(auth_file)!r}")
    return "\n".join(lines) + "\n"


class RedfishEmulator:
    """``sushy-emulator`` with fake systems on a free loopback port; everything it writes stays in ``workdir``.

    :param auth: ``(username, password)`` turns HTTP basic auth on (the service root stays open, as on a BMC).
    :param power_delay: seconds the fake driver takes to apply a reset (see the module docstring);
        None keeps its random 1 to 11 s.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        systems: Sequence[FakeSystem] = SYSTEMS,
        auth: tuple[str, str] | None = None,
        power_delay: int | None = DEFAULT_POWER_DELAY,
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.system_ids: tuple[str, ...] = tuple(s.id for s in systems)
        self.auth = auth
        self.log_path = workdir / "sushy-emulator.log"
        auth_file: Path | None = None
        if auth is not None:
            auth_file = workdir / "htpasswd"
            digest = bcrypt.hashpw(auth[1].encode(), bcrypt.gensalt(rounds=4)).decode()
            auth_file.write_text(f"{auth[0]}:{digest}\n")
        config = workdir / "emulator.conf"
        config.write_text(_config(systems, workdir / "state", auth_file))
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, str(power_delay or 0), "--config", str(config), "--port", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._client = httpx.Client(base_url=self.url, auth=auth, timeout=10.0)

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"sushy-emulator exited: {self.log_path.read_text()}")
            try:
                if self._client.get("/redfish/v1/Systems").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"sushy-emulator did not answer in {timeout} s: {self.log_path.read_text()}")

    def system_path(self, system_id: str) -> str:
        return f"/redfish/v1/Systems/{system_id}"

    def power_of(self, system_id: str) -> str:
        """The system's ``PowerState`` as the Redfish API reports it now (``On``/``Off``)."""
        resp = self._client.get(self.system_path(system_id))
        resp.raise_for_status()
        power: str = resp.json()["PowerState"]
        return power

    def set_power(self, system_id: str, power: str, *, wait: bool = False, timeout: float = 30.0) -> None:
        """Change the power behind compute's back, as an operator at the BMC does (a ``ComputerSystem.Reset``).

        :param power: ``On`` or ``Off`` (sent as ResetType ``On`` / ``ForceOff``).
        :param wait: return only once the emulator reports ``power`` (it applies resets after a delay).
        """
        reset_type = {"On": "On", "Off": "ForceOff"}[power]
        resp = self._client.post(
            self.system_path(system_id) + "/Actions/ComputerSystem.Reset",
            content=json.dumps({"ResetType": reset_type}),
            headers={"Content-Type": "application/json"},
        )
        resp.raise_for_status()
        if wait:
            self.wait_power(system_id, power, timeout=timeout)

    def wait_power(self, system_id: str, power: str, *, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.power_of(system_id) != power:
            if time.monotonic() > deadline:
                raise AssertionError(f"system {system_id} did not reach {power} in {timeout} s")
            time.sleep(0.1)

    def stop(self) -> None:
        self._client.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


def start_emulator(
    workdir: Path, *, auth: tuple[str, str] | None = None, power_delay: int | None = DEFAULT_POWER_DELAY
) -> Iterator[RedfishEmulator]:
    """Start one, yield it once it answers, stop it (the body of the fixtures below)."""
    emulator = RedfishEmulator(workdir, auth=auth, power_delay=power_delay)
    try:
        emulator.wait_ready()
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def redfish_emulator(tmp_path: Path) -> Iterator[RedfishEmulator]:
    """A fresh emulator (fresh state) per test, without authentication."""
    yield from start_emulator(tmp_path / "redfish")


REDFISH_USER = "bmc-admin"
REDFISH_PASSWORD = "s3cret-Passw0rd-for-tests"


@pytest.fixture
def redfish_emulator_with_auth(tmp_path: Path) -> Iterator[RedfishEmulator]:
    """A fresh emulator that requires HTTP basic auth with :data:`REDFISH_USER` / :data:`REDFISH_PASSWORD`."""
    yield from start_emulator(tmp_path / "redfish-auth", auth=(REDFISH_USER, REDFISH_PASSWORD))
