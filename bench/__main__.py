"""``python -m bench``: measure both shapes and the power sync pass; print and record the results.

Embedded: wrk loads ``herald serve`` and a hello-world app; cluster: wrk loads the API workers of the
README's recipe, and an open-loop run measures POST→handled; power sync: one agent's pass over
10,000 servers (``bench.power_sync``, in a process of its own).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Engine, create_engine

from bench import cluster, latency, power_sync, profile, report, servers, service, wrk
from bench.measure import OVERLOAD, measure, wait_idle, wrk_settings
from bench.report import Bench, Durability, OpenLoop, PowerSync, PowerSyncPass, Run

BATCHES = {"batch1": 1, "batch100": 100, "overload": 100}
LATENCY = "latency"
SCENARIOS = (*BATCHES, LATENCY, "hello")
SHAPES = ("embedded", "cluster", "power-sync")
HOSTS = "compute-1,compute-2"
ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"
PROFILE_DIR = ROOT / "bench" / "out"
FINISH_TIMEOUT = 300.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--shapes",
        type=_choices(SHAPES),
        help=f"comma-separated subset of {','.join(SHAPES)} (default: every one, or the shapes whose scenarios are "
        "given with --scenarios / --cluster-scenarios)",
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of measured load per scenario")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (2 threads)")
    parser.add_argument("--servers", type=int, default=200, help="servers created as event targets (embedded)")
    parser.add_argument(
        "--scenarios",
        type=_choices(SCENARIOS),
        default=None,
        help=f"embedded scenarios: comma-separated subset of {','.join(SCENARIOS)}",
    )
    parser.add_argument(
        "--cluster-scenarios",
        type=_choices(cluster.SCENARIOS),
        default=None,
        help=f"cluster scenarios: comma-separated subset of {','.join(cluster.SCENARIOS)}",
    )
    parser.add_argument("--rate", type=int, default=1000, help="events/s of the open-loop latency runs")
    parser.add_argument("--batch", type=int, default=10, help="events per request of the open-loop latency runs")
    parser.add_argument("--hosts", type=int, default=3, help="cluster: agents (one per host)")
    parser.add_argument("--servers-per-host", type=int, default=10, help="cluster: servers booted on each host")
    parser.add_argument(
        "--history", type=int, default=200_000, help="cluster: handled events already in the journal before the loads"
    )
    parser.add_argument("--psync-servers", type=int, default=10_000, help="power sync: servers on the agent")
    parser.add_argument("--psync-changed", type=int, default=100, help="power sync: servers whose record changes")
    parser.add_argument("--psync-database", help="power sync: SQLAlchemy URL (default: a fresh SQLite file)")
    parser.add_argument("--port", type=int, default=0, help="herald's port (default: a free one)")
    parser.add_argument(
        "--herald", type=Path, default=Path(sys.executable).parent / "herald", help="the herald executable to serve"
    )
    parser.add_argument(
        "--quiet-timeout",
        type=float,
        default=60.0,
        help="seconds to wait, before each scenario, for the rest of the machine to go idle (shared machines)",
    )
    parser.add_argument("--no-write", action="store_true", help="do not append to bench/RESULTS.md")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="after the measurements, one extra run per embedded batch scenario under py-spy (bench/out/)",
    )
    args = parser.parse_args(argv)
    if args.shapes is None:
        # NOTE: `--scenarios batch1` alone measures that scenario alone, as before the other shapes came.
        chosen = [("embedded", args.scenarios), ("cluster", args.cluster_scenarios)]
        args.shapes = [shape for shape, given in chosen if given is not None] or list(SHAPES)
    args.scenarios = args.scenarios or list(SCENARIOS)
    args.cluster_scenarios = args.cluster_scenarios or list(cluster.SCENARIOS)
    return args


def _choices(allowed: tuple[str, ...]) -> Callable[[str], list[str]]:
    def parse(value: str) -> list[str]:
        names = [name.strip() for name in value.split(",") if name.strip()]
        unknown = sorted(set(names) - set(allowed))
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"unknown name(s) {unknown}; choose from {','.join(allowed)}")
        return [name for name in allowed if name in names]

    return parse


def count_events(database: Path) -> int:
    return sum(event_states(database).values())


def event_states(database: Path) -> dict[str, int]:
    """external_events rows per delivery state (accepted, dispatched, handled...)."""
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT state, count(*) FROM external_events GROUP BY state").fetchall()
    return {str(state): int(count) for state, count in rows}


def bench_herald(args: argparse.Namespace, run: Run, workdir: Path) -> None:
    """Servers, then each batch scenario and the open-loop run against one ``herald serve``; SIGKILL it,
    then count the rows and read the latency of the measured runs' records."""
    port = args.port or service.free_port()
    database = workdir / "bench.sqlite"
    argv = [str(args.herald), "serve", "--port", str(port), "--hosts", HOSTS, "--database", f"sqlite:///{database}"]
    api = service.start("herald", argv, port=port, log_dir=workdir)
    engine = create_engine(f"sqlite:///{database}")
    accepted = in_flight = 0
    try:
        print(f"herald pid {api.pid} on port {port}; creating {args.servers} servers", flush=True)
        uuids, hosts = servers.create_servers(api.base_url, args.servers)
        run.hosts = dict(hosts)
        baseline = count_events(database)
        for name in (name for name in args.scenarios if name in BATCHES):
            script = workdir / f"{name}.lua"
            script.write_text(wrk.events_script(name, uuids, BATCHES[name], time_admitted=name == OVERLOAD))
            accepted += measure(
                name, BATCHES[name], script, api, run, last_event_id=lambda: latency.max_event_id(engine)
            )
            runs = 2
            if args.profile and name != OVERLOAD:
                accepted += profile_scenario(name, script, api, run)
                runs += 1
            in_flight += runs * wrk_settings(name, run).connections * BATCHES[name]
        if LATENCY in args.scenarios:
            run.open_loop = open_loop(args, api, engine, uuids, run)
            accepted += run.open_loop.sent.events_accepted
    except Exception:
        print(f"herald log tail:\n{api.log_tail()}", file=sys.stderr)
        raise
    finally:
        # NOTE: SIGKILL, not SIGTERM: every 200 must already be committed, with no flush at shutdown.
        service.stop(api, kill=True)
    states = event_states(database)
    run.durability = Durability(sum(states.values()) - baseline, accepted, in_flight=in_flight, states=states)
    for name, scenario in run.scenarios.items():
        if scenario.event_ids and name in BATCHES:
            run.record_latency[name] = latency.record_latency(engine, *scenario.event_ids)
    engine.dispose()


def open_loop(args: argparse.Namespace, api: service.Service, engine: Engine, uuids: list[str], run: Run) -> OpenLoop:
    """power-update events open loop, as the cluster's latency run; waits until their records are finished."""
    wait_idle(api, run)
    first = latency.max_event_id(engine)
    sent = asyncio.run(
        latency.send_open_loop(api.base_url, uuids, rate=args.rate, batch=args.batch, duration=args.duration)
    )
    left = latency.wait_finished(engine, first, timeout=FINISH_TIMEOUT, alive=api.check_alive)
    loop = OpenLoop(args.rate, args.batch, args.duration, sent, latency.record_latency(engine, first), left)
    if set(sent.statuses) - {200, 503}:
        run.problems.append(f"{LATENCY}: unexpected statuses {sent.statuses}")
    print(f"  {LATENCY}: {cluster.open_loop_summary(loop)}", flush=True)
    return loop


def profile_scenario(name: str, script: Path, api: service.Service, run: Run) -> int:
    PROFILE_DIR.mkdir(exist_ok=True)
    raw = PROFILE_DIR / f"profile-{name}.txt"
    result, summary = profile.profile_load(api.pid, script, api.base_url, run.settings, raw)
    (PROFILE_DIR / f"profile-{name}.summary.txt").write_text(summary + "\n")
    if result.bad_statuses or result.socket_errors:
        run.problems.append(f"{name} under py-spy: statuses {result.statuses}, socket errors {result.socket_errors}")
    print(f"  {name} under py-spy: {result.requests_per_s:,.0f} req/s; stacks in {raw}\n{summary}", flush=True)
    return result.accepted


def bench_hello(run: Run, workdir: Path) -> None:
    port = service.free_port()
    argv = [sys.executable, "-m", "bench.hello_app", "--port", str(port)]
    hello = service.start("hello", argv, port=port, log_dir=workdir)
    try:
        script = workdir / "hello.lua"
        script.write_text(wrk.get_script("hello"))
        measure("hello", 0, script, hello, run)
    finally:
        service.stop(hello)


def bench_embedded(args: argparse.Namespace, settings: wrk.WrkSettings, workdir: Path) -> Run:
    print("== embedded shape", flush=True)
    run = Run(settings=settings, server_count=0, hosts={}, quiet_timeout=args.quiet_timeout)
    if any(name in BATCHES or name == LATENCY for name in args.scenarios):
        run.server_count = args.servers
        bench_herald(args, run, workdir)
    if "hello" in args.scenarios:
        bench_hello(run, workdir)
    return run


def bench_cluster(args: argparse.Namespace, settings: wrk.WrkSettings, workdir: Path) -> Run:
    print("== distributed shape (cluster)", flush=True)
    run = Run(settings=settings, server_count=0, hosts={}, quiet_timeout=args.quiet_timeout)
    cluster_settings = cluster.ClusterSettings(
        args.cluster_scenarios, args.hosts, args.servers_per_host, args.rate, args.batch, args.duration, args.history
    )
    cluster.bench_cluster(cluster_settings, run, workdir / "cluster")
    return run


def bench_power_sync(args: argparse.Namespace) -> PowerSync:
    """``bench.power_sync`` in a process of its own, so that its CPU time is the pass's alone."""
    print("== power sync", flush=True)
    argv = [sys.executable, "-m", "bench.power_sync", "--json", "--servers", str(args.psync_servers)]
    argv += ["--changed", str(args.psync_changed)]
    if args.psync_database:
        argv += ["--database", args.psync_database]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=ROOT, timeout=1800)
    print(proc.stdout, end="", flush=True)
    if proc.returncode != 0:
        raise service.ServiceError(f"bench.power_sync exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return parse_power_sync(proc.stdout)


def parse_power_sync(output: str) -> PowerSync:
    for line in output.splitlines():
        if line.startswith(power_sync.JSON_PREFIX):
            found = json.loads(line[len(power_sync.JSON_PREFIX) :])
            passes = [PowerSyncPass(p["outcomes"], p["cpu_s"], p["wall_s"]) for p in found["passes"]]
            return PowerSync(found["servers"], found["changed"], found["database"], passes)
    raise ValueError(f"no {power_sync.JSON_PREFIX.strip()} line in bench.power_sync's output")


T = TypeVar("T")


def _shape(bench: Bench, name: str, measure_shape: Callable[[], T]) -> T | None:
    """One shape's measurements; a failure is recorded as a problem and the other shapes still run."""
    try:
        return measure_shape()
    except Exception as exc:
        traceback.print_exc()
        bench.problems.append(f"the {name} shape failed: {type(exc).__name__}: {str(exc)[:500]}")
        return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    uses_wrk = ("embedded" in args.shapes and set(args.scenarios) - {LATENCY}) or (
        "cluster" in args.shapes and set(args.cluster_scenarios) & set(cluster.BATCHES)
    )
    if uses_wrk:
        wrk.wrk_binary()
    settings = wrk.WrkSettings(duration=args.duration, connections=args.connections)
    bench = Bench()
    with tempfile.TemporaryDirectory(prefix="herald-bench-") as tmp:
        if "embedded" in args.shapes:
            bench.embedded = _shape(bench, "embedded", lambda: bench_embedded(args, settings, Path(tmp)))
        if "cluster" in args.shapes:
            bench.cluster = _shape(bench, "cluster", lambda: bench_cluster(args, settings, Path(tmp)))
        if "power-sync" in args.shapes:
            bench.power_sync = _shape(bench, "power sync", lambda: bench_power_sync(args))
    print()
    print(report.bench_text(bench))
    if not args.no_write:
        report.append_results(RESULTS, bench)
        print(f"\nappended to {RESULTS.relative_to(ROOT)}")
    durability = bench.embedded.durability if bench.embedded else None
    durable = durability is None or all(verdict.passed for verdict in durability.verdicts())
    return 0 if durable and not bench.all_problems() else 1


if __name__ == "__main__":
    sys.exit(main())
