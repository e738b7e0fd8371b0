"""Writes tests/data/fixtures.kat: the known answers of tests/data/*.npz in a
form the C harness scripts/kat.c reads, so the fixtures can be checked in
pure C on any target (scripts/portability.sh: compilers, SIMD levels,
emulated 128-bit arithmetic, aarch64 under qemu).

    python scripts/export_fixtures.py           # rewrite the file
    python scripts/export_fixtures.py --check   # exit 1 if it is stale

Format (every integer little-endian; values are float32 bit patterns):

    "PWKAT01\\n"                                  8-byte magic
    u32 cases
    per case:
      u32 kind                  1: PA_rewiring_np(input, seed) == output
                                2: stabilize_strength keeps candidate `chosen`
      u32 name length, name     ASCII, the .npz file's stem
      u32 ndim, u64 shape[ndim]
      kind 1: u64 seed words[4] (PCG64 state_hi, state_lo, inc_hi, inc_lo
              right after numpy.random.default_rng(seed), as the reference
              seeds each pass); u32 input[numel]; u32 output[numel]
      kind 2: u32 K; u32 chosen; u32 candidates[K][numel]

Needs only numpy.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
OUT = DATA / "fixtures.kat"
MASK = (1 << 64) - 1


def seed_words(seed: int) -> tuple[int, int, int, int]:
    st = np.random.default_rng(seed).bit_generator.state["state"]
    return (st["state"] >> 64, st["state"] & MASK, st["inc"] >> 64, st["inc"] & MASK)


def bits(a: np.ndarray) -> bytes:
    assert a.dtype == np.float32
    return np.ascontiguousarray(a).astype("<f4").view("<u4").tobytes()


def header(kind: int, name: str, shape: tuple[int, ...]) -> bytes:
    encoded = name.encode("ascii")
    return struct.pack(f"<II{len(encoded)}sI{len(shape)}Q", kind, len(encoded), encoded, len(shape), *shape)


def export() -> bytes:
    cases = []
    for path in sorted(DATA.glob("*.npz")):
        with np.load(path) as d:
            if path.name.startswith("stabilize_"):
                cand = d["candidates"]
                k, chosen = int(d["K"]), int(d["chosen"])
                assert cand.shape[0] == k
                cases.append(header(2, path.stem, cand.shape[1:]) + struct.pack("<II", k, chosen) + bits(cand))
            else:
                words = seed_words(int(str(d["seed"])))
                cases.append(
                    header(1, path.stem, d["input"].shape)
                    + struct.pack("<4Q", *words)
                    + bits(d["input"])
                    + bits(d["output"])
                )
    return b"PWKAT01\n" + struct.pack("<I", len(cases)) + b"".join(cases)


if __name__ == "__main__":
    data = export()
    if "--check" in sys.argv[1:]:
        if not OUT.exists() or OUT.read_bytes() != data:
            sys.exit(f"{OUT} is stale: run python scripts/export_fixtures.py")
        print(f"export_fixtures: {OUT.name} matches tests/data/*.npz")
    else:
        OUT.write_bytes(data)
        print(f"export_fixtures: wrote {OUT} ({len(data)} bytes)")
