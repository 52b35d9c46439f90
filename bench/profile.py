"""Optional: sample the API process with py-spy under an extra (unmeasured) wrk run and summarize hot frames."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from bench import wrk

TOP = 20


class ProfileError(RuntimeError):
    """py-spy is missing or failed."""


def py_spy_binary() -> str:
    beside = Path(sys.executable).parent / "py-spy"
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if found is None:
        raise ProfileError("py-spy not found: .venv/bin/pip install py-spy")
    return found


def profile_load(
    pid: int, script: Path, url: str, settings: wrk.WrkSettings, output: Path
) -> tuple[wrk.WrkResult, str]:
    """Run wrk while py-spy samples ``pid``; returns wrk's result and a text summary (raw stacks in ``output``)."""
    argv = [
        py_spy_binary(),
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, int(settings.duration))),
        "--rate",
        "250",
        # NOTE: only the thread holding the GIL: the API is bound by one core of Python.
        "--gil",
        "--nonblocking",
        "--format",
        "raw",
        "--output",
        str(output),
    ]
    sampler = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    result = wrk.run(script, url, settings)
    _, stderr = sampler.communicate(timeout=settings.duration + 30)
    if sampler.returncode != 0 or not output.exists():
        raise ProfileError(f"py-spy exited {sampler.returncode}: {stderr.decode(errors='replace').strip()}")
    return result, summarize(output.read_text())


# Frames every request passes through; left out of the inclusive list so the application's own work shows.
PLUMBING = ("uvicorn/", "starlette/", "asyncio/")


def summarize(raw: str, top: int = TOP) -> str:
    """Top frames by self samples, by package, and by inclusive samples, from py-spy's collapsed stacks."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        frames = [_frame(frame) for frame in stack.split(";")]
        total += samples
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    if not total:
        return "no samples"
    packages: Counter[str] = Counter()
    for frame, n in own.items():
        packages[_package(frame)] += n
    application = Counter(
        {f: n for f, n in inclusive.items() if not (_package(f).startswith(PLUMBING) or f.startswith("<module>"))}
    )

    def block(title: str, counter: Counter[str]) -> list[str]:
        return [title, *(f"  {100 * n / total:5.1f}%  {frame}" for frame, n in counter.most_common(top))]

    return "\n".join(
        [
            f"{total} samples (non-idle)",
            *block("self time by frame:", own),
            *block("self time by package:", packages),
            *block("inclusive, without server plumbing (uvicorn, starlette, asyncio):", application),
        ]
    )


def _frame(frame: str) -> str:
    """``func (pkg/mod.py:123)`` -> ``func (pkg/mod.py)``: aggregate a function over its lines."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    return f"{name} ({path})" if path else name


def _package(frame: str) -> str:
    """``func (pkg/mod.py)`` -> ``pkg/`` (or the module for top-level ones)."""
    _, _, where = frame.partition(" (")
    path = where.rstrip(")")
    head, sep, _ = path.partition("/")
    return f"{head}/" if sep else (path or frame)
