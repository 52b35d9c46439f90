"""Turn measurements into the result table, the target verdicts and a dated RESULTS.md section."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from bench.latency import Latency, Sent
from bench.service import Memory
from bench.wrk import WrkResult, WrkSettings

RESULTS_HEADER = """# Herald benchmark results

Appended by `make bench` (`python -m bench`): one dated section per run, newest last.
Load: wrk on 127.0.0.1 against `herald serve` (embedded, SQLite), a hello-world Starlette app on the same stack
and the cluster's API workers; open-loop power-update events for POST→handled; the power sync pass (bench/README.md).
"""

# The embedded shape's throughput measured side by side with Nova 34 (the "no slower than today").
TODAY_BATCH1_EPS = 3426
TODAY_BATCH100_EPS = 15_739
CLUSTER_P99_MS = 25
CLUSTER_TARGET_RATE = 1000
WORKER_RSS_MB = 80
POWER_SYNC_CPU_S = 1.0
POWER_SYNC_SERVERS = 10_000


@dataclass(frozen=True, slots=True)
class Scenario:
    """One measured load: what wrk saw and the server's memory right after it."""

    name: str
    batch: int
    result: WrkResult
    memory: Memory
    server_cpu: float
    wrk_cpu: float
    other_cpu: float
    connections: int = 0
    event_ids: tuple[int, int] | None = None  # journal ids the measured run took: (first, last]

    @property
    def events_per_s(self) -> float | None:
        return self.result.accepted_per_s if self.batch else None


@dataclass(frozen=True, slots=True)
class Verdict:
    """A target line: PASS when ``measured op target`` holds; the margin says by how much."""

    name: str
    measured: float
    op: Literal[">=", "<=", "=="]
    target: float
    unit: str

    @property
    def passed(self) -> bool:
        if self.op == ">=":
            return self.measured >= self.target
        if self.op == "<=":
            return self.measured <= self.target
        return self.measured == self.target

    @property
    def margin(self) -> str:
        """Relative to the target; absolute when the target is 0 or exact; "N x the target" for a ceiling blown."""
        if self.op == "==" or not self.target:
            return f"{self.target - self.measured:+,.0f}" if self.op != ">=" else f"{self.measured:+,.0f}"
        if self.op == "<=" and self.measured > 2 * self.target:
            return f"{self.measured / self.target:.1f} x the target"
        ratio = self.measured / self.target - 1 if self.op == ">=" else 1 - self.measured / self.target
        return f"{ratio:+.0%}"

    def line(self) -> str:
        return (
            f"{'PASS' if self.passed else 'MISS'} {self.name}: {_num(self.measured)} {self.unit} "
            f"(target {self.op} {_num(self.target)}, margin {self.margin})"
        )


@dataclass(frozen=True, slots=True)
class Durability:
    """external_events rows found after the API was SIGKILLed vs events it answered 200 for.

    Rows may exceed the acknowledged events by what was in flight when each wrk run stopped (wrk drops those
    responses), at most ``in_flight`` events; an acknowledged event without its row is a lost event.
    """

    rows: int
    accepted: int
    in_flight: int
    states: dict[str, int] = field(default_factory=dict)

    def verdicts(self) -> list[Verdict]:
        lost = max(0, self.accepted - self.rows)
        extra = max(0, self.rows - self.accepted)
        return [
            Verdict("acknowledged events missing after SIGKILL", lost, "==", 0, "events"),
            Verdict("unacknowledged extra rows (in flight at wrk stop)", extra, "<=", self.in_flight, "rows"),
        ]


@dataclass(frozen=True, slots=True)
class OpenLoop:
    """An open-loop run of power-update events and the POST→handled latency of their records."""

    rate: int
    batch: int
    duration: float
    sent: Sent
    latency: Latency
    unfinished: int = 0  # records still not finished when the harness stopped waiting


@dataclass
class Run:
    """Everything one shape measured under wrk (the embedded one, or the cluster's API workers)."""

    settings: WrkSettings
    server_count: int
    hosts: dict[str, int]
    scenarios: dict[str, Scenario] = field(default_factory=dict)
    durability: Durability | None = None
    quiet_timeout: float = 60.0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # POST→finished of the records of each measured wrk run, by scenario name.
    record_latency: dict[str, Latency] = field(default_factory=dict)
    open_loop: OpenLoop | None = None
    # Cluster: VmRSS of each API worker after start-up and after each scenario's load.
    worker_memory: dict[str, list[Memory]] = field(default_factory=dict)
    workers: int = 0
    # The cluster: PostgreSQL and RabbitMQ work for the target but count in "rest", which is then no sign of noise.
    rest_is_services: bool = False
    # The cluster: handled events (and instance actions) of earlier days in the database before the loads.
    history: int = 0


@dataclass(frozen=True, slots=True)
class PowerSyncPass:
    outcomes: int
    cpu_s: float
    wall_s: float


@dataclass(frozen=True, slots=True)
class PowerSync:
    """``bench.power_sync``: one agent's power sync passes over many servers."""

    servers: int
    changed: int
    database: str
    passes: list[PowerSyncPass]


@dataclass
class Bench:
    """What one ``python -m bench`` measured, shape by shape (None: not run)."""

    embedded: Run | None = None
    cluster: Run | None = None
    power_sync: PowerSync | None = None
    problems: list[str] = field(default_factory=list)

    def all_problems(self) -> list[str]:
        runs = [run for run in (self.embedded, self.cluster) if run is not None]
        return [*self.problems, *(problem for run in runs for problem in run.problems)]


def _num(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}".rstrip("0").rstrip(".")


def table(run: Run) -> str:
    return scenario_table(run.scenarios.values())


def scenario_table(scenarios: Iterable[Scenario]) -> str:
    columns = ["scenario", "requests/s", "events/s", "p50 ms", "p99 ms", "RSS MB (peak)", "server CPU", "wrk CPU"]
    columns += ["rest CPU", "statuses"]
    rows = ["| " + " | ".join(columns) + " |", "|---|" + "---:|" * (len(columns) - 2) + "---|"]
    for scenario in scenarios:
        result, eps = scenario.result, scenario.events_per_s
        statuses = ", ".join(f"{code}: {n:,}" for code, n in sorted(result.statuses.items()))
        rows.append(
            f"| {scenario.name} | {result.requests_per_s:,.0f} | {'-' if eps is None else f'{eps:,.0f}'} "
            f"| {result.p50_us / 1000:.2f} | {result.p99_us / 1000:.2f} "
            f"| {scenario.memory.rss_mb:.1f} ({scenario.memory.hwm_mb:.1f}) "
            f"| {scenario.server_cpu:.0%} | {scenario.wrk_cpu:.0%} | {scenario.other_cpu:.0%} | {statuses} |"
        )
    return "\n".join(rows)


def latency_table(latencies: dict[str, Latency]) -> str:
    """POST→finished of each measured run's records, with their states."""
    rows = [
        "| records of | rows | finished | p50 ms | p99 ms | max ms | states |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, lat in latencies.items():
        states = ", ".join(f"{state}: {n:,}" for state, n in sorted(lat.states.items()))
        rows.append(
            f"| {name} | {lat.rows:,} | {lat.finished:,} | {lat.p50_ms:.1f} | {lat.p99_ms:.1f} | {lat.max_ms:.1f} "
            f"| {states} |"
        )
    return "\n".join(rows)


def open_loop_text(label: str, loop: OpenLoop) -> str:
    sent, lat = loop.sent, loop.latency
    statuses = ", ".join(f"{code}: {n:,}" for code, n in sorted(sent.statuses.items()))
    late = sent.sending_seconds > 1.1 * loop.duration
    sending = f"sent in {sent.sending_seconds:.1f} s" + (" (the client could not keep the schedule)" if late else "")
    text = (
        f"{label}: power-update events open loop at {loop.rate:,} events/s in requests of {loop.batch} for "
        f"{loop.duration:g} s, {sending}, all answered after {sent.seconds:.1f} s; statuses {statuses}; "
        f"{lat.finished:,} of {lat.rows:,} records finished; POST→handled (the records' handled_at - accepted_at) "
        f"p50 {lat.p50_ms:.1f} ms, p99 {lat.p99_ms:.1f} ms, max {lat.max_ms:.1f} ms."
    )
    if loop.unfinished:
        text += f" **{loop.unfinished:,} records were still not finished** when the harness stopped waiting."
    return text


def verdicts(run: Run) -> list[Verdict]:
    found = run.scenarios
    lines: list[Verdict] = []
    batch1, batch100, hello = found.get("batch1"), found.get("batch100"), found.get("hello")
    if batch1:
        lines.append(Verdict("batch 1 throughput", batch1.result.accepted_per_s, ">=", 4000, "events/s"))
        lines.append(Verdict("batch 1 p99 latency", batch1.result.p99_us / 1000, "<=", 10, "ms"))
    if batch100:
        lines.append(Verdict("batch 100 throughput", batch100.result.accepted_per_s, ">=", 50_000, "events/s"))
    today = "throughput no slower than today (side by side with Nova 34)"
    if batch1:
        lines.append(Verdict(f"batch 1 {today}", batch1.result.accepted_per_s, ">=", TODAY_BATCH1_EPS, "events/s"))
    if batch100:
        eps = batch100.result.accepted_per_s
        lines.append(Verdict(f"batch 100 {today}", eps, ">=", TODAY_BATCH100_EPS, "events/s"))
    if batch1 and hello:
        ratio = 100 * batch1.result.accepted_per_s / hello.result.requests_per_s
        lines.append(Verdict("batch 1 events/s / hello-world req/s", ratio, ">=", 50, "%"))
    api = [s.memory.hwm_mb for name, s in found.items() if name not in ("hello", "overload")]
    if api:
        lines.append(Verdict("API peak RSS (VmHWM)", max(api), "<=", 80, "MB"))
    overload = found.get("overload")
    if overload:
        lines.append(Verdict("overload peak RSS (VmHWM)", overload.memory.hwm_mb, "<=", 150, "MB"))
        admitted_p99 = overload.result.admitted_p99_us / 1000
        lines.append(Verdict("overload p99 of the admitted requests", admitted_p99, "<=", 1000, "ms"))
    if run.durability:
        lines.extend(run.durability.verdicts())
    return lines


def text(run: Run) -> str:
    s = run.settings
    parts = [
        f"wrk: {s.threads} threads, {s.connections} connections, {s.duration:g} s per scenario after a warm-up; "
        f"{run.server_count} servers ({', '.join(f'{h}: {n}' for h, n in sorted(run.hosts.items())) or 'none'})",
        "CPU columns: CPU time over wall time during the measured run (100% = one core of the machine's "
        f"{len(os.sched_getaffinity(0))}); rest = the rest of the machine: other processes and kernel threads.",
        "",
        table(run),
        "",
        *(f"- {verdict.line()}" for verdict in verdicts(run)),
    ]
    overload = run.scenarios.get("overload")
    if overload:
        result = overload.result
        refused = result.statuses.get(503, 0)
        parts.append(
            f"\nOverload ({overload.connections} connections, batch 100, one wrk thread each): "
            f"{result.admitted_n:,} requests admitted (p50 {result.admitted_p50_us / 1000:.2f} ms, "
            f"p99 {result.admitted_p99_us / 1000:.2f} ms), {refused:,} refused with 503; "
            f"the p99 column covers both. wrk ignores Retry-After and sends again at once."
        )
    if run.durability:
        parts.append(
            f"\nDurability: {run.durability.rows:,} new `external_events` rows after SIGKILL of the API; "
            f"{run.durability.accepted:,} events accepted over all runs (warm-ups included). "
            f"Rows by delivery state: {', '.join(f'{k}: {n:,}' for k, n in sorted(run.durability.states.items()))}."
        )
    if run.record_latency:
        parts += [
            "",
            "POST→finished from the event records of each measured wrk run (handled_at - accepted_at). The wrk "
            "events are `network-vif-plugged` for ports nobody waits for: their agent keeps each one in the "
            "early-event buffer and records it `expired` when it is pushed out, so these times are how long "
            "an event stays in that buffer, not how long its handling took; rows still `dispatched` at the "
            "SIGKILL were in the buffer then. The open-loop line below measures handling.",
            "",
            latency_table(run.record_latency),
        ]
    if run.open_loop:
        parts.append("\n" + open_loop_text("POST→handled", run.open_loop))
    parts.extend(f"\n**PROBLEM**: {problem}" for problem in run.problems)
    parts.extend(f"\nNOTE: {note}" for note in run.notes)
    return "\n".join(parts)


def worker_memory_table(run: Run) -> str:
    rows = ["| API workers' VmRSS (VmHWM) MB | " + " | ".join(f"worker {n + 1}" for n in range(run.workers)) + " |"]
    rows.append("|---|" + "---:|" * run.workers)
    for moment, memories in run.worker_memory.items():
        cells = " | ".join(f"{m.rss_mb:.1f} ({m.hwm_mb:.1f})" for m in memories)
        rows.append(f"| after {moment} | {cells} |")
    return "\n".join(rows)


def cluster_verdicts(run: Run) -> list[Verdict]:
    lines: list[Verdict] = []
    loop = run.open_loop
    if loop:
        lines.append(
            Verdict(
                f"cluster POST→handled p99 at {loop.rate:,} events/s", loop.latency.p99_ms, "<=", CLUSTER_P99_MS, "ms"
            )
        )
        lines.append(Verdict("cluster events not finished", loop.unfinished, "==", 0, "events"))
    for moment in ("batch1", "batch100"):
        memories = run.worker_memory.get(moment)
        if memories:
            worst = max(m.rss_mb for m in memories)
            lines.append(Verdict(f"API worker RSS (VmRSS) after {moment} traffic", worst, "<=", WORKER_RSS_MB, "MB"))
    return lines


def cluster_text(run: Run) -> str:
    s = run.settings
    parts = [
        f"The README's cluster recipe: `herald api --workers {run.workers}` and one `herald agent` per host "
        f"({', '.join(f'{h}: {n}' for h, n in sorted(run.hosts.items())) or 'no servers'}), PostgreSQL and "
        "RabbitMQ of `scripts/test-services` on the same machine.",
    ]
    if run.history:
        parts.append(
            f"Before the loads the journal holds {run.history:,} handled events and as many instance actions of "
            "earlier days, and PostgreSQL has analyzed the tables, as in a cloud that has been running: on empty "
            "tables its first plans are made for tiny tables and kept while they grow, until autovacuum next "
            "analyzes them (`--history 0` measures that first minute of a new deployment)."
        )
    if run.scenarios:
        parts += [
            f"wrk against the API workers: {s.threads} threads, {s.connections} connections, {s.duration:g} s per "
            "scenario after a warm-up; server CPU = the API workers and the agents (PostgreSQL and RabbitMQ are "
            "in rest); RSS = the larger API worker's.",
            "",
            table(run),
        ]
    if run.worker_memory:
        parts += ["", worker_memory_table(run)]
    if run.record_latency:
        parts += ["", latency_table(run.record_latency)]
    if run.open_loop:
        parts.append("\n" + open_loop_text("POST→handled (right after a 2 s warm-up at the same rate)", run.open_loop))
    parts.append("")
    parts.extend(f"- {verdict.line()}" for verdict in cluster_verdicts(run))
    parts.extend(f"\n**PROBLEM**: {problem}" for problem in run.problems)
    parts.extend(f"\nNOTE: {note}" for note in run.notes)
    return "\n".join(parts)


def power_sync_verdicts(result: PowerSync) -> list[Verdict]:
    if not result.passes:
        return []
    name = f"power sync pass over {result.servers:,} servers ({result.database}), CPU"
    return [Verdict(name, result.passes[0].cpu_s, "<=", POWER_SYNC_CPU_S, "s")]


def power_sync_text(result: PowerSync) -> str:
    passes = "; ".join(
        f"{label} pass: {p.outcomes:,} outcomes, CPU {p.cpu_s:.3f} s, wall {p.wall_s:.3f} s"
        for label, p in zip(("first", "second"), result.passes, strict=False)
    )
    return "\n".join(
        [
            f"`python -m bench.power_sync --servers {result.servers} --changed {result.changed}` ({result.database}): "
            f"{passes}. CPU = the whole process's (every thread); the wall time is noisy on a shared machine.",
            "",
            *(f"- {verdict.line()}" for verdict in power_sync_verdicts(result)),
        ]
    )


def all_verdicts(bench: Bench) -> list[Verdict]:
    lines: list[Verdict] = []
    if bench.embedded:
        lines += verdicts(bench.embedded)
    if bench.cluster:
        lines += cluster_verdicts(bench.cluster)
    if bench.power_sync:
        lines += power_sync_verdicts(bench.power_sync)
    return lines


def bench_text(bench: Bench) -> str:
    """Every shape that ran, each under its own heading."""
    parts: list[str] = []
    if bench.embedded:
        parts += ["### Embedded shape (`herald serve`, SQLite)", "", text(bench.embedded), ""]
    if bench.cluster:
        parts += ["### Distributed shape (cluster)", "", cluster_text(bench.cluster), ""]
    if bench.power_sync:
        parts += ["### Power sync", "", power_sync_text(bench.power_sync), ""]
    parts.extend(f"**PROBLEM**: {problem}\n" for problem in bench.problems)
    return "\n".join(parts).rstrip("\n")


def machine() -> dict[str, str]:
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "cpus": str(len(os.sched_getaffinity(0))),
        "cpu": _proc_field("/proc/cpuinfo", "model name") or platform.processor() or "unknown",
        "ram": f"{int(_proc_field('/proc/meminfo', 'MemTotal').split()[0]) / 1024 / 1024:.1f} GiB",
        "python": platform.python_version(),
        "commit": _commit(),
        "wrk": _wrk_version(),
    }


def _proc_field(path: str, key: str) -> str:
    for line in Path(path).read_text().splitlines():
        name, _, value = line.partition(":")
        if name.strip() == key:
            return value.strip()
    return ""


def _git(*args: str) -> str:
    proc = subprocess.run(["git", *args], capture_output=True, text=True, check=False, cwd=Path(__file__).parent)
    return proc.stdout.strip()


def _commit() -> str:
    commit = _git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + (" + uncommitted changes in src/" if _git("status", "--porcelain", "--", "../src") else "")


def _wrk_version() -> str:
    if shutil.which("wrk") is None:
        return "no wrk"
    proc = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    return (proc.stdout or proc.stderr).split("Copyright")[0].strip()


def markdown_section(bench: Bench) -> str:
    info = machine()
    return "\n".join(
        [
            f"## {info['date']} — commit {info['commit']}",
            "",
            f"Machine: {info['cpus']} CPUs ({info['cpu']}), {info['ram']} RAM; Python {info['python']} "
            f"({sys.implementation.name}); {info['wrk']}.",
            "",
            bench_text(bench),
            "",
        ]
    )


def append_results(path: Path, bench: Bench) -> None:
    existing = path.read_text() if path.exists() else RESULTS_HEADER
    path.write_text(existing.rstrip("\n") + "\n\n" + markdown_section(bench))
