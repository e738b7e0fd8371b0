"""What ``rewire_model`` did: one record per parameter, a table, JSON and a picture."""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

import numpy as np

from .functional import StrengthStats

__all__ = ["ParameterRecord", "RewireReport"]

PathLike = Union[str, "os.PathLike[str]"]

#: What can happen to a parameter (``ParameterRecord.status``).
STATUSES = ("rewired", "tied", "skipped", "not considered")


def _finite(x: Optional[float]) -> Optional[float]:
    """JSON has no NaN: undefined statistics (one neuron) become null."""
    return None if x is None or not math.isfinite(x) else float(x)


def _reduction(before: float, after: float) -> Optional[float]:
    """1 - after/before, or None where it is undefined (NaN, zero variance)."""
    if not (math.isfinite(before) and math.isfinite(after)) or before <= 0.0:
        return None
    return 1.0 - after / before


def _mean(values: List[Optional[float]]) -> Optional[float]:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def _percent(x: Optional[float]) -> str:
    return "n/a" if x is None else f"{100.0 * x:.1f}%"


@dataclass
class ParameterRecord:
    """One parameter's part of a :class:`RewireReport`.

    ``before`` / ``after`` are the strength statistics of the weight viewed as
    a ``(size(0), numel/size(0))`` matrix right before and right after
    rewiring (after ``init`` and ``stabilize`` ran): ``in_*`` over the row sums
    (output neurons), ``out_*`` over the column sums (input neurons x kernel
    positions).  ``seed`` is the seed the weight was rewired with:
    ``parewire.pa_rewire_(w, seed=record.seed, sampler=report.sampler)`` on the
    pre-rewiring weight gives the same result.  ``seconds`` is the time of
    the rewiring itself, ``init_seconds`` that of ``init`` / ``stabilize``.
    A parameter that was not rewired has ``skipped`` set to the reason and no
    statistics.

    ``status`` says what happened: ``"rewired"``; ``"tied"`` (another name of
    a tensor rewired under its first name); ``"skipped"`` (selected, but left
    alone for the reason in ``skipped``); ``"not considered"`` (a parameter
    with >= 2 dimensions that no selection rule picks, e.g. an embedding).
    ``module`` is the type name of the module that holds the parameter, and
    ``out_dim`` the dimension of the parameter that holds the output neurons:
    statistics and rewiring use the view with that dimension as rows.
    """

    name: str
    shape: Tuple[int, ...]
    dtype: str
    device: str = "cpu"
    seed: Optional[int] = None
    before: Optional[StrengthStats] = None
    after: Optional[StrengthStats] = None
    seconds: float = 0.0
    init_seconds: float = 0.0
    skipped: Optional[str] = None
    #: Per-neuron strengths for :meth:`RewireReport.plot`: ``{"in_before",
    #: "out_before", "in_after", "out_after"}`` -> float64 arrays.
    strengths: Optional[Dict[str, np.ndarray]] = field(default=None, repr=False, compare=False)
    status: str = ""
    module: Optional[str] = None
    out_dim: int = 0

    def __post_init__(self) -> None:
        if not self.status:
            self.status = "rewired" if self.skipped is None else "skipped"
        if self.status not in STATUSES:
            raise ValueError(f"ParameterRecord: status must be one of {STATUSES}, got {self.status!r}")

    @property
    def rewired(self) -> bool:
        return self.status == "rewired"

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def variance_reduction(self) -> Optional[float]:
        """``1 - after.score / before.score`` (score: mean of the in and out
        strength variances), or None when skipped or undefined."""
        if self.before is None or self.after is None:
            return None
        return _reduction(self.before.score, self.after.score)

    @property
    def in_reduction(self) -> Optional[float]:
        if self.before is None or self.after is None:
            return None
        return _reduction(self.before.in_var, self.after.in_var)

    @property
    def out_reduction(self) -> Optional[float]:
        if self.before is None or self.after is None:
            return None
        return _reduction(self.before.out_var, self.after.out_var)

    def to_dict(self, *, strengths: bool = False) -> Dict[str, Any]:
        """JSON-ready: NaN statistics become None; arrays become lists if ``strengths``."""

        def stats(s: Optional[StrengthStats]) -> Optional[Dict[str, Any]]:
            if s is None:
                return None
            return {"rows": s.rows, "cols": s.cols, **{k: _finite(getattr(s, k)) for k in StrengthStats._fields[2:]}}

        out: Dict[str, Any] = {
            "name": self.name,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "device": self.device,
            "seed": self.seed,
            "status": self.status,
            "module": self.module,
            "out_dim": self.out_dim,
            "skipped": self.skipped,
            "seconds": self.seconds,
            "init_seconds": self.init_seconds,
            "before": stats(self.before),
            "after": stats(self.after),
            "variance_reduction": _finite(self.variance_reduction),
        }
        if strengths and self.strengths is not None:
            out["strengths"] = {k: [float(x) for x in v] for k, v in self.strengths.items()}
        return out


@dataclass
class RewireReport:
    """The result of :func:`parewire.rewire_model`.

    ``print(report)`` shows a table (strength variance before -> after for
    every rewired parameter) and a one-line summary; ``report.to_dict()``,
    ``report.to_json(path)`` and ``report.plot(path)`` export it.  Records
    can be looked up by parameter name: ``report["fc.weight"]``.

    Attributes:
        model: what was rewired (the model's class name, or a name given by
            the caller).
        records: one :class:`ParameterRecord` per parameter considered, in
            model order, skipped ones included.
        seed: the model seed every parameter seed was derived from.
        sampler, init, stabilize, workers: the options used.
        seconds: wall time of the whole call.
    """

    model: str
    records: List[ParameterRecord]
    seed: Optional[int] = None
    sampler: str = "numpy"
    init: Optional[str] = None
    stabilize: int = 0
    workers: int = 1
    seconds: float = 0.0

    # -- access -----------------------------------------------------------
    def __iter__(self) -> Iterator[ParameterRecord]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, name: str) -> ParameterRecord:
        for r in self.records:
            if r.name == name:
                return r
        raise KeyError(name)

    @property
    def rewired(self) -> List[ParameterRecord]:
        return [r for r in self.records if r.rewired]

    @property
    def skipped(self) -> List[ParameterRecord]:
        """Selected parameters left alone (``"skipped"`` or ``"tied"``)."""
        return [r for r in self.records if r.status in ("skipped", "tied")]

    @property
    def not_considered(self) -> List[ParameterRecord]:
        """Parameters with >= 2 dimensions that no selection rule picked."""
        return [r for r in self.records if r.status == "not considered"]

    @property
    def seeds(self) -> Dict[str, int]:
        """``{parameter name: seed}`` for every rewired parameter."""
        return {r.name: r.seed for r in self.rewired}  # type: ignore[misc]

    @property
    def numel(self) -> int:
        """Number of weights rewired."""
        return sum(r.numel for r in self.rewired)

    @property
    def variance_reduction(self) -> Optional[float]:
        """Mean over rewired parameters of their :attr:`ParameterRecord.variance_reduction`."""
        return _mean([r.variance_reduction for r in self.rewired])

    # -- text -------------------------------------------------------------
    def summary(self) -> str:
        """One line: parameters rewired, mean strength-variance reduction, wall time."""
        rewired = self.rewired
        in_red = _mean([r.in_reduction for r in rewired])
        out_red = _mean([r.out_reduction for r in rewired])
        considered = len(rewired) + len(self.skipped)
        return (
            f"{self.model}: rewired {len(rewired)} of {considered} parameters "
            f"({self.numel:,} weights) in {self.seconds:.2f} s; "
            f"mean strength-variance reduction {_percent(self.variance_reduction)} "
            f"(in {_percent(in_red)}, out {_percent(out_red)})"
        )

    def table(self) -> str:
        """The per-parameter table, without the summary line."""
        options = [f"sampler={self.sampler}", f"seed={self.seed}"]
        if self.init is not None:
            options.append(f"init={self.init}")
        if self.stabilize:
            options.append(f"stabilize={self.stabilize}")
        options.append(f"workers={self.workers}")
        lines = [f"PA rewiring of {self.model} ({', '.join(options)})"]
        rewired = self.rewired
        if rewired:
            shapes = {r.name: "x".join(map(str, r.shape)) for r in rewired}
            nw = max(len("parameter"), *(len(r.name) for r in rewired))
            sw = max(len("shape"), *(len(s) for s in shapes.values()))
            lines.append(
                f"{'parameter':<{nw}}  {'shape':<{sw}}  {'in-var before':>13} -> {'after':<10}"
                f"  {'out-var before':>14} -> {'after':<10}  {'reduction':>9}  {'time':>7}"
            )
            for r in rewired:
                b, a = r.before, r.after
                assert b is not None and a is not None
                lines.append(
                    f"{r.name:<{nw}}  {shapes[r.name]:<{sw}}  {b.in_var:>13.4g} -> {a.in_var:<10.4g}"
                    f"  {b.out_var:>14.4g} -> {a.out_var:<10.4g}  {_percent(r.variance_reduction):>9}"
                    f"  {r.seconds:>6.3f}s"
                )
        skipped = self.skipped
        if skipped:
            by_reason = Counter(r.skipped for r in skipped)
            parts = []
            for reason, count in by_reason.items():
                names = [r.name for r in skipped if r.skipped == reason]
                shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
                parts.append(f"{count} {reason} ({shown})")
            lines.append(f"skipped {len(skipped)}: " + "; ".join(parts))
        ignored = self.not_considered
        if ignored:
            by_reason = Counter(r.skipped for r in ignored)
            parts = [f"{count} {reason}" for reason, count in by_reason.items()]
            lines.append(f"not considered {len(ignored)}: " + "; ".join(parts))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table() + "\n" + self.summary()

    # -- export -----------------------------------------------------------
    def to_dict(self, *, strengths: bool = False) -> Dict[str, Any]:
        """A JSON-ready dict: the options, the summary and every record.

        ``strengths=True`` adds each parameter's per-neuron strengths (large).
        """
        return {
            "model": self.model,
            "seed": self.seed,
            "sampler": self.sampler,
            "init": self.init,
            "stabilize": self.stabilize,
            "workers": self.workers,
            "seconds": self.seconds,
            "rewired": len(self.rewired),
            "skipped": len(self.skipped),
            "not_considered": len(self.not_considered),
            "numel": self.numel,
            "variance_reduction": _finite(self.variance_reduction),
            "summary": self.summary(),
            "records": [r.to_dict(strengths=strengths) for r in self.records],
        }

    def to_json(self, path: Optional[PathLike] = None, *, strengths: bool = False, indent: int = 2) -> str:
        """The report as JSON text; also written to ``path`` when given."""
        text = json.dumps(self.to_dict(strengths=strengths), indent=indent, allow_nan=False)
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text + "\n")
        return text

    def plot(self, path: PathLike, *, title: Optional[str] = None, dpi: int = 120) -> PathLike:
        """Write a PNG of the model's strength distributions before vs after rewiring.

        Top row: histograms of the in-strengths (row sums) and out-strengths
        (column sums) of every rewired parameter, pooled over the model. Each
        parameter's strengths are standardised by its own mean and standard
        deviation *before* rewiring (rewiring keeps the mean), so layers of
        different fan-in share one axis: the "before" histogram has unit
        variance and the "after" one shows how far rewiring narrowed it.
        Bottom: each parameter's strength variance before and after, in
        model order, on a log scale.

        Needs matplotlib (``pip install matplotlib``); it is not imported
        until this method is called.
        """
        try:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure
        except ImportError as e:
            raise ImportError(
                "RewireReport.plot needs matplotlib, which is not installed: "
                "pip install matplotlib (or pip install 'parewire[plot]')"
            ) from e
        rewired = [r for r in self.rewired if r.strengths is not None]
        if not rewired:
            raise ValueError("RewireReport.plot: no rewired parameter with strengths to plot")

        fig = Figure(figsize=(12, 8), layout="constrained")
        FigureCanvasAgg(fig)  # attaches the Agg canvas; no pyplot, no global backend
        grid = fig.add_gridspec(2, 2)
        for col, side, label in ((0, "in", "in-strength (row sums, output neurons)"),
                                 (1, "out", "out-strength (column sums, input neurons)")):
            ax = fig.add_subplot(grid[0, col])
            before, after = [], []
            for r in rewired:
                assert r.strengths is not None
                b, a = r.strengths[f"{side}_before"], r.strengths[f"{side}_after"]
                sd = float(np.std(b, ddof=1)) if b.size > 1 else float("nan")
                if not math.isfinite(sd) or sd <= 0.0:
                    continue
                mu = float(np.mean(b))
                before.append((b - mu) / sd)
                after.append((a - mu) / sd)
            if before:
                zb, za = np.concatenate(before), np.concatenate(after)
                lim = max(4.0, float(np.quantile(np.abs(zb), 0.999)))
                bins = np.linspace(-lim, lim, 81)
                ax.hist(np.clip(zb, -lim, lim), bins=bins, density=True, alpha=0.55, color="tab:red",
                        label=f"before (var {np.var(zb):.3g})")
                ax.hist(np.clip(za, -lim, lim), bins=bins, density=True, alpha=0.55, color="tab:blue",
                        label=f"after (var {np.var(za):.3g})")
                ax.legend()
            ax.set_title(label)
            ax.set_xlabel("strength, standardised per parameter by its pre-rewiring mean and s.d.")
            ax.set_ylabel("density")

        ax = fig.add_subplot(grid[1, :])
        x = np.arange(len(rewired))
        for side, marker in (("in", "o"), ("out", "s")):
            vb = [getattr(r.before, f"{side}_var") for r in rewired]
            va = [getattr(r.after, f"{side}_var") for r in rewired]
            ax.plot(x, vb, marker=marker, linestyle="-", color="tab:red", alpha=0.7 if side == "in" else 0.4,
                    label=f"{side}-strength variance before")
            ax.plot(x, va, marker=marker, linestyle="-", color="tab:blue", alpha=0.7 if side == "in" else 0.4,
                    label=f"{side}-strength variance after")
        ax.set_yscale("log")
        ax.set_xlabel("parameter (model order)")
        ax.set_ylabel("strength variance")
        if len(rewired) <= 40:
            ax.set_xticks(x)
            ax.set_xticklabels([r.name for r in rewired], rotation=90, fontsize=6)
        ax.legend(ncol=2, fontsize=8)
        ax.grid(True, which="major", alpha=0.3)
        fig.suptitle(title or f"PA rewiring of {self.model}: strength distributions before vs after\n"
                     + self.summary().split(": ", 1)[1])
        fig.savefig(path, format="png", dpi=dpi)
        return path
