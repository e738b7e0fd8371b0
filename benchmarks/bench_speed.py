"""Speed of PA rewiring: parewire's samplers against the floor, a second thread, and the authors' code.

Run from the repository root (after building the extension):

    python benchmarks/bench_speed.py                        # full run, several minutes
    python benchmarks/bench_speed.py --quick                # a subset, about 2 minutes
    python benchmarks/bench_speed.py --authors PATH/weight_rewiring.py
                                                            # + the authors' code, run from its path

Prints four tables and writes benchmarks/results/speed.json and speed.md
(or --out DIR).  Every number in one table comes from the same run, so
ratios are comparable.

1. One thread, per weight shape (the 2-D view is (size(0), numel/size(0))),
   float32, ns per parameter for the whole PA rewiring (rows pass, then
   columns pass), process CPU time, the minimum over repeats:

   * ``fast``, ``numpy``: ``parewire.pa_rewire_`` with that sampler.
   * ``floor``: benchmarks/bench_floor.c, compiled here with the kernels --
     the irreducible steps alone (value sort, random words, exponentials,
     keys, key sort, scatter) with the kernels' own code; ``fast / floor``
     is what everything else costs (copies, tiles, the row chain).
   * ``choice``: ``parewire.reference.pa_rewire`` -- plain numpy, one
     ``Generator.choice(C, C, replace=False, p=P)`` per row, as the paper's
     code does; extrapolated per row on large shapes (marked ``~``).
   * ``sort``: ``np.sort`` of every row plus every column.
   * ``mem``: peak extra resident memory of one call in copies of the
     layer (VmHWM in a fresh interpreter; ``-`` where unavailable).

2. Threads: wall time of ``pa_rewire_(threads=1)`` and ``threads=2``,
   interleaved, minimum over repeats; identical results are checked.

3. The authors' ``weight_rewiring.PA_rewiring_np`` (given by path with
   --authors; never copied into this repository) on four ResNet layers,
   kaiming_uniform, one run each, against ``numpy`` and ``fast`` on one
   thread and ``fast`` on two.

4. ResNet-50: ``pa_rewire_`` on every layer, and ``rewire_model``.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from _env import machine, write_results

import parewire
from parewire import reference

if TYPE_CHECKING:
    from parewire.functional import Sampler

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent

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
QUICK = {"resnet18 layer4 conv", "vit-b/16 qkv", "linear 4096x4096", "linear 11008x4096"}
THREAD_SHAPES = [
    ("resnet18 layer4 conv", (512, 512, 3, 3)),
    ("vit-b/16 qkv", (2304, 768)),
    ("linear 4096x4096", (4096, 4096)),
]
AUTHOR_LAYERS = [
    ("512x512x3x3", (512, 512, 3, 3)),
    ("256x256x3x3", (256, 256, 3, 3)),
    ("1000x512", (1000, 512)),
    ("128x128x3x3", (128, 128, 3, 3)),
]


def timeit(fn, setup, budget: float, max_reps: int, clock=time.process_time) -> list[float]:
    """Times fn(setup()) repeatedly (setup untimed) until budget seconds or max_reps.

    The default clock is the process's CPU time: on a shared machine it does
    not count the time other processes hold the cores, so one-thread numbers
    stay comparable.  Several threads need the wall clock (clock=perf_counter).
    """
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < max_reps:
        arg = setup()
        t0 = clock()
        fn(arg)
        times.append(clock() - t0)
        if time.perf_counter() - start > budget:
            break
    return times


def layer(shape) -> torch.Tensor:
    """A float32 layer initialised as PyTorch does by default (kaiming_uniform, a=sqrt(5))."""
    g = torch.Generator().manual_seed(sum(shape))
    w = torch.empty(shape)
    torch.nn.init.kaiming_uniform_(w, a=5**0.5, generator=g)
    return w


def has_threads() -> bool:
    return "threads" in inspect.signature(parewire.pa_rewire_).parameters


def rewire(w, sampler: Sampler, threads: int = 1):
    kw: dict[str, Any] = {"threads": threads} if has_threads() else {}
    parewire.pa_rewire_(w, seed=1, sampler=sampler, **kw)


# ---------------------------------------------------------------- references


def reference_time(w2: np.ndarray, max_rows: int) -> tuple[float, bool]:
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


def sort_floor(w2: np.ndarray, budget: float) -> list[float]:
    return timeit(lambda a: (np.sort(a, axis=1), np.sort(a, axis=0)), lambda: w2, budget, 5)


class KernelFloor:
    """benchmarks/bench_floor.c, compiled once with the kernels (needs a C compiler)."""

    def __init__(self):
        self.exe = None
        self.why = ""
        cc = os.environ.get("CC", "cc")
        if shutil.which(cc) is None:
            self.why = f"no C compiler ({cc})"
            return
        self.tmp = tempfile.TemporaryDirectory()
        exe = pathlib.Path(self.tmp.name) / "bench_floor"
        sources = [str(HERE / "bench_floor.c")] + sorted(str(p) for p in (ROOT / "csrc" / "kernels").glob("*.c"))
        # the flags setup.py builds the extension with
        cmd = [cc, "-std=c11", "-O3", "-fno-math-errno", *sources, "-lm", "-pthread", "-o", str(exe)]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            self.why = "bench_floor.c did not compile: " + out.stderr[-500:]
            return
        self.exe = exe

    def ns_per_param(self, rows: int, cols: int, reps: int) -> dict[str, Any] | None:
        if self.exe is None:
            return None
        out = subprocess.run(
            [str(self.exe), str(rows), str(cols), str(reps), "--json"], capture_output=True, text=True, timeout=1800
        )
        if out.returncode != 0:
            return None
        floor: dict[str, Any] = json.loads(out.stdout)
        return floor


# ---------------------------------------------------------------- memory


def _status_kb(key: str) -> int | None:
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
    kw = ", threads=1" if has_threads() else ""  # the one-thread table's call
    code = (
        "import numpy as np, parewire; "
        "from bench_speed import peak_extra_bytes; "
        f"x = np.random.default_rng(0).standard_normal({tuple(shape)!r}).astype(np.float32); "
        f"parewire.pa_rewire_(np.ones((2, 2), np.float32), seed=1, sampler={sampler!r}); "
        f"print(peak_extra_bytes(lambda: parewire.pa_rewire_(x, seed=1, sampler={sampler!r}{kw})))"
    )
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    try:
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
        return float(out.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError):
        return None


# ---------------------------------------------------------------- tables


def bench_shape(label, shape, args, floor: KernelFloor) -> dict[str, Any]:
    w = layer(shape)
    n = w.numel()
    w2 = w.reshape(shape[0], -1).numpy()
    row = {"label": label, "shape": list(shape), "params": n}
    for sampler in ("fast", "numpy"):
        times = timeit(lambda x, s=sampler: rewire(x, s), w.clone, args.budget, args.reps)
        row[sampler] = {"min_s": min(times), "median_s": statistics.median(times), "reps": len(times)}
        extra = None if args.no_memory else memory_in_subprocess(shape, sampler)
        row[sampler]["peak_extra_copies"] = None if extra is None else extra / (n * 4)
    row["floor"] = floor.ns_per_param(w2.shape[0], w2.shape[1], 3 if args.quick else 5)
    ref, extrapolated = reference_time(np.array(w2, copy=True), args.ref_rows)
    row["choice"] = {"min_s": ref, "extrapolated": extrapolated}
    times = sort_floor(w2, args.budget)
    row["sort"] = {"min_s": min(times), "median_s": statistics.median(times)}
    return row


def fmt_shape(r: dict[str, Any]) -> str:
    n = r["params"]
    ns = lambda s: s / n * 1e9  # noqa: E731
    ch, srt = r["choice"]["min_s"], r["sort"]["min_s"]
    f, nm = r["fast"]["min_s"], r["numpy"]["min_s"]
    fl = r["floor"]["floor_ns_per_param"] if r.get("floor") else None

    def mem(s):
        c = r[s].get("peak_extra_copies")
        return "-" if c is None else f"{c:.2f}"

    return (
        f"| {r['label']} | {'x'.join(map(str, r['shape']))} | {ns(f):.1f} | {ns(nm):.1f} | "
        f"{'-' if fl is None else f'{fl:.1f}'} | {'-' if fl is None else f'{ns(f) / fl:.2f}'} | "
        f"{'~' if r['choice']['extrapolated'] else ''}{ns(ch):.0f} | {ch / f:.1f}x | {ch / nm:.1f}x | "
        f"{ns(srt):.1f} | {mem('fast')} | {mem('numpy')} |"
    )


SHAPE_HEADER = (
    "| one thread, ns/param | shape | fast | numpy | floor | fast / floor | choice | fast vs choice | "
    "numpy vs choice | np.sort | mem fast | mem numpy |\n"
    "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
)


def bench_threads(label, shape, args) -> dict[str, Any]:
    w = layer(shape)
    row = {"label": label, "shape": list(shape), "params": w.numel()}
    for sampler in ("fast", "numpy"):
        outs = {}
        for t in (1, 2):
            x = w.clone()
            rewire(x, sampler, t)
            outs[t] = x
        times: dict[int, list[float]] = {1: [], 2: []}
        for _ in range(args.thread_reps):  # interleaved, so both see the same machine
            for t in (1, 2):
                times[t] += timeit(lambda x, s=sampler, n=t: rewire(x, s, n), w.clone, 0.0, 1, clock=time.perf_counter)
        row[sampler] = {
            "wall_1_s": min(times[1]),
            "wall_2_s": min(times[2]),
            "identical": bool(torch.equal(outs[1].view(torch.int32), outs[2].view(torch.int32))),
        }
    return row


def fmt_threads(r: dict[str, Any]) -> str:
    n = r["params"]
    cells = []
    for s in ("fast", "numpy"):
        a, b = r[s]["wall_1_s"], r[s]["wall_2_s"]
        cells.append(f"{a / n * 1e9:.1f} | {b / n * 1e9:.1f} | {a / b:.2f}x | {'yes' if r[s]['identical'] else 'NO'}")
    return f"| {r['label']} | {'x'.join(map(str, r['shape']))} | " + " | ".join(cells) + " |"


THREADS_HEADER = (
    "| wall ns/param | shape | fast 1 thread | fast 2 threads | speed-up | same bits | "
    "numpy 1 thread | numpy 2 threads | speed-up | same bits |\n"
    "|---|---|--:|--:|--:|:-:|--:|--:|--:|:-:|"
)


def bench_model(name: str, args) -> list[dict[str, Any]]:
    """Two rows: the per-layer kernels (pa_rewire_ on every weight) and the
    whole rewire_model call (which adds its own bookkeeping: selection,
    seeds, the before/after report, the all-or-nothing restore copy)."""
    import torchvision

    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None)
    weights = [
        m.weight
        for m in model.modules()
        if isinstance(m, (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d))
    ]
    n = sum(p.numel() for p in weights)
    one: dict[str, Any] = {"workers": 1} if "workers" in inspect.signature(parewire.rewire_model).parameters else {}
    layers = {"label": f"{name}, every layer (pa_rewire_)", "params": n}
    whole = {"label": f"{name}, rewire_model", "params": n}

    def each_layer(sampler):
        for i, p in enumerate(weights):
            parewire.pa_rewire_(p, seed=i + 1, sampler=sampler)

    for sampler in ("fast", "numpy"):
        layers[sampler] = min(timeit(lambda _, s=sampler: each_layer(s), lambda: None, args.budget, args.reps))
        whole[sampler] = min(
            timeit(
                lambda m, s=sampler: parewire.rewire_model(m, seed=0, sampler=s, **one),
                lambda: model,
                args.budget,
                args.reps,
            )
        )
    return [layers, whole]


def fmt_model(r: dict[str, Any]) -> str:
    n = r["params"]
    return f"| {r['label']} | {n / 1e6:.1f} M | {r['fast'] / n * 1e9:.1f} | {r['numpy'] / n * 1e9:.1f} |"


MODEL_HEADER = "| whole model, one thread, CPU time | parameters | fast ns/param | numpy ns/param |\n|---|--:|--:|--:|"


def load_authors(path: str):
    if not pathlib.Path(path).is_file():
        raise SystemExit(f"bench_speed.py: --authors {path}: no such file")
    spec = importlib.util.spec_from_file_location("weight_rewiring", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"bench_speed.py: --authors {path}: not a Python file")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def bench_authors(mod, args) -> list[dict[str, Any]]:
    rows = []
    for label, shape in AUTHOR_LAYERS:
        w = layer(shape)
        x = w.clone()
        t0 = time.process_time()
        mod.PA_rewiring_np(x, 1)
        authors = time.process_time() - t0
        r = {"label": label, "shape": list(shape), "params": w.numel(), "authors_s": authors}
        for key, sampler, threads in (("numpy", "numpy", 1), ("fast", "fast", 1), ("fast_2", "fast", 2)):
            clock = time.perf_counter if threads > 1 else time.process_time
            r[key + "_s"] = min(
                timeit(lambda y, s=sampler, n=threads: rewire(y, s, n), w.clone, args.budget, args.reps, clock=clock)
            )
        y = w.clone()
        rewire(y, "numpy")
        r["numpy_identical"] = bool(torch.equal(x.view(torch.int32), y.view(torch.int32)))
        rows.append(r)
    return rows


def fmt_authors(r: dict[str, Any]) -> str:
    a = r["authors_s"]
    return (
        f"| {r['label']} | {a:.2f} | {r['numpy_s'] * 1e3:.1f} | {r['fast_s'] * 1e3:.1f} | "
        f"{r['fast_2_s'] * 1e3:.1f} | {a / r['numpy_s']:.0f}x | {a / r['fast_s']:.0f}x | "
        f"{a / r['fast_2_s']:.0f}x | {'yes' if r['numpy_identical'] else 'NO'} |"
    )


AUTHORS_HEADER = (
    "| layer | authors (s) | numpy (ms) | fast (ms) | fast, 2 threads (ms, wall) | numpy vs authors | "
    "fast vs authors | fast 2 threads vs authors | numpy = authors, bit for bit |\n"
    "|---|--:|--:|--:|--:|--:|--:|--:|:-:|"
)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a subset of shapes and fewer repeats (~2 minutes)")
    ap.add_argument("--out", default=str(HERE / "results"), help="folder for speed.json and speed.md")
    ap.add_argument(
        "--authors",
        default=os.environ.get("PAREWIRE_AUTHORS"),
        help="path of the authors' weight_rewiring.py (github.com/scabini/PArewiring_weights)",
    )
    ap.add_argument("--no-memory", action="store_true", help="skip the memory column (one subprocess per case)")
    ap.add_argument("--no-models", action="store_true", help="skip whole ResNet-50")
    args = ap.parse_args(argv)
    args.budget = 0.5 if args.quick else 3.0
    args.reps = 2 if args.quick else 7
    args.thread_reps = 2 if args.quick else 5
    args.ref_rows = 24 if args.quick else 96

    torch.set_num_threads(1)  # keep torch's init from competing with the kernels
    info = machine(logical_cpus=os.cpu_count(), simd=parewire._C.simd_variant())
    command = " ".join([os.path.basename(sys.executable)] + sys.argv)
    lines = [
        f"parewire speed benchmark: `{command}`",
        "",
        (
            f"machine: {info['cpu']}, {info['logical_cpus']} logical CPUs; {info['platform']}; "
            f"python {info['python']}, numpy {info['numpy']}, torch {info['torch']}; commit {info['git_commit']}; "
            f"SIMD variant {info['simd']}"
        ),
        "",
    ]

    def say(line=""):
        print(line, flush=True)
        lines.append(line)

    for line in lines:
        print(line)
    floor = KernelFloor()
    if floor.exe is None:
        say(f"floor column skipped: {floor.why}")
    say(
        "One thread, float32, process CPU time, min of repeats; '~' = choice extrapolated from the first "
        f"{args.ref_rows} rows of each pass; mem = peak extra RSS of one call / layer size."
    )
    say()
    say(SHAPE_HEADER)
    shapes = []
    for label, shape in SHAPES:
        if args.quick and label not in QUICK:
            continue
        r = bench_shape(label, shape, args, floor)
        shapes.append(r)
        say(fmt_shape(r))
    say()
    threads = []
    if not has_threads():
        say("pa_rewire_ has no threads= in this build: the threads table is skipped")
    else:
        say("Two threads on one layer: wall time, interleaved runs, min of repeats.")
        say()
        say(THREADS_HEADER)
        for label, shape in THREAD_SHAPES:
            r = bench_threads(label, shape, args)
            threads.append(r)
            say(fmt_threads(r))
    say()
    authors = []
    if not args.authors:
        say(
            "authors' table skipped: pass --authors PATH/weight_rewiring.py "
            "(git clone https://github.com/scabini/PArewiring_weights)"
        )
    else:
        say(
            f"The authors' weight_rewiring.PA_rewiring_np ({args.authors}), kaiming_uniform, seed 1, one run "
            "each (CPU time); parewire min of repeats (CPU time, wall for 2 threads)."
        )
        say()
        say(AUTHORS_HEADER)
        authors = bench_authors(load_authors(args.authors), args)
        for r in authors:
            say(fmt_authors(r))
        tot = {k: sum(r[k] for r in authors) for k in ("authors_s", "numpy_s", "fast_s", "fast_2_s")}
        say(
            f"| all four | {tot['authors_s']:.2f} | {tot['numpy_s'] * 1e3:.1f} | {tot['fast_s'] * 1e3:.1f} | "
            f"{tot['fast_2_s'] * 1e3:.1f} | {tot['authors_s'] / tot['numpy_s']:.0f}x | "
            f"{tot['authors_s'] / tot['fast_s']:.0f}x | {tot['authors_s'] / tot['fast_2_s']:.0f}x | |"
        )
    models = []
    if not args.no_models:
        try:
            import torchvision  # noqa: F401
        except ImportError:
            say("torchvision not installed: whole-model rows skipped")
        else:
            say()
            say(MODEL_HEADER)
            for r in bench_model("resnet50", args):
                models.append(r)
                say(fmt_model(r))
    data = {
        "command": command,
        "machine": info,
        "quick": args.quick,
        "shapes": shapes,
        "threads": threads,
        "authors": authors,
        "models": models,
    }
    write_results(args.out, "speed", "\n".join(lines) + "\n", data)
    print(f"\nwrote {args.out}/speed.json and speed.md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
