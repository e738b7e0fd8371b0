"""Builds parewire._C from csrc/ with a C compiler and the Python headers.

Nothing here imports torch or numpy: the extension speaks DLPack, so pip's
build isolation needs only setuptools.

The extension uses only CPython's limited API (3.9), so one build serves every
CPython from 3.9 on and the wheel is tagged ``cp39-abi3``.  Free-threaded
builds (3.13t and later) have no limited API: there the same sources compile
against the full API into a wheel for that one interpreter.
"""

import importlib.machinery
import os
import sysconfig
from glob import glob

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

LIMITED_API = not sysconfig.get_config_var("Py_GIL_DISABLED")

# Portable optimisation only (no -march=native): wheels must run on any
# x86-64 or aarch64.  Floating-point contraction (FMA) stays off on every
# target so that the bits never depend on the compiler's default for the CPU.
GCC_LIKE = ["-std=c11", "-O3", "-fno-math-errno", "-ffp-contract=off", "-Wall", "-Wextra"]
# MSVC: C11 (Visual Studio 2019 16.8 or later), precise floating point (no
# contraction by default from Visual Studio 2022 on), UTF-8 sources.
MSVC = ["/std:c11", "/O2", "/fp:precise", "/utf-8", "/W3"]


class BuildExt(build_ext):
    """Picks the flags by compiler; PAREWIRE_CFLAGS / PAREWIRE_LDFLAGS come
    last, so local builds can add or override (e.g. "-march=native", or
    "-O1 -g -fsanitize=address")."""

    def build_extensions(self):
        flags = MSVC if self.compiler.compiler_type == "msvc" else GCC_LIKE
        for ext in self.extensions:
            ext.extra_compile_args = flags + os.environ.get("PAREWIRE_CFLAGS", "").split()
            ext.extra_link_args = os.environ.get("PAREWIRE_LDFLAGS", "").split()
        super().build_extensions()

    def run(self):
        super().run()
        if self.inplace:
            self.remove_shadowing_builds()

    def remove_shadowing_builds(self):
        """Python imports _C.cpython-311-....so before _C.abi3.so: an older
        in-place build under a version-specific name would hide the new one."""
        for ext in self.extensions:
            built = os.path.abspath(self.get_ext_fullpath(ext.name))
            stem = os.path.join(os.path.dirname(built), ext.name.rsplit(".", 1)[-1])
            for suffix in importlib.machinery.EXTENSION_SUFFIXES:
                if stem + suffix != built and os.path.exists(stem + suffix):
                    os.remove(stem + suffix)


setup(
    ext_modules=[
        Extension(
            "parewire._C",
            sources=sorted(glob("csrc/kernels/*.c") + glob("csrc/binding/*.c")),
            depends=sorted(glob("csrc/*/*.h")),
            define_macros=[("Py_LIMITED_API", "0x03090000")] if LIMITED_API else [],
            py_limited_api=LIMITED_API,
        )
    ],
    cmdclass={"build_ext": BuildExt},
    options={"bdist_wheel": {"py_limited_api": "cp39"}} if LIMITED_API else {},
)
