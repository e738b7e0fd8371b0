"""Every SIMD variant and every thread count gives the same bits.

The kernels pick a SIMD variant of their hot loops at run time (portable,
and on x86-64 AVX2 / AVX-512) and may run a helper thread on one layer
(``threads >= 2``); neither may change a single bit.  Each variant is forced
with ``parewire._C.simd_variant(name)``; each case is compared with the
portable variant on one thread, final stream state included, on odd shapes
(above and below the size from which a helper thread is used, rows of more
and fewer than 8192 columns, 3-D), every dtype, both samplers, one and two
passes, a transposed view.  The reference fixtures are reproduced on every
variant and thread count through the public API.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
import torch
from _helpers import REWIRING_FIXTURES, bits, load_fixture

import parewire
from parewire import _C

VARIANTS = list(_C.simd_variants())
THREADS = [1, 2, 3, 4]
DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
SHAPES = [(7, 5), (181, 203), (3, 12289), (12289, 3), (97, 13, 29), (2, 40001)]
SEED = (0x0123456789ABCDEF, 0xFEDCBA9876543210, 0x1111, 0x2223)


@pytest.fixture(autouse=True)
def restore_variant():
    before = _C.simd_variant()
    yield
    _C.simd_variant(before)


def weights(shape, dtype, k):
    g = torch.Generator().manual_seed(1000 + k)
    w = torch.randn(shape, generator=g).to(dtype)
    if k % 3 == 2:  # some values shared, some signed zeros
        w[..., ::5] = 0.25
        w[..., 1::7] = -0.0
    return w


def run(w, variant, threads, **kw):
    _C.simd_variant(variant)
    out = w.clone()
    state = _C.rewire(out.__dlpack__(), SEED, threads=threads, **kw)
    return bits(out), state


def test_the_portable_variant_is_always_there_and_can_be_forced():
    assert VARIANTS[0] == "portable"
    for name in VARIANTS:
        _C.simd_variant(name)
        assert _C.simd_variant() == name
    with pytest.raises(ValueError, match="simd_variant"):
        _C.simd_variant("no-such-variant")


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("sampler", [_C.SAMPLER_NUMPY, _C.SAMPLER_FAST], ids=["numpy", "fast"])
def test_variants_and_thread_counts_give_the_same_bits(shape, sampler):
    for k, dtype in enumerate(DTYPES):
        w = weights(shape, dtype, k)
        if k == 1 and len(shape) == 2:
            w = w.t().contiguous().t()  # a transposed view
        kw = dict(passes=1 + (k % 2 == 0), sampler=sampler, reseed=bool(k % 2))
        want = run(w, "portable", 1, **kw)
        for variant, threads in itertools.product(VARIANTS, THREADS):
            got = run(w, variant, threads, **kw)
            np.testing.assert_array_equal(got[0], want[0], err_msg=f"{dtype} {variant} threads={threads}")
            assert got[1] == want[1], (dtype, variant, threads)


@pytest.mark.parametrize("name", REWIRING_FIXTURES)
def test_fixtures_on_every_variant_and_thread_count(name):
    f = load_fixture(name)
    for variant, threads in itertools.product(VARIANTS, [1, 2]):
        _C.simd_variant(variant)
        w = torch.from_numpy(f["input"].copy())
        parewire.pa_rewire_(w, seed=int(str(f["seed"])), sampler="numpy", threads=threads)
        np.testing.assert_array_equal(bits(w), bits(f["output"]), err_msg=f"{variant} threads={threads}")


def test_public_api_threads_default_and_identity():
    w = weights((257, 263), torch.float32, 0)
    outs = []
    for threads in [None, 1, 2, 3, 4]:
        x = w.clone()
        parewire.pa_rewire_(x, seed=5, sampler="fast", threads=threads)
        outs.append(bits(x))
    for o in outs[1:]:
        np.testing.assert_array_equal(o, outs[0])
    bad_values: list[tuple[Any, type[Exception]]] = [
        (0, ValueError),
        (-2, ValueError),
        ("2", TypeError),
        (True, TypeError),
        (2.0, TypeError),
    ]
    for bad, err in bad_values:
        x = w.clone()
        with pytest.raises(err, match="pa_rewire_: threads"):
            parewire.pa_rewire_(x, seed=5, threads=bad)
        assert torch.equal(x, w)  # untouched
