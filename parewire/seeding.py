"""Seeds: from user conventions to the PCG64 words the kernels start from.

* An int seed ``s`` means ``numpy.random.default_rng(s)``, as in the
  reference.
* No seed means a seed derived from the *state* of torch's default generator
  (or a given ``torch.Generator``) without drawing from it: the generator's
  stream is exactly what it would be without parewire, so a baseline arm and
  a rewired arm started from one ``torch.manual_seed`` stay paired, and the
  same program after the same ``torch.manual_seed`` rewires the same way.
  Calls at an unchanged state are numbered, so they get different seeds
  (see :func:`state_seed`).
* A model's parameters get seeds derived from the base seed and the
  parameter's name, never from the order in which they are processed.
"""

from __future__ import annotations

import collections
import hashlib
import threading
import weakref
from collections.abc import Mapping, MutableMapping
from typing import Any

import numpy as np
import torch

SeedWords = tuple[int, int, int, int]
_MASK64 = (1 << 64) - 1


def words_from_state(state: Mapping[str, Any]) -> SeedWords:
    """The four 64-bit words of a numpy ``PCG64`` state dict."""
    s, inc = int(state["state"]["state"]), int(state["state"]["inc"])
    return (s >> 64, s & _MASK64, inc >> 64, inc & _MASK64)


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


def check_generator(generator: Any, fn: str) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"{fn}: generator must be a torch.Generator or None, got {type(generator).__name__}")


# Per generator: (digest of its state at the last unseeded call, that call's
# number at this state).  Weak keys: a generator that is gone is forgotten,
# and a new one starts counting at 0.  Older torches (1.13) cannot weakly
# reference a Generator: there the table keys by id() and holds the
# generator itself, so no other generator can take over its id, and keeps
# the _HELD most recently used ones.
_seen_lock = threading.Lock()
_HELD = 256
_seen: MutableMapping[Any, tuple[bytes, int]] = weakref.WeakKeyDictionary()
_held: collections.OrderedDict[int, torch.Generator] = collections.OrderedDict()
try:
    weakref.ref(torch.default_generator)
    _by_id = False
except TypeError:
    _seen, _by_id = {}, True


def state_seed(generator: torch.Generator | None = None, fn: str = "parewire") -> int:
    """A 64-bit seed derived from the current state of ``generator`` (default:
    torch's default CPU generator), which is read but never advanced.

    The k-th call (k = 0, 1, ...) at an unchanged state gets the k-th seed of
    that state; a call that finds the state changed since the previous call
    (on this generator) starts again at k = 0.  So:

    * the same program after the same ``torch.manual_seed`` gets the same
      seeds, and leaves the generator's stream untouched (paired studies);
    * two calls in a row with nothing drawn in between get different seeds.

    parewire cannot see a re-seeding that puts the generator back into the
    state it had at the previous call (``manual_seed(0); f(); manual_seed(0);
    f()``): that counts as an unchanged state, so the second call gets the
    state's second seed.  A fresh process, or a fresh ``torch.Generator``
    object, always starts at the first seed.

    Any generator works, on any device: only its state is read (for a CUDA
    generator that is its seed and offset, read on the host).  Thread-safe:
    concurrent calls at one state get distinct numbers.
    """
    check_generator(generator, fn)
    g = torch.default_generator if generator is None else generator
    key: Any = id(g) if _by_id else g
    with _seen_lock:
        if _by_id:
            _held[key] = g
            _held.move_to_end(key)
            if len(_held) > _HELD:
                _seen.pop(_held.popitem(last=False)[0], None)
        state = g.get_state()
        h = hashlib.blake2b(digest_size=16, person=b"parewire.state")
        h.update(str(g.device.type).encode())
        h.update(state.numpy().tobytes())
        digest = h.digest()
        last = _seen.get(key)
        k = last[1] + 1 if last is not None and last[0] == digest else 0
        _seen[key] = (digest, k)
    out = hashlib.blake2b(digest + k.to_bytes(8, "little"), digest_size=8, person=b"parewire.seed")
    return int.from_bytes(out.digest(), "little")


def resolve_seed(seed: int | None, generator: torch.Generator | None, fn: str = "parewire") -> int:
    """``seed`` itself, or, when it is None, :func:`state_seed` of ``generator``."""
    return state_seed(generator, fn) if seed is None else int(seed)


def derive_seed(base_seed: int, name: str) -> int:
    """The seed of parameter ``name`` under model seed ``base_seed`` (64 bits)."""
    digest = hashlib.blake2b(f"{int(base_seed)}/{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")
