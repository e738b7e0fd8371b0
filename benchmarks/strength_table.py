"""Strength spread of real layer shapes before and after stabilisation and PA rewiring.

For each initializer x layer shape and seed, the weight is drawn once and its
in-strength (row sums: one per output neuron) and out-strength (column sums:
one per input neuron x kernel position) standard deviations are measured:

  before   the initializer's draw
  stab     stabilize_strength_(w, init, K=100): best of K draws
  PA       pa_rewire_(before-draw, seed, sampler="numpy")  (the reference's algorithm)
  stab+PA  PA rewiring of the stabilised draw
  PA fast  the same draw rewired with sampler="fast" (a check: same distribution per pass)

Reported: mean and standard deviation over seeds.  The 4096x11008 layer is
expensive (one orthogonal draw there is a QR of an 11008x4096 matrix), so it
gets fewer seeds for stabilisation and none for orthogonal stabilisation; the
output says how many seeds every cell has.

Usage (one command; writes benchmarks/results/strength_table.{json,md}):

    python benchmarks/strength_table.py

``--reuse-stab benchmarks/results/strength_table.json`` reruns only the cheap
arms (before, PA, PA fast: a few minutes) and takes the stabilisation arms
from an earlier run with the same seeds and K (the "before" and "PA" columns
are deterministic, so they must come out equal, and the script checks it).
"""

from __future__ import annotations

import argparse
import math
import pathlib
import time
from typing import Any

import numpy as np
import torch
from _env import machine, run_in_pool, write_results
from torch import nn

import parewire

ROOT = pathlib.Path(__file__).resolve().parent.parent

RESULTS = ROOT / "benchmarks" / "results"
BIG = (4096, 11008)

SHAPES = {
    "ResNet-50 conv1": (64, 3, 7, 7),
    "ResNet-50 layer1 3x3": (64, 64, 3, 3),
    "ResNet-50 layer3 3x3": (256, 256, 3, 3),
    "ResNet-50 layer4 1x1": (2048, 512, 1, 1),
    "ResNet-50 fc": (1000, 2048),
    "ViT-B/16 patch embed": (768, 3, 16, 16),
    "ViT-B/16 qkv": (2304, 768),
    "ViT-B/16 MLP fc1": (3072, 768),
    "LLM MLP down 4096x11008": BIG,
}

INITS = {
    "default (kaiming_uniform a=sqrt5)": lambda w: nn.init.kaiming_uniform_(w, a=math.sqrt(5)),
    "kaiming_normal": nn.init.kaiming_normal_,
    "xavier_uniform": nn.init.xavier_uniform_,
    "orthogonal": nn.init.orthogonal_,
}

ARMS = ["before", "stab", "PA", "stab+PA", "PA fast"]


def stds(w: torch.Tensor) -> tuple[float, float]:
    s = parewire.strength_stats(w)
    return math.sqrt(s.in_var), math.sqrt(s.out_var)


def run_task(task: dict[str, Any]) -> dict[str, Any]:
    torch.set_num_threads(1)
    shape, init, seed, stabilize, K = task["shape"], task["init"], task["seed"], task["stabilize"], task["K"]
    f = INITS[init]
    t0, c0 = time.perf_counter(), time.process_time()
    out = {}
    torch.manual_seed(seed)
    w = torch.empty(shape)
    f(w)
    base = w.clone()
    out["before"] = stds(w)
    parewire.pa_rewire_(w, seed=seed, sampler="numpy")
    out["PA"] = stds(w)
    w.copy_(base)
    parewire.pa_rewire_(w, seed=seed, sampler="fast")
    out["PA fast"] = stds(w)
    if stabilize:
        torch.manual_seed(10_000 + seed)
        parewire.stabilize_strength_(w, f, K)
        out["stab"] = stds(w)
        parewire.pa_rewire_(w, seed=seed, sampler="numpy")
        out["stab+PA"] = stds(w)
    return {
        **task,
        "shape": list(shape),
        "values": out,
        "seconds": time.perf_counter() - t0,
        "cpu_seconds": time.process_time() - c0,
    }


def cell(vals: list[float]) -> str:
    if not vals:
        return "not run"
    a = np.array(vals)
    sd = a.std(ddof=1) if len(a) > 1 else float("nan")
    return f"{a.mean():.4g} ± {sd:.2g}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=10, help="seeds per cell (default 10)")
    ap.add_argument(
        "--big-stab-seeds",
        type=int,
        default=2,
        help="seeds for stabilisation of the 4096x11008 layer (default 2; orthogonal: none)",
    )
    ap.add_argument("--K", type=int, default=100, help="stabilisation trials (default 100)")
    ap.add_argument("--workers", type=int, default=2, help="processes, one thread each (default 2)")
    ap.add_argument("--out", default=str(RESULTS), help="directory for the .json and .md (default benchmarks/results)")
    ap.add_argument("--reuse-stab", metavar="JSON", help="take stab and stab+PA from this earlier run's .json")
    args = ap.parse_args()
    earlier = None
    if args.reuse_stab:
        import json

        with open(args.reuse_stab) as f:
            earlier = json.load(f)
    command = (
        "python benchmarks/strength_table.py"
        + "".join(
            f" --{k.replace('_', '-')} {v}"
            for k, v in vars(args).items()
            if v != ap.get_default(k) and k not in ("out", "reuse_stab")
        )
        + (" --reuse-stab benchmarks/results/strength_table.json" if args.reuse_stab else "")
    )

    tasks = []
    for sname, shape in SHAPES.items():
        for init in INITS:
            for seed in range(1, args.seeds + 1):
                if earlier is not None:
                    stabilize = False  # taken from the earlier run
                elif shape == BIG:
                    stabilize = init != "orthogonal" and seed <= args.big_stab_seeds
                else:
                    stabilize = True
                tasks.append(
                    {"name": sname, "shape": shape, "init": init, "seed": seed, "stabilize": stabilize, "K": args.K}
                )

    # Expensive first, so the two workers finish together.
    def cost(t):
        return (
            math.prod(t["shape"])
            * (args.K if t["stabilize"] else 1)
            * (min(t["shape"][0], math.prod(t["shape"][1:])) if t["init"] == "orthogonal" else 30)
        )

    tasks.sort(key=cost, reverse=True)

    info = machine()  # before the runs: the commit that produced the results
    done, wall = run_in_pool(run_task, tasks, args.workers, 25, "tasks")

    rows = []
    for sname, shape in SHAPES.items():
        for init in INITS:
            rs = sorted((r for r in done if r["name"] == sname and r["init"] == init), key=lambda r: r["seed"])
            row: dict[str, Any] = {"layer": sname, "shape": list(shape), "init": init}
            for arm in ARMS:
                got = [r["values"][arm] for r in rs if arm in r["values"]]
                row[arm] = {"in_std": [g[0] for g in got], "out_std": [g[1] for g in got], "seeds": len(got)}
            if earlier is not None:
                old = next(r for r in earlier["rows"] if r["layer"] == sname and r["init"] == init)
                for arm in ("before", "PA"):  # deterministic: the earlier run must agree
                    if not np.allclose(old[arm]["in_std"], row[arm]["in_std"], rtol=1e-12, atol=0):
                        raise SystemExit(f"{sname} {init} {arm}: differs from {args.reuse_stab}; rerun in full")
                row["stab"], row["stab+PA"] = old["stab"], old["stab+PA"]
            rows.append(row)

    cpu = sum(r["cpu_seconds"] for r in done)
    header = (
        f"Command: `{command}` — {wall / 60:.1f} min wall with {args.workers} worker processes "
        f"(1 thread each) on {info['cpu']} ({info['cpus_available']} CPUs available, shared with other jobs "
        f"while this ran), Python {info['python']}, torch {info['torch']}, numpy {info['numpy']}, "
        f"parewire {info['parewire']} @ {info['git_commit']}. The tasks used {cpu / 60:.1f} CPU-minutes "
        f"(≈ {cpu / 60 / args.workers:.1f} min wall on {args.workers} idle cores)."
    )
    if earlier is not None:
        header += (
            f" The stab and stab+PA columns are those of the earlier full run ({earlier['command']}, parewire @ "
            f"{earlier['machine']['git_commit']}); before and PA came out identical in both runs."
        )
    lines = [
        "# Strength spread before and after stabilisation and PA rewiring",
        "",
        header,
        "",
        (
            "Standard deviation of the in-strengths (row sums, one per output neuron) and out-strengths "
            "(column sums, one per input neuron x kernel position) of each weight viewed as "
            "(size(0), numel/size(0)); mean ± standard deviation over seeds. "
            f"stab = stabilize_strength_ with K={args.K}; PA = pa_rewire_ (numpy sampler, the reference's "
            "algorithm); stab+PA = PA on the stabilised draw; PA fast = the same draws rewired with the "
            f"fast sampler. {args.seeds} seeds per cell, except the 4096x11008 layer's stab and stab+PA: "
            f"{args.big_stab_seeds} seeds, and not run for orthogonal (a single orthogonal draw of that "
            "shape is a QR of an 11008x4096 matrix, about 14 s on one core, so K=100 is ~25 min per seed)."
        ),
        "",
    ]
    for key, title in (("in_std", "In-strength std (row sums)"), ("out_std", "Out-strength std (column sums)")):
        lines += [
            f"## {title}",
            "",
            "| layer | shape | init | " + " | ".join(ARMS) + " | PA / before |",
            "|---|---|---|" + "---|" * (len(ARMS) + 1),
        ]
        for row in rows:
            ratio = np.mean(row["PA"][key]) / np.mean(row["before"][key])
            lines.append(
                f"| {row['layer']} | {'x'.join(map(str, row['shape']))} | {row['init']} | "
                + " | ".join(cell(row[a][key]) for a in ARMS)
                + f" | {ratio:.3f} |"
            )
        lines.append("")
    md = "\n".join(lines)
    print(md)
    write_results(
        args.out,
        "strength_table",
        md,
        {
            "command": command,
            "wall_seconds": wall,
            "machine": info,
            "args": vars(args),
            "rows": rows,
            "task_seconds": sum(r["seconds"] for r in done),
            "cpu_seconds": cpu,
        },
    )


if __name__ == "__main__":
    main()
