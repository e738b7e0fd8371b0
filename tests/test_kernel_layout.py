"""The kernels' layout checks: exact overlap verdicts, and sizes that overflow.

* A view is refused as overlapping exactly when two of its indices share an
  address, decided against enumeration of every offset over all small 2-D
  and 3-D shapes and strides (``parewire._C.rewire`` on numpy ``as_strided``
  views; torch views for the issue's example).
* Empty tensors with a huge other extent allocate nothing and never compute
  a byte size that wraps around (those once crashed the interpreter, so they
  run in a subprocess).
"""

from __future__ import annotations

import itertools
import subprocess
import sys

import numpy as np
import pytest
import torch

import parewire
from parewire import _C

SEED = (0, 1, 0, 1)


def distinct_offsets(shape, strides) -> bool:
    if 0 in shape:
        return True
    offsets = np.zeros((), dtype=np.int64)
    for n, s in zip(shape, strides):
        offsets = np.add.outer(offsets, np.arange(n, dtype=np.int64) * s)
    return np.unique(offsets).size == offsets.size


def strided_view(shape, strides):
    """A writable float64 view with element strides ``strides`` (any sign)."""
    lo = sum((n - 1) * s for n, s in zip(shape, strides) if s < 0)
    hi = sum((n - 1) * s for n, s in zip(shape, strides) if s > 0)
    base = np.arange(hi - lo + 1, dtype=np.float64)
    return np.lib.stride_tricks.as_strided(base[-lo:], shape=shape, strides=[8 * s for s in strides])


def kernel_accepts(view) -> bool:
    try:
        _C.rewire(view.__dlpack__(), SEED, passes=1, sampler=_C.SAMPLER_FAST)
    except ValueError as e:
        assert "overlap" in str(e)
        return False
    return True


def test_overlap_verdict_is_exact_for_every_small_2d_view():
    wrong = []
    for shape in itertools.product(range(1, 6), repeat=2):
        for strides in itertools.product(range(-6, 7), repeat=2):
            if kernel_accepts(strided_view(shape, strides)) != distinct_offsets(shape, strides):
                wrong.append((shape, strides))
    assert wrong == []


def test_overlap_verdict_is_exact_for_every_small_3d_view():
    wrong = []
    for shape in itertools.product(range(1, 4), repeat=3):
        for strides in itertools.product(range(0, 6), repeat=3):
            if kernel_accepts(strided_view(shape, strides)) != distinct_offsets(shape, strides):
                wrong.append((shape, strides))
    assert wrong == []


def test_interleaved_strides_with_distinct_offsets_are_rewired():
    # the example: 12 distinct offsets in 14 elements
    w = torch.randn(14, generator=torch.Generator().manual_seed(0))
    before = w.clone()
    v = w.as_strided((4, 3), (3, 2))
    parewire.pa_rewire_(v, seed=3)
    touched = torch.zeros(14, dtype=torch.bool)
    touched.as_strided((4, 3), (3, 2)).fill_(True)
    assert torch.equal(w[~touched], before[~touched])  # the two offsets outside the view
    assert torch.equal(w[touched].sort().values, before[touched].sort().values)


def test_interleaved_strides_that_collide_are_refused():
    w = torch.zeros(20)
    with pytest.raises(ValueError, match="overlap"):
        parewire.pa_rewire_(w.as_strided((4, 4), (3, 2)), seed=3)  # 3 + 3 == 2 + 2 + 2


@pytest.mark.parametrize("shape", [(0, 2**40), (2**40, 0), (0, 2**20, 2**20)])
def test_empty_tensors_with_huge_extents_allocate_nothing(shape):
    s = parewire.strength_stats(torch.empty(shape))
    cols = int(np.prod(shape[1:], dtype=object))
    assert (s.rows, s.cols) == (shape[0], cols)
    if cols > 1:  # 2**40 columns summing nothing: every sum is 0
        assert (s.out_mean, s.out_var) == (0.0, 0.0)
    if shape[0] > 1:
        assert (s.in_mean, s.in_var) == (0.0, 0.0)


@pytest.mark.parametrize("shape", ["(0, 2**62)", "(2**62, 0)", "(0, 2**61 + 1)", "(0, 2**63 - 1)"])
def test_empty_tensors_whose_byte_sizes_overflow_do_not_crash(shape):
    code = f"import torch, parewire\ns = parewire.strength_stats(torch.empty{shape})\nprint(s.rows, s.cols)\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == [str(v) for v in eval(shape)]
