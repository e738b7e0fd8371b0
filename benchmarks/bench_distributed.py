"""Wall time of rewire_model(group=...) against world size, on one machine.

Usage:
    python benchmarks/bench_distributed.py                 # hidden 2048, 4 layers, ranks 1 2 4
    python benchmarks/bench_distributed.py --hidden 4096 --intermediate 11008 --layers 2

A LLaMA-shaped stack of linear layers in bfloat16 (per block: q, k, v, o of
hidden x hidden; gate, up of intermediate x hidden; down of hidden x
intermediate) is built identically on every rank (replicated), then
rewired with the gloo backend and workers=1 per rank, so each rank is one
core's worth of work.  The table gives rank 0's wall time between two
barriers, the speed-up over one rank, and ns per parameter; then an
estimate for 7B and 70B models from the measured single-rank cost.
Results go to benchmarks/results/distributed.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import pathlib
import platform
import sys
import tempfile
import time

import torch
import torch.distributed as dist
from torch import nn

from _env import cpu_name

RESULTS = pathlib.Path(__file__).resolve().parent / "results"


def llama_stack(hidden: int, intermediate: int, layers: int) -> nn.Module:
    blocks = []
    for _ in range(layers):
        blocks += [nn.Linear(hidden, hidden, bias=False) for _ in range(4)]
        blocks += [nn.Linear(hidden, intermediate, bias=False) for _ in range(2)]
        blocks += [nn.Linear(intermediate, hidden, bias=False)]
    with torch.device("meta"):
        model = nn.Sequential(*blocks).to(torch.bfloat16)
    model.to_empty(device="cpu")
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.02, generator=g)
    return model


def rank_main(rank: int, world: int, init_file: str, args: argparse.Namespace, out: str) -> None:
    torch.set_num_threads(1)
    import parewire

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    model = llama_stack(args.hidden, args.intermediate, args.layers)
    dist.barrier()
    t0 = time.perf_counter()
    report = parewire.rewire_model(model, seed=0, sampler=args.sampler, workers=1, group=True)
    dist.barrier()
    seconds = time.perf_counter() - t0
    if rank == 0:
        n = sum(p.numel() for p in model.parameters())
        json.dump({"seconds": seconds, "params": n, "rewired": len(report.rewired)}, open(out, "w"))
    dist.destroy_process_group()


def run(world: int, args: argparse.Namespace) -> dict:
    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "result.json")
        procs = [ctx.Process(target=rank_main, args=(r, world, os.path.join(tmp, "init"), args, out))
                 for r in range(world)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        if any(p.exitcode for p in procs):
            raise SystemExit(f"world size {world}: a rank failed")
        return json.load(open(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=2048)
    ap.add_argument("--intermediate", type=int, default=5504)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--sampler", default="fast", choices=["fast", "numpy"])
    ap.add_argument("--ranks", type=int, nargs="+", default=[1, 2, 4])
    args = ap.parse_args()

    rows = []
    for world in args.ranks:
        res = run(world, args)
        rows.append({"ranks": world, **res})
        print(f"ranks={world}: {res['seconds']:.2f} s", flush=True)
    base = rows[0]["seconds"] * rows[0]["ranks"]
    n = rows[0]["params"]
    cost = rows[0]["seconds"] / n * rows[0]["ranks"]  # seconds per parameter on one rank
    cpu = cpu_name()
    lines = [
        f"# rewire_model(group=...) scaling — {args.layers} LLaMA-shaped blocks, hidden {args.hidden}, "
        f"intermediate {args.intermediate}, bfloat16, {n:,} parameters, sampler={args.sampler}",
        "",
        f"Machine: {cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, torch {torch.__version__}, gloo, "
        "one thread per rank.",
        f"Command: `{' '.join(['python benchmarks/bench_distributed.py', *sys.argv[1:]])}`",
        "",
        "| ranks | wall time (s) | speed-up | ns / parameter |",
        "|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['ranks']} | {r['seconds']:.2f} | {base / r['seconds']:.2f}x | {r['seconds'] / n * 1e9:.1f} |")
    lines += ["", f"Estimate from the single-rank cost ({cost * 1e9:.1f} ns/parameter on one core), assuming a "
              "perfect split, one CPU core per rank doing the rewiring, and communication that is small next to it "
              "(a bf16 broadcast of the whole model at >= 10 GB/s adds ~1.4 s per 7B):", "",
              "| model | parameters | 8 ranks | 64 ranks |", "|---|---:|---:|---:|"]
    for name, params, largest in (("7B (LLaMA-2)", 6.74e9, 11008 * 4096), ("70B (LLaMA-2)", 68.98e9, 28672 * 8192)):
        est = [max(params / w, largest) * cost for w in (8, 64)]
        lines.append(f"| {name} | {params / 1e9:.1f} B | {est[0] / 60:.1f} min | {est[1] / 60:.1f} min |")
    lines += ["", "A rank can never finish before its largest parameter, so the 64-rank figure is bounded below by "
              "one layer's cost. Ranks sharing this 2-core machine beyond 2 cannot speed it up further."]
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "distributed.md").write_text(text + "\n")
    (RESULTS / "distributed.json").write_text(json.dumps({"args": vars(args), "rows": rows, "cpu": cpu,
                                                          "torch": torch.__version__}, indent=2) + "\n")


if __name__ == "__main__":
    main()
