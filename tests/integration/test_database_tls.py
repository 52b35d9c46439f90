"""Herald on PostgreSQL over TLS: ``[database] connection`` with ``sslmode=require`` and ``verify-full``.

The shared PostgreSQL of scripts/test-services has no TLS (and must not be restarted): this module
starts a PostgreSQL of its own, with a self-signed certificate made here, that accepts TCP
connections over TLS only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from herald.adapters.sql import migrate
from herald.adapters.sql.engine import make_engine
from herald.adapters.sql.schema_version import is_current
from tests.e2e.stack.process import free_port

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(300)]

PASSWORD = "tls-secret-password"


def _pg_bindir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


@dataclass(frozen=True)
class TlsPostgres:
    port: int
    ca_file: Path  # the server's self-signed certificate, as the CA to trust

    def url(self, host: str, **query: str) -> str:
        params = "&".join(f"{key}={value}" for key, value in query.items())
        return f"postgresql+psycopg://herald:{PASSWORD}@{host}:{self.port}/herald?{params}"


def _as_owner(args: list[str]) -> None:
    # NOTE: initdb and postgres refuse to run as root: as root, run them as the postgres user.
    command = ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args
    subprocess.run(command, check=True, capture_output=True, text=True, cwd="/")


@pytest.fixture(scope="module")
def tls_postgres() -> Iterator[TlsPostgres]:
    bindir = _pg_bindir()
    if bindir is None or shutil.which("openssl") is None:
        pytest.skip("PostgreSQL and openssl are needed: run scripts/test-services first")
    # NOTE: under /var/tmp: as root the server runs as postgres, who cannot enter pytest's tmp_path.
    base = Path(tempfile.mkdtemp(prefix="herald-tls-pg-", dir="/var/tmp"))
    data, run = base / "data", base / "run"
    run.mkdir()
    cert, key = base / "server.crt", base / "server.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    key.chmod(0o600)
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        for path in (run, cert, key):
            shutil.chown(path, "postgres")
    port = free_port()
    started = False
    try:
        _as_owner([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth-local=trust", "--no-sync"])
        # TCP only over TLS, with a password; the Unix socket for setting up.
        (data / "pg_hba.conf").write_text(
            "local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\nhostnossl all all 0.0.0.0/0 reject\n"
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -k {run} -c fsync=off -c ssl=on"
            f" -c ssl_cert_file={cert} -c ssl_key_file={key}"
        )
        _as_owner([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "pg.log"), "-w", "start", "-o", options])
        started = True
        psql = [str(bindir / "psql"), "-h", str(run), "-p", str(port), "-U", "postgres", "-v", "ON_ERROR_STOP=1"]
        _as_owner([*psql, "-c", f"CREATE ROLE herald LOGIN PASSWORD '{PASSWORD}'"])
        _as_owner([*psql, "-c", "CREATE DATABASE herald OWNER herald"])
        yield TlsPostgres(port, cert)
    finally:
        if started:
            _as_owner([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"])
        shutil.rmtree(base, ignore_errors=True)


def _uses_tls(url: str) -> bool:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return bool(conn.execute(text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")).scalar())
    finally:
        engine.dispose()


def test_sslmode_require_connects_over_tls_and_migrates(tls_postgres: TlsPostgres) -> None:
    url = tls_postgres.url("127.0.0.1", sslmode="require")
    assert _uses_tls(url)
    migrate.upgrade(url)
    engine = make_engine(url)
    try:
        assert is_current(engine)
    finally:
        engine.dispose()


def test_a_server_that_refuses_plain_connections_is_not_reached_without_tls(tls_postgres: TlsPostgres) -> None:
    engine = make_engine(tls_postgres.url("127.0.0.1", sslmode="disable"))
    try:
        with pytest.raises(OperationalError) as caught, engine.connect():
            pass
    finally:
        engine.dispose()
    assert PASSWORD not in str(caught.value)


def test_sslmode_verify_full_checks_the_certificate_and_the_host_name(tls_postgres: TlsPostgres) -> None:
    assert _uses_tls(tls_postgres.url("localhost", sslmode="verify-full", sslrootcert=str(tls_postgres.ca_file)))
    # The certificate names localhost, not 127.0.0.1: verify-full refuses it.
    engine = make_engine(tls_postgres.url("127.0.0.1", sslmode="verify-full", sslrootcert=str(tls_postgres.ca_file)))
    try:
        with pytest.raises(OperationalError) as caught, engine.connect():
            pass
    finally:
        engine.dispose()
    assert PASSWORD not in str(caught.value)
