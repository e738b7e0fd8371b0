"""Exercises parewire._C (the binding and kernels) without torch, for valgrind.

Loads the extension by path so that importing the package (and torch, which
valgrind finds very noisy and slow) is not needed; numpy arrays and hand-made
capsules (tests/capsules.py) supply the tensors.  Exits non-zero if a result
is wrong; valgrind's --error-exitcode reports memory errors.  Run from the
source tree with ``PYTHONPATH=.:tests`` (scripts/kernel_check.sh does).
"""

import glob
import importlib.util
import os
import threading

import capsules
import numpy as np

from parewire import reference  # numpy only

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

path = glob.glob(os.path.join(ROOT, "parewire", "_C*.so"))[0]
spec = importlib.util.spec_from_file_location("parewire._C", path)
assert spec is not None and spec.loader is not None
_C = importlib.util.module_from_spec(spec)
spec.loader.exec_module(_C)


def words(seed):
    st = np.random.default_rng(seed).bit_generator.state["state"]
    m = (1 << 64) - 1
    return (st["state"] >> 64, st["state"] & m, st["inc"] >> 64, st["inc"] & m)


def cap(a):
    return a.__dlpack__(max_version=(1, 0))


rng = np.random.default_rng(0)
checked = 0
for shape in [(2, 2), (7, 3), (1, 9), (9, 1), (6, 5, 3), (3, 2, 2, 2), (0, 5)]:
    for dtype in (np.float32, np.float64, np.float16):
        base = rng.standard_normal(shape).astype(dtype)
        for view in (base, base[::-1], base[..., ::-1], base.T if base.ndim == 2 else base):
            want = reference.pa_rewire(np.ascontiguousarray(view), 5) if view.size else view.copy()
            got = view.copy() if view is base else view
            _C.rewire(cap(got), words(5), 2, _C.SAMPLER_NUMPY, True)
            assert np.array_equal(np.ascontiguousarray(got), want, equal_nan=True), (shape, dtype)
            _C.rewire(cap(got.copy()), words(5), 2, _C.SAMPLER_FAST, True)
            _C.strength_stats(cap(got))
            checked += 1
# above the interrupt threshold: the kernel runs in a helper thread
big = rng.standard_normal((512, 512)).astype(np.float32)
assert big.size >= _C.INTERRUPT_THRESHOLD
before = np.sort(big.ravel())
_C.rewire(cap(big.T), words(3), 2, _C.SAMPLER_FAST, True)
assert np.array_equal(np.sort(big.ravel()), before)
checked += 1
# cancellation: a flag set before the call, and one set by another thread
# while a kernel (here on a worker thread, so no signal polling) runs
flag = _C.CancelFlag()
flag.set()
keep = big.copy()
try:
    _C.rewire(cap(big), words(4), cancel=flag, threads=2)
    raise SystemExit("a set CancelFlag did not cancel")
except KeyboardInterrupt:
    assert np.array_equal(big.view(np.uint32), keep.view(np.uint32))
    checked += 1
flag = _C.CancelFlag()
outcome: list[str] = []


def worker():
    try:
        _C.rewire(cap(big), words(4), cancel=flag)
        outcome.append("done")
    except KeyboardInterrupt:
        outcome.append("cancelled")


t = threading.Thread(target=worker)
t.start()
flag.set()
t.join()
assert outcome in (["done"], ["cancelled"]) and np.array_equal(np.sort(big.ravel()), before), outcome
if outcome == ["cancelled"]:
    assert np.array_equal(big.view(np.uint32), keep.view(np.uint32))
checked += 1
# failures: each must raise, none may write
bad = np.ones((4, 4), np.float32)
bad[3, 3] = np.nan
for make, exc in [
    (lambda: cap(bad), ValueError),
    (lambda: cap(np.ones((4, 4), np.int32)), TypeError),
    (lambda: capsules.fabricate(shape=(4, 4), null_shape=True).capsule, ValueError),
    (lambda: capsules.fabricate(shape=(2**32, 2**32), data=16).capsule, ValueError),
    (lambda: capsules.fabricate(shape=(2, 2**32), strides=(2**32, 1), data=16).capsule, ValueError),
    (lambda: capsules.fabricate(shape=(4, 4), strides=(1, 1), data=np.zeros(16, np.float32)).capsule, ValueError),
    (lambda: capsules.fabricate(shape=(4, 4), device=2, data=16).capsule, ValueError),
]:
    try:
        _C.rewire(make(), words(1))
    except exc:
        checked += 1
    else:
        raise SystemExit(f"no {exc.__name__}")
f = capsules.fabricate(shape=(3, 4), data=np.arange(16, dtype=np.float32), byte_offset=16, versioned=True)
_C.rewire(f.capsule, words(2))
assert f.deleted == 1
print(f"valgrind_binding: {checked} checks passed")
