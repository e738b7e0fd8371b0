"""Bad arguments other than the tensor: seeds, samplers, generators, K,
initializers, the binding's own arguments, models; and the promises around a
successful call (autograd sees the change).

Every refused call leaves the caller's memory bit-identical.  The tensor
itself (every kind of hostile input x every entry point) is the matrix in
``test_bad_inputs.py``.
"""

from __future__ import annotations

import sys
from typing import cast

import numpy as np
import pytest
import torch
from _helpers import STABILIZERS, bits, linear_holding, randn, storage_bytes
from torch import nn

import parewire
from parewire import _C, reference
from parewire.seeding import seed_words

SEED = 7
WORDS = seed_words(SEED)
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

# ------------------------------------------------------------- the binding


@pytest.mark.parametrize(
    "args,exc,match",
    [
        (dict(seed=(0, 1, 0)), TypeError, "tuple of four"),
        (dict(seed=[0, 1, 0, 1]), TypeError, "tuple of four"),
        (dict(seed=(0, -1, 0, 1)), OverflowError, r"\[0, 2\*\*64\)"),
        (dict(seed=(0, 2**64, 0, 1)), OverflowError, r"\[0, 2\*\*64\)"),
        (dict(seed=(0, 1.0, 0, 1)), TypeError, "must be ints"),
        (dict(seed=WORDS, passes=3), ValueError, "passes must be 1 or 2"),
        (dict(seed=WORDS, passes=0), ValueError, "passes must be 1 or 2"),
        (dict(seed=WORDS, sampler=7), ValueError, "unknown sampler"),
        (dict(seed=WORDS, passes=2**40), OverflowError, r"greater than maximum"),
    ],
)
def test_C_rewire_arguments_are_checked_before_the_tensor_is_touched(args, exc, match):
    w = randn(4, 5)
    snap = w.clone()
    c = w.__dlpack__()
    with pytest.raises(exc, match=match):
        _C.rewire(c, **args)
    assert torch.equal(w, snap)
    _C.strength_stats(c)  # the capsule was not consumed by the refused call


# ---------------------------------------------------- the stride-check bug


def test_strided_slices_do_not_overlap():
    base = randn(6, 5)
    view = base[:, ::2]
    expect = reference.pa_rewire(view.numpy().copy(), SEED)
    parewire.pa_rewire_(view, seed=SEED)
    np.testing.assert_array_equal(view.numpy(), expect)


# ------------------------------------------------ seeds, samplers, generators

SEED_CASES = [
    (lambda w: parewire.pa_rewire_(w, seed=-1), ValueError, "pa_rewire_: seed must be non-negative"),
    (lambda w: parewire.pa_rewire_(w, seed=1.5), TypeError, "pa_rewire_: seed must be an int"),  # type: ignore[arg-type]
    (lambda w: parewire.pa_rewire_(w, seed="1"), TypeError, "pa_rewire_: seed must be an int"),  # type: ignore[arg-type]
    (lambda w: parewire.pa_rewire_(w, seed=True), TypeError, "pa_rewire_: seed must be an int"),
    (lambda w: parewire.pa_rewire_(w, sampler="quick"), ValueError, "unknown sampler 'quick'"),  # type: ignore[arg-type]
    (lambda w: parewire.pa_rewire_(w, sampler=None), ValueError, "unknown sampler None"),  # type: ignore[arg-type]
    (lambda w: parewire.pa_rewire_(w, generator=object()), TypeError, "pa_rewire_: generator must be"),  # type: ignore[arg-type]
    (lambda w: parewire.pa_rewire_(w, generator=np.random.default_rng(0)), TypeError, "generator must be"),  # type: ignore[arg-type]
    (lambda w: parewire.PA_rewiring_np(w, 1.5), TypeError, "PA_rewiring_np: invalid seed 1.5"),
    (lambda w: parewire.PA_rewiring_torch(w, "x"), TypeError, "PA_rewiring_torch: invalid seed 'x'"),
    (lambda w: parewire.rewiring_np(w, -3), ValueError, "rewiring_np: invalid seed -3"),
    (lambda w: parewire.rewiring_torch(w, np.random.MT19937(0)), ValueError, "only PCG64"),
    (lambda w: parewire.rewire_model(linear_holding(w), seed=-1), ValueError, "non-negative"),
    (lambda w: parewire.rewire_model(linear_holding(w), sampler="x"), ValueError, "unknown sampler"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize("i", range(len(SEED_CASES)))
def test_bad_seeds_samplers_and_generators(i):
    call, exc, match = SEED_CASES[i]
    w = randn(5, 4)
    snap = storage_bytes(w)
    with pytest.raises(exc, match=match):
        call(w)
    assert storage_bytes(w) == snap


def test_a_generator_only_supplies_the_seed():
    a, b = randn(5, 4), randn(5, 4)
    parewire.pa_rewire_(a, generator=torch.Generator().manual_seed(3))
    parewire.pa_rewire_(b, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


@cuda
def test_a_generator_on_another_device_works():
    a, b = randn(5, 4), randn(5, 4)
    parewire.pa_rewire_(a, generator=torch.Generator("cuda").manual_seed(3))
    parewire.pa_rewire_(b, generator=torch.Generator("cuda").manual_seed(3))
    assert torch.equal(a, b)


# ------------------------------------------------------------ K and initializers


@pytest.mark.parametrize("name", list(STABILIZERS))
@pytest.mark.parametrize(
    "K,exc,match",
    [
        (0, ValueError, "positive int, got 0"),
        (-3, ValueError, "positive int, got -3"),
        (2.5, TypeError, "positive int, got 2.5"),
        (3.0, TypeError, "positive int, got 3.0"),
        (np.float64(3), TypeError, "positive int"),
        ("3", TypeError, "positive int, got '3'"),
        (None, TypeError, "positive int, got None"),
        (True, TypeError, "positive int, got True"),
        (2**70, ValueError, "too large"),
        (sys.maxsize + 1, ValueError, "too large"),
    ],
)
def test_bad_K(name, K, exc, match):
    w = randn(4, 5)
    snap = storage_bytes(w)
    with pytest.raises(exc, match=match):
        STABILIZERS[name](w, nn.init.normal_, K)
    assert storage_bytes(w) == snap


@pytest.mark.parametrize("name", list(STABILIZERS))
def test_numpy_integer_K_works(name):
    w = randn(4, 5)
    calls = []
    STABILIZERS[name](w, lambda t: calls.append(nn.init.normal_(t)), np.int64(3))
    assert len(calls) == 3


class Boom(Exception):
    pass


def raises_at(n, exc=Boom):
    calls = []

    def init(t):
        calls.append(1)
        nn.init.normal_(t)
        if len(calls) == n:
            raise exc("boom")

    return init


def swaps_storage(t):
    t.data = torch.randn_like(t)


def sets_another_storage(t):
    with torch.no_grad():
        t.set_(torch.randn(t.shape))


def changes_the_shape(t):
    t.data = torch.randn(t.numel())


def changes_dtype(t):
    t.data = t.data.double()


# name: (initializer factory, exception, message, storage pointer kept)
INITIALIZERS = {
    "raises on the first call": (lambda: raises_at(1), Boom, "boom", True),
    "raises midway": (lambda: raises_at(3), Boom, "boom", True),
    "raises on the last call": (lambda: raises_at(5), Boom, "boom", True),
    "raises KeyboardInterrupt midway": (lambda: raises_at(2, KeyboardInterrupt), KeyboardInterrupt, "boom", True),
    "swaps the storage (.data =)": (lambda: swaps_storage, RuntimeError, "replaced the tensor's storage", True),
    "swaps in a clone (.data =)": (
        lambda: lambda t: setattr(t, "data", t.data.clone()),
        RuntimeError,
        "replaced the tensor's storage",
        True,
    ),
    "swaps the storage (set_)": (lambda: sets_another_storage, RuntimeError, "replaced the tensor's storage", True),
    "changes the shape": (lambda: changes_the_shape, RuntimeError, "replaced the tensor's storage", True),
    "changes the dtype": (lambda: changes_dtype, RuntimeError, "replaced the tensor's storage", True),
    "not callable": (lambda: "normal", TypeError, "initializer must be callable", True),
}


@pytest.mark.parametrize("name", list(STABILIZERS))
@pytest.mark.parametrize("case", list(INITIALIZERS))
def test_failing_initializers_restore_the_weights(name, case):
    make, exc, match, same_ptr = INITIALIZERS[case]
    p = nn.Parameter(randn(4, 5))
    ident, ptr, values = id(p), p.data_ptr(), bits(p).copy()
    snap = storage_bytes(p)
    with pytest.raises(exc, match=match):
        STABILIZERS[name](p, make(), 5)
    assert id(p) == ident and p.shape == (4, 5) and p.dtype == torch.float32 and p.requires_grad
    np.testing.assert_array_equal(bits(p), values)
    if same_ptr:
        assert p.data_ptr() == ptr, "the caller's storage is re-attached"
        assert storage_bytes(p) == snap


@pytest.mark.parametrize("name", list(STABILIZERS))
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_an_initializer_without_the_dtype_gets_a_clear_error(name, dtype):
    """Before: a bare NotImplementedError ("geqrf_cpu" not implemented for 'Half')."""
    w = randn(6, 4, dtype=dtype)
    snap = storage_bytes(w)
    with pytest.raises(
        TypeError,
        match=rf"^{name}: the initializer orthogonal_ does not support (tensor|weights) of "
        rf"dtype {dtype}.*float32 copy",
    ):
        STABILIZERS[name](w, nn.init.orthogonal_, 3)
    assert storage_bytes(w) == snap
    # what the message suggests works
    fill = lambda t: t.copy_(nn.init.orthogonal_(torch.empty_like(t, dtype=torch.float32)))  # noqa: E731
    STABILIZERS[name](w, fill, 3)
    assert w.dtype == dtype and torch.isfinite(w).all()


@pytest.mark.parametrize("name", list(STABILIZERS))
def test_initializer_return_values_are_ignored(name):
    """Initializers that return something else (wrong shape, dtype, None) still
    filled the tensor in place; the return value is not used."""
    w = randn(4, 5)
    cands = [torch.randn(4, 5, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    it = iter(cands)

    def init(t):
        t.copy_(next(it))
        return torch.zeros(7, dtype=torch.int64)

    out = STABILIZERS[name](w, init, 3)
    assert out is w
    best = min(cands, key=lambda c: parewire.strength_stats(c).score)
    assert torch.equal(w, best)


# ------------------------------------------------------------- rewire_model


def test_rewire_model_is_all_or_nothing():
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 4), nn.Linear(4, 3))
    with torch.no_grad():
        cast(nn.Linear, model[3]).weight[2, 1] = float("nan")
    snaps = [storage_bytes(p) for p in model.parameters()]
    with pytest.raises(ValueError, match="NaN"):
        parewire.rewire_model(model, seed=1)
    assert [storage_bytes(p) for p in model.parameters()] == snaps


def test_rewire_model_refuses_non_models():
    for obj in (randn(3, 3), [nn.Linear(2, 2)], "model", None):
        with pytest.raises(TypeError, match="rewire_model"):
            parewire.rewire_model(obj, seed=1)  # type: ignore[arg-type]


# -------------------------------------------------------------- autograd


def test_autograd_notices_the_in_place_change():
    """The kernels write through DLPack, invisible to autograd; the version
    bump makes a graph that saved the tensor fail instead of giving wrong
    gradients (as it would after nn.init.normal_)."""
    leaf = randn(5, 4).requires_grad_()
    mid = leaf * 2
    out = (mid * mid).sum()  # saves mid
    parewire.pa_rewire_(mid, seed=1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.backward()


# ------------------------------------------------------------------ CUDA


@cuda
def test_a_cpu_generator_seeds_a_cuda_tensor_and_vice_versa():
    a, b = randn(5, 4).cuda(), randn(5, 4)
    parewire.pa_rewire_(a, generator=torch.Generator().manual_seed(1))
    parewire.pa_rewire_(b, generator=torch.Generator("cuda").manual_seed(1))
    assert a.is_cuda and not b.is_cuda
