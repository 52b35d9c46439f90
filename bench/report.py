"""Turn measurements into the result table, the target verdicts and a dated RESULTS.md section."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from bench.service import Memory
from bench.wrk import WrkResult, WrkSettings

RESULTS_HEADER = """# Herald benchmark results

Appended by `make bench` (`python -m bench`): one dated section per run, newest last.
Load: wrk on 127.0.0.1 against `herald serve` (embedded, SQLite) and a hello-world Starlette app on the same stack.
"""


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


@dataclass
class Run:
    """Everything one ``python -m bench`` measured."""

    settings: WrkSettings
    server_count: int
    hosts: dict[str, int]
    scenarios: dict[str, Scenario] = field(default_factory=dict)
    durability: Durability | None = None
    quiet_timeout: float = 60.0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _num(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}".rstrip("0").rstrip(".")


def table(run: Run) -> str:
    columns = ["scenario", "requests/s", "events/s", "p50 ms", "p99 ms", "RSS MB (peak)", "server CPU", "wrk CPU"]
    columns += ["rest CPU", "statuses"]
    rows = ["| " + " | ".join(columns) + " |", "|---|" + "---:|" * (len(columns) - 2) + "---|"]
    for scenario in run.scenarios.values():
        result, eps = scenario.result, scenario.events_per_s
        statuses = ", ".join(f"{code}: {n:,}" for code, n in sorted(result.statuses.items()))
        rows.append(
            f"| {scenario.name} | {result.requests_per_s:,.0f} | {'-' if eps is None else f'{eps:,.0f}'} "
            f"| {result.p50_us / 1000:.2f} | {result.p99_us / 1000:.2f} "
            f"| {scenario.memory.rss_mb:.1f} ({scenario.memory.hwm_mb:.1f}) "
            f"| {scenario.server_cpu:.0%} | {scenario.wrk_cpu:.0%} | {scenario.other_cpu:.0%} | {statuses} |"
        )
    return "\n".join(rows)


def verdicts(run: Run) -> list[Verdict]:
    found = run.scenarios
    lines: list[Verdict] = []
    batch1, batch100, hello = found.get("batch1"), found.get("batch100"), found.get("hello")
    if batch1:
        lines.append(Verdict("batch 1 throughput", batch1.result.accepted_per_s, ">=", 4000, "events/s"))
        lines.append(Verdict("batch 1 p99 latency", batch1.result.p99_us / 1000, "<=", 10, "ms"))
    if batch100:
        lines.append(Verdict("batch 100 throughput", batch100.result.accepted_per_s, ">=", 50_000, "events/s"))
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
    parts.extend(f"\n**PROBLEM**: {problem}" for problem in run.problems)
    parts.extend(f"\nNOTE: {note}" for note in run.notes)
    return "\n".join(parts)


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
    proc = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    return (proc.stdout or proc.stderr).split("Copyright")[0].strip()


def markdown_section(run: Run) -> str:
    info = machine()
    return "\n".join(
        [
            f"## {info['date']} — commit {info['commit']}",
            "",
            f"Machine: {info['cpus']} CPUs ({info['cpu']}), {info['ram']} RAM; Python {info['python']} "
            f"({sys.implementation.name}); {info['wrk']}.",
            "",
            text(run),
            "",
        ]
    )


def append_results(path: Path, run: Run) -> None:
    existing = path.read_text() if path.exists() else RESULTS_HEADER
    path.write_text(existing.rstrip("\n") + "\n\n" + markdown_section(run))
