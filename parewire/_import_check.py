"""Checked first when parewire is imported: torch must be importable and
``parewire._C`` built for this Python.  Without them the import fails with an
ImportError that says what to do, instead of torch's ModuleNotFoundError or
"cannot import name '_C' from partially initialized module (most likely due to
a circular import)"."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys


def problem() -> str | None:
    """Why the package cannot import, in words a user can act on: torch is
    missing, or ``_C`` is not built for this Python.  None when both are there."""
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


_problem = problem()
if _problem is not None:
    raise ImportError(_problem)
