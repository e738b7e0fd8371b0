"""Sphinx configuration of parewire's documentation site.

Build (warnings are errors, as in CI): ``sphinx-build -W --keep-going -b html docs docs/_build/html``
or ``make docs``.  Pages are Markdown (MyST); the API reference comes from the docstrings (autodoc +
napoleon, Google style as in ``torch.nn.init``); the benchmark pages are generated at build time from
``benchmarks/results/`` so that no number is copied by hand.
"""

from __future__ import annotations

import pathlib
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
exclude_patterns = ["_build"]
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


def _generate_results() -> None:
    """One page per benchmarks/results/*.md, included (not copied); a page whose results do not open
    with a heading gets one from its file name, so that the toctree can link it."""
    out = GENERATED / "results"
    wanted = set()
    for md in sorted(RESULTS.glob("*.md")):
        rel = pathlib.Path("..", "..", "..", "benchmarks", "results", md.name).as_posix()
        title = "" if md.read_text().startswith("# ") else f"# {md.stem.replace('_', ' ').capitalize()}\n\n"
        _write(out / md.name, f"{title}```{{include}} {rel}\n```\n")
        wanted.add(md.name)
    for stale in out.glob("*.md"):
        if stale.name not in wanted:
            stale.unlink()


_generate_results()
