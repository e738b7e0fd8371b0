"""Big tensors without big memory.

* Strides whose byte offsets exceed 2**32 (and 2**31 elements), on a buffer of
  several GiB that is mostly never touched: np.zeros gets lazily mapped
  zero pages, so only the few pages the view reaches become real.  The
  result must equal the reference on a dense copy, so every offset was
  computed in 64 bits.
* Views of 2**40 and more elements (expanded, as_strided) must be refused by
  the size/overlap checks before any allocation: a MemoryError, a crash or
  a long run would mean the checks came too late.
* The 32-bit row/column limit and 64-bit size overflows with fabricated
  capsules are in test_bad_inputs.test_fabricated_capsules.

Rewiring a real tensor of more than 2**31 elements takes minutes and 8 GiB;
it is not part of the suite (see the report in the README's development notes).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _helpers import bits, raw_storage

import parewire
from parewire import reference

SEED = 11


@pytest.fixture(scope="module")
def sparse_buffer():
    """16 GiB + a little of virtual memory, float32, all zero pages."""
    n = 2**32 + 2**20
    try:
        buf = np.zeros(n, dtype=np.float32)
    except MemoryError:
        pytest.skip("the system refuses a 16 GiB lazy mapping (strict overcommit)")
    yield buf
    del buf


def view_of(buf, shape, strides_elems, offset=0):
    v = np.lib.stride_tricks.as_strided(buf[offset:], shape=shape, strides=tuple(s * 4 for s in strides_elems))
    v[...] = np.random.default_rng(sum(shape)).standard_normal(shape).astype(np.float32)
    return v


BIG = 2**31 + 3  # elements: byte offsets beyond 2**33


@pytest.mark.parametrize(
    "shape,strides,offset",
    [
        ((3, 5), (BIG, 1), 0),  # rows 8 GiB apart
        ((5, 3), (1, BIG // 2), 7),  # columns 4 GiB apart: the transposed pass's tiles
        ((2, 3, 4), (BIG, 2**29 + 1, 1), 1),  # a middle dimension 2 GiB apart
        ((4, 3), (-(BIG // 2), 1), 3 * (BIG // 2) + 5),  # negative row stride, 4 GiB steps backwards
    ],
)
def test_offsets_beyond_32_bits(sparse_buffer, shape, strides, offset):
    if any(s < 0 for s in strides):
        base = sparse_buffer[offset:]
        v = np.lib.stride_tricks.as_strided(base, shape=shape, strides=tuple(s * 4 for s in strides))
        v[...] = np.random.default_rng(5).standard_normal(shape).astype(np.float32)
    else:
        v = view_of(sparse_buffer, shape, strides, offset)
    dense = np.ascontiguousarray(v).copy()
    expect = reference.pa_rewire(dense, SEED)
    stats_before = parewire.strength_stats(v)
    np.testing.assert_allclose(stats_before.in_mean, dense.astype(np.float64).reshape(shape[0], -1).sum(1).mean())
    parewire.pa_rewire_(v, seed=SEED)
    np.testing.assert_array_equal(bits(np.ascontiguousarray(v)), bits(expect))
    v[...] = 0  # give the pages back to the zero state for the next case


@pytest.mark.parametrize(
    "make",
    [
        lambda: torch.zeros(1, 1).expand(2**20, 2**20),  # 2**40 elements, stride 0
        lambda: torch.zeros(1, 1).expand(2**31, 2**31),  # 2**62 elements: bytes overflow 64 bits
        lambda: torch.zeros(2**21).as_strided((2**20, 2**20), (1, 1)),  # overlapping rows, 2**40 elements
        lambda: torch.zeros(2**20, dtype=torch.float16).as_strided((2**20, 2**12), (1, 0)),  # 2**32 elements
    ],
    ids=["expand 2**40", "expand 2**62", "as_strided 2**40", "float16 2**32"],
)
@pytest.mark.parametrize("entry", ["pa_rewire_", "PA_rewiring_np", "rewiring_torch"])
def test_huge_views_are_refused_before_any_allocation(make, entry):
    w = make()
    snap = raw_storage(w)
    call = {
        "pa_rewire_": lambda: parewire.pa_rewire_(w, seed=1),
        "PA_rewiring_np": lambda: parewire.PA_rewiring_np(w, 1),
        "rewiring_torch": lambda: parewire.rewiring_torch(w, 1),
    }[entry]
    with pytest.raises(ValueError, match=r"overlap|overflow"):
        call()
    assert raw_storage(w) == snap


def test_numel_is_computed_in_64_bits_before_the_zero_size_shortcut():
    """A zero extent anywhere makes the tensor empty, however large the others."""
    w = torch.zeros(1, 1, 1).expand(2**40, 0, 2**40)
    with pytest.warns(UserWarning, match="zero-element"):
        assert parewire.pa_rewire_(w, seed=1) is w
