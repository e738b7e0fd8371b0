"""rewire_model on models others wrote: every torchvision classification model, and timm and
transformers models built from configs (nothing is downloaded).

Usage:
    python benchmarks/model_zoo.py                 # everything (about 15 minutes on 2 cores)
    python benchmarks/model_zoo.py --only resnet18 vit_b_16
    python benchmarks/model_zoo.py --skip-torchvision

Each model is built with its own initialisation (torch.manual_seed(0)) and
rewired with the defaults (sampler="numpy", restore="auto", workers = the
CPUs), in a fresh process.  For each model the table gives how many
parameters with >= 2 dimensions were rewired, tied, skipped and not
considered (with the reasons), the headline (strength-variance reduction
weighted by weights) and the wall time of rewire_model.  Results go to
benchmarks/results/model_zoo.{md,json}.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time
from typing import Any

from _env import ROOT, ChildFailed, cpu_name, git_commit, machine, run_child, write_results

RESULTS = ROOT / "benchmarks" / "results"


def builders() -> dict[str, Any]:
    out: dict[str, Any] = {}
    try:
        import torchvision

        for name in torchvision.models.list_models(module=torchvision.models):
            out[f"torchvision/{name}"] = ("torchvision", name)
    except ImportError:
        pass
    for name in (
        "vit_tiny_patch16_224",
        "convnext_atto",
        "efficientnet_b0",
        "swin_tiny_patch4_window7_224",
        "levit_128s",
        "mixer_s16_224",
        "nfnet_l0",
        "mobilevit_xxs",
    ):
        out[f"timm/{name}"] = ("timm", name)
    for name in ("gpt2", "bert", "llama", "t5", "vit"):
        out[f"transformers/{name}"] = ("transformers", name)
    return out


def build(kind: str, name: str) -> Any:
    import warnings

    import torch

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "torchvision":
            import torchvision

            return torchvision.models.get_model(name)
        if kind == "timm":
            import timm

            return timm.create_model(name, pretrained=False)
        import transformers as t

        small: dict[str, Any] = dict(
            hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024, vocab_size=8000
        )
        return {
            "gpt2": lambda: t.GPT2LMHeadModel(
                t.GPT2Config(n_layer=4, n_embd=256, n_head=4, vocab_size=8000, bos_token_id=0, eos_token_id=0)
            ),
            "bert": lambda: t.BertForMaskedLM(t.BertConfig(**small)),
            "llama": lambda: t.LlamaForCausalLM(t.LlamaConfig(num_key_value_heads=2, **small)),
            "t5": lambda: t.T5ForConditionalGeneration(
                t.T5Config(d_model=256, d_ff=1024, num_layers=4, num_heads=4, d_kv=64, vocab_size=8000)
            ),
            "vit": lambda: t.ViTForImageClassification(
                t.ViTConfig(**{k: v for k, v in small.items() if k != "vocab_size"})
            ),
        }[name]()


def child(kind: str, name: str) -> dict[str, Any]:
    import parewire

    model = build(kind, name)
    t0 = time.perf_counter()
    report = parewire.rewire_model(model, seed=0)
    seconds = time.perf_counter() - t0
    status = collections.Counter(r.status for r in report)
    reasons = collections.Counter(r.skipped for r in report if r.status in ("skipped", "not considered"))
    return {
        "status": dict(status),
        "reasons": dict(reasons),
        "weights": report.numel,
        "headline": report.variance_reduction,
        "median": report.median_reduction,
        "seconds": seconds,
        "restore": report.restore,
    }


def percent(x: Any) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="model names (without the library prefix)")
    parser.add_argument("--skip-torchvision", action="store_true")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(RESULTS), help="results folder")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return 0
    todo = builders()
    if args.only:
        todo = {k: v for k, v in todo.items() if k.split("/", 1)[1] in args.only}
    if args.skip_torchvision:
        todo = {k: v for k, v in todo.items() if not k.startswith("torchvision/")}
    rows: dict[str, Any] = {}
    t0 = time.perf_counter()
    for i, (label, (kind, name)) in enumerate(todo.items(), 1):
        try:
            rows[label] = run_child([__file__, "--child", kind, name])
        except ChildFailed as e:
            rows[label] = {"error": str(e)}
        print(f"{i}/{len(todo)} {label}: {rows[label]}", file=sys.stderr, flush=True)
    lines = [
        "# rewire_model on models others wrote",
        "",
        (
            f"{cpu_name()}, {os.cpu_count()} CPUs; commit {git_commit()}; `python benchmarks/model_zoo.py`; "
            f"{time.perf_counter() - t0:.0f} s in all. Defaults: sampler=numpy, restore=auto, seed=0."
        ),
        "",
        (
            "| model | rewired | tied | skipped | not considered | reasons (skipped, not considered) "
            "| weights rewired | headline | median layer | seconds |"
        ),
        "|---|--:|--:|--:|--:|---|--:|--:|--:|--:|",
    ]
    for label, r in rows.items():
        if "error" in r:
            lines.append(f"| {label} | error: {r['error'][:80]} | | | | | | | | |")
            continue
        s = r["status"]
        nc = ", ".join(f"{k}: {v}" for k, v in r["reasons"].items()) or ""
        lines.append(
            f"| {label} | {s.get('rewired', 0)} | {s.get('tied', 0)} | {s.get('skipped', 0)} | "
            f"{s.get('not considered', 0)} | {nc} | {r['weights']:,} | "
            f"{percent(r['headline'])} | {percent(r['median'])} | {r['seconds']:.2f} |"
        )
    write_results(args.out, "model_zoo", "\n".join(lines) + "\n", {"machine": machine(), "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
