"""What the benchmark scripts record about the machine and the code they ran."""

from __future__ import annotations

import json
import os
import pathlib
import platform
import subprocess
import sys
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


def machine(**extra: Any) -> dict[str, Any]:
    """The machine and versions a results file was measured with (plus ``extra``)."""
    import numpy as np
    import torch

    import parewire

    affinity = getattr(os, "sched_getaffinity", None)
    return {
        "cpu": cpu_name(),
        "cpus_available": len(affinity(0)) if affinity is not None else os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "parewire": parewire.__version__,
        "git_commit": git_commit(),
        "platform": platform.platform(),
        **extra,
    }


class ChildFailed(RuntimeError):
    """A child process of a benchmark exited non-zero; the message is its last line of stderr."""


def run_child(args: list[str]) -> dict[str, Any]:
    """Runs ``python <args>`` in a fresh interpreter with the source tree importable and returns the
    JSON object its last line of output prints; raises :class:`ChildFailed` if it fails."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), str(ROOT / "benchmarks"), env.get("PYTHONPATH")]))
    res = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise ChildFailed(res.stderr.strip().splitlines()[-1] if res.stderr.strip() else f"exit {res.returncode}")
    row: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
    return row


def dumps(data: dict[str, Any]) -> str:
    """JSON with one record per line: each top-level item on a line, and each element of a top-level
    list (or of a top-level dict of records) on a line of its own, so that a results file diffs by
    record and stays short."""

    def block(key: str, value: Any) -> str:
        head = json.dumps(key)
        if isinstance(value, list) and value:
            return f"{head}: [\n" + ",\n".join(" " + json.dumps(v) for v in value) + "\n]"
        if isinstance(value, dict) and value and all(isinstance(v, (dict, list)) for v in value.values()):
            return f"{head}: {{\n" + ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}" for k, v in value.items()) + "\n}"
        return f"{head}: {json.dumps(value)}"

    return "{\n" + ",\n".join(block(k, v) for k, v in data.items()) + "\n}\n"


def write_results(out_dir: str | pathlib.Path, stem: str, markdown: str, data: dict[str, Any]) -> None:
    """Writes ``<stem>.md`` and ``<stem>.json`` (one record per line, see :func:`dumps`) under
    ``out_dir`` (created if missing), and prints the markdown."""
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.md").write_text(markdown)
    (out / f"{stem}.json").write_text(dumps(data))
    print(markdown, end="")
