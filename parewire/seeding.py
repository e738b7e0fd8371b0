"""Seeds: from user conventions to the PCG64 words the kernels start from.

* An int seed ``s`` means ``numpy.random.default_rng(s)``, as in the
  reference; every pass restarts from that state.
* No seed means one 63-bit int drawn from torch's RNG (or a given
  ``torch.Generator``), so ``torch.manual_seed`` makes unseeded calls
  reproducible.
* A model's parameters get seeds derived from the base seed and the
  parameter's name, never from the order in which they are processed.
"""

from __future__ import annotations

import hashlib
from typing import Any, Optional, Tuple

import numpy as np
import torch

SeedWords = Tuple[int, int, int, int]
_MASK64 = (1 << 64) - 1


def words_from_state(state: dict) -> SeedWords:
    s, inc = int(state["state"]["state"]), int(state["state"]["inc"])
    return (s >> 64, s & _MASK64, inc >> 64, inc & _MASK64)


def state_from_words(words: SeedWords) -> dict:
    return {
        "bit_generator": "PCG64",
        "state": {"state": (words[0] << 64) | words[1], "inc": (words[2] << 64) | words[3]},
        "has_uint32": 0,
        "uinteger": 0,
    }


def seed_words(seed: Any) -> SeedWords:
    """PCG64 words of ``numpy.random.default_rng(seed)`` right after seeding."""
    return words_from_state(np.random.default_rng(seed).bit_generator.state)


def check_seed(seed: Any, fn: str) -> None:
    if seed is None:
        return
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"{fn}: seed must be an int or None, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"{fn}: seed must be non-negative, got {seed}")


def draw_seed(generator: Optional[torch.Generator] = None, fn: str = "parewire") -> int:
    """A 63-bit seed from torch's default RNG or ``generator``.

    The generator only supplies a seed, so it may live on any device (a CUDA
    generator serves a CPU tensor); the draw happens on its own device.
    """
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"{fn}: generator must be a torch.Generator or None, got {type(generator).__name__}")
    device = generator.device if generator is not None else "cpu"
    return int(torch.empty((), dtype=torch.int64, device=device).random_(generator=generator).item())


def resolve_seed(seed: Optional[int], generator: Optional[torch.Generator], fn: str = "parewire") -> int:
    return draw_seed(generator, fn) if seed is None else int(seed)


def derive_seed(base_seed: int, name: str) -> int:
    """The seed of parameter ``name`` under model seed ``base_seed`` (64 bits)."""
    digest = hashlib.blake2b(f"{int(base_seed)}/{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")
