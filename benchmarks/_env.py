"""What the benchmark scripts record about the machine and the code they ran."""

from __future__ import annotations

import pathlib
import platform
import subprocess
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (platform.processor() elsewhere)."""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_commit() -> str:
    """HEAD, with "+local changes" if parewire/ or csrc/ differ from it (a shared checkout)."""
    try:
        run = lambda *a: subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout.strip()  # noqa: E731
        dirty = run("status", "--porcelain", "--", "parewire", "csrc")
        return run("rev-parse", "--short", "HEAD") + (" +local changes" if dirty else "")
    except OSError:
        return "?"


def run_in_pool(fn, tasks, workers: int, every: int, what: str = "tasks"):
    """``fn`` over ``tasks`` in ``workers`` spawned processes; results in completion
    order, with a progress line on stderr every ``every`` results.  Returns
    ``(results, wall seconds)``."""
    import multiprocessing as mp
    import sys
    import time

    t0 = time.perf_counter()
    done = []
    with mp.get_context("spawn").Pool(workers) as pool:
        for i, r in enumerate(pool.imap_unordered(fn, tasks), 1):
            done.append(r)
            if i % every == 0 or i == len(tasks):
                print(f"  {i}/{len(tasks)} {what}, {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return done, time.perf_counter() - t0


def write_results(out_dir: str | pathlib.Path, stem: str, markdown: str, data: dict[str, Any], indent: int = 1) -> None:
    """Writes ``<stem>.md`` and ``<stem>.json`` under ``out_dir`` (created if missing)."""
    import json

    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.md").write_text(markdown)
    (out / f"{stem}.json").write_text(json.dumps(data, indent=indent))
