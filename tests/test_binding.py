"""parewire._C's own surface: the CancelFlag type, rewire's keyword-only
options, the sizes strength_stats returns, and the stable-ABI build.

Long-running cancellation (threads, signals) is in test_interrupt.py.
"""

from __future__ import annotations

import importlib.machinery
import sys
import sysconfig

import capsules as cap
import numpy as np
import pytest

from parewire import _C
from parewire.seeding import seed_words

WORDS = seed_words(7)


def test_cancel_flag_starts_clear_and_stays_set():
    flag = _C.CancelFlag()
    assert not flag.is_set() and repr(flag) == "<parewire._C.CancelFlag clear>"
    flag.set()
    flag.set()
    assert flag.is_set() and repr(flag) == "<parewire._C.CancelFlag set>"
    assert not _C.CancelFlag().is_set()  # each flag is its own


def test_cancel_flag_takes_no_arguments_and_is_final():
    with pytest.raises(TypeError):
        _C.CancelFlag(True)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        type("Sub", (_C.CancelFlag,), {})


@pytest.mark.parametrize("shape", [(1, 50), (50, 1), (2, 2), (300, 40)])
def test_a_set_flag_cancels_before_the_kernel_whatever_the_shape(shape):
    # (1, n) and (n, 1) never reach the kernel's row loop: the binding checks
    # the flag before it starts, so every shape answers the same way
    a = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    before = a.tobytes()
    flag = _C.CancelFlag()
    flag.set()
    with pytest.raises(KeyboardInterrupt, match=r"parewire\._C\.rewire: cancelled by its CancelFlag"):
        _C.rewire(a.__dlpack__(), WORDS, cancel=flag)
    assert a.tobytes() == before


def test_a_clear_flag_changes_nothing():
    a = np.random.default_rng(1).standard_normal((30, 20))
    b = a.copy()
    flag = _C.CancelFlag()
    assert _C.rewire(a.__dlpack__(), WORDS, cancel=flag) == _C.rewire(b.__dlpack__(), WORDS)
    assert a.tobytes() == b.tobytes() and not flag.is_set()


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"cancel": 1}, TypeError, r"parewire\._C\.rewire: cancel must be a parewire\._C\.CancelFlag or None, got int"),
        ({"cancel": object()}, TypeError, "got object"),
        ({"threads": 0}, ValueError, r"parewire\._C\.rewire: threads must be at least 1, got 0"),
        ({"threads": -3}, ValueError, "got -3"),
        ({"threads": 2**40}, OverflowError, "int"),
    ],
)
def test_rewire_refuses_bad_options_before_touching_the_tensor(kwargs, exc, match):
    a = np.ones((4, 4), np.float32)
    c = a.__dlpack__()
    with pytest.raises(exc, match=match):
        _C.rewire(c, WORDS, **kwargs)
    _C.strength_stats(c)  # the refused call did not consume the capsule


def test_cancel_and_threads_are_keyword_only():
    a = np.ones((4, 4), np.float32)
    with pytest.raises(TypeError):
        _C.rewire(a.__dlpack__(), WORDS, 2, _C.SAMPLER_NUMPY, True, None)  # type: ignore[call-arg]


@pytest.mark.parametrize("sampler", [_C.SAMPLER_NUMPY, _C.SAMPLER_FAST])
@pytest.mark.parametrize("passes", [1, 2])
@pytest.mark.parametrize("shape", [(64, 48), (7, 300), (300, 7), (16, 8, 3, 3)])
def test_results_do_not_depend_on_threads(sampler, passes, shape):
    base = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    results = set()
    for threads in (1, 2, 3, 4):
        a = base.copy()
        state = _C.rewire(a.__dlpack__(), WORDS, passes, sampler, True, threads=threads)
        results.add((a.tobytes(), state))
    assert len(results) == 1


@pytest.mark.parametrize("shape", [(0, 3), (3, 0), (0, 0), (0, 4, 5)])
def test_sums_of_an_empty_tensor_are_zeros_of_the_view_length(shape):
    a = np.empty(shape, np.float32)
    rows, cols, *_, row_sums, col_sums = _C.strength_stats(a.__dlpack__(), True)
    assert (rows, cols) == (shape[0], int(np.prod(shape[1:])))
    assert row_sums == bytes(8 * rows) and col_sums == bytes(8 * cols)


@pytest.mark.parametrize("shape", [(0, 2**61), (2**61, 0), (0, 2**62), (0, 2**40, 2**22)])
def test_sums_too_large_for_memory_are_a_memory_error(shape):
    # 8 bytes per sum would overflow Py_ssize_t: refused before any allocation
    fab = cap.fabricate(shape=shape)  # holds the memory the capsule points to
    with pytest.raises(MemoryError, match=r"parewire\._C\.strength_stats: \d+ sums do not fit in memory"):
        _C.strength_stats(fab.capsule, True)
    assert fab.deleted == 1  # the producer's deleter ran once, with the MemoryError set aside


def test_stable_abi_build():
    free_threaded = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    suffix = next(s for s in importlib.machinery.EXTENSION_SUFFIXES if _C.__file__.endswith(s))
    if free_threaded:
        assert suffix != ".abi3.so", "free-threaded CPython has no limited API"
    elif sys.platform == "win32":
        assert suffix == ".pyd"  # Windows names abi3 builds plainly
    else:
        assert suffix == ".abi3.so", f"_C was not built for the stable ABI: {_C.__file__}"
