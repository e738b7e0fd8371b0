"""The drop-in's exact promises beyond the fixtures: which stabilisation
candidate is kept, signed zeros, and the autograd version counter."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import parewire

from _helpers import STABILIZERS, bits, randn

# ------------------------------------------------------------ stabilize_strength


def handing_out(cands):
    """An initializer that fills the tensor with the given candidates in turn."""
    it = iter(cands)
    return lambda t: t.copy_(next(it))


def candidates(shape, n, seed=0):
    return [torch.randn(*shape, generator=torch.Generator().manual_seed(seed + i)) for i in range(n)]


def best_by_numpy(cands, score):
    return min(range(len(cands)), key=lambda i: score(cands[i].double().numpy()))


@pytest.mark.parametrize("name", list(STABILIZERS))
@pytest.mark.parametrize("shape,axis", [((1, 6), 0), ((6, 1), 1), ((1, 3, 2), 0)])
def test_one_row_or_one_column_scores_by_the_variance_that_exists(name, shape, axis):
    """(1, n): only the column sums have a variance; (n, 1): only the row sums.
    Before: every score was NaN and the first candidate was kept."""
    cands = candidates(shape, 8)
    w = torch.empty(shape)
    STABILIZERS[name](w, handing_out(cands), len(cands))
    flat = lambda a: a.reshape(a.shape[0], -1)  # noqa: E731
    best = best_by_numpy(cands, lambda a: flat(a).sum(axis=axis).var(ddof=1))
    assert best != 0, "the test needs a later candidate to win"
    np.testing.assert_array_equal(bits(w), bits(cands[best]))


@pytest.mark.parametrize("name", list(STABILIZERS))
def test_a_single_weight_keeps_the_first_candidate(name):
    """(1, 1): no variance exists at all; the first of equal (NaN) scores stays."""
    cands = candidates((1, 1), 4)
    w = torch.empty(1, 1)
    STABILIZERS[name](w, handing_out(cands), 4)
    assert torch.equal(w, cands[0])


@pytest.mark.parametrize("name", list(STABILIZERS))
@pytest.mark.parametrize("bad", ["inf first", "nan first", "-inf in the middle", "nan last"])
def test_non_finite_candidates_are_never_kept(name, bad):
    """Before: an inf in the first draw won over nine finite draws (the first
    candidate was always taken, and NaN scores never compare lower)."""
    cands = candidates((5, 4), 10)
    where = {"inf first": 0, "nan first": 0, "-inf in the middle": 4, "nan last": 9}[bad]
    value = {"inf first": float("inf"), "nan first": float("nan"), "-inf in the middle": -float("inf"),
             "nan last": float("nan")}[bad]
    cands[where] = cands[where].clone()
    cands[where][2, 1] = value
    finite = [c for c in cands if torch.isfinite(c).all()]
    w = torch.empty(5, 4)
    STABILIZERS[name](w, handing_out(cands), len(cands))
    assert torch.isfinite(w).all()
    score = lambda a: (a.sum(axis=0).var(ddof=1) + a.sum(axis=1).var(ddof=1)) / 2  # noqa: E731
    np.testing.assert_array_equal(bits(w), bits(finite[best_by_numpy(finite, score)]))


@pytest.mark.parametrize("name", list(STABILIZERS))
def test_a_scored_candidate_beats_finite_values_whose_score_is_nan(name):
    """Finite weights whose strengths overflow float64 have a NaN score; a
    candidate with a score wins over them, wherever it comes."""
    huge = torch.full((3, 3), 1.5e308, dtype=torch.float64)
    normal = torch.randn(3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    assert np.isnan(parewire.strength_stats(huge).score)
    w = torch.empty(3, 3, dtype=torch.float64)
    STABILIZERS[name](w, handing_out([huge, huge, normal, huge]), 4)
    assert torch.equal(w, normal)


@pytest.mark.parametrize("name", list(STABILIZERS))
@pytest.mark.parametrize("fill", [float("nan"), float("inf"), -float("inf")])
def test_an_initializer_that_never_gives_finite_values_is_refused(name, fill):
    """Before: the NaN (inf) weights were returned."""
    p = nn.Parameter(randn(4, 5))
    before = bits(p).copy()
    with pytest.raises(ValueError, match=r"^stabilize_strength_?: the initializer filled (tensor|weights) with "
                                         r"NaN or infinite values in all 3 trials"):
        STABILIZERS[name](p, lambda t: nn.init.constant_(t, fill), 3)
    np.testing.assert_array_equal(bits(p), before)


@pytest.mark.parametrize("name", list(STABILIZERS))
def test_some_non_finite_values_in_every_trial_are_refused_too(name):
    def init(t):
        nn.init.normal_(t)
        with torch.no_grad():
            t[0, 0] = float("nan")

    w = randn(4, 5)
    before = bits(w).copy()
    with pytest.raises(ValueError, match="NaN or infinite"):
        STABILIZERS[name](w, init, 4)
    np.testing.assert_array_equal(bits(w), before)
