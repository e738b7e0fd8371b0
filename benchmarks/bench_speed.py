"""Speed of PA rewiring: parewire's samplers against per-row Generator.choice and the sort floor.

Run from the repository root (after building the extension):

    python benchmarks/bench_speed.py            # full run, several minutes
    python benchmarks/bench_speed.py --quick    # a subset and ResNet-50 only, about 2 minutes

Prints a table and writes benchmarks/results/speed.json (or --json PATH).
Every number in one table comes from the same run, so ratios are
comparable; times are process CPU time (robust to other processes on a busy
machine), the minimum over repeats (the median is kept in the JSON).  The
1 vs 2 workers comparison uses the wall clock.

Columns, per weight shape (the 2-D view is (size(0), numel/size(0))):

* ``fast``, ``numpy``: ``parewire.pa_rewire_`` with that sampler, one
  thread, float32, ns per parameter for the whole PA rewiring (rows pass,
  then columns pass).
* ``choice``: ``parewire.reference.pa_rewire`` -- plain numpy, one
  ``Generator.choice(C, C, replace=False, p=P)`` per row, as the paper's
  code does.  It costs about a microsecond per weight, so on large shapes
  only the first rows of each pass are run and the time is extrapolated per
  row (marked ``~``).
* ``sort``: the sort floor, ``np.sort`` of every row plus ``np.sort`` of
  every column (axis=1 and axis=0) of the float32 2-D view.
* ``x choice`` = choice / sampler time; ``/ sort`` = sampler / floor.
* ``mem``: peak extra resident memory of the call, in copies of the layer:
  the high-water RSS minus the RSS before the call, measured in a fresh
  interpreter per case with Linux's VmHWM after resetting it through
  /proc/self/clear_refs (tracemalloc cannot see C mallocs); ``-`` where that
  is unavailable.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import time

import numpy as np
import torch

from _env import cpu_name

import parewire
from parewire import reference

ROOT = pathlib.Path(__file__).resolve().parent

# (label, shape): layer shapes of ResNet-18/50 (torchvision), ViT-B/16, and LLM-sized linears
SHAPES = [
    ("resnet18 conv1", (64, 3, 7, 7)),
    ("resnet18 layer1 conv", (64, 64, 3, 3)),
    ("resnet18 layer4 conv", (512, 512, 3, 3)),
    ("resnet18 fc", (1000, 512)),
    ("resnet50 1x1 reduce", (64, 256, 1, 1)),
    ("resnet50 1x1 expand", (256, 64, 1, 1)),
    ("resnet50 layer4 1x1", (2048, 512, 1, 1)),
    ("resnet50 fc", (1000, 2048)),
    ("vit-b/16 patch embed", (768, 3, 16, 16)),
    ("vit-b/16 qkv", (2304, 768)),
    ("vit-b/16 mlp fc1", (3072, 768)),
    ("vit-b/16 mlp fc2", (768, 3072)),
    ("linear 4096x4096", (4096, 4096)),
    ("linear 11008x4096", (11008, 4096)),
]
QUICK = {"resnet18 layer4 conv", "resnet50 1x1 expand", "vit-b/16 qkv", "linear 11008x4096"}


def machine() -> dict:
    cpu = cpu_name()
    return {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "parewire": getattr(parewire, "__version__", "dev"),
        "torch_threads": torch.get_num_threads(),
    }


def timeit(fn, setup, budget: float, max_reps: int, clock=time.process_time) -> list:
    """Times fn(setup()) repeatedly (setup untimed) until budget seconds or max_reps.

    The default clock is the process's CPU time: on a shared machine it does
    not count the time other processes hold the cores, so one-thread numbers
    stay comparable.  Multi-worker runs need the wall clock (clock=perf_counter).
    """
    times = []
    start = time.perf_counter()
    while len(times) < max_reps:
        arg = setup()
        t0 = clock()
        fn(arg)
        times.append(clock() - t0)
        if time.perf_counter() - start > budget:
            break
    return times


def reference_time(w2: np.ndarray, max_rows: int) -> tuple:
    """Seconds for reference PA rewiring of the 2-D float32 w2; extrapolated per row when long."""
    rows, cols = w2.shape
    if (rows - 1) + (cols - 1) <= 2 * max_rows or rows < 2 or cols < 2:
        t0 = time.process_time()
        reference.pa_rewire(w2, 1)
        return time.process_time() - t0, False
    total = 0.0
    for view, n in ((w2, rows), (w2.T, cols)):  # the rows pass, then the columns pass
        k = min(n, max_rows + 1)
        part = np.array(view[:k], copy=True)
        t0 = time.process_time()
        reference.rewire_pass(part, 1)
        total += (time.process_time() - t0) / (k - 1) * (n - 1)
    return total, True


def sort_floor(w2: np.ndarray, budget: float) -> list:
    return timeit(lambda a: (np.sort(a, axis=1), np.sort(a, axis=0)), lambda: w2, budget, 5)


def _status_kb(key: str):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1])
    return None


def peak_extra_bytes(fn) -> float | None:
    """Peak resident memory fn() adds above what was resident before it (Linux only)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
        before = _status_kb("VmRSS:")
        fn()
        peak = _status_kb("VmHWM:")
    except OSError:
        return None
    if before is None or peak is None:
        return None
    return max(0, peak - before) * 1024.0


def memory_in_subprocess(shape, sampler):
    """Peak extra bytes of one pa_rewire_ call, in a fresh interpreter.

    glibc's malloc keeps freed blocks resident and raises its mmap threshold
    after large frees, which would hide the kernel's scratch in a process
    that has already run it; a fresh process with a fixed threshold
    (MALLOC_MMAP_THRESHOLD_) maps every large block anew.
    """
    code = (
        "import sys, numpy as np, parewire; sys.path.insert(0, %r); from bench_speed import peak_extra_bytes; "
        "x = np.random.default_rng(0).standard_normal(%r).astype(np.float32); "
        "parewire.pa_rewire_(np.ones((2, 2), np.float32), seed=1, sampler=%r); "
        "print(peak_extra_bytes(lambda: parewire.pa_rewire_(x, seed=1, sampler=%r)))"
    ) % (str(ROOT), tuple(shape), sampler, sampler)
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072")
    try:
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
        return float(out.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError):
        return None


def bench_shape(label, shape, args) -> dict:
    g = torch.Generator().manual_seed(sum(shape))
    w = torch.empty(shape)
    torch.nn.init.kaiming_uniform_(w, a=5 ** 0.5, generator=g)
    n = w.numel()
    w2 = w.reshape(shape[0], -1).numpy()
    row = {"label": label, "shape": list(shape), "params": n}
    for sampler in ("fast", "numpy"):
        times = timeit(lambda x: parewire.pa_rewire_(x, seed=1, sampler=sampler), w.clone, args.budget, args.reps)
        row[sampler] = {"min_s": min(times), "median_s": statistics.median(times), "reps": len(times)}
        extra = memory_in_subprocess(shape, sampler)
        row[sampler]["peak_extra_copies"] = None if extra is None else extra / (n * 4)
    ref, extrapolated = reference_time(np.array(w2, copy=True), args.ref_rows)
    row["choice"] = {"min_s": ref, "extrapolated": extrapolated}
    times = sort_floor(w2, args.budget)
    row["sort"] = {"min_s": min(times), "median_s": statistics.median(times)}
    return row


def model_layers(name: str):
    import torchvision

    torch.manual_seed(0)
    return getattr(torchvision.models, name)(weights=None)


def bench_model(name: str, args) -> list:
    """Two rows: the per-layer kernels (pa_rewire_ on every weight) and the
    whole rewire_model call (which adds its own bookkeeping: selection,
    seeds, the before/after report, the all-or-nothing restore copy)."""
    model = model_layers(name)
    weights = [
        m.weight for m in model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d))
    ]
    n = sum(p.numel() for p in weights)
    accepts_workers = "workers" in inspect.signature(parewire.rewire_model).parameters
    layers = {"label": f"{name} per-layer pa_rewire_", "params": n, "layers": len(weights)}
    whole = {"label": f"{name} rewire_model", "params": n, "layers": len(weights), "workers_supported": accepts_workers}

    def each_layer(sampler):
        for i, p in enumerate(weights):
            parewire.pa_rewire_(p, seed=i + 1, sampler=sampler)

    one = {"workers": 1} if accepts_workers else {}
    for sampler in ("fast", "numpy"):
        times = timeit(lambda _: each_layer(sampler), lambda: None, args.budget, args.reps)
        layers[sampler] = {"min_s": min(times), "median_s": statistics.median(times), "reps": len(times)}
        times = timeit(lambda m: parewire.rewire_model(m, seed=0, sampler=sampler, **one), lambda: model,
                       args.budget, args.reps)
        whole[sampler] = {"min_s": min(times), "median_s": statistics.median(times), "reps": len(times)}
        if accepts_workers:  # wall clock for both, so the ratio is a speed-up
            t1 = timeit(lambda m: parewire.rewire_model(m, seed=0, sampler=sampler, workers=1), lambda: model,
                        args.budget, args.reps, clock=time.perf_counter)
            t2 = timeit(lambda m: parewire.rewire_model(m, seed=0, sampler=sampler, workers=2), lambda: model,
                        args.budget, args.reps, clock=time.perf_counter)
            whole[sampler].update(workers1_wall_min_s=min(t1), workers2_wall_min_s=min(t2),
                                  workers1_wall_median_s=statistics.median(t1),
                                  workers2_wall_median_s=statistics.median(t2))
    ref = 0.0
    floor = 0.0
    any_extrapolated = False
    for p in weights:
        w2 = p.detach().reshape(p.shape[0], -1).numpy()
        t, ex = reference_time(np.array(w2, copy=True), args.ref_rows)
        ref += t
        any_extrapolated |= ex
        floor += min(sort_floor(w2, 0.0))
    for r in (layers, whole):
        r["choice"] = {"min_s": ref, "extrapolated": any_extrapolated}
        r["sort"] = {"min_s": floor}
    return [layers, whole]


def fmt_row(r: dict) -> str:
    n = r["params"]
    ns = lambda s: s / n * 1e9
    ch = r["choice"]["min_s"]
    srt = r["sort"]["min_s"]
    f, nm = r["fast"]["min_s"], r["numpy"]["min_s"]

    def mem(s):
        c = r[s].get("peak_extra_copies")
        return "  -" if c is None else f"{c:4.2f}"

    return (
        f"{r['label']:<30} {str(tuple(r['shape'])) if 'shape' in r else '':<16} {n/1e6:7.2f}M "
        f"{ns(f):7.1f} {ns(nm):7.1f} {'~' if r['choice']['extrapolated'] else ' '}{ns(ch):7.0f} {ns(srt):6.1f} | "
        f"{ch/f:6.1f}x {ch/nm:6.1f}x | {f/srt:5.2f} {nm/srt:5.2f} | {mem('fast')} {mem('numpy')}"
    )


HEADER = (
    f"{'case':<30} {'shape':<16} {'params':>8} {'fast':>7} {'numpy':>7} {'choice':>8} {'sort':>6} | "
    f"{'x choice':>15} | {'/ sort':>11} | {'mem (copies)':>9}\n"
    f"{'':<30} {'':<16} {'':>8} {'ns/param':>23} {'':>15} | {'fast':>7} {'numpy':>7} | {'fast':>5} {'numpy':>5} | "
    f"{'fast':>4} {'numpy':>5}"
)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a subset of shapes and fewer repeats (< ~2 minutes)")
    ap.add_argument("--json", default=str(ROOT / "results" / "speed.json"), help="where to write the results")
    ap.add_argument("--no-models", action="store_true", help="skip whole ResNet-18/50")
    args = ap.parse_args(argv)
    args.budget = 0.5 if args.quick else 3.0
    args.reps = 2 if args.quick else 7
    args.ref_rows = 24 if args.quick else 96

    torch.set_num_threads(1)  # the kernels are single-threaded; keep torch's init from competing
    info = machine()
    command = " ".join([os.path.basename(sys.executable)] + sys.argv)
    print(f"parewire speed benchmark: {command}")
    print(f"machine: {info['cpu']}, {info['logical_cpus']} logical CPUs; {info['platform']}")
    print(f"python {info['python']}, numpy {info['numpy']}, torch {info['torch']}; one thread, float32")
    print(f"times: process CPU time, min of up to {args.reps} repeats; '~' = choice time extrapolated "
          f"from the first {args.ref_rows} rows of each pass")
    print("mem: peak extra RSS of one call / layer size, fresh interpreter per case "
          "(small layers fit in memory already mapped: ~0)")
    print()
    print(HEADER)
    rows = []
    for label, shape in SHAPES:
        if args.quick and label not in QUICK:
            continue
        r = bench_shape(label, shape, args)
        rows.append(r)
        print(fmt_row(r), flush=True)
    models = []
    if not args.no_models:
        try:
            import torchvision  # noqa: F401
        except ImportError:
            print("torchvision not installed: whole-model rows skipped")
        else:
            for name in ("resnet50",) if args.quick else ("resnet18", "resnet50"):
                for r in bench_model(name, args):
                    models.append(r)
                    print(fmt_row(r), flush=True)
            print()
            for r in models:
                if "workers_supported" not in r:
                    continue
                if r["workers_supported"]:
                    for s in ("fast", "numpy"):
                        w1, w2 = r[s]["workers1_wall_min_s"], r[s]["workers2_wall_min_s"]
                        print(f"{r['label']}: {s}: wall clock, 1 worker {w1:.3f} s, 2 workers {w2:.3f} s, "
                              f"speed-up {w1 / w2:.2f}x")
                else:
                    print(f"{r['label']}: rewire_model has no workers= argument in this build; "
                          "1 vs 2 workers not measured")
    out = pathlib.Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"command": command, "machine": info, "quick": args.quick, "shapes": rows,
                               "models": models}, indent=1))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
