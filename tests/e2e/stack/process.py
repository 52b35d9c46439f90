"""Start and stop a real ``herald serve`` process for the tests that use real HTTP clients."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx


def wait_until(check: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll ``check`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class HeraldProcess:
    """``herald serve`` on a free loopback port; its log goes to ``log_path``.

    :param config_file: a herald.conf to read first (the command-line flags still win).

    As a context manager it waits until the process answers, and stops it on the way out.
    """

    def __init__(
        self, database_url: str, log_path: Path, *, hosts: str = "compute-1,compute-2", config_file: Path | None = None
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        herald = Path(sys.executable).with_name("herald")
        config = [] if config_file is None else ["--config-file", str(config_file)]
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [str(herald), "serve", *config, "--port", str(self.port), "--hosts", hosts, "--database", database_url],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"herald serve exited: {self.log_path.read_text()}")
            try:
                if httpx.get(self.url + "/", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"herald serve did not answer in {timeout} s: {self.log_path.read_text()}")

    def __enter__(self) -> HeraldProcess:
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()
