"""Start, wait for and stop the processes under test; read their memory from /proc."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

import httpx

READY_TIMEOUT = 30.0


class ServiceError(RuntimeError):
    """A process under test did not start, or died."""


@dataclass(frozen=True, slots=True)
class Memory:
    """Resident set size now and at its peak, in KiB (VmRSS / VmHWM)."""

    rss_kib: int
    hwm_kib: int

    @property
    def rss_mb(self) -> float:
        return self.rss_kib / 1024

    @property
    def hwm_mb(self) -> float:
        return self.hwm_kib / 1024


class Target(Protocol):
    """What a load is measured against: one process, or the processes of a cluster."""

    @property
    def name(self) -> str: ...

    @property
    def base_url(self) -> str: ...

    def memory(self) -> Memory: ...

    def cpu_seconds(self) -> float: ...

    def check_alive(self) -> None: ...


@dataclass
class Service:
    """One process under test, listening on 127.0.0.1:port."""

    name: str
    popen: subprocess.Popen[bytes]
    port: int
    log_path: Path
    log_file: IO[bytes]

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def memory(self) -> Memory:
        return read_memory(self.pid)

    def cpu_seconds(self) -> float:
        return read_cpu_seconds(self.pid)

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_file.closed:
            self.log_file.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def check_alive(self) -> None:
        code = self.popen.poll()
        if code is not None:
            raise ServiceError(f"{self.name} exited with {code}; log tail:\n{self.log_tail()}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start(name: str, argv: list[str], *, port: int, log_dir: Path) -> Service:
    """Start ``argv`` in its own process group, its output in ``log_dir/name.log``, and wait until ``GET /`` is 200."""
    log_path = log_dir / f"{name}.log"
    log_file = log_path.open("wb")
    popen = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    service = Service(name=name, popen=popen, port=port, log_path=log_path, log_file=log_file)
    try:
        wait_ready(service)
    except BaseException:
        stop(service)
        raise
    return service


def wait_ready(service: Service, timeout: float = READY_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=service.base_url, timeout=2.0) as client:
        while time.monotonic() < deadline:
            service.check_alive()
            with contextlib.suppress(httpx.TransportError):
                if client.get("/").status_code == 200:
                    return
            time.sleep(0.1)
    raise ServiceError(f"{service.name} not ready after {timeout:.0f}s; log tail:\n{service.log_tail()}")


def stop(service: Service, *, kill: bool = False, timeout: float = 10.0) -> int:
    """SIGTERM (or SIGKILL) the process group; returns the exit code."""
    sig = signal.SIGKILL if kill else signal.SIGTERM
    if service.popen.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(service.pid, sig)
    try:
        code = service.popen.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(service.pid, signal.SIGKILL)
        code = service.popen.wait()
    service.log_file.close()
    return code


def read_memory(pid: int) -> Memory:
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return Memory(rss_kib=fields["VmRSS"], hwm_kib=fields["VmHWM"])


def read_cpu_seconds(pid: int) -> float:
    """User + system CPU time of all the process's threads (/proc/<pid>/stat utime, stime)."""
    # NOTE: split after the ")" closing the command name, which may itself contain spaces.
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    """CPU time of the harness's reaped children so far (wrk runs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def machine_busy_seconds() -> float:
    """CPU time all cores spent not idle since boot (/proc/stat), to spot other load during a run."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def wait_quiet(target: Target, *, threshold: float, timeout: float, sample: float = 1.0) -> tuple[float, float]:
    """Wait until ``target`` (e.g. still draining a backlog) and the rest of the machine each use under
    ``threshold`` cores; returns the last (target, rest) levels seen."""
    deadline = time.monotonic() + timeout
    while True:
        busy, own = machine_busy_seconds(), target.cpu_seconds()
        time.sleep(sample)
        level = (target.cpu_seconds() - own) / sample
        rest = (machine_busy_seconds() - busy) / sample - level
        if (level < threshold and rest < threshold) or time.monotonic() >= deadline:
            return level, rest
