"""One power sync pass of an agent with many servers: its CPU time (and wall time).

    python -m bench.power_sync [--servers 10000] [--changed 100] [--database URL] [--profile FILE]

Creates ``--servers`` servers on one host (``compute-1``) with direct inserts, each with a fake
machine: ACTIVE servers whose machine runs, and ``--changed`` SHUTOFF servers whose machine now reports
CRASHED (the record follows the hypervisor: a write per changed server, no stop, no warning in the
log, so that the log's sink is not measured), builds the agent as ``herald serve`` does and
runs ``power_sync.sync_all()`` once: the code path of the periodic task. A second pass shows the
steady state (nothing changed). CPU time is the process's (every thread: the writer's too), which is
what counts: on a machine shared with other work the wall time is noisy.

Without ``--database`` a fresh SQLite file is used; for PostgreSQL give a URL (a fresh schema is
created and dropped, as the tests do), e.g. ``--database "$HERALD_TEST_PG_URL"``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import platform
import resource
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert
from sqlalchemy.engine import make_url

from herald import bootstrap
from herald.adapters.sql import migrate
from herald.adapters.sql.engine import make_engine
from herald.adapters.sql.tables import fake_machines, servers
from herald.config import Settings
from herald.domain.model import PowerState

HOST = "compute-1"
JSON_PREFIX = "BENCH-JSON "
CHUNK = 1000


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def _database(url: str | None) -> Iterator[str]:
    if url is None:
        with tempfile.TemporaryDirectory(prefix="herald-psync-") as tmp:
            yield f"sqlite:///{Path(tmp) / 'bench.sqlite'}"
        return
    if make_url(url).get_backend_name() != "postgresql":
        yield url
        return
    admin = make_engine(url)
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        yield (
            make_url(url)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


def _populate(engine: Engine, count: int, changed: int) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    uuids = [str(uuid.UUID(int=i + 1)) for i in range(count)]
    rows: list[dict[str, Any]] = [
        {
            "uuid": u,
            "name": f"vm-{i}",
            "project_id": "bench",
            "user_id": "bench",
            "flavor_id": "1",
            "image_ref": "70a599e0-31e7-49b7-b260-868f441e862b",
            "vm_state": "stopped" if i < changed else "active",
            "power_state": int(PowerState.SHUTDOWN if i < changed else PowerState.RUNNING),
            "task_state": None,
            "host": HOST,
            "node": HOST,
            "vifs": [],
            "volumes": [],
            "metadata": {},
            "created_at": now,
            "launched_at": now,
            "deleted": False,
            "tags": [],
            "scheduler_hints": {},
        }
        for i, u in enumerate(uuids)
    ]
    machines = [
        {"host": HOST, "server_uuid": u, "power_state": int(PowerState.CRASHED if i < changed else PowerState.RUNNING)}
        for i, u in enumerate(uuids)
    ]
    with engine.begin() as conn:
        for start in range(0, count, CHUNK):
            conn.execute(insert(servers), rows[start : start + CHUNK])
            conn.execute(insert(fake_machines), machines[start : start + CHUNK])


async def _passes(settings: Settings, profile: str | None) -> list[tuple[int, float, float]]:
    deps = bootstrap.build_embedded(settings)
    await bootstrap.start(deps)
    results = []
    try:
        sync = deps.agents[HOST].power_sync
        for number in range(2):
            profiler = cProfile.Profile() if profile and number == 0 else None
            cpu, wall = _cpu(), time.perf_counter()
            if profiler is not None:
                profiler.enable()
            outcomes = await sync.sync_all()
            if profiler is not None and profile:
                profiler.disable()
                profiler.dump_stats(profile)
            results.append((len(outcomes), _cpu() - cpu, time.perf_counter() - wall))
    finally:
        await bootstrap.stop(deps)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.power_sync", description=__doc__.partition("\n")[0])
    parser.add_argument("--servers", type=int, default=10_000)
    parser.add_argument("--changed", type=int, default=100, help="servers whose record must change (a write each)")
    parser.add_argument("--database", help="SQLAlchemy URL (default: a fresh SQLite file)")
    parser.add_argument("--profile", help="write a cProfile of the first pass to this file")
    parser.add_argument("--json", action="store_true", help="also print the passes as one JSON line (python -m bench)")
    args = parser.parse_args(argv)
    with _database(args.database) as url:
        migrate.upgrade(url)
        engine = make_engine(url)
        try:
            _populate(engine, args.servers, args.changed)
        finally:
            engine.dispose()
        settings = Settings(
            database_url=url,
            hosts=(HOST,),
            report_interval=3600,
            relay_interval=3600,
            sync_power_state_interval=-1,
            power_state_change_grace=0,
        )
        results = asyncio.run(_passes(settings, args.profile))
    backend = make_url(url).get_backend_name()
    print(f"power sync, {args.servers} servers on one host ({args.changed} changed), {backend}")
    print(f"machine: {platform.machine()}, Python {platform.python_version()}; shared machines make wall time noisy")
    for label, (outcomes, cpu, wall) in zip(("first pass", "second pass"), results, strict=True):
        print(f"{label:12s}: {outcomes} outcomes, CPU {cpu:.3f} s, wall {wall:.3f} s")
    if args.json:
        passes = [{"outcomes": outcomes, "cpu_s": cpu, "wall_s": wall} for outcomes, cpu, wall in results]
        print(
            JSON_PREFIX
            + json.dumps({"servers": args.servers, "changed": args.changed, "database": backend, "passes": passes})
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
