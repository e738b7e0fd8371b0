"""parewire: fast preferential-attachment rewiring of neural-network weights.

C kernels behind a ``torch.nn.init``-style API, and drop-in replacements for
the authors' ``weight_rewiring.py`` (Scabini, De Baets, Bruno,
arXiv:2207.08148)::

    import parewire
    parewire.rewire_model(model)            # every Linear / Conv weight
    parewire.pa_rewire_(weight, seed=0)     # one tensor, in place

    import parewire as weight_rewiring      # existing code keeps working
    weight_rewiring.PA_rewiring_np(weight, seed=0)
"""

from . import _import_check  # noqa: F401  (first: raises a clear ImportError if torch or _C is missing)
from ._registry import LayerRule, register_layer, registered_layers
from .functional import StrengthStats, pa_rewire_, stabilize_strength_, strength_stats
from .legacy import PA_rewiring_np, PA_rewiring_torch, rewiring_np, rewiring_torch, stabilize_strength
from .model import Rewirer, rewire_model, rewirer
from .report import ParameterRecord, RewireReport

__all__ = [
    "pa_rewire_",
    "rewire_model",
    "rewirer",
    "Rewirer",
    "register_layer",
    "registered_layers",
    "LayerRule",
    "RewireReport",
    "ParameterRecord",
    "strength_stats",
    "stabilize_strength_",
    "StrengthStats",
    "PA_rewiring_np",
    "PA_rewiring_torch",
    "rewiring_np",
    "rewiring_torch",
    "stabilize_strength",
]

__version__ = "0.1.0"
