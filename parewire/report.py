"""What ``rewire_model`` did: one record per parameter, a table, HTML, JSON, pandas and a figure.

The headline of a report is the **strength-variance reduction weighted by
the number of weights** (:data:`HEADLINE`): tiny layers, whose strength
variance over a handful of neurons swings wildly, cannot rule it, and the
median layer is shown beside it.
"""

from __future__ import annotations

import html
import json
import math
import os
import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Union, overload

import numpy as np

from .functional import Sampler, StrengthStats

if TYPE_CHECKING:  # pragma: no cover - imported for annotations only
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["ParameterRecord", "RewireReport"]

PathLike = Union[str, "os.PathLike[str]"]

#: What can happen to a parameter (``ParameterRecord.status``).
STATUSES = ("rewired", "tied", "skipped", "not considered")

#: The definition of the headline, as every report states it.
HEADLINE = (
    "reduction: 1 - after/before of the mean of the in- and out-strength variances; "
    "headline: the mean over rewired parameters weighted by their number of weights"
)


def _finite(x: float | None) -> float | None:
    """JSON has no NaN: undefined statistics (one neuron) become null."""
    return None if x is None or not math.isfinite(x) else float(x)


def _reduction(before: float, after: float) -> float | None:
    """1 - after/before, or None where it is undefined (NaN, zero variance)."""
    if not (math.isfinite(before) and math.isfinite(after)) or before <= 0.0:
        return None
    return 1.0 - after / before


def _sd_ratio(before: float, after: float) -> float | None:
    """sqrt(after/before): the ratio of standard deviations, or None where undefined."""
    if not (math.isfinite(before) and math.isfinite(after)) or before <= 0.0 or after < 0.0:
        return None
    return math.sqrt(after / before)


def _weighted_mean(pairs: Iterable[tuple[int, float | None]]) -> float | None:
    """sum(n * v) / sum(n) over the pairs whose value is defined."""
    kept = [(n, v) for n, v in pairs if v is not None]
    total = sum(n for n, _ in kept)
    return sum(n * v for n, v in kept) / total if total else None


def _percent(x: float | None) -> str:
    return "n/a" if x is None else f"{100.0 * x:.1f}%"


def _ratio(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3g}"


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


class _Comparison:
    """A read-only attribute of a :class:`ParameterRecord`: ``reduce(before.<stat>, after.<stat>)``,
    or None when the record has no statistics (a property, written once for the five of them)."""

    def __init__(self, reduce: Callable[[float, float], float | None], stat: str, doc: str) -> None:
        self.reduce, self.stat, self.__doc__ = reduce, stat, doc

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, record: None, owner: type | None = None) -> _Comparison: ...
    @overload
    def __get__(self, record: ParameterRecord, owner: type | None = None) -> float | None: ...
    def __get__(self, record: ParameterRecord | None, owner: type | None = None) -> _Comparison | float | None:
        if record is None:
            return self
        if record.before is None or record.after is None:
            return None
        return self.reduce(getattr(record.before, self.stat), getattr(record.after, self.stat))

    def __set__(self, record: ParameterRecord, value: Any) -> None:
        raise AttributeError(f"ParameterRecord.{self.name} is computed from before and after; it cannot be set")


@dataclass
class ParameterRecord:
    """One parameter's part of a :class:`RewireReport`.

    ``before`` / ``after`` are the strength statistics of the weight viewed as
    a matrix with its output neurons as rows (dimension ``out_dim``), right
    before and right after rewiring (after ``init`` and ``stabilize`` ran):
    ``in_*`` over the row sums (output neurons), ``out_*`` over the column
    sums (input neurons x kernel positions).  ``seed`` is the seed the weight
    was rewired with: ``parewire.pa_rewire_(w, seed=record.seed,
    sampler=report.sampler)`` on the pre-rewiring weight gives the same
    result.  ``seconds`` is the time of the rewiring itself, ``init_seconds``
    that of ``init`` / ``stabilize``.  A parameter that was not rewired has
    ``skipped`` set to the reason and no statistics.

    ``status`` says what happened: ``"rewired"``; ``"tied"`` (another name of
    a tensor rewired under its first name); ``"skipped"`` (selected, but left
    alone for the reason in ``skipped``); ``"not considered"`` (a parameter
    with >= 2 dimensions that no selection rule picks, e.g. an embedding).
    ``module`` is the type name of the module that holds the parameter, and
    ``out_dim`` the dimension of the parameter that holds the output neurons:
    statistics and rewiring use the view with that dimension as rows.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    device: str = "cpu"
    seed: int | None = None
    before: StrengthStats | None = None
    after: StrengthStats | None = None
    seconds: float = 0.0
    init_seconds: float = 0.0
    skipped: str | None = None
    #: Per-neuron strengths for :meth:`RewireReport.plot`: ``{"in_before",
    #: "out_before", "in_after", "out_after"}`` -> float64 arrays.
    strengths: dict[str, np.ndarray] | None = field(default=None, repr=False, compare=False)
    status: str = ""
    module: str | None = None
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
    def rows_cols(self) -> tuple[int | None, int | None]:
        """``(output neurons, inputs per neuron)`` of the rewired view, when the shape is known."""
        if len(self.shape) < 2 or not 0 <= self.out_dim < len(self.shape) or self.shape[self.out_dim] == 0:
            return None, None
        rows = self.shape[self.out_dim]
        return rows, self.numel // rows

    variance_reduction = _Comparison(
        _reduction,
        "score",
        """``1 - after.score / before.score`` (score: mean of the in and out
        strength variances), or None when skipped or undefined.""",
    )
    in_reduction = _Comparison(_reduction, "in_var", """``1 - after.in_var / before.in_var``, or None.""")
    out_reduction = _Comparison(_reduction, "out_var", """``1 - after.out_var / before.out_var``, or None.""")
    in_sd_ratio = _Comparison(_sd_ratio, "in_var", """In-strength standard deviation after / before, or None.""")
    out_sd_ratio = _Comparison(_sd_ratio, "out_var", """Out-strength standard deviation after / before, or None.""")

    def flat(self) -> dict[str, Any]:
        """One flat row (a dict of scalars) for tables: see :meth:`RewireReport.to_pandas`."""
        rows, cols = self.rows_cols
        row: dict[str, Any] = {
            "name": self.name,
            "status": self.status,
            "module": self.module,
            "shape": _shape(self.shape),
            "dtype": self.dtype,
            "device": self.device,
            "out_dim": self.out_dim,
            "rows": rows,
            "cols": cols,
            "numel": self.numel if self.shape else None,
            "seed": self.seed,
        }
        for when, stats in (("before", self.before), ("after", self.after)):
            for key in StrengthStats._fields[2:]:
                row[f"{key}_{when}"] = _finite(getattr(stats, key)) if stats is not None else None
        row.update(
            reduction=_finite(self.variance_reduction),
            in_reduction=_finite(self.in_reduction),
            out_reduction=_finite(self.out_reduction),
            in_sd_ratio=_finite(self.in_sd_ratio),
            out_sd_ratio=_finite(self.out_sd_ratio),
            seconds=self.seconds,
            init_seconds=self.init_seconds,
            skipped=self.skipped,
        )
        return row

    def to_dict(self, *, strengths: bool = False) -> dict[str, Any]:
        """JSON-ready: NaN statistics become None; the seed stays an exact int;
        arrays become lists if ``strengths``."""

        def stats(s: StrengthStats | None) -> dict[str, Any] | None:
            if s is None:
                return None
            return {"rows": s.rows, "cols": s.cols, **{k: _finite(getattr(s, k)) for k in StrengthStats._fields[2:]}}

        out: dict[str, Any] = {
            "name": self.name,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "device": self.device,
            "seed": None if self.seed is None else int(self.seed),
            "status": self.status,
            "module": self.module,
            "out_dim": self.out_dim,
            "skipped": self.skipped,
            "seconds": self.seconds,
            "init_seconds": self.init_seconds,
            "before": stats(self.before),
            "after": stats(self.after),
            "variance_reduction": _finite(self.variance_reduction),
            "in_reduction": _finite(self.in_reduction),
            "out_reduction": _finite(self.out_reduction),
        }
        if strengths and self.strengths is not None:
            out["strengths"] = {k: [float(x) for x in v] for k, v in self.strengths.items()}
        return out


@dataclass(repr=False)
class RewireReport:
    r"""The result of :func:`parewire.rewire_model`.

    ``repr(report)`` is a few lines (model, counts, headline); in a notebook
    the report shows as an HTML table of every parameter.  ``print(report)``
    gives the text table and a one-line summary; ``report.to_pandas()``,
    ``report.to_dict()``, ``report.to_json(path)`` and ``report.plot(path)``
    export it.  Records can be looked up by parameter name:
    ``report["fc.weight"]``.

    The headline, :attr:`variance_reduction`, is the strength-variance
    reduction weighted by the number of weights (:data:`HEADLINE`):

    .. math::
        \frac{\sum_l n_l \, r_l}{\sum_l n_l}, \qquad
        r_l = 1 - \frac{\tfrac12(\sigma^2_{in} + \sigma^2_{out})_{after}}
                        {\tfrac12(\sigma^2_{in} + \sigma^2_{out})_{before}}

    over the rewired parameters :math:`l` with :math:`n_l` weights, where
    :math:`\sigma^2_{in}` / :math:`\sigma^2_{out}` are the variances of the
    in- and out-strengths.  :attr:`median_reduction` is the median of
    :math:`r_l`; :attr:`in_sd_ratio` / :attr:`out_sd_ratio` are the
    weighted means of each side's standard deviation after / before.

    Attributes:
        model: what was rewired (the model's class name, or a name given by
            the caller).
        records: one :class:`ParameterRecord` per parameter considered, in
            model order, skipped and not considered ones included.
        seed: the model seed every parameter seed was derived from.
        sampler, init, stabilize, workers: the options used.
        seconds: wall time of the whole call.
        restore: how the weights were kept for all-or-nothing (``"memory"``,
            ``"disk"`` or ``"none"``; what ``restore="auto"`` chose).
    """

    model: str
    records: list[ParameterRecord]
    seed: int | None = None
    sampler: Sampler = "numpy"
    init: str | None = None
    stabilize: int = 0
    workers: int = 1
    seconds: float = 0.0
    restore: Literal["memory", "disk", "none"] | None = None

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
    def rewired(self) -> list[ParameterRecord]:
        return [r for r in self.records if r.rewired]

    @property
    def skipped(self) -> list[ParameterRecord]:
        """Selected parameters left alone (``"skipped"`` or ``"tied"``)."""
        return [r for r in self.records if r.status in ("skipped", "tied")]

    @property
    def not_considered(self) -> list[ParameterRecord]:
        """Parameters with >= 2 dimensions that no selection rule picked."""
        return [r for r in self.records if r.status == "not considered"]

    @property
    def seeds(self) -> dict[str, int]:
        """``{parameter name: seed}`` for every rewired parameter."""
        return {r.name: r.seed for r in self.rewired}  # type: ignore[misc]

    @property
    def numel(self) -> int:
        """Number of weights rewired."""
        return sum(r.numel for r in self.rewired)

    # -- the headline -----------------------------------------------------
    @property
    def variance_reduction(self) -> float | None:
        """The headline: strength-variance reduction weighted by the number of weights.

        ``sum(n * r) / sum(n)`` over rewired parameters with ``n`` weights and
        a defined :attr:`ParameterRecord.variance_reduction` ``r``; None when
        no parameter has one.
        """
        return _weighted_mean((r.numel, r.variance_reduction) for r in self.rewired)

    @property
    def median_reduction(self) -> float | None:
        """The median over rewired parameters of :attr:`ParameterRecord.variance_reduction`."""
        values = [v for v in (r.variance_reduction for r in self.rewired) if v is not None]
        return statistics.median(values) if values else None

    @property
    def in_sd_ratio(self) -> float | None:
        """In-strength standard deviation after / before, mean weighted by the number of weights."""
        return _weighted_mean((r.numel, r.in_sd_ratio) for r in self.rewired)

    @property
    def out_sd_ratio(self) -> float | None:
        """Out-strength standard deviation after / before, mean weighted by the number of weights."""
        return _weighted_mean((r.numel, r.out_sd_ratio) for r in self.rewired)

    def _headline(self) -> str:
        return (
            f"strength-variance reduction {_percent(self.variance_reduction)} weighted by weights "
            f"(median layer {_percent(self.median_reduction)}); s.d. after/before: "
            f"in {_ratio(self.in_sd_ratio)}, out {_ratio(self.out_sd_ratio)}"
        )

    def _options(self) -> str:
        options = [f"sampler={self.sampler}", f"seed={self.seed}"]
        if self.init is not None:
            options.append(f"init={self.init}")
        if self.stabilize:
            options.append(f"stabilize={self.stabilize}")
        options.append(f"workers={self.workers}")
        return ", ".join(options)

    # -- text -------------------------------------------------------------
    def summary(self) -> str:
        """One line: parameters rewired, the headline, wall time."""
        considered = len(self.rewired) + len(self.skipped)
        return (
            f"{self.model}: rewired {len(self.rewired)} of {considered} parameters "
            f"({self.numel:,} weights) in {self.seconds:.2f} s; {self._headline()}"
        )

    def __repr__(self) -> str:
        return (
            f"<RewireReport of {self.model}: {len(self.rewired)} rewired, {len(self.skipped)} skipped, "
            f"{len(self.not_considered)} not considered; {self.numel:,} weights in {self.seconds:.2f} s\n"
            f" {self._headline()}\n"
            f" {self._options()}; print() it for the per-parameter table>"
        )

    def _left_alone(self, records: list[ParameterRecord], names: bool) -> str:
        """``"3 1-D (bias) (0.bias, 2.bias, ...); 1 frozen ..."`` grouped by reason."""
        parts = []
        for reason, count in Counter(r.skipped for r in records).items():
            part = f"{count} {reason}"
            if names:
                listed = [r.name for r in records if r.skipped == reason]
                part += " (" + ", ".join(listed[:3]) + (", ..." if len(listed) > 3 else "") + ")"
            parts.append(part)
        return "; ".join(parts)

    def table(self) -> str:
        """The per-parameter table and the headline's definition, without the summary line."""
        lines = [f"PA rewiring of {self.model} ({self._options()})"]
        rewired = self.rewired
        if rewired:
            shapes = {r.name: _shape(r.shape) for r in rewired}
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
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)}: " + self._left_alone(self.skipped, names=True))
        if self.not_considered:
            lines.append(
                f"not considered {len(self.not_considered)}: " + self._left_alone(self.not_considered, names=False)
            )
        lines.append(HEADLINE)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table() + "\n" + self.summary()

    def _repr_html_(self) -> str:
        """The report as HTML: the headline, every rewired parameter, and what was left alone and why."""
        e = html.escape
        cell = 'style="text-align:{}; padding:1px 6px"'.format
        left, right = cell("left"), cell("right")

        def row(values: Sequence[str], aligns: Sequence[str], tag: str = "td") -> str:
            return "<tr>" + "".join(f"<{tag} {a}>{e(v)}</{tag}>" for v, a in zip(values, aligns)) + "</tr>"

        def table(header: Sequence[str], aligns: Sequence[str], body: Iterable[Sequence[str]]) -> str:
            return (
                "<table>\n<thead>"
                + row(header, aligns, "th")
                + "</thead>\n<tbody>\n"
                + "\n".join(row(b, aligns) for b in body)
                + "\n</tbody>\n</table>"
            )

        parts = [
            '<div class="parewire-report">',
            f"<p><b>PA rewiring of {e(self.model)}</b> ({e(self._options())})<br>",
            (
                f"{len(self.rewired)} rewired, {len(self.skipped)} skipped, {len(self.not_considered)} not considered; "
                f"{self.numel:,} weights in {self.seconds:.2f} s<br>"
            ),
            f"<b>{e(self._headline())}</b></p>",
        ]
        if self.rewired:
            aligns = [left, left, left] + [right] * 9
            header = [
                "parameter",
                "module",
                "shape",
                "in-var before",
                "in-var after",
                "out-var before",
                "out-var after",
                "reduction",
                "in s.d. ratio",
                "out s.d. ratio",
                "seed",
                "seconds",
            ]
            body = []
            for r in self.rewired:
                b, a = r.before, r.after
                assert b is not None and a is not None
                body.append(
                    [
                        r.name,
                        r.module or "",
                        _shape(r.shape),
                        f"{b.in_var:.4g}",
                        f"{a.in_var:.4g}",
                        f"{b.out_var:.4g}",
                        f"{a.out_var:.4g}",
                        _percent(r.variance_reduction),
                        _ratio(r.in_sd_ratio),
                        _ratio(r.out_sd_ratio),
                        str(r.seed),
                        f"{r.seconds:.3f}",
                    ]
                )
            parts.append(table(header, aligns, body))
        for title, records in (("skipped", self.skipped), ("not considered", self.not_considered)):
            if not records:
                continue
            summary = e(f"{title} {len(records)}: {self._left_alone(records, names=False)}")
            body = [[r.name, r.module or "", _shape(r.shape), r.status, r.skipped or ""] for r in records]
            parts.append(
                f"<details><summary>{summary}</summary>\n"
                + table(["parameter", "module", "shape", "status", "reason"], [left] * 5, body)
                + "\n</details>"
            )
        parts.append(f"<p><small>{e(HEADLINE)}.</small></p>\n</div>")
        return "\n".join(parts)

    # -- export -----------------------------------------------------------
    def to_dict(self, *, strengths: bool = False) -> dict[str, Any]:
        """A JSON-ready dict: the options, the headline and every record.

        Seeds stay exact Python ints (64-bit parameter seeds do not fit a
        float); ``strengths=True`` adds each parameter's per-neuron strengths
        (large).
        """
        return {
            "model": self.model,
            "seed": None if self.seed is None else int(self.seed),
            "sampler": self.sampler,
            "init": self.init,
            "stabilize": self.stabilize,
            "workers": self.workers,
            "restore": self.restore,
            "seconds": self.seconds,
            "rewired": len(self.rewired),
            "skipped": len(self.skipped),
            "not_considered": len(self.not_considered),
            "numel": self.numel,
            "variance_reduction": _finite(self.variance_reduction),
            "median_reduction": _finite(self.median_reduction),
            "in_sd_ratio": _finite(self.in_sd_ratio),
            "out_sd_ratio": _finite(self.out_sd_ratio),
            "headline": HEADLINE,
            "summary": self.summary(),
            "records": [r.to_dict(strengths=strengths) for r in self.records],
        }

    def to_json(self, path: PathLike | None = None, *, strengths: bool = False, indent: int = 2) -> str:
        """The report as JSON text; also written to ``path`` when given.

        Seeds are written as exact JSON integers: Python's ``json`` reads
        them back exactly; JavaScript's ``JSON.parse`` rounds integers above
        2**53, so read them there with a BigInt-aware parser.
        """
        text = json.dumps(self.to_dict(strengths=strengths), indent=indent, allow_nan=False)
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text + "\n")
        return text

    def to_pandas(self) -> Any:
        """A ``pandas.DataFrame`` with one row per parameter (rewired, skipped, not considered).

        Columns: ``name, status, module, shape`` (``"64x3x7x7"``), ``dtype,
        device, out_dim, rows, cols, numel, seed``, the statistics before
        and after (``in_mean_before, in_var_before, out_mean_before,
        out_var_before, in_mean_after, ...``), ``reduction`` (the parameter's
        strength-variance reduction), ``in_reduction, out_reduction,
        in_sd_ratio, out_sd_ratio, seconds, init_seconds`` and ``skipped``
        (the reason a parameter was left alone).  Undefined statistics are
        NaN.  ``seed`` holds exact Python ints (``None`` where there is no
        seed), never floats, so ``pa_rewire_(w, seed=df.seed[i])`` works.

        Needs pandas (``pip install 'parewire[pandas]'``); it is imported
        only when this method is called.
        """
        try:
            import pandas as pd
        except ImportError as e:
            raise ImportError(
                "RewireReport.to_pandas needs pandas, which is not installed: "
                "pip install pandas (or pip install 'parewire[pandas]')"
            ) from e
        rows = [r.flat() for r in self.records]
        columns = list(ParameterRecord("", (1, 1), "").flat())
        df = pd.DataFrame(rows, columns=columns)
        # pandas would turn ints with gaps (None) into float64 and lose 64-bit seeds.
        df["seed"] = pd.Series([r["seed"] for r in rows], index=df.index, dtype=object)
        for col in ("rows", "cols", "numel"):
            df[col] = pd.array([r[col] for r in rows], dtype="Int64")
        return df

    # -- figure -----------------------------------------------------------
    def plot(
        self,
        path: PathLike | None = None,
        *,
        ax: Axes | Sequence[Axes] | None = None,
        title: str | None = None,
        dpi: int = 150,
        max_labels: int = 40,
    ) -> Figure:
        """Draw the strengths before vs after rewiring; return the matplotlib Figure.

        Without ``ax``, a new figure with three panels: histograms of the
        in-strengths (row sums) and out-strengths (column sums) of every
        rewired parameter, pooled over the model, each parameter's strengths
        standardised by its own pre-rewiring mean and standard deviation
        (rewiring keeps the mean), so "before" has unit variance and "after"
        shows how far rewiring narrowed it; and, per parameter in model
        order, the standard deviation of its in- and out-strengths after /
        before (log scale).  Past ``max_labels`` parameters the layer axis is
        labelled by blocks of consecutive modules (the deepest module-name
        prefix that gives at most ``max_labels // 2`` blocks, e.g.
        ``layer1.0`` ... ``layer4.2``).

        Args:
            path: also save the figure there; the format follows the suffix
                (``.png``, ``.svg``, ``.pdf``, ...; PNG without one).
            ax: draw into these axes instead of a new figure: one Axes gets
                the per-parameter panel, a sequence of three gets the in
                histogram, the out histogram and the per-parameter panel.
            title: the figure's title (default: the model and the headline);
                only used for a new figure.
            dpi: resolution of a saved raster image.
            max_labels: the most tick labels on the layer axis.

        Returns:
            The ``matplotlib.figure.Figure`` drawn into (``ax``'s figure when
            given).  A new figure is not registered with pyplot: in a
            notebook it shows as the cell's value; elsewhere save it.

        Needs matplotlib (``pip install matplotlib``); it is imported only
        when this method is called.
        """
        try:
            import matplotlib  # noqa: F401  (also when _figure is already imported)

            from . import _figure
        except ImportError as e:
            raise ImportError(
                "RewireReport.plot needs matplotlib, which is not installed: "
                "pip install matplotlib (or pip install 'parewire[plot]')"
            ) from e
        title = title or (
            f"PA rewiring of {self.model}: strength-variance reduction "
            f"{_percent(self.variance_reduction)} weighted by weights, "
            f"median layer {_percent(self.median_reduction)}"
        )
        return _figure.plot(self.rewired, path, ax=ax, title=title, dpi=dpi, max_labels=max_labels)
