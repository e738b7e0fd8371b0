"""The model layer's inventory: identity by storage, orientation by output neurons,
stable names, and a report that accounts for every parameter with >= 2 dimensions."""

import functools
import os
import warnings
from typing import TYPE_CHECKING, cast

import numpy as np
import pytest
import torch
from _helpers import bits, present
from torch import nn

import parewire
from parewire.seeding import derive_seed

if TYPE_CHECKING:
    from torch.distributed.tensor import DTensor


def state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def raw_bytes(t):
    """Every byte of a tensor's whole storage (catches writes outside the view too)."""
    return torch.empty(0, dtype=torch.uint8).set_(t.untyped_storage()).clone().numpy()


def by_hand(before, seed, out_dim=0, sampler="numpy"):
    w = before.clone()
    parewire.pa_rewire_(w.movedim(out_dim, 0), seed=seed, sampler=sampler)
    return w


class Views(nn.Module):
    """Parameters that are views of one storage."""

    def __init__(self, base, *slices):
        super().__init__()
        for i, s in enumerate(slices):
            self.register_parameter(f"p{i}", nn.Parameter(s(base)))


# -- identity --------------------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2, 4])
@pytest.mark.parametrize(
    "views",
    [
        [lambda b: b[:192], lambda b: b[96:288], lambda b: b[200:], lambda b: b[:, :64]],  # overlapping rows
        [lambda b: b, lambda b: b.T],  # the same memory seen two ways
        [lambda b: b[:, :200], lambda b: b[:, 100:]],  # overlapping columns
        [lambda b: b[:200], lambda b: b.view(-1)[384 * 100 :].view(-1, 384)],  # overlapping, other offsets
    ],
)
def test_overlapping_views_are_refused_before_anything_is_written(workers, views):
    for trial in range(20):
        base = torch.randn(384, 384, generator=torch.Generator().manual_seed(trial))
        model = Views(base, *views)
        before = raw_bytes(base)
        with pytest.raises(ValueError, match=r"parameters 'p\d' \(.*\) and 'p\d' .*different views that share memory"):
            parewire.rewire_model(model, layers="*", seed=trial, workers=workers)
        np.testing.assert_array_equal(raw_bytes(base), before)


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_identical_views_are_one_parameter_and_disjoint_views_are_independent(workers):
    for trial in range(20):
        base = torch.randn(64, 48, generator=torch.Generator().manual_seed(trial))
        expected = base.clone()
        # p0 and p1: the same view through two Parameter objects; p2/p3: disjoint halves;
        # p4/p5: interleaved columns (overlapping byte ranges, no shared element)
        model = Views(
            base,
            lambda b: b[:32],
            lambda b: b[:32],
            lambda b: b[32:48],
            lambda b: b[48:],
        )
        other = torch.randn(20, 30, generator=torch.Generator().manual_seed(100 + trial))
        other_expected = other.clone()
        model.register_parameter("p4", nn.Parameter(other[:, ::2]))
        model.register_parameter("p5", nn.Parameter(other[:, 1::2]))
        report = parewire.rewire_model(model, layers="*", seed=trial, workers=workers)
        assert [(r.name, r.status) for r in report] == [
            ("p0", "rewired"),
            ("p1", "tied"),
            ("p2", "rewired"),
            ("p3", "rewired"),
            ("p4", "rewired"),
            ("p5", "rewired"),
        ]
        assert report["p1"].skipped == "tied to p0"
        for name, sl in (("p0", slice(0, 32)), ("p2", slice(32, 48)), ("p3", slice(48, None))):
            expected[sl] = by_hand(expected[sl], derive_seed(trial, name))
        np.testing.assert_array_equal(bits(base), bits(expected))
        for name, sl in (("p4", slice(0, None, 2)), ("p5", slice(1, None, 2))):
            other_expected[:, sl] = by_hand(other_expected[:, sl], derive_seed(trial, name))
        np.testing.assert_array_equal(bits(other), bits(other_expected))


@pytest.mark.parametrize("workers", [1, 2])
def test_an_expanded_parameter_is_a_named_value_error_and_nothing_is_written(workers):
    model = nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 6))
    model[1].weight = nn.Parameter(torch.randn(1, 8).expand(6, 8))
    before = state(model)
    with pytest.raises(ValueError, match=r"'1\.weight' has elements that overlap in memory"):
        parewire.rewire_model(model, seed=0, workers=workers)
    for k, v in state(model).items():
        np.testing.assert_array_equal(bits(v), bits(before[k]), err_msg=k)


def test_excluding_one_name_of_a_tied_tensor_protects_every_name():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 16, bias=False), nn.Linear(16, 16, bias=False))
    model[1].weight = model[0].weight
    before = cast(nn.Linear, model[0]).weight.detach().clone()
    report = parewire.rewire_model(model, exclude="1.weight", seed=0)
    assert report.rewired == []
    assert report["0.weight"].skipped == "excluded (tied to 1.weight)"
    assert torch.equal(cast(nn.Linear, model[0]).weight, before)


def test_a_module_shared_under_two_names_is_rewired_once():
    torch.manual_seed(0)
    shared = nn.Linear(12, 12)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    before = shared.weight.detach().clone()
    report = parewire.rewire_model(model, seed=4)
    assert [(r.name, r.status) for r in report] == [("0.weight", "rewired"), ("2.weight", "tied")]
    np.testing.assert_array_equal(bits(shared.weight), bits(by_hand(before, derive_seed(4, "0.weight"))))


def test_a_failure_restores_parameters_that_are_views_of_one_storage():
    base = torch.randn(40, 30)
    original = raw_bytes(base)
    model = Views(base, lambda b: b[:10], lambda b: b[10:20], lambda b: b[20:])

    def boom(t):
        if t.shape[0] == 20:
            raise RuntimeError("boom")
        nn.init.normal_(t)

    for workers in (1, 2, 4):
        with pytest.raises(RuntimeError, match=r"parameter 'p2'.*boom"):
            parewire.rewire_model(model, layers="*", init=boom, seed=0, workers=workers, restore="memory")
        np.testing.assert_array_equal(raw_bytes(base), original)


# -- orientation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cls,shape",
    [(nn.ConvTranspose1d, (6, 10, 3)), (nn.ConvTranspose2d, (6, 10, 3, 3)), (nn.ConvTranspose3d, (4, 6, 2, 2, 2))],
)
def test_conv_transpose_rows_are_output_channels(cls, shape):
    torch.manual_seed(0)
    layer = cls(shape[0], shape[1], shape[2:])
    before = layer.weight.detach().clone()
    report = parewire.rewire_model(layer, seed=3)
    r = report["weight"]
    assert r.rewired and r.out_dim == 1 and r.module == cls.__name__
    assert r.before is not None
    assert r.before.rows == shape[1] and r.before.cols == before.numel() // shape[1]
    assert r.before == parewire.strength_stats(before.movedim(1, 0))
    np.testing.assert_array_equal(bits(layer.weight), bits(by_hand(before, r.seed, out_dim=1)))
    # and not what rewiring along dimension 0 gives
    assert not torch.equal(layer.weight, by_hand(before, r.seed))


def _fake_hf_conv1d():
    """A class that looks like transformers' Conv1D by its qualified name, without transformers."""

    class Conv1D(nn.Module):
        def __init__(self, nf, nx):
            super().__init__()
            self.nf = nf
            self.weight = nn.Parameter(torch.randn(nx, nf))
            self.bias = nn.Parameter(torch.zeros(nf))

    Conv1D.__module__ = "transformers.pytorch_utils"
    Conv1D.__qualname__ = "Conv1D"
    return Conv1D


def test_gpt2_style_conv1d_is_recognised_without_transformers_and_rewired_by_output():
    torch.manual_seed(0)
    layer = _fake_hf_conv1d()(nf=24, nx=16)  # weight [in=16, out=24]
    before = layer.weight.detach().clone()
    r = parewire.rewire_model(nn.Sequential(layer), seed=1)["0.weight"]
    assert r.rewired and r.before is not None and r.out_dim == 1 and (r.before.rows, r.before.cols) == (24, 16)
    np.testing.assert_array_equal(bits(layer.weight), bits(by_hand(before, r.seed, out_dim=1)))


def test_gpt2_from_transformers_rewires_every_block():
    transformers = pytest.importorskip("transformers")
    cfg = transformers.GPT2Config(
        n_layer=2, n_embd=32, n_head=2, vocab_size=64, n_positions=16, bos_token_id=0, eos_token_id=0
    )
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(cfg)
    before = state(model)
    report = parewire.rewire_model(model, seed=2)
    blocks = [n for n in before if ".h." in n and n.endswith("weight") and before[n].ndim == 2]
    assert len(blocks) == 8
    for n in blocks:
        r = report[n]
        assert r.rewired and r.out_dim == 1 and r.module == "Conv1D"
        np.testing.assert_array_equal(bits(model.state_dict()[n]), bits(by_hand(before[n], r.seed, out_dim=1)))
    assert report["lm_head.weight"].rewired
    assert report["transformer.wte.weight"].skipped == "tied to lm_head.weight"
    assert report["transformer.wpe.weight"].status == "not considered"


def test_register_layer_adds_a_rule_and_the_registry_is_listed():
    class Mixer(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(10, 14))
            self.gate = nn.Parameter(torch.randn(14, 3))

    torch.manual_seed(0)
    m = Mixer()
    report = parewire.rewire_model(nn.Sequential(m), seed=0)
    assert {r.name: r.status for r in report} == {"0.w": "not considered", "0.gate": "not considered"}
    try:
        parewire.register_layer(Mixer, params="w", out_dim=1)
        assert parewire.registered_layers()[f"{Mixer.__module__}.{Mixer.__qualname__}"] == parewire.LayerRule(("w",), 1)
        before = m.w.detach().clone()
        report = parewire.rewire_model(nn.Sequential(m), seed=0)
        assert report["0.w"].rewired and present(report["0.w"].before).rows == 14
        assert report["0.gate"].skipped == "Mixer.gate is not in its layer rule"
        np.testing.assert_array_equal(bits(m.w), bits(by_hand(before, report["0.w"].seed, out_dim=1)))
    finally:
        parewire._registry._RULES.pop(Mixer, None)
    with pytest.raises(TypeError, match="module_type"):
        parewire.register_layer(int)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="params"):
        parewire.register_layer(Mixer, params=[])
    with pytest.raises(ValueError, match=r"package\.module\.Class"):
        parewire.register_layer("Conv1D")


def test_a_rule_whose_output_dimension_does_not_fit_is_an_error_before_any_write():
    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.randn(5, 6))

    model = nn.Sequential(nn.Linear(4, 4), Odd())
    before = state(model)
    try:
        parewire.register_layer(Odd, out_dim=2)
        with pytest.raises(ValueError, match=r"'1\.weight'.*dimension 2.*register_layer"):
            parewire.rewire_model(model, seed=0)
    finally:
        parewire._registry._RULES.pop(Odd, None)
    for k, v in state(model).items():
        assert torch.equal(v, before[k])


# -- what is not selected ----------------------------------------------------------------------------


def test_parameters_no_rule_selects_are_reported_with_their_reason():
    torch.manual_seed(0)
    model = nn.ModuleDict(
        {
            "emb": nn.Embedding(10, 8),
            "lstm": nn.LSTM(8, 6),
            "norm": nn.LayerNorm(6),
            "wn": nn.utils.parametrizations.weight_norm(nn.Linear(6, 5)),
            "fc": nn.Linear(5, 4),
        }
    )
    report = parewire.rewire_model(model, seed=0)
    got = {r.name: (r.status, r.skipped) for r in report}
    assert got["fc.weight"] == ("rewired", None)
    assert got["emb.weight"] == ("not considered", "Embedding")
    assert got["lstm.weight_ih_l0"] == got["lstm.weight_hh_l0"] == ("not considered", "LSTM")
    parametrized = ("not considered", "parametrized: rewire before registering the parametrization")
    assert got["wn.parametrizations.weight.original1"] == parametrized
    assert got["wn.parametrizations.weight.original0"] == parametrized  # weight_norm's g is [5, 1]
    assert not any(n.startswith("norm") or n.endswith("bias") for n in got)  # 1-D: never rewired, not listed
    assert "not considered 5: 1 Embedding; 2 LSTM; 2 parametrized" in str(report)


def test_an_empty_selection_warns_and_names_the_selector():
    model = nn.Sequential(nn.Embedding(4, 4), nn.LayerNorm(4))
    with pytest.warns(UserWarning, match=r"no parameter matched the default selection"):
        report = parewire.rewire_model(model, seed=0)
    assert [r.status for r in report] == ["not considered"]
    with pytest.warns(UserWarning, match=r"no parameter matched layers=\['nomatch\*'\]"):
        parewire.rewire_model(nn.Linear(3, 3), layers=["nomatch*"], seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parewire.rewire_model(nn.Linear(3, 3), seed=0)


# -- names -----------------------------------------------------------------------------------------


def small_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 5), nn.Linear(5, 5))


def test_torch_compile_and_data_parallel_do_not_change_names_or_seeds():
    plain = small_net()
    expected_report = parewire.rewire_model(plain, seed=3)
    expected = state(plain)
    for wrap in (torch.compile, nn.DataParallel, lambda m: torch.compile(nn.DataParallel(m))):
        model = small_net()
        # torch.compile's stub returns a Callable; given a module it returns one (OptimizedModule)
        report = parewire.rewire_model(cast(nn.Module, wrap(model)), seed=3)
        assert [r.name for r in report] == [r.name for r in expected_report]
        assert report.model == "Sequential"
        for k, v in state(model).items():
            np.testing.assert_array_equal(bits(v), bits(expected[k]), err_msg=k)
    # a compiled submodule, too
    model = small_net()
    model[3] = torch.compile(model[3])
    parewire.rewire_model(model, seed=3)
    np.testing.assert_array_equal(bits(model[3]._orig_mod.weight), bits(expected["3.weight"]))


def test_distributed_data_parallel_names_are_the_plain_models(tmp_path):
    dist = pytest.importorskip("torch.distributed")
    if not dist.is_available() or dist.is_initialized():
        pytest.skip("needs a fresh torch.distributed")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        plain = small_net()
        parewire.rewire_model(plain, seed=5)
        model = small_net()
        report = parewire.rewire_model(nn.parallel.DistributedDataParallel(model), seed=5)
        assert report.rewired[0].name == "0.weight"
        for k, v in state(model).items():
            np.testing.assert_array_equal(bits(v), bits(plain.state_dict()[k]), err_msg=k)
    finally:
        dist.destroy_process_group()


def test_state_dict_keys_of_wrapped_models_give_the_same_seeds():
    plain = small_net()
    sd = {k: v.clone() for k, v in plain.state_dict().items()}
    wrapped = {f"module._orig_mod.{k}": v.clone() for k, v in sd.items()}
    a = parewire.rewire_model(sd, seed=9)
    b = parewire.rewire_model(wrapped, seed=9)
    assert [r.name for r in a.rewired] == [r.name for r in b.rewired] == ["0.weight", "3.weight", "4.weight"]
    for k in sd:
        assert torch.equal(sd[k], wrapped[f"module._orig_mod.{k}"])


# -- init arguments, one driver ------------------------------------------------------------------------


def test_initializer_arguments_are_passed_and_recorded():
    model = nn.Sequential(nn.Conv2d(4, 8, 3), nn.Linear(8, 6))
    init = ("kaiming_normal", {"mode": "fan_out", "nonlinearity": "relu"})
    report = parewire.rewire_model(model, init=init, seed=2)
    assert report.init == "kaiming_normal(mode='fan_out', nonlinearity='relu')"
    for r in report.rewired:
        w = torch.empty(r.shape)
        assert r.seed is not None
        g = torch.Generator().manual_seed(derive_seed(r.seed, "init"))
        nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu", generator=g)
        np.testing.assert_array_equal(bits(model.state_dict()[r.name]), bits(by_hand(w, r.seed)))
    with pytest.raises(TypeError, match=r"init 'kaiming_normal' does not accept \{'fan': 1\}"):
        parewire.rewire_model(model, init=("kaiming_normal", {"fan": 1}))
    with pytest.raises(TypeError, match=r"init as a tuple"):
        parewire.rewire_model(model, init=("kaiming_normal", "fan_out"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="do not pass generator"):
        parewire.rewire_model(model, init=("normal", {"generator": None}))
    a, b = nn.Linear(6, 6), nn.Linear(6, 6)
    parewire.rewire_model(a, init=(nn.init.normal_, {"std": 0.01}), seed=1)
    parewire.rewire_model(b, init=functools.partial(nn.init.normal_, std=0.01), seed=1)
    assert torch.equal(a.weight, b.weight) and a.weight.std() < 0.05


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_named_initializers_work_on_16_bit_weights_by_drawing_in_float32(dtype):
    model = nn.Sequential(nn.Linear(12, 10), nn.Linear(10, 8)).to(dtype)
    report = parewire.rewire_model(model, init="orthogonal", seed=0)
    for r in report.rewired:
        w = torch.empty(r.shape)
        assert r.seed is not None
        nn.init.orthogonal_(w, generator=torch.Generator().manual_seed(derive_seed(r.seed, "init")))
        np.testing.assert_array_equal(bits(model.state_dict()[r.name]), bits(by_hand(w.to(dtype), r.seed)))


def test_conv_transpose_initialisers_see_output_neurons_on_dimension_zero():
    layer = nn.ConvTranspose2d(6, 10, 3)  # weight [6, 10, 3, 3]
    report = parewire.rewire_model(layer, init="kaiming_uniform", seed=1)
    r = report["weight"]
    w = torch.empty(10, 6, 3, 3)  # fan_in = 6 * 9 inputs per output channel
    assert r.seed is not None
    nn.init.kaiming_uniform_(w, generator=torch.Generator().manual_seed(derive_seed(r.seed, "init")))
    parewire.pa_rewire_(w, seed=r.seed)
    np.testing.assert_array_equal(bits(layer.weight), bits(w.movedim(0, 1)))


def test_rewirer_rewires_a_tied_weight_once_and_names_it_tied():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 10, bias=False), nn.Linear(10, 10, bias=False))
    model[1].weight = model[0].weight
    before = cast(nn.Linear, model[0]).weight.detach().clone()
    rw = parewire.rewirer(seed=6)
    model.apply(rw)
    assert [(r.name, r.status) for r in rw.report.records] == [
        ("Linear#0.weight", "rewired"),
        ("Linear#1.weight", "tied"),
    ]
    np.testing.assert_array_equal(bits(model[0].weight), bits(by_hand(before, derive_seed(6, "Linear#0.weight"))))


def test_stabilize_zero_with_init_does_not_run_the_stabilizer(monkeypatch):
    calls = []
    monkeypatch.setattr(parewire.functional, "stabilize_strength_", lambda *a, **k: calls.append(a))
    parewire.rewire_model(nn.Linear(8, 8), init="normal", seed=0)
    assert calls == []


def test_a_dtensor_without_group_is_refused_with_a_hint():
    dist = pytest.importorskip("torch.distributed")
    if not dist.is_available() or dist.is_initialized():
        pytest.skip("needs a fresh torch.distributed")
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Replicate, distribute_tensor

    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    store = dist.HashStore()
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        mesh = init_device_mesh("cpu", (1,))
        layer = nn.Linear(6, 6)
        layer.weight = nn.Parameter(distribute_tensor(layer.weight.detach(), mesh, [Replicate()]))
        before = cast("DTensor", layer.weight).full_tensor().clone()
        with pytest.raises(ValueError, match=r"'weight' is a DTensor.*pass group="):
            parewire.rewire_model(layer, seed=0)
        assert torch.equal(cast("DTensor", layer.weight).full_tensor(), before)
    finally:
        dist.destroy_process_group()
