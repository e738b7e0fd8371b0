"""Bad input raises a clear exception and leaves the caller's data bit-identical."""

import numpy as np
import pytest
import torch

import parewire

from conftest import bits


def unchanged(x):
    snap = x.detach().clone() if isinstance(x, torch.Tensor) else x.copy()

    def check():
        if isinstance(x, torch.Tensor):
            assert torch.equal(x, snap) or np.array_equal(bits(x), bits(snap))
        else:
            np.testing.assert_array_equal(bits(x), bits(snap))

    return check


ENTRIES = {
    "pa_rewire_": lambda w: parewire.pa_rewire_(w, seed=1),
    "pa_rewire_fast": lambda w: parewire.pa_rewire_(w, seed=1, sampler="fast"),
    "PA_rewiring_np": lambda w: parewire.PA_rewiring_np(w, 1),
    "PA_rewiring_torch": lambda w: parewire.PA_rewiring_torch(w, 1),
    "rewiring_np": lambda w: parewire.rewiring_np(w, 1),
}


def nan_at(pos):
    def make():
        w = torch.randn(6, 5)
        w[pos] = float("nan")
        return w

    return make


def inf_at(pos, sign=1):
    def make():
        w = torch.randn(6, 5)
        w[pos] = sign * float("inf")
        return w

    return make


BAD = {
    "0-d": (lambda: torch.tensor(1.0), ValueError, "2 or more dimensions"),
    "1-D": (lambda: torch.randn(5), ValueError, "2 or more dimensions"),
    "NaN first row": (nan_at((0, 2)), ValueError, "NaN or infinite"),
    "NaN last row": (nan_at((5, 0)), ValueError, "NaN or infinite"),
    "+Inf last column": (inf_at((3, 4)), ValueError, "NaN or infinite"),
    "-Inf": (inf_at((2, 2), -1), ValueError, "NaN or infinite"),
    "int64": (lambda: torch.arange(12).reshape(3, 4), TypeError, "torch.int64"),
    "bool": (lambda: torch.ones(3, 4, dtype=torch.bool), TypeError, "torch.bool"),
    "complex": (lambda: torch.randn(3, 4, dtype=torch.complex64), TypeError, "complex64"),
    "int numpy": (lambda: np.arange(12).reshape(3, 4), TypeError, "int64"),
    "expanded": (lambda: torch.randn(1, 5).expand(4, 5), ValueError, "overlap"),
    "as_strided overlap": (lambda: torch.randn(20).as_strided((4, 5), (2, 1)), ValueError, "overlap"),
    "list": (lambda: [[1.0, 2.0], [3.0, 4.0]], TypeError, "list"),
}


@pytest.mark.parametrize("entry", list(ENTRIES))
@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_raises_and_leaves_data(entry, case):
    make, exc, words = BAD[case]
    w = make()
    check = unchanged(w) if isinstance(w, (torch.Tensor, np.ndarray)) else (lambda: None)
    with pytest.raises(exc, match=words):
        ENTRIES[entry](w)
    check()


def test_meta_tensor_is_refused():
    w = torch.empty(4, 4, device="meta")
    with pytest.raises(ValueError, match="meta"):
        parewire.pa_rewire_(w, seed=0)


def test_read_only_numpy_array_is_refused():
    a = np.random.default_rng(0).standard_normal((4, 4)).astype(np.float32)
    a.flags.writeable = False
    check = unchanged(a)
    with pytest.raises(ValueError, match="read-only"):
        parewire.pa_rewire_(a, seed=0)
    check()


def test_unknown_sampler_and_bad_seeds():
    w = torch.randn(4, 4)
    check = unchanged(w)
    with pytest.raises(ValueError, match="unknown sampler 'quick'"):
        parewire.pa_rewire_(w, sampler="quick")
    with pytest.raises(ValueError, match="non-negative"):
        parewire.pa_rewire_(w, seed=-1)
    with pytest.raises(TypeError, match="seed must be an int"):
        parewire.pa_rewire_(w, seed=1.5)
    check()


def test_zero_size_is_a_no_op_with_a_warning():
    w = torch.empty(0, 5)
    with pytest.warns(UserWarning, match="zero-element"):
        assert parewire.pa_rewire_(w, seed=0) is w


def test_binding_rejects_foreign_and_consumed_capsules():
    from parewire import _C

    seed = (0, 1, 0, 1)
    with pytest.raises(TypeError, match="DLPack capsule"):
        _C.rewire(object(), seed)
    cap = torch.randn(3, 3).__dlpack__()
    _C.strength_stats(cap)
    with pytest.raises(ValueError, match="already consumed"):
        _C.rewire(cap, seed)
    with pytest.raises(TypeError, match="unsupported dtype int32"):
        _C.rewire(torch.zeros(3, 3, dtype=torch.int32).__dlpack__(), seed)


def test_stabilize_strength_restores_weights_when_the_initializer_fails():
    w = torch.randn(5, 6)
    check = unchanged(w)
    calls = []

    def flaky(t):
        calls.append(1)
        torch.nn.init.normal_(t)
        if len(calls) == 3:
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        parewire.stabilize_strength(flaky, w, K=5)
    check()


@pytest.mark.parametrize("K", [0, -3])
def test_stabilize_strength_rejects_bad_K(K):
    with pytest.raises(ValueError, match="positive int"):
        parewire.stabilize_strength(torch.nn.init.normal_, torch.randn(3, 3), K=K)
