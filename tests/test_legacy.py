"""The drop-in's exact promises beyond the fixtures: which stabilisation
candidate is kept, signed zeros, and the autograd version counter."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _helpers import STABILIZERS, bits, randn
from torch import nn

import parewire
from parewire import reference

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
    value = {
        "inf first": float("inf"),
        "nan first": float("nan"),
        "-inf in the middle": -float("inf"),
        "nan last": float("nan"),
    }[bad]
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
    with pytest.raises(
        ValueError,
        match=r"^stabilize_strength_?: the initializer filled (tensor|weights) with "
        r"NaN or infinite values in all 3 trials",
    ):
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


# ------------------------------------------------------------------ signed zeros


def assert_bits_equal_up_to_zero_signs(got, expected):
    """Bit for bit wherever the expected value is not zero; a zero (of either
    sign) wherever it is.  Together with the permutation check this is the
    drop-in's exact promise."""
    g, e = bits(got), bits(expected)
    g_val = got.detach().float().numpy() if isinstance(got, torch.Tensor) else np.asarray(got)
    zero = np.asarray(expected) == 0
    np.testing.assert_array_equal(g[~zero], e[~zero])
    assert (g_val[zero] == 0).all()


def signed_zeros(shape, dtype, frac, seed):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(shape).astype(dtype)
    zeros = rng.random(shape) < frac
    w[zeros] = np.where(rng.random(shape) < 0.5, -0.0, 0.0)[zeros]
    return w


LEGACY = {
    "PA_rewiring_np": lambda w, s: parewire.PA_rewiring_np(w, s),
    "PA_rewiring_torch": lambda w, s: parewire.PA_rewiring_torch(w, s),
    "pa_rewire_": lambda w, s: parewire.pa_rewire_(w, seed=s),
}


@pytest.mark.parametrize("entry", list(LEGACY))
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("shape,frac", [((6, 9), 0.5), ((17, 40), 0.9), ((8, 3, 3, 3), 0.7), ((40, 300), 0.95)])
def test_signed_zeros_are_the_only_difference_from_the_reference(entry, dtype, shape, frac):
    """+0.0 and -0.0 compare equal, and the reference's np.sort may put them
    in either order (numpy leaves the order of equal keys unspecified); the
    kernels order them by bits.  Everything else is the reference's, bit for bit."""
    for seed in (1, 2, 3):
        w = signed_zeros(shape, dtype, frac, seed + shape[0])
        expected = reference.pa_rewire(w, seed)
        got = torch.from_numpy(w.copy())
        LEGACY[entry](got, seed)
        assert_bits_equal_up_to_zero_signs(got, expected)
        np.testing.assert_array_equal(np.sort(bits(got), axis=None), np.sort(bits(w), axis=None))


# ------------------------------------------------------------- autograd version


@pytest.fixture(params=["increment_version", "torch < 2.1 fallback"])
def version_bump(request, monkeypatch):
    """Both ways of telling autograd: torch's increment_version, and the
    fallback for torches without it (torch 1.13 .. 2.0), forced by hiding it."""
    if request.param != "increment_version":
        monkeypatch.delattr(torch.autograd.graph, "increment_version", raising=False)
    return request.param


@pytest.mark.parametrize("entry", ["pa_rewire_", "PA_rewiring_np"])
def test_autograd_sees_the_change_and_records_nothing(entry, version_bump):
    call = {
        "pa_rewire_": lambda w: parewire.pa_rewire_(w, seed=1),
        "PA_rewiring_np": lambda w: parewire.PA_rewiring_np(w, 1),
    }[entry]
    leaf = randn(5, 4).requires_grad_()
    mid = leaf * 2
    out = (mid * mid).sum()  # saves mid
    version = mid._version
    call(mid)
    assert mid._version > version and mid.grad_fn is not None and mid.grad_fn.name() == "MulBackward0"
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.backward()
    p = nn.Parameter(randn(5, 4))
    call(p)
    assert p.is_leaf and p.grad_fn is None and p.requires_grad


def test_the_version_bump_keeps_every_bit(version_bump):
    """Signed zeros and NaN payloads are not the rewiring's business (it
    refuses NaN), but the bump must not touch any bit: -0.0 + 0 would."""
    w = torch.tensor([[0.0, -0.0, 1.5], [-0.0, 2.5, 0.0], [-1.0, -0.0, 0.0]]).requires_grad_()
    expected = reference.pa_rewire(w.detach().numpy(), 3)
    parewire.pa_rewire_(w, seed=3)
    assert_bits_equal_up_to_zero_signs(w, expected)
    assert np.signbit(w.detach().numpy()).sum() == np.signbit(expected).sum() == 4
    from parewire import _bridge

    payload = torch.from_numpy(np.array([0x7FC00123, 0x00000000, 0x80000000], dtype=np.uint32).view(np.float32))
    before = bits(payload).copy()
    _bridge._bump_version(payload)
    np.testing.assert_array_equal(bits(payload), before)
