"""Builds parewire._C from csrc/ with a C compiler and the Python headers.

Nothing here imports torch or numpy: the extension speaks DLPack, so pip's
build isolation needs only setuptools.
"""

import os
import sys
from glob import glob

from setuptools import Extension, setup

if sys.platform == "win32":
    extra_compile_args = ["/O2"]
else:
    # Portable optimisation only (no -march=native): wheels must run on any
    # x86-64 or aarch64.  PAREWIRE_CFLAGS adds flags for local builds
    # (e.g. "-march=native", or sanitizers).
    extra_compile_args = ["-std=c11", "-O3", "-fno-math-errno", "-Wall", "-Wextra"]
extra_compile_args += os.environ.get("PAREWIRE_CFLAGS", "").split()
extra_link_args = os.environ.get("PAREWIRE_LDFLAGS", "").split()

setup(
    ext_modules=[
        Extension(
            "parewire._C",
            sources=sorted(glob("csrc/kernels/*.c")) + ["csrc/binding/module.c"],
            depends=sorted(glob("csrc/*/*.h")),
            extra_compile_args=extra_compile_args,
            extra_link_args=extra_link_args,
        )
    ],
)
