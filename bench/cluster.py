"""``python -m bench.cluster``: the distributed shape's POST→handled latency at a given event rate.

Starts the README's cluster recipe (``herald api --workers 2`` and one ``herald agent`` per host,
over the PostgreSQL and RabbitMQ that ``scripts/test-services`` runs: ``HERALD_TEST_PG_URL`` and
``HERALD_TEST_AMQP_URL``), boots servers, then sends ``power-update`` events at ``--rate`` events
per second (open loop: requests go out on schedule whether or not earlier ones were answered) in
requests of ``--batch`` events, and reads the latency of each event from its record
(``handled_at - accepted_at``), once every event is handled.

``python -m bench`` runs this too (:func:`bench_cluster`), and loads the API workers with wrk at
batch 1 and batch 100 on a second, fresh cluster, reading each worker's memory after each load.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from bench import latency, service, wrk
from bench.measure import WARMUP_S, measure, wait_idle
from bench.report import OpenLoop, Run
from tests.e2e.stack.cluster import Cluster, Command, boot_servers

ROOT = Path(__file__).resolve().parent.parent
TEST_SERVICES = ROOT / "scripts" / "test-services"
SERVICE_VARIABLES = ("HERALD_TEST_PG_URL", "HERALD_TEST_AMQP_URL")
BATCHES = {"batch1": 1, "batch100": 100}
LATENCY = "latency"
SCENARIOS = (*BATCHES, LATENCY)
WORKERS = 2  # the recipe's (Cluster starts two)
FINISH_TIMEOUT = 600.0


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    scenarios: list[str]
    hosts: int = 3
    servers_per_host: int = 10
    rate: int = 1000
    batch: int = 10
    duration: float = 10.0
    history: int = 200_000


class ClusterTarget:
    """The cluster's herald processes as one wrk target: the API workers' port, their memory (the
    larger worker's), and the CPU of the API workers, their supervisor and the agents."""

    name = "cluster"

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.cluster.port}"

    def worker_pids(self) -> list[int]:
        return self.cluster.api_workers()[-WORKERS:]

    def worker_memory(self) -> list[service.Memory]:
        return [service.read_memory(pid) for pid in self.worker_pids()]

    def memory(self) -> service.Memory:
        memories = self.worker_memory()
        return service.Memory(max(m.rss_kib for m in memories), max(m.hwm_kib for m in memories))

    def cpu_seconds(self) -> float:
        pids = [*self.worker_pids(), *(command.process.pid for command in self._commands())]
        return sum(service.read_cpu_seconds(pid) for pid in pids)

    def check_alive(self) -> None:
        for command in self._commands():
            if command.process.poll() is not None:
                raise service.ServiceError(f"{command.args[0]} exited; logs:\n{self.cluster.logs()}")

    def _commands(self) -> list[Command]:
        api = [self.cluster.api] if self.cluster.api else []
        return [*api, *self.cluster.agents.values()]


def service_urls() -> tuple[str, str]:
    """PostgreSQL's and RabbitMQ's URLs: from the environment (``eval "$(scripts/test-services)"``), or
    else from ``scripts/test-services`` itself, which starts them when they are not running."""
    if not all(os.environ.get(name) for name in SERVICE_VARIABLES):
        print("cluster: starting the test services (scripts/test-services)", flush=True)
        proc = subprocess.run([str(TEST_SERVICES)], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise service.ServiceError(f"scripts/test-services exited {proc.returncode}:\n{proc.stderr[-2000:]}")
        os.environ.update(parse_exports(proc.stdout))
    return os.environ["HERALD_TEST_PG_URL"], os.environ["HERALD_TEST_AMQP_URL"]


def parse_exports(output: str) -> dict[str, str]:
    """``export A=1 B=2`` lines (what scripts/test-services prints) as a dict."""
    found: dict[str, str] = {}
    for line in output.splitlines():
        words = line.split()
        if words[:1] == ["export"]:
            for word in words[1:]:
                name, sep, value = word.partition("=")
                if sep:
                    found[name] = value
    return found


@contextmanager
def bench_schema(database_url: str) -> Iterator[tuple[str, Engine]]:
    """A fresh schema (dropped after): its URL for the cluster, and an engine on it for the harness."""
    admin = create_engine(database_url)
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(database_url).update_query_dict({"options": f"-csearch_path={schema}"})
    engine = create_engine(url)
    try:
        yield url.render_as_string(hide_password=False), engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def running_cluster(workdir: Path, database_url: str, transport_url: str, hosts: int) -> Iterator[Cluster]:
    workdir.mkdir(parents=True, exist_ok=True)
    # NOTE: the README's configuration (fast=False): its heartbeat and relay intervals, not the fault tests'.
    cluster = Cluster(workdir, database_url=database_url, transport_url=transport_url, hosts=hosts, fast=False)
    try:
        cluster.start()
        yield cluster
    except BaseException:
        print(f"cluster logs:\n{cluster.logs()}", file=sys.stderr)
        raise
    finally:
        cluster.stop()


def seed_history(engine: Engine, servers: list[str], count: int) -> None:
    """``count`` handled events and instance actions of earlier days on ``servers``, then ANALYZE: the
    database of a cloud that has been running, whose statistics PostgreSQL's planner has."""
    if count > 0:
        params = {"servers": servers, "count": count}
        with engine.begin() as connection:
            connection.execute(_HISTORY_EVENTS, params)
            connection.execute(_HISTORY_ACTIONS, params)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("ANALYZE"))


_PICK_SERVER = "(CAST(:servers AS text[]))[1 + n % cardinality(CAST(:servers AS text[]))]"
_HISTORY_EVENTS = text(
    "INSERT INTO external_events (uuid, request_id, server_uuid, name, status, host, state, accepted_at,"
    " dispatched_at, handled_at, outcome)"
    f" SELECT gen_random_uuid()::text, 'req-history-' || n, {_PICK_SERVER}, 'power-update', 'completed',"
    " s.host, 'handled', now() - interval '1 day', now() - interval '1 day', now() - interval '1 day', 'history'"
    f" FROM generate_series(1, :count) AS n JOIN servers AS s ON s.uuid = {_PICK_SERVER}"
)
_HISTORY_ACTIONS = text(
    "INSERT INTO server_actions (server_uuid, action, request_id, start_time)"
    f" SELECT {_PICK_SERVER}, 'stop', 'req-history-' || n, now() - interval '1 day'"
    " FROM generate_series(1, :count) AS n"
)


def open_loop(
    target: ClusterTarget, engine: Engine, servers: list[str], settings: ClusterSettings, run: Run
) -> OpenLoop:
    """The open-loop run after a warm-up; waits until every event it got accepted is finished, then
    reads their records."""
    wait_idle(target, run)
    first, sent = asyncio.run(_after_warm_up(target, engine, servers, settings))
    left = latency.wait_finished(engine, first, timeout=FINISH_TIMEOUT, alive=target.check_alive)
    loop = OpenLoop(settings.rate, settings.batch, settings.duration, sent, latency.record_latency(engine, first), left)
    if set(sent.statuses) - {200}:
        run.problems.append(f"latency: statuses other than 200: {sent.statuses}")
    print(f"  {open_loop_summary(loop)}", flush=True)
    return loop


async def _after_warm_up(
    target: ClusterTarget, engine: Engine, servers: list[str], settings: ClusterSettings
) -> tuple[int, latency.Sent]:
    """A warm-up at the rate (pooled connections, prepared statements, caches; its events not
    counted), then the measured run at once, as one stream: the measured run starts in the steady
    state it measures, not in the wake of an idle pause. Returns the last event id before the
    measured run and what it sent."""

    def send(duration: float, first_request: int = 0) -> Coroutine[Any, Any, latency.Sent]:
        return latency.send_open_loop(
            target.base_url,
            servers,
            rate=settings.rate,
            batch=settings.batch,
            duration=duration,
            first_request=first_request,
        )

    warm_up = asyncio.create_task(send(WARMUP_S))
    await asyncio.sleep(WARMUP_S)
    first = await asyncio.to_thread(latency.max_event_id, engine)
    # NOTE: the warm-up's sequence goes on: each event still changes its server.
    sent = await send(settings.duration, latency.request_count(settings.rate, settings.batch, WARMUP_S))
    await warm_up
    return first, sent


def open_loop_summary(loop: OpenLoop) -> str:
    lat = loop.latency
    return (
        f"{loop.rate} events/s in requests of {loop.batch} for {loop.duration:g} s "
        f"(sent in {loop.sent.sending_seconds:.1f} s, answered after {loop.sent.seconds:.1f} s); "
        f"statuses {loop.sent.statuses}; {lat.finished} events handled; "
        f"POST->handled ms: p50 {lat.p50_ms:.1f}, p99 {lat.p99_ms:.1f}, max {lat.max_ms:.1f}"
    )


def throughput(target: ClusterTarget, servers: list[str], names: list[str], run: Run, workdir: Path) -> None:
    """wrk at each batch against the API workers; each worker's memory after start-up and after each load."""
    run.worker_memory["start-up"] = target.worker_memory()
    for name in names:
        script = workdir / f"cluster-{name}.lua"
        script.write_text(wrk.events_script(f"cluster-{name}", servers, BATCHES[name]))
        measure(name, BATCHES[name], script, target, run)
        run.worker_memory[name] = target.worker_memory()
        rss = ", ".join(f"{m.rss_mb:.1f}" for m in run.worker_memory[name])
        print(f"  API workers' VmRSS after {name}: {rss} MB", flush=True)


def bench_cluster(settings: ClusterSettings, run: Run, workdir: Path) -> None:
    """The latency run on one fresh cluster, the wrk loads on another (so that neither's backlog or
    memory is in the other's numbers)."""
    database_url, transport_url = service_urls()
    run.workers = WORKERS
    run.rest_is_services = True
    run.history = settings.history
    with bench_schema(database_url) as (schema_url, engine):
        if LATENCY in settings.scenarios:
            with running_cluster(workdir / "latency", schema_url, transport_url, settings.hosts) as cluster:
                servers = boot_servers(cluster, settings.servers_per_host)
                _count_servers(run, cluster, settings)
                seed_history(engine, servers, settings.history)
                print(f"cluster: {len(servers)} servers; latency at {settings.rate} events/s", flush=True)
                run.open_loop = open_loop(ClusterTarget(cluster), engine, servers, settings, run)
        names = [name for name in settings.scenarios if name in BATCHES]
        if names:
            with running_cluster(workdir / "wrk", schema_url, transport_url, settings.hosts) as cluster:
                servers = boot_servers(cluster, settings.servers_per_host)
                _count_servers(run, cluster, settings)
                seed_history(engine, servers, settings.history)
                print(f"cluster: {len(servers)} servers; wrk {', '.join(names)}", flush=True)
                throughput(ClusterTarget(cluster), servers, names, run, workdir)


def _count_servers(run: Run, cluster: Cluster, settings: ClusterSettings) -> None:
    run.server_count = len(cluster.hosts) * settings.servers_per_host
    run.hosts = {f"compute-{n}": settings.servers_per_host for n in range(1, len(cluster.hosts) + 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rate", type=int, default=1000, help="events per second")
    parser.add_argument("--batch", type=int, default=10, help="events per request")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load")
    parser.add_argument("--servers-per-host", type=int, default=10)
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument("--history", type=int, default=200_000, help="handled events already in the journal")
    args = parser.parse_args(argv)
    if not all(os.environ.get(name) for name in SERVICE_VARIABLES):
        print("bench.cluster: run scripts/test-services first (HERALD_TEST_PG_URL, HERALD_TEST_AMQP_URL)")
        return 2
    settings = ClusterSettings(
        [LATENCY], args.hosts, args.servers_per_host, args.rate, args.batch, args.duration, args.history
    )
    run = Run(settings=wrk.WrkSettings(duration=args.duration, connections=0), server_count=0, hosts={})
    with tempfile.TemporaryDirectory() as tmp:
        bench_cluster(settings, run, Path(tmp))
    assert run.open_loop is not None
    print(f"cluster: {args.hosts} agents, {WORKERS} API workers, {run.server_count} servers")
    print(open_loop_summary(run.open_loop))
    for problem in run.problems:
        print(f"PROBLEM: {problem}")
    return 1 if run.problems or run.open_loop.unfinished else 0


if __name__ == "__main__":
    sys.exit(main())
