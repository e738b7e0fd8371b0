"""A LLaMA-7B-shaped model on one workstation: time and memory of rewire_model.

Usage:
    python benchmarks/bench_big_model.py                   # the 7B shape, both runs
    python benchmarks/bench_big_model.py --layers 2        # a quick trial (same widths, 2 blocks)

Builds the model on the meta device (hidden 4096, intermediate 11008, 32
blocks, vocabulary 32000, bfloat16: 6.74e9 parameters, 13.5 GB), then
``to_empty(device="cpu")``, and runs, each in a fresh process:

1. ``rewire_model(model, init="kaiming_uniform", sampler="fast")`` with the
   default settings (``restore="auto"``, which keeps no copies when ``init``
   is given; workers = the CPUs);
2. the same with ``restore="disk"`` and an initializer that raises on the
   last parameter: every parameter must come back bit for bit (checked with a
   hash of every parameter's bytes before and after).

For each it prints wall time, peak RSS (VmHWM) and the peak above the
model itself, and writes benchmarks/results/big_model.{md,json}.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import sys
import time
from typing import Any

from _env import ROOT, cpu_name, git_commit, machine, run_child, write_results

RESULTS = ROOT / "benchmarks" / "results"


def rss(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field))


def build(layers: int):
    import torch
    from torch import nn

    hidden, inter, vocab = 4096, 11008, 32000

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.input_norm = nn.RMSNorm(hidden) if hasattr(nn, "RMSNorm") else nn.LayerNorm(hidden)
            self.q_proj, self.k_proj, self.v_proj, self.o_proj = (
                nn.Linear(hidden, hidden, bias=False) for _ in range(4)
            )
            self.post_norm = nn.RMSNorm(hidden) if hasattr(nn, "RMSNorm") else nn.LayerNorm(hidden)
            self.gate_proj = nn.Linear(hidden, inter, bias=False)
            self.up_proj = nn.Linear(hidden, inter, bias=False)
            self.down_proj = nn.Linear(inter, hidden, bias=False)

    class Llama(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed_tokens = nn.Embedding(vocab, hidden)
            self.layers = nn.ModuleList(Block() for _ in range(layers))
            self.norm = nn.RMSNorm(hidden) if hasattr(nn, "RMSNorm") else nn.LayerNorm(hidden)
            self.lm_head = nn.Linear(hidden, vocab, bias=False)

    with torch.device("meta"):
        model = Llama().to(torch.bfloat16)
    return model.to_empty(device="cpu")


def digests(model) -> dict[str, Any]:
    import torch

    return {
        n: hashlib.blake2b(p.detach().view(torch.uint8).numpy(), digest_size=16).hexdigest()
        for n, p in model.named_parameters()
    }


def child(kind: str, layers: int) -> dict[str, Any]:
    import torch
    from torch import nn

    import parewire

    model = build(layers)
    for p in model.parameters():  # touch every page, so RSS holds the whole model
        p.detach().view(torch.uint8).zero_()
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    start = rss("VmRSS:")
    out = {"kind": kind, "params": sum(p.numel() for p in model.parameters()), "model_bytes": size, "rss_before": start}
    t0 = time.perf_counter()
    if kind == "default":
        report = parewire.rewire_model(model, init="kaiming_uniform", sampler="fast")
        out.update(
            rewired=len(report.rewired),
            restore=report.restore,
            workers=report.workers,
            headline=report.variance_reduction,
        )
    else:
        before = digests(model)
        n = sum(1 for p in model.parameters() if p.ndim == 2) - 1  # Linear weights: all but the embedding
        calls = itertools.count(1)

        def init(t):
            if next(calls) == n:
                raise RuntimeError("the last parameter's initializer fails")
            nn.init.kaiming_uniform_(t)

        try:
            parewire.rewire_model(model, init=init, sampler="fast", restore="disk")
            raise AssertionError("rewire_model did not fail")
        except RuntimeError as e:
            out["error"] = str(e)[:120]
        out["restored"] = digests(model) == before
    out["seconds"] = time.perf_counter() - t0
    out["peak"] = rss("VmHWM:")
    out["extra"] = out["peak"] - start
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=32, help="transformer blocks (default 32: 7B)")
    parser.add_argument("--only", choices=["default", "disk"], help="run one of the two")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(RESULTS), help="results folder")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.layers)))
        return 0
    kinds = [args.only] if args.only else ["default", "disk"]
    rows = [run_child([__file__, "--child", kind, "--layers", str(args.layers)]) for kind in kinds]
    write_results(args.out, "big_model", markdown(rows, args.layers), {"machine": machine(), "rows": rows})
    return 0


def markdown(rows: list[dict[str, Any]], layers: int) -> str:
    gib = 1 << 30
    lines = [
        f"# rewire_model on a LLaMA-7B-shaped model ({layers} blocks, bfloat16)",
        "",
        f"{cpu_name()}, {os.cpu_count()} CPUs; commit {git_commit()}; `python benchmarks/bench_big_model.py"
        + (f" --layers {layers}" if layers != 32 else "")
        + "`",
        "",
        "| run | parameters | model | wall | peak RSS | peak above the model | result |",
        "|---|--:|--:|--:|--:|--:|---|",
    ]
    for r in rows:
        what = (
            f"{r['rewired']} rewired, restore={r['restore']}, workers={r['workers']}"
            if r["kind"] == "default"
            else f"failed on the last parameter; restored bit for bit: {r['restored']}"
        )
        lines.append(
            f"| {r['kind']} | {r['params'] / 1e9:.2f}e9 | {r['model_bytes'] / gib:.2f} GiB | "
            f"{r['seconds']:.0f} s | {r['peak'] / gib:.2f} GiB | {r['extra'] / gib:.2f} GiB | {what} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
