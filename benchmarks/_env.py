"""What the benchmark scripts record about the machine and the code they ran."""

from __future__ import annotations

import pathlib
import platform
import subprocess

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
