"""Command line: ``parewire`` / ``python -m parewire``.

With no arguments it rewires an embedded default model (ResNet-18 when
torchvision is installed, otherwise a small built-in CNN) and prints each
layer's strength variance before and after.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import List, Optional

import torch
from torch import nn

from . import functional
from .model import DEFAULT_LAYERS, rewire_model


def small_cnn() -> nn.Module:
    """The built-in default when torchvision is missing: a small CIFAR-style CNN."""
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(128, 256), nn.ReLU(), nn.Linear(256, 10),
    )


def default_model() -> tuple:
    try:
        import torchvision
    except ImportError:
        return "small_cnn", small_cnn()
    return "resnet18", torchvision.models.resnet18(weights=None)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="parewire", description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="model seed (default 0)")
    parser.add_argument("--sampler", choices=sorted(functional.SAMPLERS), default="numpy")
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    name, model = default_model()
    layers = [(n + ".weight", m.weight) for n, m in model.named_modules() if isinstance(m, DEFAULT_LAYERS)]
    before = {n: functional.strength_stats(w) for n, w in layers}
    t0 = time.perf_counter()
    rewire_model(model, seed=args.seed, sampler=args.sampler)
    elapsed = time.perf_counter() - t0
    print(f"{name}: PA rewiring of {len(layers)} weights (sampler={args.sampler}, seed={args.seed})")
    print(f"{'parameter':<28} {'shape':<18} {'in-var before':>14} {'after':>10} {'out-var before':>15} {'after':>10}")
    for n, w in layers:
        b, a = before[n], functional.strength_stats(w)
        shape = "x".join(map(str, w.shape))
        print(f"{n:<28} {shape:<18} {b.in_var:>14.4g} {a.in_var:>10.4g} {b.out_var:>15.4g} {a.out_var:>10.4g}")
    print(f"{sum(w.numel() for _, w in layers):,} weights rewired in {elapsed:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
