"""The figure of a :class:`~parewire.report.RewireReport` (matplotlib, imported only here)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backend_bases import FigureCanvasBase
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from .report import ParameterRecord, PathLike

#: Colours of the figure: in- and out-strengths apart, "before" in grey.
IN_COLOR, OUT_COLOR, BEFORE_COLOR = "#1f5fa8", "#d9721c", "#9a9a9a"


def figure_format(path: PathLike, fn: str) -> str:
    """The image format a file name asks for: its suffix, PNG without one."""
    suffix = os.path.splitext(os.fspath(path))[1].lower().lstrip(".")
    if not suffix:
        return "png"
    known = FigureCanvasBase.get_supported_filetypes()
    if suffix not in known:
        raise ValueError(
            f"{fn}: cannot tell an image format from {os.fspath(path)!r}; "
            f"use one of the suffixes {', '.join('.' + k for k in sorted(known))}"
        )
    return suffix


def plot(
    records: list[ParameterRecord],
    path: PathLike | None,
    *,
    ax: Axes | Sequence[Axes] | None,
    title: str,
    dpi: int,
    max_labels: int,
) -> Figure:
    """:meth:`RewireReport.plot` without the docstring: see there."""
    fn = "RewireReport.plot"
    rewired = [r for r in records if r.before is not None and r.after is not None]
    if not rewired:
        raise ValueError(f"{fn}: no rewired parameter to plot")
    if not isinstance(max_labels, int) or max_labels < 1:
        raise ValueError(f"{fn}: max_labels must be a positive int, got {max_labels!r}")
    fmt = figure_format(path, fn) if path is not None else None

    if ax is None:
        fig = Figure(figsize=(11, 7.5), layout="constrained")
        FigureCanvasAgg(fig)  # attaches the Agg canvas; no pyplot, no global backend
        grid = fig.add_gridspec(2, 2, height_ratios=(1, 1.15))
        axes = [fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1]), fig.add_subplot(grid[1, :])]
        fig.suptitle(title)
    else:
        axes = list(np.ravel(ax)) if isinstance(ax, (list, tuple, np.ndarray)) else [cast(Axes, ax)]
        if len(axes) not in (1, 3) or not all(hasattr(a, "plot") and hasattr(a, "figure") for a in axes):
            raise ValueError(f"{fn}: ax must be one matplotlib Axes or a sequence of three, got {ax!r}")
        fig = cast(Figure, axes[0].figure)  # (a SubFigure when the axes are in one: returned as it is)
    if len(axes) == 3:
        for a, side in zip(axes[:2], ("in", "out")):
            _strength_histogram(a, rewired, side)
    _layer_panel(axes[-1], rewired, max_labels)
    if path is not None:
        fig.savefig(path, format=fmt, dpi=dpi)
    return fig


def _legend_above(ax: Axes, ncol: int) -> None:
    """A legend in a row above the axes, outside the data."""
    ax.legend(
        loc="lower left",
        bbox_to_anchor=(0.0, 1.01),
        ncol=ncol,
        borderaxespad=0.0,
        frameon=False,
        fontsize=8,
        columnspacing=1.5,
    )


def _strength_histogram(ax: Axes, rewired: list[ParameterRecord], side: str) -> None:
    before, after = [], []
    for r in rewired:
        if r.strengths is None:
            continue
        b, a = r.strengths[f"{side}_before"], r.strengths[f"{side}_after"]
        sd = float(np.std(b, ddof=1)) if b.size > 1 else float("nan")
        if not math.isfinite(sd) or sd <= 0.0:
            continue
        mu = float(np.mean(b))
        before.append((b - mu) / sd)
        after.append((a - mu) / sd)
    neurons = "output neurons" if side == "in" else "inputs x kernel positions"
    ax.set_title(f"{side}-strength ({'row' if side == 'in' else 'column'} sums: {neurons})", fontsize=10, pad=22)
    ax.set_xlabel("strength, standardised per parameter (pre-rewiring mean and s.d.)")
    ax.set_ylabel("density")
    if not before:
        ax.text(0.5, 0.5, "no per-neuron strengths recorded", ha="center", va="center", transform=ax.transAxes)
        return
    zb, za = np.concatenate(before), np.concatenate(after)
    lim = max(4.0, float(np.quantile(np.abs(zb), 0.999)))
    bins = np.linspace(-lim, lim, 81)
    color = IN_COLOR if side == "in" else OUT_COLOR
    ax.hist(
        np.clip(zb, -lim, lim),
        bins=bins.tolist(),
        density=True,
        color=BEFORE_COLOR,
        alpha=0.6,
        label=f"before (variance {np.var(zb):.3g})",
    )
    ax.hist(
        np.clip(za, -lim, lim),
        bins=bins.tolist(),
        density=True,
        histtype="stepfilled",
        color=color,
        alpha=0.55,
        label=f"after (variance {np.var(za):.3g})",
    )
    _legend_above(ax, ncol=2)


def _layer_groups(names: list[str], max_groups: int) -> list[tuple[str, int, int]] | None:
    """Runs ``(label, start, stop)`` of consecutive parameters sharing a module-name prefix,
    for the deepest prefix that gives at most ``max_groups`` runs (None if even the first
    name component gives more).  A run under the same parent module as its neighbour is
    labelled by its last name component (``encoder_layer_3``) unless that is a number
    (``layer1.0``)."""
    paths = [n.split(".")[:-1] or [n] for n in names]
    best = None
    for depth in range(1, max(len(p) for p in paths) + 1):
        runs: list[list[Any]] = []
        for i, p in enumerate(paths):
            key = tuple(p[:depth])
            if runs and runs[-1][0] == key:
                runs[-1][2] = i + 1
            else:
                runs.append([key, i, i + 1])
        if len(runs) > max_groups:
            break
        best = runs
    if best is None:
        return None
    parents = [key[:-1] for key, _, _ in best]
    groups = []
    for i, (key, start, stop) in enumerate(best):
        shared = any(0 <= j < len(best) and parents[j] == parents[i] for j in (i - 1, i + 1)) and len(key) > 1
        short = shared and not key[-1].isdigit()
        groups.append((key[-1] if short else ".".join(key), start, stop))
    return groups


def _layer_panel(ax: Axes, rewired: list[ParameterRecord], max_labels: int) -> None:
    x = np.arange(len(rewired))
    small = len(rewired) > 60
    for side, color, marker in (("in", IN_COLOR, "o"), ("out", OUT_COLOR, "s")):
        y = [getattr(r, f"{side}_sd_ratio") for r in rewired]
        ax.plot(
            x,
            [np.nan if v is None else v for v in y],
            color=color,
            marker=marker,
            linestyle="-",
            linewidth=1.0,
            markersize=2.5 if small else 4,
            label=f"{side}-strength s.d. after / before",
        )
    ax.axhline(1.0, color=BEFORE_COLOR, linestyle="--", linewidth=1.0, label="unchanged")
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_ylabel("strength s.d. after / before")
    ax.set_xlim(-0.5, len(rewired) - 0.5)
    ax.grid(True, axis="y", which="major", alpha=0.3)
    names = [r.name for r in rewired]
    if len(names) <= max_labels:
        ax.set_xticks(x)
        labels = [n[: -len(".weight")] if n.endswith(".weight") else n for n in names]
        ax.set_xticklabels(labels, rotation=90, fontsize=7 if len(names) > 20 else 8)
        ax.set_xlabel("parameter (model order; .weight left out)")
    else:
        groups = _layer_groups(names, max(1, max_labels // 2))
        if groups is None:  # flat names (a long nn.Sequential): every k-th parameter
            step = math.ceil(len(names) / max_labels)
            ax.set_xticks(x[::step])
            ax.set_xticklabels(names[::step], rotation=90, fontsize=7)
            ax.set_xlabel(f"parameter (model order; every {step}th labelled)")
        else:
            for _, start, _stop in groups[1:]:
                ax.axvline(start - 0.5, color="#cccccc", linewidth=0.8, zorder=0)
            ax.set_xticks([(start + stop - 1) / 2 for _, start, stop in groups])
            ax.set_xticklabels([g[0] for g in groups], rotation=90 if len(groups) > 8 else 0, fontsize=8)
            ax.set_xlabel(f"parameter (model order: {len(names)} in {len(groups)} blocks of consecutive modules)")
    _legend_above(ax, ncol=3)
