"""Sphinx configuration of parewire's documentation site.

Build (warnings are errors, as in CI): ``sphinx-build -W --keep-going -b html docs docs/_build/html``
or ``make docs``.  Pages are Markdown (MyST); the API reference comes from the docstrings (autodoc +
napoleon, Google style as in ``torch.nn.init``); the benchmark pages are generated at build time from
``benchmarks/results/`` so that no number is copied by hand.
"""

from __future__ import annotations

import importlib
import json
import pathlib
import re
import sys
from typing import Any

DOCS = pathlib.Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))  # the source tree's parewire (built in place), not an older install

import parewire  # noqa: E402

project = "parewire"
author = "parewire developers"
copyright = "parewire developers"
release = version = parewire.__version__

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.mathjax"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "README.draft.md"]
myst_enable_extensions = ["dollarmath", "deflist"]
myst_heading_anchors = 3  # [text](page.md#a-heading) links to headings
html_theme = "alabaster"
html_static_path: list[str] = []
html_theme_options = {"description": "Preferential-attachment rewiring of neural-network weights, in C"}

autodoc_member_order = "bysource"
autodoc_typehints = "description"  # types beside each argument, not in a long signature line
autodoc_default_options: dict[str, Any] = {}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_use_ivar = True  # "Attributes:" as fields of the class, not entries that clash with autodoc's

# -- generated pages ---------------------------------------------------------------------------
GENERATED = DOCS / "_generated"
RESULTS = ROOT / "benchmarks" / "results"


def _write(path: pathlib.Path, text: str) -> None:
    """Writes only when the text changed, so Sphinx does not rebuild pages that did not."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def _speed_page(results: pathlib.Path) -> str:
    """benchmarks/results/speed.json as a page, in bench_speed.py's own table format."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        bench = importlib.import_module("bench_speed")
    finally:
        sys.path.pop(0)
    data: dict[str, Any] = json.loads(results.read_text())
    m = data["machine"]
    rows = [bench.fmt_row(r) for r in data["shapes"]] + [""] + [bench.fmt_row(r) for r in data["models"]]
    workers = []
    for r in data["models"]:
        for s in ("fast", "numpy"):
            w1, w2 = r[s].get("workers1_wall_min_s"), r[s].get("workers2_wall_min_s")
            if w1 and w2:
                workers.append(f"| {r['label']} | {s} | {w1:.2f} | {w2:.2f} | {w1 / w2:.2f}x |")
    lines = [
        "# Speed",
        "",
        (
            f"Command: `{data['command']}` (one thread, float32, process CPU time, minimum of repeats); "
            f"{m['cpu']}, {m['logical_cpus']} logical CPUs, Python {m['python']}, numpy {m['numpy']}, "
            f"torch {m['torch']}, parewire {m['parewire']}.  Generated from `benchmarks/results/speed.json`; "
            "the columns are explained at the top of `benchmarks/bench_speed.py`."
        ),
        "",
        "```text",
        bench.HEADER,
        *rows,
        "```",
    ]
    if workers:
        lines += [
            "",
            "Whole-model wall time with `rewire_model(workers=1)` and `workers=2` (seconds, same run):",
            "",
            "| model | sampler | 1 worker | 2 workers | speed-up |",
            "|---|---|---:|---:|---:|",
            *workers,
        ]
    return "\n".join(lines) + "\n"


def _generate_results() -> None:
    """One page per benchmarks/results/*.md (included, not copied), and speed.json rendered."""
    out = GENERATED / "results"
    wanted = set()
    for md in sorted(RESULTS.glob("*.md")):
        rel = pathlib.Path("..", "..", "..", "benchmarks", "results", md.name).as_posix()
        _write(out / md.name, f"```{{include}} {rel}\n```\n")
        wanted.add(md.name)
    speed = RESULTS / "speed.json"
    if speed.exists() and not (RESULTS / "speed.md").exists():
        _write(out / "speed.md", _speed_page(speed))
        wanted.add("speed.md")
    for stale in out.glob("*.md"):
        if stale.name not in wanted:
            stale.unlink()


_generate_results()


# -- pages that arrive from other branches -----------------------------------------------------
# docs/distributed.md is written on the distributed branch.  Until it is merged, the toctree entry
# and the links to it are dropped here so the site still builds with warnings as errors; once the
# page exists this does nothing.
def _without_missing_pages(app: Any, docname: str, source: list[str]) -> None:
    if (DOCS / "distributed.md").exists():
        return
    text = source[0].replace("\ndistributed\n", "\n")
    source[0] = re.sub(r"\[([^\]]*)\]\(distributed\.md(#[^)]*)?\)", r"\1", text)


def setup(app: Any) -> None:
    app.connect("source-read", _without_missing_pages)
