"""``python -m bench.cluster``: the distributed shape's POST→handled latency at a given event rate.

Starts the README's cluster recipe (``herald api --workers 2`` and one ``herald agent`` per host,
over the PostgreSQL and RabbitMQ that ``scripts/test-services`` runs: ``HERALD_TEST_PG_URL`` and
``HERALD_TEST_AMQP_URL``), boots servers, then sends ``power-update`` events at ``--rate`` events
per second (open loop: requests go out on schedule whether or not earlier ones were answered) in
requests of ``--batch`` events, and reads the latency of each event from its record
(``handled_at - accepted_at``), once every event is handled.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.e2e.stack.cluster import ADMIN, Cluster, boot_servers


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def _send(url: str, servers: list[str], *, rate: int, batch: int, duration: float) -> dict[int, int]:
    """Open-loop load: one request of ``batch`` events every ``batch / rate`` seconds."""
    statuses: dict[int, int] = {}
    headers = {**ADMIN, "OpenStack-API-Version": "compute 2.76"}
    interval = batch / rate
    requests = int(duration / interval)
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(headers=headers, timeout=60, limits=limits) as client:

        async def one(n: int) -> None:
            events = [
                {
                    "name": "power-update",
                    "server_uuid": servers[(n * batch + i) % len(servers)],
                    "tag": "POWER_OFF" if (n + i) % 2 else "POWER_ON",
                }
                for i in range(batch)
            ]
            response = await client.post(f"{url}/os-server-external-events", json={"events": events})
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        start = time.monotonic()
        tasks = []
        for n in range(requests):
            delay = start + n * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(n)))
        await asyncio.gather(*tasks)
    return statuses


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=int, default=1000, help="events per second")
    parser.add_argument("--batch", type=int, default=10, help="events per request")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load")
    parser.add_argument("--servers-per-host", type=int, default=10)
    parser.add_argument("--hosts", type=int, default=3)
    args = parser.parse_args(argv)
    database_url = os.environ.get("HERALD_TEST_PG_URL")
    transport_url = os.environ.get("HERALD_TEST_AMQP_URL")
    if not database_url or not transport_url:
        print("bench.cluster: run scripts/test-services first (HERALD_TEST_PG_URL, HERALD_TEST_AMQP_URL)")
        return 2
    engine = create_engine(database_url)
    schema = f"bench_{os.getpid()}"
    with engine.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    schema_url = (
        make_url(database_url)
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )
    with tempfile.TemporaryDirectory() as tmp:
        cluster = Cluster(Path(tmp), database_url=schema_url, transport_url=transport_url, hosts=args.hosts, fast=False)
        try:
            cluster.start()
            servers = boot_servers(cluster, args.servers_per_host)
            with engine.connect() as connection:
                (first_id,) = connection.execute(
                    text(f"SELECT COALESCE(MAX(id), 0) FROM {schema}.external_events")
                ).one()
            started = time.monotonic()
            statuses = asyncio.run(
                _send(cluster.url, servers, rate=args.rate, batch=args.batch, duration=args.duration)
            )
            sending = time.monotonic() - started
            unfinished = text(f"SELECT COUNT(*) FROM {schema}.external_events WHERE id > :first AND handled_at IS NULL")

            def finished() -> bool:
                with engine.connect() as connection:
                    return connection.execute(unfinished, {"first": first_id}).scalar_one() == 0

            cluster.wait_until(finished, what="every event handled", limit=600)
            with engine.connect() as connection:
                rows = connection.execute(
                    text(
                        f"SELECT EXTRACT(EPOCH FROM handled_at - accepted_at) FROM {schema}.external_events "
                        "WHERE id > :first"
                    ),
                    {"first": first_id},
                ).all()
        finally:
            cluster.stop()
            with engine.begin() as connection:
                connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    latencies = [float(row[0]) * 1000 for row in rows]
    print(
        f"cluster: {args.hosts} agents, 2 API workers, {len(servers)} servers; {args.rate} events/s in requests "
        f"of {args.batch} for {args.duration:g} s (sent in {sending:.1f} s); statuses {statuses}"
    )
    print(
        f"events handled: {len(latencies)}; POST->handled ms: p50 {statistics.median(latencies):.1f}, "
        f"p99 {_percentile(latencies, 0.99):.1f}, max {max(latencies):.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
