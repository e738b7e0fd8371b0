"""The tensor-level API: agreement with the Python reference on new inputs,
in-place semantics, layouts, dtypes and seeds."""

import numpy as np
import pytest
import torch
from _helpers import bits
from torch import nn

import parewire
from parewire import reference

SHAPES = [(2, 2), (3, 7), (7, 3), (17, 5, 3), (8, 4, 3, 3), (1, 9), (9, 1), (2, 1, 1), (31, 29)]


def sorted_bits(a):
    return np.sort(bits(a).ravel())


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_python_reference_on_random_inputs(shape, dtype):
    rng = np.random.default_rng(sum(shape))
    w = rng.standard_normal(shape).astype(dtype)
    expected = reference.pa_rewire(w, 99)
    got = w.copy()
    parewire.pa_rewire_(got, seed=99)
    np.testing.assert_array_equal(bits(got), bits(expected))


@pytest.mark.parametrize("seed", [1, 2**40 + 3, 2**70 + 11])
def test_single_pass_matches_reference_on_rows_and_on_transposed_view(seed):
    w = np.random.default_rng(0).standard_normal((12, 20)).astype(np.float32)
    exp_rows = reference.rewire_pass(w.copy(), seed)
    got = w.copy()
    assert parewire.rewiring_np(got, seed) is got
    np.testing.assert_array_equal(bits(got), bits(exp_rows))
    # every row keeps its multiset after the row pass
    np.testing.assert_array_equal(np.sort(got, axis=1), np.sort(w, axis=1))

    exp_cols = w.copy()
    reference.rewire_pass(exp_cols.T, seed)
    got_t = torch.from_numpy(w.copy())
    parewire.rewiring_torch(got_t.T, seed)
    np.testing.assert_array_equal(bits(got_t), bits(exp_cols))


def test_result_is_a_permutation_and_changes_the_layout():
    w = torch.randn(64, 32, 3, 3)
    before = w.clone()
    parewire.pa_rewire_(w, seed=3)
    np.testing.assert_array_equal(sorted_bits(w), sorted_bits(before))
    assert not torch.equal(w, before)


def test_conv_weight_keeps_identity_shape_dtype_and_grad_flags():
    conv = nn.Conv2d(8, 16, 3)
    w = conv.weight
    ptr, shape = w.data_ptr(), w.shape
    before = w.detach().clone()
    out = parewire.pa_rewire_(w, seed=5)
    assert out is w and conv.weight is w
    assert w.data_ptr() == ptr and w.shape == shape and w.dtype == torch.float32
    assert w.requires_grad and w.grad_fn is None and w.is_leaf
    assert isinstance(w, nn.Parameter)
    np.testing.assert_array_equal(sorted_bits(w), sorted_bits(before))


def test_non_contiguous_views_are_rewired_in_place_and_nothing_else_moves():
    base = torch.randn(10, 24)
    view = base[:, ::2]  # strides (24, 2)
    other = base[:, 1::2].clone()
    expected = reference.pa_rewire(view.numpy(), 17)
    parewire.pa_rewire_(view, seed=17)
    np.testing.assert_array_equal(bits(view), bits(expected))
    np.testing.assert_array_equal(bits(base[:, 1::2]), bits(other))

    w = torch.randn(6, 9)
    t = w.T  # strides (1, 9)
    expected = reference.pa_rewire(t.numpy(), 4)
    parewire.pa_rewire_(t, seed=4)
    np.testing.assert_array_equal(bits(t), bits(expected))


def test_channels_last_conv_weight():
    w = torch.randn(8, 4, 3, 3)
    cl = w.clone().to(memory_format=torch.channels_last)
    assert not cl.is_contiguous()
    expected = reference.pa_rewire(w.numpy(), 21)
    parewire.pa_rewire_(cl, seed=21)
    np.testing.assert_array_equal(bits(cl.contiguous()), bits(expected))


def test_negative_strides_numpy_view():
    w = np.random.default_rng(1).standard_normal((5, 8)).astype(np.float32)
    view = w[::-1, ::-1]
    expected = reference.pa_rewire(np.ascontiguousarray(view), 8)
    parewire.pa_rewire_(view, seed=8)
    np.testing.assert_array_equal(bits(view), bits(expected))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_narrow_and_wide_dtypes_match_the_float32_path(dtype):
    # Values representable in both dtypes rewire identically: strengths are
    # float64 sums of exactly widened values.  Bits are kept in the own dtype.
    w = torch.randn(24, 5, 3).to(dtype)
    w32 = w.to(torch.float32)
    parewire.pa_rewire_(w, seed=12)
    parewire.pa_rewire_(w32, seed=12)
    assert w.dtype == dtype
    np.testing.assert_array_equal(bits(w.to(torch.float32)), bits(w32))


@pytest.mark.parametrize("sampler", ["numpy", "fast"])
def test_same_seed_same_result_and_seeds_differ(sampler):
    w = torch.randn(20, 30)
    a, b, c = w.clone(), w.clone(), w.clone()
    parewire.pa_rewire_(a, seed=1, sampler=sampler)
    parewire.pa_rewire_(b, seed=1, sampler=sampler)
    parewire.pa_rewire_(c, seed=2, sampler=sampler)
    assert torch.equal(a, b) and not torch.equal(a, c)
    np.testing.assert_array_equal(sorted_bits(a), sorted_bits(w))


def test_generator_argument_is_used():
    w = torch.randn(12, 12)
    a, b = w.clone(), w.clone()
    parewire.pa_rewire_(a, generator=torch.Generator().manual_seed(7))
    parewire.pa_rewire_(b, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)


def test_legacy_numpy_generator_seed_shares_one_stream_like_the_reference():
    w = np.random.default_rng(2).standard_normal((9, 11)).astype(np.float32)
    g_ref, g_ours = np.random.default_rng(77), np.random.default_rng(77)
    expected = reference.pa_rewire(w, g_ref)  # default_rng(generator) is the generator itself
    got = torch.from_numpy(w.copy())
    parewire.PA_rewiring_np(got, g_ours)
    np.testing.assert_array_equal(bits(got), bits(expected))
    assert g_ours.bit_generator.state == g_ref.bit_generator.state


def test_strength_stats_match_torch():
    w = torch.randn(7, 3, 2, dtype=torch.float64)
    s = parewire.strength_stats(w)
    m = w.reshape(7, -1)
    assert (s.rows, s.cols) == (7, 6)
    assert s.in_mean == pytest.approx(m.sum(1).mean().item())
    assert s.in_var == pytest.approx(m.sum(1).var().item())
    assert s.out_mean == pytest.approx(m.sum(0).mean().item())
    assert s.out_var == pytest.approx(m.sum(0).var().item())


def test_rewiring_reduces_strength_variance_for_standard_init():
    w = torch.empty(256, 128)
    nn.init.kaiming_uniform_(w, a=5**0.5)
    before = parewire.strength_stats(w)
    parewire.pa_rewire_(w, seed=0)
    after = parewire.strength_stats(w)
    assert after.in_var < before.in_var and after.out_var < before.out_var


def test_rewire_model_rewires_each_layer_once_with_name_derived_seeds():
    torch.manual_seed(0)
    conv, fc1, fc2 = nn.Conv2d(3, 8, 3), nn.Linear(8, 4), nn.Linear(4, 8)
    model = nn.Sequential(conv, nn.ReLU(), nn.Flatten(), fc1, fc2)
    fc2.weight = nn.Parameter(fc1.weight.detach().T.contiguous().clone())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = parewire.rewire_model(model, seed=3)
    seeds = report.seeds
    assert set(seeds) == {"0.weight", "3.weight", "4.weight"}
    assert report.skipped == []  # biases (1-D) are never rewired and not listed
    for name in seeds:
        assert not torch.equal(model.state_dict()[name], before[name])
        expected = before[name].clone()
        parewire.pa_rewire_(expected, seed=seeds[name], sampler=report.sampler)
        assert torch.equal(model.state_dict()[name], expected)
    for bias in ("0.bias", "3.bias", "4.bias"):
        assert torch.equal(model.state_dict()[bias], before[bias])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_tensor_is_rewired_in_place_through_the_host():
    w = torch.randn(32, 16, device="cuda")
    ptr = w.data_ptr()
    expected = reference.pa_rewire(w.cpu().numpy(), 9)
    parewire.pa_rewire_(w, seed=9)
    assert w.device.type == "cuda" and w.data_ptr() == ptr
    np.testing.assert_array_equal(bits(w), bits(expected))
