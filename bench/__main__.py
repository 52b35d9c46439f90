"""``python -m bench``: load ``herald serve`` and a hello-world app with wrk; print and record the results."""

from __future__ import annotations

import argparse
import dataclasses
import sqlite3
import sys
import tempfile
from pathlib import Path

from bench import profile, report, servers, service, wrk
from bench.report import Durability, Run, Scenario

BATCHES = {"batch1": 1, "batch100": 100, "overload": 100}
SCENARIOS = (*BATCHES, "hello")
# Overload: 64 connections of batch 100, three times what the API commits (bench/RESULTS.md); one wrk
# thread per connection times each admitted request.
OVERLOAD = "overload"
OVERLOAD_CONNECTIONS = 64
# Admission control answers 503 (Retry-After, nothing recorded) when the agents fall behind: counted, not a failure.
EVENT_STATUSES = frozenset({*wrk.OK_STATUSES, 503})
WARMUP_S = 2.0
NOISE_CPU = 0.10  # of one core: other processes above this make the run's numbers suspect
HOSTS = "compute-1,compute-2"
ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"
PROFILE_DIR = ROOT / "bench" / "out"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of measured load per scenario")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (2 threads)")
    parser.add_argument("--servers", type=int, default=200, help="servers created as event targets")
    parser.add_argument(
        "--scenarios", type=_scenarios, default=list(SCENARIOS), help=f"comma-separated subset of {','.join(SCENARIOS)}"
    )
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
        help="after the measurements, one extra run per batch scenario under py-spy (bench/out/)",
    )
    return parser.parse_args(argv)


def _scenarios(value: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = sorted(set(names) - set(SCENARIOS))
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown scenario(s) {unknown}; choose from {','.join(SCENARIOS)}")
    return [name for name in SCENARIOS if name in names]


def wrk_settings(name: str, run: Run) -> wrk.WrkSettings:
    if name != OVERLOAD:
        return run.settings
    # NOTE: a generous wrk timeout: an admitted request may wait up to [api] commit_timeout (5 s).
    return dataclasses.replace(
        run.settings, connections=OVERLOAD_CONNECTIONS, threads=OVERLOAD_CONNECTIONS, timeout=15.0
    )


def measure(name: str, batch: int, script: Path, target: service.Service, run: Run) -> int:
    """A warm-up run, then the measured one (the harness only waits on wrk); returns events acknowledged by both."""
    own, rest = service.wait_quiet(target, threshold=NOISE_CPU, timeout=run.quiet_timeout)
    if max(own, rest) >= NOISE_CPU:
        print(f"  not idle ({target.name} {own:.0%}, rest {rest:.0%} of a core); measuring anyway", flush=True)
    settings = wrk_settings(name, run)
    allowed = EVENT_STATUSES if batch else wrk.OK_STATUSES
    warmup = wrk.run(script, target.base_url, dataclasses.replace(settings, duration=WARMUP_S))
    before = (target.cpu_seconds(), service.children_cpu_seconds(), service.machine_busy_seconds())
    result = wrk.run(script, target.base_url, settings)
    after = (target.cpu_seconds(), service.children_cpu_seconds(), service.machine_busy_seconds())
    server_cpu, wrk_cpu, busy = ((end - start) / result.seconds for start, end in zip(before, after, strict=True))
    other_cpu = max(0.0, busy - server_cpu - wrk_cpu)
    memory = target.memory()
    target.check_alive()
    for label, outcome in (("warm-up", warmup), ("measured", result)):
        if outcome.statuses_outside(allowed):
            run.problems.append(f"{name} {label}: unexpected statuses {outcome.statuses_outside(allowed)}")
        if outcome.socket_errors:
            run.problems.append(f"{name} {label}: socket errors {outcome.socket_errors}")
    if batch and name != OVERLOAD and result.statuses.get(503):
        run.notes.append(f"{name}: {result.statuses[503]:,} requests refused with 503 (admission control)")
    if other_cpu > NOISE_CPU:
        run.notes.append(f"{name}: the rest of the machine used {other_cpu:.0%} of a core during the run: noisy?")
    run.scenarios[name] = Scenario(name, batch, result, memory, server_cpu, wrk_cpu, other_cpu, settings.connections)
    print(f"  {name}: {result.requests_per_s:,.0f} req/s, p99 {result.p99_us / 1000:.2f} ms", flush=True)
    if result.admitted_n:
        print(f"  {name}: p99 of the {result.admitted_n:,} admitted {result.admitted_p99_us / 1000:.2f} ms", flush=True)
    return warmup.accepted + result.accepted


def count_events(database: Path) -> int:
    return sum(event_states(database).values())


def event_states(database: Path) -> dict[str, int]:
    """external_events rows per delivery state (accepted, dispatched, handled...)."""
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT state, count(*) FROM external_events GROUP BY state").fetchall()
    return {str(state): int(count) for state, count in rows}


def bench_herald(args: argparse.Namespace, run: Run, workdir: Path) -> None:
    """Servers, then each batch scenario against one ``herald serve``; SIGKILL it, then count the rows."""
    port = args.port or service.free_port()
    database = workdir / "bench.sqlite"
    argv = [str(args.herald), "serve", "--port", str(port), "--hosts", HOSTS, "--database", f"sqlite:///{database}"]
    api = service.start("herald", argv, port=port, log_dir=workdir)
    accepted = in_flight = 0
    try:
        print(f"herald pid {api.pid} on port {port}; creating {args.servers} servers", flush=True)
        uuids, hosts = servers.create_servers(api.base_url, args.servers)
        run.hosts = dict(hosts)
        baseline = count_events(database)
        for name in (name for name in args.scenarios if name in BATCHES):
            script = workdir / f"{name}.lua"
            script.write_text(wrk.events_script(name, uuids, BATCHES[name], time_admitted=name == OVERLOAD))
            accepted += measure(name, BATCHES[name], script, api, run)
            runs = 2
            if args.profile and name != OVERLOAD:
                accepted += profile_scenario(name, script, api, run)
                runs += 1
            in_flight += runs * wrk_settings(name, run).connections * BATCHES[name]
    except Exception:
        print(f"herald log tail:\n{api.log_tail()}", file=sys.stderr)
        raise
    finally:
        # NOTE: SIGKILL, not SIGTERM: every 200 must already be committed, with no flush at shutdown.
        service.stop(api, kill=True)
    states = event_states(database)
    run.durability = Durability(sum(states.values()) - baseline, accepted, in_flight=in_flight, states=states)


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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wrk.wrk_binary()
    settings = wrk.WrkSettings(duration=args.duration, connections=args.connections)
    run = Run(settings=settings, server_count=0, hosts={}, quiet_timeout=args.quiet_timeout)
    with tempfile.TemporaryDirectory(prefix="herald-bench-") as tmp:
        if any(name in BATCHES for name in args.scenarios):
            run.server_count = args.servers
            bench_herald(args, run, Path(tmp))
        if "hello" in args.scenarios:
            bench_hello(run, Path(tmp))
    print()
    print(report.text(run))
    if not args.no_write:
        report.append_results(RESULTS, run)
        print(f"\nappended to {RESULTS.relative_to(ROOT)}")
    durable = run.durability is None or all(verdict.passed for verdict in run.durability.verdicts())
    return 0 if durable and not run.problems else 1


if __name__ == "__main__":
    sys.exit(main())
