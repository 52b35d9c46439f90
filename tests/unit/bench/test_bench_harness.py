"""The bench harness's own logic: its options, what it reads from its tools, and the RESULTS.md section it
writes (the measurements themselves are in bench/, never asserted here)."""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bench import __main__ as bench_main
from bench import cluster, power_sync
from bench.latency import Latency, Sent
from bench.report import (
    Bench,
    Durability,
    OpenLoop,
    PowerSync,
    PowerSyncPass,
    Run,
    Scenario,
    append_results,
)
from bench.service import Memory
from bench.wrk import WrkResult, WrkSettings

T0 = datetime(2026, 12, 2, 3, 0, 0)


def test_by_default_every_shape_and_scenario_runs() -> None:
    args = bench_main.parse_args([])
    assert args.shapes == ["embedded", "cluster", "power-sync"]
    assert args.scenarios == ["batch1", "batch100", "overload", "latency", "hello"]
    assert args.cluster_scenarios == ["batch1", "batch100", "latency"]
    assert (args.rate, args.batch, args.psync_servers, args.no_write) == (1000, 10, 10_000, False)


def test_scenarios_alone_choose_their_shape() -> None:
    assert bench_main.parse_args(["--scenarios", "batch1"]).shapes == ["embedded"]
    assert bench_main.parse_args(["--cluster-scenarios", "latency"]).shapes == ["cluster"]
    both = bench_main.parse_args(["--scenarios", "hello", "--cluster-scenarios", "batch1"])
    assert (both.shapes, both.scenarios, both.cluster_scenarios) == (["embedded", "cluster"], ["hello"], ["batch1"])
    assert bench_main.parse_args(["--scenarios", "batch1", "--shapes", "power-sync"]).shapes == ["power-sync"]


def test_one_shape_and_the_existing_flags() -> None:
    args = bench_main.parse_args(
        ["--shapes", "cluster", "--no-write", "--duration", "3", "--scenarios", "hello, batch1", "--connections", "4"]
    )
    assert args.shapes == ["cluster"]
    assert args.scenarios == ["batch1", "hello"]  # in the harness's order
    assert (args.no_write, args.duration, args.connections) == (True, 3.0, 4)


@pytest.mark.parametrize("argv", [["--shapes", "embedded,gpu"], ["--scenarios", "batch7"], ["--shapes", ","]])
def test_unknown_names_are_refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        bench_main.parse_args(argv)
    assert exited.value.code == 2
    assert "choose from" in capsys.readouterr().err


def test_the_test_services_variables_are_read_from_their_exports() -> None:
    output = (
        "export HERALD_TEST_PG_URL=postgresql+psycopg://h:h@127.0.0.1:55432/t\n"
        "export HERALD_TEST_KEYSTONE_URL=http://127.0.0.1:1/v3 HERALD_TEST_KEYSTONE_PASSWORD=x\n"
        "export HERALD_TEST_AMQP_URL=amqp://guest:guest@127.0.0.1:55672/\n"
    )
    found = cluster.parse_exports(output)
    assert found["HERALD_TEST_PG_URL"] == "postgresql+psycopg://h:h@127.0.0.1:55432/t"
    assert found["HERALD_TEST_AMQP_URL"] == "amqp://guest:guest@127.0.0.1:55672/"
    assert found["HERALD_TEST_KEYSTONE_PASSWORD"] == "x"


def test_the_power_sync_passes_are_read_from_its_json_line() -> None:
    line = '{"servers": 10000, "changed": 100, "database": "sqlite", "passes": [{"outcomes": 10000, "cpu_s": 0.25, '
    line += '"wall_s": 0.5}, {"outcomes": 10000, "cpu_s": 0.2, "wall_s": 0.4}]}'
    found = bench_main.parse_power_sync(f"first pass: ...\n{power_sync.JSON_PREFIX}{line}\n")
    assert found == PowerSync(
        10_000, 100, "sqlite", [PowerSyncPass(10_000, 0.25, 0.5), PowerSyncPass(10_000, 0.2, 0.4)]
    )
    with pytest.raises(ValueError, match="BENCH-JSON"):
        bench_main.parse_power_sync("nothing\n")


def test_latency_counts_finished_records_only() -> None:
    rows = [("handled", T0, T0 + timedelta(milliseconds=ms)) for ms in range(1, 101)]
    rows += [("dispatched", T0, None), ("expired", T0, T0 + timedelta(seconds=2))]
    latency = Latency.of(rows)
    assert (latency.rows, latency.finished) == (102, 101)
    assert (latency.p50_ms, latency.max_ms) == (51.0, 2000.0)
    assert latency.states == {"handled": 100, "dispatched": 1, "expired": 1}
    assert Latency.of([("accepted", T0, None)]).finished == 0


def _scenario(name: str, batch: int, events_per_s: float, rss_mb: float) -> Scenario:
    requests = int(events_per_s * 10 / max(batch, 1))
    result = WrkResult(requests, 10_000_000, requests * batch, 2000, 3000, 5000, 9000, 2500, statuses={200: requests})
    memory = Memory(int(rss_mb * 1024), int(rss_mb * 1024))
    return Scenario(name, batch, result, memory, 0.9, 0.1, 0.0, 8)


def _bench() -> Bench:
    settings = WrkSettings(duration=10, connections=8)
    embedded = Run(settings, 200, {"compute-1": 100, "compute-2": 100})
    embedded.scenarios = {
        "batch1": _scenario("batch1", 1, 3500, 79),
        "batch100": _scenario("batch100", 100, 15_000, 95),
    }
    embedded.durability = Durability(rows=50_000, accepted=50_000, in_flight=1616)
    embedded.record_latency = {"batch1": Latency(10, 10, 250.0, 900.0, 1000.0, {"expired": 10})}
    cluster_run = Run(settings, 30, {"compute-1": 10, "compute-2": 10, "compute-3": 10}, workers=2)
    cluster_run.scenarios = {"batch1": _scenario("batch1", 1, 900, 78)}
    cluster_run.worker_memory = {"batch1": [Memory(78 * 1024, 79 * 1024), Memory(77 * 1024, 77 * 1024)]}
    cluster_run.open_loop = OpenLoop(1000, 10, 10, Sent(1000, 10_000, 10.2, {200: 1000}), Latency.of([]), unfinished=0)
    return Bench(embedded, cluster_run, PowerSync(10_000, 100, "sqlite", [PowerSyncPass(10_000, 0.3, 0.6)]))


def test_one_dated_section_with_a_verdict_per_target(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text("# Herald benchmark results\n\nearlier sections\n")
    append_results(results, _bench())
    text = results.read_text()
    assert text.startswith("# Herald benchmark results\n\nearlier sections\n\n## ")
    assert text.count("\n## ") == 1
    for heading in ("### Embedded shape", "### Distributed shape (cluster)", "### Power sync"):
        assert heading in text
    assert "MISS batch 1 throughput no slower than today (side by side with Nova 34): 3,500" not in text
    assert "PASS batch 1 throughput no slower than today (side by side with Nova 34): 3,500 events/s" in text
    assert "MISS batch 100 throughput no slower than today (side by side with Nova 34): 15,000 events/s" in text
    assert "PASS API worker RSS (VmRSS) after batch1 traffic: 78 MB (target <= 80" in text
    assert "cluster POST→handled p99 at 1,000 events/s" in text
    assert "PASS power sync pass over 10,000 servers (sqlite), CPU: 0.3 s (target <= 1" in text
    assert "| batch1 | 10 | 10 | 250.0 | 900.0 | 1000.0 | expired: 10 |" in text


def test_a_shape_that_fails_is_a_problem_and_the_others_still_run() -> None:
    bench = bench_main.Bench()

    def broken() -> Run:
        raise RuntimeError("no RabbitMQ")

    assert bench_main._shape(bench, "cluster", broken) is None
    assert bench_main._shape(bench, "power sync", lambda: 42) == 42
    assert bench.all_problems() == ["the cluster shape failed: RuntimeError: no RabbitMQ"]


def test_choices_keep_the_harness_order() -> None:
    parse = bench_main._choices(("a", "b", "c"))
    assert parse("c,a") == ["a", "c"]
    with pytest.raises(argparse.ArgumentTypeError):
        parse("d")
