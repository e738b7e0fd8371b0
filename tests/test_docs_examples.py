"""Every ```python example in README.md and docs/*.md runs.

Each page's blocks run in order in one namespace, in a temporary working
directory (examples may write files), with torch's RNG and parewire's layer
registry restored afterwards.  A block opts out with the line
``<!-- docs-test: skip: why -->`` right before its fence; the reason is
required and such blocks stay rare (a GPU, torchrun, a download).
docs/reports.md and docs/seeds.md are run by tests/test_report.py and
tests/test_seeding.py, which check what their examples produce as well.
"""

from __future__ import annotations

import pathlib

import pytest
from _helpers import ROOT, python_blocks, run_python_blocks

from parewire import _registry

DOCS = ROOT / "docs"
#: Pages whose examples another test runs (and checks further).
OWNED = {"reports.md": "tests/test_report.py", "seeds.md": "tests/test_seeding.py"}
#: Modules that the examples import and that the test requirements install; without one, skip.
OPTIONAL = {"torchvision", "timm", "transformers", "pandas", "matplotlib"}

PAGES = [ROOT / "README.md"] + sorted(p for p in DOCS.glob("*.md") if p.name not in OWNED)


def _id(page: pathlib.Path) -> str:
    return str(page.relative_to(ROOT))


@pytest.fixture
def clean_state(tmp_path, monkeypatch):
    """A scratch working directory, a headless matplotlib, and the layer registry as it was."""
    monkeypatch.chdir(tmp_path)
    try:
        import matplotlib

        matplotlib.use("Agg")
    except ImportError:
        pass
    with _registry._LOCK:
        rules = dict(_registry._RULES)
    yield
    with _registry._LOCK:
        _registry._RULES.clear()
        _registry._RULES.update(rules)
    if "matplotlib.pyplot" in __import__("sys").modules:
        import matplotlib.pyplot as plt

        plt.close("all")


@pytest.mark.parametrize("page", PAGES, ids=_id)
def test_python_examples_run(page, clean_state):
    blocks = python_blocks(page)
    if not blocks:
        pytest.skip(f"{_id(page)} has no python examples")
    try:
        run_python_blocks(page)
    except ModuleNotFoundError as e:
        if e.name not in OPTIONAL:
            raise
        pytest.skip(f"{e.name} is not installed")


def test_skip_markers_are_rare_and_give_a_reason():
    skipped = [b for page in PAGES + [DOCS / p for p in OWNED] for b in python_blocks(page) if b.skip is not None]
    for b in skipped:
        assert b.skip is not None and len(b.skip) >= 10, f"{b.page}:{b.line}: say why the block cannot run"
    assert len(skipped) <= 3, [f"{b.page.name}:{b.line}: {b.skip}" for b in skipped]


def test_a_marker_skips_only_the_next_block(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "text\n\n<!-- docs-test: skip: needs torchrun -->\n```python\nraise SystemExit\n```\n\n"
        "```python\nx = 1\n```\n\n```text\nnot python\n```\n\n```python\ny = x + 1\n```\n"
    )
    blocks = python_blocks(page)
    assert [(b.line, b.skip) for b in blocks] == [(5, "needs torchrun"), (9, None), (17, None)]
    assert run_python_blocks(page)["y"] == 2


def test_a_failing_example_points_at_its_line(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# title\n\n```python\nx = 1\nassert x == 2, 'wrong'\n```\n")
    with pytest.raises(AssertionError, match="wrong") as info:
        run_python_blocks(page)
    frame = info.traceback[-1]
    assert (pathlib.Path(str(frame.path)).name, frame.lineno + 1) == ("page.md", 5)
