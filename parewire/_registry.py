"""Which parameters of which module types are rewired, and where their output neurons are.

PA rewiring runs its row pass over *output neurons*.  ``nn.Linear`` and
``nn.Conv*`` keep them on dimension 0, ``nn.ConvTranspose*`` on dimension 1,
and transformers' ``Conv1D`` (GPT-2 and relatives) stores ``[in, out]``.  A
rule names the parameters of a module type that are rewired and the
dimension that holds the output neurons; the model layer rewires the view
with that dimension moved to the front.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Union

from torch import nn

__all__ = ["LayerRule", "register_layer", "registered_layers", "rule_for"]


@dataclass(frozen=True)
class LayerRule:
    """The parameters of a module type that are rewired, and their output dimension."""

    params: tuple[str, ...]
    out_dim: int


ModuleType = Union[type[nn.Module], str]

_LOCK = threading.Lock()
_RULES: dict[ModuleType, LayerRule] = {}


def _type_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def register_layer(module_type: ModuleType, *, params: str | Sequence[str] = ("weight",), out_dim: int = 0) -> None:
    """Declare which parameters of ``module_type`` are rewired and where their output neurons are.

    :func:`parewire.rewire_model` and :func:`parewire.rewirer` then select
    those parameters of every module that is an instance of ``module_type``
    (subclasses included; the rule of the nearest class in the method
    resolution order wins) and rewire each as a matrix whose rows are the
    slices along ``out_dim``: one row per output neuron.  Registering a type
    again replaces its rule.

    Args:
        module_type: an ``nn.Module`` subclass, or its qualified name as a
            string (``"transformers.pytorch_utils.Conv1D"``), which matches
            without importing the module that defines it.
        params: the parameter names to rewire (default ``("weight",)``).
        out_dim: the dimension of those parameters that indexes output
            neurons (default 0; negative counts from the end).

    Examples:
        >>> class Mixer(nn.Module):  # stores its weight as [in, out]
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.w = nn.Parameter(torch.randn(16, 32))
        >>> parewire.register_layer(Mixer, params="w", out_dim=1)
    """
    fn = "register_layer"
    if isinstance(module_type, str):
        if "." not in module_type or not all(part.isidentifier() for part in module_type.split(".")):
            raise ValueError(f"{fn}: a module type given by name must be 'package.module.Class', got {module_type!r}")
    elif not (isinstance(module_type, type) and issubclass(module_type, nn.Module)):
        raise TypeError(f"{fn}: module_type must be an nn.Module subclass or its qualified name, got {module_type!r}")
    names = (params,) if isinstance(params, str) else tuple(params) if isinstance(params, (list, tuple)) else None
    if not names or not all(isinstance(p, str) and p.isidentifier() for p in names):
        raise TypeError(f"{fn}: params must be a parameter name or a non-empty sequence of them, got {params!r}")
    if isinstance(out_dim, bool) or not isinstance(out_dim, int):
        raise TypeError(f"{fn}: out_dim must be an int, got {out_dim!r}")
    with _LOCK:
        _RULES[module_type] = LayerRule(names, out_dim)


def registered_layers() -> dict[str, LayerRule]:
    """``{qualified type name: rule}`` for every registered module type."""
    with _LOCK:
        items = list(_RULES.items())
    return {(k if isinstance(k, str) else _type_name(k)): v for k, v in items}


def rule_for(module: nn.Module) -> LayerRule | None:
    """The rule of the nearest registered class of ``module``, or None."""
    with _LOCK:
        rules = dict(_RULES)
    for cls in type(module).__mro__:
        rule = rules.get(cls) or rules.get(_type_name(cls))
        if rule is not None:
            return rule
    return None


# Built-in rules.  Lazy variants (LazyLinear, LazyConv2d, ...) subclass these.
_t: type[nn.Module]
for _t in (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d):
    register_layer(_t)
for _t in (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d):
    register_layer(_t, out_dim=1)  # weight: [in, out / groups, *kernel]
# in_proj_weight is [3 * embed, embed] (q, k and v stacked by output);
# separate q/k/v weights exist when kdim or vdim differ.  out_proj is a Linear.
register_layer(nn.MultiheadAttention, params=("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight"))
# transformers' Conv1D (GPT-2, GPT-J's ancestors, ...) is a linear layer storing [in, out].
for _name in ("transformers.pytorch_utils.Conv1D", "transformers.modeling_utils.Conv1D"):
    register_layer(_name, out_dim=1)
del _t, _name
