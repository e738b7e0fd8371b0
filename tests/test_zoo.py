"""Models others wrote: every parameter of every torchvision model, timm and transformers
models built from configs, accounted for by the inventory (built on the meta device, so no
weights are allocated), plus real rewires of a few small ones.

The expected "not considered" reasons are listed per library: a new layer type that
nobody registered shows up here instead of being silently left alone.
"""

import collections
import contextlib
import warnings

import numpy as np
import pytest
import torch
from _helpers import bits
from torch import nn

import parewire
from parewire._inventory import build_inventory
from parewire._registry import rule_for

tv = pytest.importorskip("torchvision")


@contextlib.contextmanager
def quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def on_meta(build):
    """The model built on the meta device, or, where its constructor needs real tensors, on the
    CPU with uninitialised memory (nn.init turned off: only the layout matters here)."""
    with quiet():
        try:
            with torch.device("meta"):
                return build()
        except (NotImplementedError, RuntimeError):
            pass
        names = [n for n in dir(nn.init) if n.endswith("_") and not n.startswith("_")]
        saved = {n: getattr(nn.init, n) for n in names}
        try:
            for n in names:
                setattr(nn.init, n, lambda t, *a, **k: t)
            return build()
        finally:
            for n, f in saved.items():
                setattr(nn.init, n, f)


def check_accounts_for_every_parameter(model, allowed_not_considered):
    inventory = build_inventory(model)
    names = [e.name for e in inventory.entries]
    assert len(names) == len(set(names)), "a parameter is listed twice"
    expected = {n for n, p in model.named_parameters(remove_duplicate=False) if p.ndim >= 2}
    assert set(names) == expected
    for e in inventory.entries:
        assert e.status in ("rewire", "tied", "skipped", "not considered"), e
        if e.status != "rewire":
            assert e.reason, e
    modules = dict(model.named_modules(remove_duplicate=False))
    for e in inventory.entries:
        owner, _, pname = e.name.rpartition(".")
        rule = rule_for(modules[owner])
        if rule is not None and pname in rule.params:  # registered: selected (meta: skipped as such)
            assert e.status != "not considered", e
            if isinstance(modules[owner], (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
                assert e.out_dim == 1
    reasons = collections.Counter(e.reason for e in inventory.entries if e.status == "not considered")
    assert set(reasons) <= allowed_not_considered, reasons
    return inventory


# What torchvision's classification models hold besides registered layers: position
# embeddings and class tokens, relative-position bias tables, ConvNeXt's layer scale.
TORCHVISION_EXTRAS = {
    "VisionTransformer",
    "Encoder",
    "CNBlock",
    "ShiftedWindowAttention",
    "ShiftedWindowAttentionV2",
    "RelativePositionalMultiHeadAttention",
}


@pytest.mark.parametrize("name", tv.models.list_models(module=tv.models))
def test_every_torchvision_classification_model_accounts_for_every_parameter(name):
    model = on_meta(lambda: tv.models.get_model(name))
    inventory = check_accounts_for_every_parameter(model, TORCHVISION_EXTRAS)
    assert sum(e.status != "not considered" for e in inventory.entries) > 0


@pytest.mark.parametrize(
    "name",
    [
        "maskrcnn_resnet50_fpn",
        "keypointrcnn_resnet50_fpn",
        "fcn_resnet50",
        "raft_small",
        "mvit_v2_s",
        "swin3d_t",
        "r2plus1d_18",
    ],
)
def test_detection_segmentation_video_and_flow_models(name):
    model = on_meta(
        lambda: tv.models.get_model(
            name, weights=None, **({"weights_backbone": None} if "rcnn" in name or "fcn" in name else {})
        )
    )
    check_accounts_for_every_parameter(model, {"MultiscaleAttention", "ShiftedWindowAttention3d"})


def test_mask_rcnn_mask_predictor_conv_transpose_is_oriented_by_output_channels():
    with quiet():
        model = tv.models.detection.maskrcnn_resnet50_fpn(weights=None, weights_backbone=None)
    layer = model.roi_heads.mask_predictor.conv5_mask  # ConvTranspose2d(256, 256, 2, 2)
    before = layer.weight.detach().clone()
    report = parewire.rewire_model(model, layers="roi_heads.mask_predictor.*", seed=0)
    r = report["roi_heads.mask_predictor.conv5_mask.weight"]
    assert r.rewired and r.out_dim == 1 and r.module == "ConvTranspose2d"
    w = before.clone()
    parewire.pa_rewire_(w.movedim(1, 0), seed=r.seed)
    np.testing.assert_array_equal(bits(layer.weight), bits(w))


@pytest.mark.parametrize(
    "name",
    ["resnet18", "mobilenet_v3_small", "squeezenet1_1", "shufflenet_v2_x0_5", "regnet_x_400mf", "efficientnet_b0"],
)
def test_small_torchvision_models_are_rewired_for_real(name):
    torch.manual_seed(0)
    with quiet():
        model = tv.models.get_model(name)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = parewire.rewire_model(model, seed=1, sampler="fast")
    assert len(report.rewired) > 10 and report.not_considered == []
    after = model.state_dict()
    for r in report.rewired:
        assert np.array_equal(np.sort(bits(after[r.name]).ravel()), np.sort(bits(before[r.name]).ravel()))
    for k, v in before.items():
        if k not in report.seeds:
            assert torch.equal(after[k], v), k


# -- timm ------------------------------------------------------------------------------------------

TIMM_MODELS = [
    "vit_tiny_patch16_224",
    "convnext_atto",
    "resnet18d",
    "efficientnet_b0",
    "mobilenetv3_small_050",
    "swin_tiny_patch4_window7_224",
    "levit_128s",
    "mixer_s16_224",
    "beit_base_patch16_224",
    "eva02_tiny_patch14_224",
    "maxvit_tiny_tf_224",
    "nfnet_l0",
    "sequencer2d_s",
    "mobilevit_xxs",
    "fastvit_t8",
    "regnetx_002",
]
TIMM_EXTRAS = {
    "VisionTransformer",
    "WindowAttention",
    "Attention",
    "AttentionDownsample",
    "Beit",
    "Eva",
    "RelPosBiasTf",
    "ScaledStdConv2d.gain is not in its layer rule",
    "LSTM",
    "LayerScale2d",
}


@pytest.mark.parametrize("name", TIMM_MODELS)
def test_timm_models_account_for_every_parameter(name):
    timm = pytest.importorskip("timm")
    model = on_meta(lambda: timm.create_model(name, pretrained=False))
    check_accounts_for_every_parameter(model, TIMM_EXTRAS)


def test_a_timm_vit_is_rewired_for_real_and_attention_is_included():
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, depth=2, img_size=32, patch_size=8)
    report = parewire.rewire_model(model, seed=0)
    names = {r.name for r in report.rewired}
    assert "blocks.0.attn.qkv.weight" in names and "patch_embed.proj.weight" in names
    assert {r.name for r in report.not_considered} == {"cls_token", "pos_embed"}


# -- transformers (from configs: nothing is downloaded) -----------------------------------------------


def hf_models():
    transformers = pytest.importorskip("transformers")
    small = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, vocab_size=64)
    return {
        "gpt2": lambda: transformers.GPT2LMHeadModel(
            transformers.GPT2Config(
                n_layer=2, n_embd=32, n_head=2, vocab_size=64, n_positions=16, bos_token_id=0, eos_token_id=0
            )
        ),
        "bert": lambda: transformers.BertForMaskedLM(transformers.BertConfig(**small)),
        "llama": lambda: transformers.LlamaForCausalLM(transformers.LlamaConfig(num_key_value_heads=1, **small)),
        "t5": lambda: transformers.T5ForConditionalGeneration(
            transformers.T5Config(d_model=32, d_ff=64, num_layers=2, num_heads=2, d_kv=16, vocab_size=64)
        ),
        "vit": lambda: transformers.ViTForImageClassification(
            transformers.ViTConfig(image_size=32, patch_size=8, **{k: v for k, v in small.items() if k != "vocab_size"})
        ),
    }


HF_EXTRAS = {"Embedding", "ViTEmbeddings"}


@pytest.mark.parametrize("name", ["gpt2", "bert", "llama", "t5", "vit"])
def test_transformers_models_from_configs(name):
    build = hf_models()[name]
    model = on_meta(build)
    inventory = check_accounts_for_every_parameter(model, HF_EXTRAS)
    if name == "gpt2":
        convs = [e for e in inventory.entries if e.module_type == "Conv1D"]
        assert len(convs) == 8 and all(e.out_dim == 1 for e in convs)
    torch.manual_seed(0)
    with quiet():
        real = build()
    before = {n: p.detach().clone() for n, p in real.named_parameters(remove_duplicate=False)}
    report = parewire.rewire_model(real, seed=0, sampler="fast")
    assert len(report.rewired) >= 8
    params = dict(real.named_parameters(remove_duplicate=False))
    for r in report.rewired:
        w = params[r.name].detach()
        assert not torch.equal(w, before[r.name]), r.name
        assert np.array_equal(np.sort(bits(w).ravel()), np.sort(bits(before[r.name]).ravel())), r.name
    for r in report.skipped:  # a tied name (an input embedding tied to the head) points at a rewired one
        if r.status == "tied":
            first = (r.skipped or "").removeprefix("tied to ")
            assert report[first].rewired
            assert params[r.name] is params[first]
