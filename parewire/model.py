"""Model-level policy: which parameters to rewire, with which seeds."""

from __future__ import annotations

from typing import Dict, List, Optional

import torch
from torch import nn

from . import functional
from .seeding import check_seed, derive_seed, resolve_seed

__all__ = ["rewire_model"]

DEFAULT_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def rewire_model(
    model: nn.Module,
    *,
    seed: Optional[int] = None,
    sampler: functional.Sampler = "numpy",
    generator: Optional[torch.Generator] = None,
) -> Dict[str, int]:
    """Rewire the weights of every Linear and Conv1d/2d/3d layer of ``model`` in place.

    Each parameter is rewired once (tied weights too), with a seed derived
    from the model seed and the parameter's name, so the result does not
    depend on processing order.  Returns ``{parameter name: seed used}``.
    """
    fn = "rewire_model"
    if not isinstance(model, nn.Module):
        raise TypeError(f"{fn}: expected an nn.Module, got {type(model).__name__}")
    functional.sampler_code(sampler, fn)
    check_seed(seed, fn)
    base = resolve_seed(seed, generator)
    seen: set = set()
    chosen: List[tuple] = []
    for mod_name, module in model.named_modules():
        if not isinstance(module, DEFAULT_LAYERS):
            continue
        w = getattr(module, "weight", None)
        if not isinstance(w, torch.Tensor) or id(w) in seen:
            continue
        seen.add(id(w))
        chosen.append((f"{mod_name}.weight" if mod_name else "weight", w))
    seeds = {}
    for name, w in chosen:
        s = derive_seed(base, name)
        functional.pa_rewire_(w, seed=s, sampler=sampler)
        seeds[name] = s
    return seeds
