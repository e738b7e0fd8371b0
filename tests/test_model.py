"""rewire_model, RewireReport and rewirer: selection, seeds, inits, dtypes,
threads, all-or-nothing, and real torchvision models."""

import functools
import math
import sys
from typing import cast

import numpy as np
import pytest
import torch
from _helpers import bits
from torch import nn

import parewire
from parewire.model import INITIALIZERS
from parewire.seeding import derive_seed


def state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_state(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(bits(a[k]), bits(b[k]), err_msg=k)


def is_permutation(after, before):
    return np.array_equal(np.sort(bits(after).ravel()), np.sort(bits(before).ravel()))


def expected_rewire(before, seed, sampler=parewire.model.DEFAULT_SAMPLER):
    w = before.clone()
    parewire.pa_rewire_(w, seed=seed, sampler=sampler)
    return w


def small_net(dtype=torch.float32):
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3),
        nn.Flatten(),
        nn.Linear(32, 24),
        nn.Linear(24, 10),
    ).to(dtype)


# -- what gets rewired, with which seed ---------------------------------------------------


def test_default_selection_rewires_linear_and_conv_weights_with_name_derived_seeds():
    model = nn.Sequential(nn.Conv1d(4, 8, 3), nn.BatchNorm1d(8), nn.Conv3d(2, 6, 2), nn.Linear(12, 9))
    before = state(model)
    report = parewire.rewire_model(model, seed=5)
    assert isinstance(report, parewire.RewireReport)
    assert [r.name for r in report.rewired] == ["0.weight", "2.weight", "3.weight"]
    # only parameters with >= 2 dimensions are reported: biases and BatchNorm are not
    assert [r.name for r in report] == ["0.weight", "2.weight", "3.weight"]
    after = model.state_dict()
    for r in report.rewired:
        assert r.seed == derive_seed(5, r.name)
        np.testing.assert_array_equal(bits(after[r.name]), bits(expected_rewire(before[r.name], r.seed)))
    for k in ("0.bias", "1.weight", "1.bias", "1.running_mean", "2.bias", "3.bias"):
        np.testing.assert_array_equal(bits(after[k]), bits(before[k]))
    assert report.seed == 5 and report.sampler == parewire.model.DEFAULT_SAMPLER and report.init is None


def test_parameters_keep_identity_and_autograd_flags():
    model = small_net()
    params = {n: (p, p.data_ptr()) for n, p in model.named_parameters()}
    parewire.rewire_model(model, seed=1)
    for n, p in model.named_parameters():
        assert p is params[n][0] and p.data_ptr() == params[n][1]
        assert isinstance(p, nn.Parameter) and p.requires_grad and p.grad_fn is None


def test_tied_weights_are_rewired_once_under_the_first_name():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 16, bias=False), nn.Tanh(), nn.Linear(16, 16, bias=False))
    model[2].weight = model[0].weight
    before = cast(nn.Linear, model[0]).weight.detach().clone()
    report = parewire.rewire_model(model, seed=9)
    assert [r.name for r in report.rewired] == ["0.weight"]
    assert report["2.weight"].skipped == "tied to 0.weight"
    assert model[2].weight is model[0].weight
    # rewired exactly once: a second pass would give another arrangement
    np.testing.assert_array_equal(bits(model[0].weight), bits(expected_rewire(before, derive_seed(9, "0.weight"))))


def test_frozen_parameters_are_skipped_and_untouched():
    model = small_net()
    model[2].weight.requires_grad_(False)
    before = state(model)
    report = parewire.rewire_model(model, seed=0)
    assert report["2.weight"].skipped == "frozen (requires_grad=False)"
    np.testing.assert_array_equal(bits(model[2].weight), bits(before["2.weight"]))
    assert not torch.equal(model[0].weight, before["0.weight"])


def test_lazy_and_meta_parameters_are_skipped_by_default_and_meta_errs_when_asked_for():
    lazy = nn.Sequential(nn.LazyLinear(4), nn.Linear(4, 3))
    report = parewire.rewire_model(lazy, seed=0)
    assert report["0.weight"].skipped == "uninitialised (lazy)"
    assert [r.name for r in report.rewired] == ["1.weight"]

    def half_on_meta() -> nn.Sequential:
        return nn.Sequential(nn.Linear(6, 5), nn.Linear(5, 4, device="meta"))

    report = parewire.rewire_model(half_on_meta(), seed=0)
    assert report["1.weight"].skipped == "meta tensor (no values)"
    assert [r.name for r in report.rewired] == ["0.weight"]

    model = half_on_meta()
    before = state(model)
    with pytest.raises(ValueError, match=r"'1\.weight' is a meta tensor"):
        parewire.rewire_model(model, layers=[nn.Linear], seed=0)
    np.testing.assert_array_equal(bits(model[0].weight), bits(before["0.weight"]))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_half_bfloat16_and_double_models_keep_dtype_and_bit_patterns(dtype):
    model = small_net(dtype)
    before = state(model)
    report = parewire.rewire_model(model, seed=2)
    assert len(report.rewired) == 4
    for r in report.rewired:
        w = model.state_dict()[r.name]
        assert w.dtype == dtype and r.dtype == str(dtype).replace("torch.", "")
        assert is_permutation(w, before[r.name])
        np.testing.assert_array_equal(bits(w), bits(expected_rewire(before[r.name], r.seed)))


def test_mixed_dtypes_in_one_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8).half(), nn.Linear(8, 8).bfloat16(), nn.Linear(8, 8).double(), nn.Linear(8, 8))
    before = state(model)
    report = parewire.rewire_model(model, seed=4)
    assert [r.dtype for r in report.rewired] == ["float16", "bfloat16", "float64", "float32"]
    for r in report.rewired:
        np.testing.assert_array_equal(bits(model.state_dict()[r.name]), bits(expected_rewire(before[r.name], r.seed)))


# -- layers / exclude ------------------------------------------------------------------------


def test_layers_by_type_predicate_and_patterns():
    model = small_net()
    r = parewire.rewire_model(model, layers=nn.Conv2d, seed=0)
    assert [x.name for x in r.rewired] == ["0.weight", "2.weight"]
    r = parewire.rewire_model(model, layers=[nn.Linear], seed=0)
    assert [x.name for x in r.rewired] == ["4.weight", "5.weight"]
    r = parewire.rewire_model(model, layers=lambda name, m: name in ("2", "5"), seed=0)
    assert [x.name for x in r.rewired] == ["2.weight", "5.weight"]
    assert r.skipped == []  # a registered type's rule names its weight only
    r = parewire.rewire_model(model, layers="*.weight", seed=0)
    assert [x.name for x in r.rewired] == ["0.weight", "2.weight", "4.weight", "5.weight"]
    assert r.skipped == []
    r = parewire.rewire_model(model, layers=["0.*", "5.weight"], exclude="0.bias", seed=0)
    assert [x.name for x in r.rewired] == ["0.weight", "5.weight"]
    assert r["0.bias"].skipped == "excluded"


def test_exclude_leaves_matching_weights_alone():
    model = small_net()
    before = state(model)
    r = parewire.rewire_model(model, exclude=["4.*", "5.weight"], seed=0)
    assert [x.name for x in r.rewired] == ["0.weight", "2.weight"]
    assert r["5.weight"].skipped == "excluded"
    for k in ("4.weight", "5.weight"):
        np.testing.assert_array_equal(bits(model.state_dict()[k]), bits(before[k]))


def test_attention_in_projection_weights_are_selected_by_default():
    model = nn.MultiheadAttention(16, 2)
    r = parewire.rewire_model(model, seed=0)
    assert [x.name for x in r.rewired] == ["in_proj_weight", "out_proj.weight"]
    r = parewire.rewire_model(model, layers=[nn.Linear], seed=0)
    assert [x.name for x in r.rewired] == ["out_proj.weight"]
    assert r["in_proj_weight"].status == "not considered"
    separate = nn.MultiheadAttention(16, 2, kdim=8, vdim=12)
    r = parewire.rewire_model(separate, seed=0)
    assert [x.name for x in r.rewired] == ["q_proj_weight", "k_proj_weight", "v_proj_weight", "out_proj.weight"]


@pytest.mark.parametrize("bad", [3, int, [nn.Linear, "x"], object()])
def test_bad_layer_selectors_raise_type_error(bad):
    with pytest.raises(TypeError, match="layers"):
        parewire.rewire_model(small_net(), layers=bad, seed=0)


def test_an_empty_selector_is_an_error_not_everything():
    model = small_net()
    before = state(model)
    with pytest.raises(ValueError, match="layers is empty"):
        parewire.rewire_model(model, layers=[], seed=0)
    assert_same_state(state(model), before)


def test_a_state_dict_rewires_every_floating_tensor_with_two_or_more_dims():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Linear(8, 5))
    sd = model.state_dict()
    before = {k: v.clone() for k, v in sd.items()}
    r = parewire.rewire_model(sd, seed=3)
    assert [x.name for x in r.rewired] == ["0.weight", "2.weight"]
    assert [x.name for x in r] == ["0.weight", "2.weight"]  # 1-D and 0-D entries are not reported
    assert parewire.rewire_model(sd, layers="1.running_*", seed=3)["1.running_var"].skipped == "1-D"
    for x in r.rewired:  # the state_dict shares storage with the model
        np.testing.assert_array_equal(bits(model.state_dict()[x.name]), bits(expected_rewire(before[x.name], x.seed)))
    assert [x.name for x in parewire.rewire_model(sd, layers="2.*", seed=3).rewired] == ["2.weight"]
    with pytest.raises(TypeError, match="name patterns"):
        parewire.rewire_model(sd, layers=nn.Linear)


# -- init and stabilize ---------------------------------------------------------------------


@pytest.mark.parametrize("init", sorted(INITIALIZERS))
def test_every_init_name_initialises_from_the_parameter_seed_then_rewires(init):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(32, 64, 3), nn.Linear(64, 48))
    before = state(model)
    report = parewire.rewire_model(model, init=init, seed=7)
    assert report.init == init
    for r in report.rewired:
        # what the docs promise: init from a generator seeded by derive_seed(seed, "init"), then pa_rewire_
        assert r.seed is not None and r.before is not None and r.after is not None
        w = torch.empty_like(before[r.name])
        INITIALIZERS[init](w, generator=torch.Generator().manual_seed(derive_seed(r.seed, "init")))
        np.testing.assert_array_equal(bits(model.state_dict()[r.name]), bits(expected_rewire(w, r.seed)))
        # rewiring lowers both strength variances for the standard inits
        assert r.after.in_var < r.before.in_var and r.after.out_var < r.before.out_var
        assert r.init_seconds > 0
    np.testing.assert_array_equal(bits(model[0].bias), bits(before["0.bias"]))  # biases are left alone


def test_trailing_underscore_and_callable_init_match_the_name():
    results = []
    for init in ("orthogonal", "orthogonal_", nn.init.orthogonal_):
        model = small_net()
        parewire.rewire_model(model, init=init, seed=3)
        results.append(state(model))
    assert_same_state(results[0], results[1])
    # a callable draws from torch's global RNG, seeded the same way for each parameter
    assert_same_state(results[0], results[2])


def test_callable_init_is_reproducible_and_leaves_the_global_rng_alone():
    init = functools.partial(nn.init.normal_, std=0.05)
    a, b = small_net(), small_net()
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    parewire.rewire_model(a, init=init, seed=1)
    assert torch.equal(torch.rand(3), expected_next)
    parewire.rewire_model(b, init=init, seed=1)
    assert_same_state(state(a), state(b))


def test_stabilize_keeps_the_best_of_k_draws_before_rewiring():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(8, 16, 3), nn.Linear(16, 12))
    report = parewire.rewire_model(model, init="kaiming_normal", stabilize=5, seed=11)
    assert report.stabilize == 5
    for r in report.rewired:
        w = torch.empty_like(model.state_dict()[r.name])
        assert r.seed is not None
        g = torch.Generator().manual_seed(derive_seed(r.seed, "init"))
        parewire.stabilize_strength_(w, functools.partial(nn.init.kaiming_normal_, generator=g), 5)
        assert parewire.strength_stats(w) == r.before
        np.testing.assert_array_equal(bits(model.state_dict()[r.name]), bits(expected_rewire(w, r.seed)))


def test_bad_init_and_stabilize_arguments():
    model = small_net()
    before = state(model)
    with pytest.raises(ValueError, match="stabilize=3 needs an initializer"):
        parewire.rewire_model(model, stabilize=3)
    with pytest.raises(ValueError, match=r"unknown init 'glorot'.*orthogonal"):
        parewire.rewire_model(model, init="glorot")
    with pytest.raises(TypeError, match="init must be"):
        parewire.rewire_model(model, init=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="stabilize must be a non-negative int"):
        parewire.rewire_model(model, init="normal", stabilize=-1)
    with pytest.raises(TypeError, match="stabilize"):
        parewire.rewire_model(model, init="normal", stabilize=2.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown sampler"):
        parewire.rewire_model(model, sampler="slow")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seed must be non-negative"):
        parewire.rewire_model(model, seed=-1)
    with pytest.raises(ValueError, match="workers"):
        parewire.rewire_model(model, workers=0)
    with pytest.raises(TypeError, match=r"nn\.Module or a state_dict"):
        parewire.rewire_model(torch.randn(3, 3))  # type: ignore[arg-type]
    assert_same_state(state(model), before)


# -- seeds and threads ------------------------------------------------------------------------


@pytest.mark.parametrize("init", [None, "orthogonal", functools.partial(nn.init.uniform_, a=-0.1, b=0.1)])
@pytest.mark.parametrize("sampler", sorted(parewire.functional.SAMPLERS))
def test_results_are_bit_identical_for_any_number_of_workers(init, sampler):
    results = []
    for workers in (1, 2, 4):
        torch.manual_seed(0)
        model = nn.Sequential(*[nn.Linear(40, 40) for _ in range(6)], nn.Conv2d(4, 8, 3))
        report = parewire.rewire_model(
            model, init=init, stabilize=2 if init else 0, seed=21, sampler=sampler, workers=workers
        )
        assert report.workers == workers
        results.append(state(model))
    assert_same_state(results[0], results[1])
    assert_same_state(results[0], results[2])


def test_unseeded_calls_follow_torch_manual_seed_and_generators():
    a, b, c = small_net(), small_net(), small_net()
    torch.manual_seed(42)
    ra = parewire.rewire_model(a)
    rc = parewire.rewire_model(c, generator=torch.Generator().manual_seed(42))
    assert rc.seed == ra.seed
    assert_same_state(state(a), state(c))
    # the seed comes from the generator's state, which a call does not advance:
    # a second call at the same state is told apart (see tests/test_seeding.py)
    rb = parewire.rewire_model(b)
    assert rb.seed != ra.seed


# -- all or nothing ----------------------------------------------------------------------------


def test_non_finite_weights_are_found_before_anything_is_written():
    model = small_net()
    with torch.no_grad():
        model[5].weight[0, 0] = float("nan")
    before = state(model)
    with pytest.raises(ValueError, match=r"'5\.weight' holds NaN or Inf"):
        parewire.rewire_model(model, seed=0)
    assert_same_state(state(model), before)


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
@pytest.mark.parametrize("restore", ["memory", "disk"])
def test_a_failing_initializer_restores_every_parameter(workers, error, restore):
    model = nn.Sequential(*[nn.Linear(30, 30) for _ in range(8)])
    before = state(model)
    calls = []

    def flaky(t):
        calls.append(1)
        if len(calls) == 5:
            raise error("initializer exploded")
        nn.init.normal_(t)

    with pytest.raises(error, match="initializer exploded"):
        parewire.rewire_model(model, init=flaky, seed=0, workers=workers, restore=restore)
    assert len(calls) >= 5
    assert_same_state(state(model), before)


def test_an_initializer_that_replaces_storage_is_undone_everywhere():
    model = nn.Sequential(nn.Linear(10, 10), nn.Linear(10, 10))
    before = state(model)
    ptrs = [p.data_ptr() for p in model.parameters()]

    def swapper(t):
        t.data = torch.zeros_like(t)

    with pytest.raises(RuntimeError, match="in place"):
        parewire.rewire_model(model, init=swapper, seed=0, restore="memory")
    assert_same_state(state(model), before)
    assert [p.data_ptr() for p in model.parameters()] == ptrs


# -- report -------------------------------------------------------------------------------------


@pytest.mark.parametrize("have_tqdm", [True, False])
def test_progress_bar_is_optional(monkeypatch, capsys, have_tqdm):
    if have_tqdm:
        pytest.importorskip("tqdm")
    else:
        monkeypatch.setitem(sys.modules, "tqdm", None)
        monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    a, b = small_net(), small_net()
    parewire.rewire_model(a, seed=0, progress=True, workers=2)
    parewire.rewire_model(b, seed=0)
    assert_same_state(state(a), state(b))
    err = capsys.readouterr().err
    assert ("4/4" in err) == have_tqdm


# -- model.apply -----------------------------------------------------------------------------------


def test_rewirer_works_with_model_apply_and_reports():
    model = nn.Sequential(nn.Linear(12, 10), nn.ReLU(), nn.Sequential(nn.Linear(10, 8), nn.LayerNorm(8)))
    cast(nn.Sequential, model[2])[0].weight.requires_grad_(False)
    twin = nn.Sequential(nn.Linear(12, 10), nn.ReLU(), nn.Sequential(nn.Linear(10, 8), nn.LayerNorm(8)))
    twin.load_state_dict(model.state_dict())
    cast(nn.Sequential, twin[2])[0].weight.requires_grad_(False)
    before = state(model)

    rw = parewire.rewirer(init="xavier_uniform", seed=4)
    model.apply(rw)
    assert [r.name for r in rw.report.records] == ["Linear#0.weight", "Linear#1.weight"]
    assert rw.report["Linear#0.weight"].rewired and rw.report["Linear#0.weight"].seed == derive_seed(
        4, "Linear#0.weight"
    )
    assert rw.report["Linear#1.weight"].skipped == "frozen (requires_grad=False)"
    # apply visits modules depth first in order: model[0] is Linear #0, model[2][0] is #1
    seed = derive_seed(4, "Linear#0.weight")
    w = torch.empty(10, 12)
    nn.init.xavier_uniform_(w, generator=torch.Generator().manual_seed(derive_seed(seed, "init")))
    np.testing.assert_array_equal(bits(model[0].weight), bits(expected_rewire(w, seed)))
    np.testing.assert_array_equal(bits(cast(nn.Sequential, model[2])[0].weight), bits(before["2.0.weight"]))
    for k in ("2.1.weight", "2.1.bias", "0.bias"):
        np.testing.assert_array_equal(bits(model.state_dict()[k]), bits(before[k]))

    rw2 = parewire.rewirer(init="xavier_uniform", seed=4)
    twin.apply(rw2)
    assert_same_state(state(model), state(twin))
    assert "rewired 1 of 2" in rw.report.summary()


def test_rewirer_rejects_non_type_selectors():
    with pytest.raises(TypeError, match="module types"):
        parewire.rewirer(layers="*.weight")  # type: ignore[arg-type]


# -- real models (torchvision is optional) -----------------------------------------------------------


def test_resnet18_every_conv_and_fc_weight_is_a_rewired_permutation():
    tv = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    model = tv.models.resnet18(weights=None)
    before = state(model)
    report = parewire.rewire_model(model, seed=0)
    convs = [n + ".weight" for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    assert [r.name for r in report.rewired] == convs + ["fc.weight"]
    assert report.skipped == [] and report.not_considered == []
    after = model.state_dict()
    for r in report.rewired:
        assert is_permutation(after[r.name], before[r.name]) and not torch.equal(after[r.name], before[r.name])
        if r.name in convs:
            assert r.before is not None and r.after is not None
            assert r.after.in_var < r.before.in_var and r.after.out_var < r.before.out_var
    for k, v in before.items():
        if k not in report.seeds:
            np.testing.assert_array_equal(bits(after[k]), bits(v), err_msg=k)
    r = report["layer4.1.conv2.weight"]
    np.testing.assert_array_equal(bits(after[r.name]), bits(expected_rewire(before[r.name], r.seed)))
    assert report.variance_reduction is not None and report.variance_reduction > 0.8


def test_vision_transformer_linear_layers_and_zero_initialised_head():
    tv = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    model = tv.models.VisionTransformer(
        image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64, num_classes=10
    )
    report = parewire.rewire_model(model, init="xavier_uniform", seed=1)
    names = [r.name for r in report.rewired]
    assert names[0] == "conv_proj.weight" and names[-1] == "heads.head.weight"
    assert "encoder.layers.encoder_layer_1.self_attention.out_proj.weight" in names
    assert "encoder.layers.encoder_layer_1.mlp.3.weight" in names and len(names) == 10
    assert "encoder.layers.encoder_layer_0.self_attention.in_proj_weight" in names
    assert {r.name: r.skipped for r in report.not_considered} == {
        "class_token": "VisionTransformer",
        "encoder.pos_embedding": "Encoder",
    }

    zeros = nn.Linear(32, 10)
    nn.init.zeros_(zeros.weight)
    r = parewire.rewire_model(zeros, seed=0)["weight"]
    assert (
        r.before is not None and r.before.in_var == 0 and r.variance_reduction is None
    )  # nothing to reduce, no division by zero


def test_mobilenet_depthwise_convolutions_are_rewired():
    tv = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    model = tv.models.mobilenet_v3_small(weights=None)
    depthwise = {n + ".weight" for n, m in model.named_modules() if isinstance(m, nn.Conv2d) and m.groups > 1}
    assert depthwise
    before = state(model)
    report = parewire.rewire_model(model, init="kaiming_normal", seed=2, sampler="fast", workers=2)
    rewired = {r.name: r for r in report.rewired}
    assert depthwise <= set(rewired)
    for n in depthwise:
        r = rewired[n]
        assert r.before is not None and r.after is not None
        assert r.shape[1] == 1 and r.before.cols == r.shape[2] * r.shape[3]
        assert r.after.in_var < r.before.in_var and r.after.out_var < r.before.out_var
    assert report.variance_reduction is not None
    assert math.isfinite(report.variance_reduction) and report.variance_reduction > 0.5
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items() if "bn" in k or "running" in k)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_model_is_rewired_in_place_like_on_the_cpu():
    cpu = small_net()
    gpu = small_net().cuda()
    ptrs = [p.data_ptr() for p in gpu.parameters()]
    parewire.rewire_model(cpu, seed=5)
    report = parewire.rewire_model(gpu, seed=5, workers=2)
    assert all(r.device.startswith("cuda") for r in report.rewired)
    assert [p.data_ptr() for p in gpu.parameters()] == ptrs
    assert_same_state(state(cpu), {k: v.cpu() for k, v in state(gpu).items()})
    gpu_init = small_net().cuda()
    parewire.rewire_model(gpu_init, init="orthogonal", stabilize=2, seed=5, workers=2)
    again = small_net().cuda()
    parewire.rewire_model(again, init="orthogonal", stabilize=2, seed=5, workers=1)
    assert_same_state(state(gpu_init), state(again))


@pytest.mark.parametrize("sampler", sorted(parewire.functional.SAMPLERS))
def test_unseeded_runs_use_independent_passes_and_seeded_runs_match_pa_rewire(sampler):
    """Seeded: each parameter is pa_rewire_(w, seed=record.seed).  Unseeded: the column pass
    continues the row pass's stream (the reference's unseeded distribution), for both samplers."""
    from parewire import _bridge
    from parewire.seeding import seed_words

    model = small_net()
    before = state(model)
    seeded = parewire.rewire_model(model, seed=4, sampler=sampler)
    for r in seeded.rewired:
        np.testing.assert_array_equal(
            bits(model.state_dict()[r.name]), bits(expected_rewire(before[r.name], r.seed, sampler))
        )
    model = small_net()
    torch.manual_seed(0)
    unseeded = parewire.rewire_model(model, sampler=sampler)
    code = parewire.functional.SAMPLERS[sampler]
    for r in unseeded.rewired:
        w = before[r.name].clone()
        _bridge.rewire(w, seed_words(r.seed), passes=2, sampler=code, reseed=False)
        np.testing.assert_array_equal(bits(model.state_dict()[r.name]), bits(w))
        if sampler == "numpy":  # differs from the coupled passes of a seeded call
            assert not torch.equal(w, expected_rewire(before[r.name], r.seed, sampler))


def test_the_last_job_gets_the_threads_no_worker_is_using(monkeypatch):
    """A one-layer model, or the tail of a model: the kernel may use the idle workers' threads."""
    seen = []
    real = parewire._bridge.rewire

    def spy(w, seed, **kwargs):
        seen.append((tuple(w.shape), kwargs["threads"]))
        return real(w, seed, **kwargs)

    monkeypatch.setattr(parewire._bridge, "rewire", spy)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    big = nn.Linear(2048, 2048, bias=False)
    parewire.rewire_model(big, seed=0, workers=None)
    assert seen == [((2048, 2048), min(2, parewire._runner.default_workers(1 << 30)))]
    seen.clear()
    parewire.rewire_model(big, seed=0, workers=1)  # one thread was asked for
    assert seen == [((2048, 2048), 1)]
    seen.clear()
    parewire.rewire_model(nn.Linear(64, 64), seed=0, workers=4)  # small: no second thread, it would not pay
    assert seen == [((64, 64), 1)]
    assert parewire.functional.default_threads(torch.empty(2048, 1024, 2)) == 2
    assert parewire.functional.default_threads(torch.empty(512, 512, 3, 3)) == 1


def test_results_do_not_depend_on_the_threads_given_to_the_tail():
    torch.manual_seed(0)
    a, b = nn.Linear(2048, 2048, bias=False), nn.Linear(2048, 2048, bias=False)
    b.load_state_dict(a.state_dict())
    parewire.rewire_model(a, seed=3, workers=1, sampler="fast")
    parewire.rewire_model(b, seed=3, workers=2, sampler="fast")
    assert torch.equal(a.weight, b.weight)
