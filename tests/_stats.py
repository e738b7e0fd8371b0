"""Exact distributions of PA rewiring on tiny matrices, and the chi-square tests
that compare counted outputs with them.

Every row's permutation is a successive sample without replacement
(Plackett-Luce) with weights P = strength + |min strength| + 1, so for a
matrix of a few rows and columns every outcome of a pass, and of two passes,
can be enumerated with its exact probability.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
from scipy import stats

MIN_EXPECTED = 5.0  # categories expected fewer times than this are pooled


def plackett_luce(p) -> Iterator[tuple[tuple[int, ...], float]]:
    """Every ordering of the columns with its probability under successive
    sampling with weights ``p`` (normalised here)."""
    p = np.asarray(p, dtype=np.float64) / np.sum(p)
    for perm in itertools.permutations(range(len(p))):
        prob, left = 1.0, 1.0
        for i in perm:
            prob *= p[i] / left
            left -= p[i]
        yield perm, prob


def _exact_pass(w: np.ndarray, prob: float) -> list[tuple[np.ndarray, float]]:
    """(result, probability) for every outcome of one pass over the rows of ``w``."""
    rows, cols = w.shape
    out: list[tuple[np.ndarray, float]] = []

    def rec(w, r, st, pr):
        if r == rows:
            out.append((w, pr))
            return
        st = st + w[r - 1].astype(np.float64)
        p = st + np.abs(np.min(st)) + 1
        vals = np.sort(w[r])
        for perm, pp in plackett_luce(p):
            nxt = w.copy()
            nxt[r, list(perm)] = vals  # smallest value -> first-drawn column
            rec(nxt, r + 1, st, pr * pp)

    rec(w.copy(), 1, np.zeros(cols), prob)
    return out


def exact_distribution(w: np.ndarray, passes: int) -> dict[bytes, float]:
    """Exact probability of each output matrix (keyed by its bytes) of one pass
    over the rows of ``w`` (``passes=1``) or of a row pass followed by an
    *independent* column pass (``passes=2``)."""
    dist: dict[bytes, float] = collections.defaultdict(float)
    for w1, p1 in _exact_pass(np.ascontiguousarray(w), 1.0):
        if passes == 1:
            dist[w1.tobytes()] += p1
            continue
        for w2, p2 in _exact_pass(np.ascontiguousarray(w1.T), p1):
            dist[np.ascontiguousarray(w2.T).tobytes()] += p2
    return dict(dist)


def _pool(obs: np.ndarray, exp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pools the columns whose expected count is below MIN_EXPECTED into one."""
    small = exp.min(axis=0) < MIN_EXPECTED
    if small.any():
        obs = np.column_stack([obs[:, ~small], obs[:, small].sum(axis=1)])
        exp = np.column_stack([exp[:, ~small], exp[:, small].sum(axis=1)])
    return obs, exp


def homogeneity_p(a: Mapping[Any, int], b: Mapping[Any, int]) -> float:
    """p-value of Pearson's chi-square test that two samples of counts share one distribution."""
    keys = sorted(set(a) | set(b))
    obs = np.array([[a.get(k, 0) for k in keys], [b.get(k, 0) for k in keys]], dtype=float)
    exp = obs.sum(axis=1, keepdims=True) * obs.sum(axis=0, keepdims=True) / obs.sum()
    obs, _ = _pool(obs, exp)
    if obs.shape[1] < 2:
        return 1.0
    return float(stats.chi2_contingency(obs, correction=False).pvalue)


def goodness_of_fit_p(counts: Mapping[Any, int], probs: Mapping[Any, float]) -> float:
    """p-value of Pearson's chi-square test of ``counts`` against exact ``probs``.
    Fails outright if an observed outcome has no probability at all."""
    outside = set(counts) - set(probs)
    assert not outside, f"{len(outside)} outputs the specification cannot produce"
    keys = sorted(probs)
    n = sum(counts.values())
    obs = np.array([[counts.get(k, 0) for k in keys]], dtype=float)
    exp = np.array([[probs[k] for k in keys]]) * n
    obs, exp = _pool(obs, exp)
    exp *= obs.sum() / exp.sum()  # absorbs float rounding in the enumerated total
    return float(stats.chisquare(obs[0], exp[0]).pvalue)
