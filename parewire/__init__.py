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


def _import_problem() -> "str | None":
    """Why the package cannot import, in words a user can act on: torch is
    missing, or ``_C`` is not built for this Python.  None when both are there."""
    import importlib.machinery
    import importlib.util
    import os
    import sys

    if importlib.util.find_spec("torch") is None:
        return (
            f"parewire needs PyTorch, which this Python ({sys.executable}) does not have. Install the PyTorch "
            "build for your platform first, as https://pytorch.org/get-started/locally/ shows (CPU only: "
            "pip install torch --index-url https://download.pytorch.org/whl/cpu), then parewire; installing "
            "parewire alone pulls the default torch from PyPI, which on Linux is the large CUDA build."
        )
    if importlib.util.find_spec("parewire._C") is not None:
        return None
    here = os.path.dirname(os.path.abspath(__file__))
    python = f"CPython {sys.version_info.major}.{sys.version_info.minor}"
    builds = sorted(f for f in os.listdir(here) if f.startswith("_C.") and not f.endswith(".pyi"))
    if builds:
        return (
            f"parewire's C extension in {here} ({', '.join(builds)}) was built for another Python; {python} "
            f"loads {' or '.join('_C' + s for s in importlib.machinery.EXTENSION_SUFFIXES)}. Rebuild it with "
            "this Python: python setup.py build_ext --inplace (or pip install .)."
        )
    return (
        f"parewire's C extension parewire._C is not built in {here}. In a source tree, build it with this "
        f"Python ({python}): python setup.py build_ext --inplace (or pip install -e .); to use an installed "
        "parewire instead, run from another folder (this one shadows it)."
    )


_problem = _import_problem()
if _problem is not None:
    raise ImportError(_problem)
del _import_problem, _problem

from .functional import StrengthStats, pa_rewire_, stabilize_strength_, strength_stats
from .legacy import PA_rewiring_np, PA_rewiring_torch, rewiring_np, rewiring_torch, stabilize_strength
from ._registry import LayerRule, register_layer, registered_layers
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
