"""The kernels give the same bits however they are compiled.

scripts/kernel_fuzz.c's ``digest`` mode rewires a fixed list of cases (every
dtype, both samplers, one and two passes, long rows, ties, weights spanning
hundreds of decades) and prints one hash of all results and final stream
states.  Builds that must agree bit for bit are compiled here with the C
compiler and compared: the default, emulated 128-bit PCG64
(-DPW_EMULATE_UINT128), a scalar build (-DPW_NO_SIMD, no auto-vectorisation),
a native build with floating-point contraction allowed (FMA) and clang with
contraction (when installed); every runtime SIMD variant the CPU runs
(PAREWIRE_SIMD=<name>); and 2, 3 and 4 threads.  With mingw-w64 installed,
the kernels also compile for Windows.  Skipped
when no C compiler is available; about 20 s.
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
CC = os.environ.get("CC", "cc")

BUILDS = {
    "default": ["-std=c11", "-O2"],
    "emulated uint128": ["-std=c11", "-O2", "-DPW_EMULATE_UINT128"],
    "scalar": ["-std=c11", "-O2", "-DPW_NO_SIMD", "-fno-tree-vectorize"],
    "native, contraction on": ["-std=gnu11", "-O3", "-march=native", "-ffp-contract=fast"],
}
OPTIONAL = {"native, contraction on"}  # compilers without -march=native
if shutil.which("clang") and CC != "clang":
    BUILDS["clang, contraction on"] = ["clang", "-std=c11", "-O3", "-ffp-contract=fast"]
    OPTIONAL.add("clang, contraction on")
MINGW = shutil.which("x86_64-w64-mingw32-gcc")

pytestmark = pytest.mark.skipif(shutil.which(CC) is None, reason=f"no C compiler ({CC})")


DIGEST = r"digest ([0-9a-f]{16}) \((\d+) elements rewired, threads=(\d+), uint128=(\w+), simd=(\w+)\)"
KERNELS = sorted(str(p) for p in (ROOT / "csrc" / "kernels").glob("*.c"))


def build(name: str, flags: list[str], tmp: pathlib.Path) -> pathlib.Path:
    exe = tmp / re.sub(r"\W+", "_", name)
    cc, flags = (flags[0], flags[1:]) if flags[0] == "clang" else (CC, flags)
    sources = [str(ROOT / "scripts" / "kernel_fuzz.c")] + KERNELS
    subprocess.run(
        [cc, *flags, *sources, "-lm", "-pthread", "-o", str(exe)], check=True, capture_output=True, timeout=300
    )
    return exe


def digest(exe: pathlib.Path, *args: str, env: dict[str, str] | None = None) -> re.Match[str]:
    out = subprocess.run(
        [str(exe), "digest", *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
        env=None if env is None else {**os.environ, **env},
    )
    m = re.search(DIGEST, out.stdout)
    assert m, out.stdout
    return m


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kernel_builds")
    out = {}
    for name, flags in BUILDS.items():
        try:
            out[name] = build(name, flags, tmp)
        except subprocess.CalledProcessError as e:
            if name in OPTIONAL:
                continue
            raise AssertionError(e.stderr.decode()[-3000:]) from e
    return out


def test_every_build_gives_the_default_bits(builds):
    want = digest(builds["default"])
    assert int(want.group(2)) > 10_000_000  # the cases ran
    for name, exe in builds.items():
        assert digest(exe).group(1) == want.group(1), name


def test_every_simd_variant_gives_the_default_bits(builds):
    exe = builds["default"]
    names = subprocess.run([str(exe), "variants"], check=True, capture_output=True, text=True).stdout.split()
    assert names[0] == "portable"
    want = digest(exe).group(1)
    for name in names:
        got = digest(exe, env={"PAREWIRE_SIMD": name})
        assert got.group(5) == name  # the variant was really used
        assert got.group(1) == want, name


def test_every_thread_count_gives_the_default_bits(builds):
    exe = builds["default"]
    want = digest(exe).group(1)
    for threads in ("2", "3", "4"):
        got = digest(exe, threads)
        assert got.group(3) == threads
        assert got.group(1) == want, threads


def test_emulated_build_really_emulates(builds):
    # (the default uses the compiler's __int128 where it has one)
    assert digest(builds["emulated uint128"]).group(4) == "emulated"


@pytest.mark.skipif(MINGW is None, reason="no mingw-w64 cross compiler")
@pytest.mark.parametrize("flags", [[], ["-DPW_EMULATE_UINT128", "-DPW_NO_SIMD"]], ids=["default", "emulated-scalar"])
def test_kernels_compile_for_windows(tmp_path, flags):
    """The Win32 branches (threads, no madvise, 128-bit guards) at least
    compile, without warnings (mingw-w64; MSVC itself cannot run here)."""
    assert MINGW is not None
    for src in KERNELS:
        out = subprocess.run(
            [MINGW, "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", *flags, "-c", src, "-o", str(tmp_path / "k.obj")],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 0, (src, out.stderr[-2000:])
