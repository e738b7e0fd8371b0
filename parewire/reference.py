"""Plain numpy statement of PA rewiring, for reading and for checking.

This module is the executable specification of the algorithm: it draws each
row's target columns with ``numpy.random.Generator.choice(..., replace=False,
p=P)``, exactly as the authors' ``weight_rewiring.py`` does, so its results
are the reference's results.  It is slow (about a microsecond
per weight) and exists so that tests and benchmarks can compare the C kernels
with something obviously right.  Use :func:`parewire.pa_rewire_` for real work.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["rewire_pass", "pa_rewire"]


def rewire_pass(w: np.ndarray, seed: Any) -> np.ndarray:
    """One preferential-attachment pass over the rows of the 2-D array ``w``, in place.

    Row 0 stays; row ``r`` is sorted and its values are dealt to columns drawn
    with probability proportional to ``strength + |min(strength)| + 1``, where
    ``strength`` is the float64 sum of rows ``0 .. r-1`` as already rewired.
    """
    rng = np.random.default_rng(seed)
    rows, cols = w.shape
    strength = np.zeros(cols, dtype=np.float64)
    for r in range(1, rows):
        strength = strength + w[r - 1]
        p = strength + np.abs(np.min(strength)) + 1
        p = p / np.sum(p)
        targets = rng.choice(cols, size=cols, replace=False, p=p)
        w[r, targets] = np.sort(w[r])
    return w


def pa_rewire(weights: np.ndarray, seed: Any) -> np.ndarray:
    """Return a rewired copy of ``weights`` (any shape with ``ndim >= 2``).

    The tensor is viewed as ``(size(0), numel / size(0))``; one pass runs over
    the rows, then one over the columns, each from a fresh generator seeded
    with ``seed``.  ``np.sort`` leaves the order of equal values unspecified,
    so where a row holds both ``+0.0`` and ``-0.0`` their places may differ
    from the kernels' (and between numpy builds); nothing else can.
    """
    w = np.array(weights, copy=True)
    if w.ndim < 2:
        raise ValueError("PA rewiring needs a tensor with at least 2 dimensions")
    flat = w.reshape(w.shape[0], -1)
    rewire_pass(flat, seed)
    rewire_pass(flat.T, seed)
    return w
