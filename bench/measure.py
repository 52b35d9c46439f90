"""One measured wrk load against a target process (or set of processes), with its CPU and memory."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from bench import service, wrk
from bench.report import Run, Scenario

# Overload: 64 connections of batch 100, three times what the API commits (bench/RESULTS.md); one wrk
# thread per connection times each admitted request.
OVERLOAD = "overload"
OVERLOAD_CONNECTIONS = 64
# Admission control answers 503 (Retry-After, nothing recorded) when the agents fall behind: counted, not a failure.
EVENT_STATUSES = frozenset({*wrk.OK_STATUSES, 503})
WARMUP_S = 2.0
NOISE_CPU = 0.10  # of one core: other processes above this make the run's numbers suspect


def wrk_settings(name: str, run: Run) -> wrk.WrkSettings:
    if name != OVERLOAD:
        return run.settings
    # NOTE: a generous wrk timeout: an admitted request may wait up to [api] commit_timeout (5 s).
    return dataclasses.replace(
        run.settings, connections=OVERLOAD_CONNECTIONS, threads=OVERLOAD_CONNECTIONS, timeout=15.0
    )


def wait_idle(target: service.Target, run: Run) -> None:
    """Wait (up to ``run.quiet_timeout``) until the target and the rest of the machine are idle."""
    own, rest = service.wait_quiet(target, threshold=NOISE_CPU, timeout=run.quiet_timeout)
    if max(own, rest) >= NOISE_CPU:
        print(f"  not idle ({target.name} {own:.0%}, rest {rest:.0%} of a core); measuring anyway", flush=True)


def measure(
    name: str,
    batch: int,
    script: Path,
    target: service.Target,
    run: Run,
    *,
    last_event_id: Callable[[], int] | None = None,
) -> int:
    """A warm-up run, then the measured one (the harness only waits on wrk); returns the events acknowledged
    by both. The scenario lands in ``run.scenarios``, with the event ids the measured run took (from
    ``last_event_id``, the journal's highest id) when given."""
    wait_idle(target, run)
    settings = wrk_settings(name, run)
    allowed = EVENT_STATUSES if batch else wrk.OK_STATUSES
    warmup = wrk.run(script, target.base_url, dataclasses.replace(settings, duration=WARMUP_S))
    first_id = last_event_id() if last_event_id else None
    before = (target.cpu_seconds(), service.children_cpu_seconds(), service.machine_busy_seconds())
    result = wrk.run(script, target.base_url, settings)
    after = (target.cpu_seconds(), service.children_cpu_seconds(), service.machine_busy_seconds())
    ids = (first_id, last_event_id()) if last_event_id and first_id is not None else None
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
    if other_cpu > NOISE_CPU and not run.rest_is_services:
        run.notes.append(f"{name}: the rest of the machine used {other_cpu:.0%} of a core during the run: noisy?")
    run.scenarios[name] = Scenario(
        name, batch, result, memory, server_cpu, wrk_cpu, other_cpu, settings.connections, event_ids=ids
    )
    print(f"  {name}: {result.requests_per_s:,.0f} req/s, p99 {result.p99_us / 1000:.2f} ms", flush=True)
    if result.admitted_n:
        print(f"  {name}: p99 of the {result.admitted_n:,} admitted {result.admitted_p99_us / 1000:.2f} ms", flush=True)
    return warmup.accepted + result.accepted
