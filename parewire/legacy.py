"""Drop-in replacements for the authors' ``weight_rewiring.py``.

Same names, signatures and return values, so ``import parewire as
weight_rewiring`` keeps existing code working.  With a truthy int seed the
results are the reference ``PA_rewiring_np``'s, bit for bit up to the sign
of zeros (``+0.0`` and ``-0.0`` may trade places; see
:func:`parewire.pa_rewire_`).

Differences from the reference, all deliberate:

* ``PA_rewiring_torch`` / ``rewiring_torch`` accumulate strengths in float64
  like the numpy versions (the reference's torch versions lose precision in
  float32 and so draw different permutations); both names give the numpy
  results.
* A falsy seed (``False``, ``None``, ``0``) derives the seed from the state
  of torch's default generator instead of OS entropy, without drawing from
  it: ``torch.manual_seed`` makes the call reproducible, and the rest of the
  program sees the same torch random numbers as without the call.  As in the
  reference's unseeded call, the two passes are independent (the column pass
  continues the row pass's stream).
* A numpy ``Generator`` (or ``PCG64``) seed is followed as the reference
  does (both passes draw from it in turn, and it is advanced); its lock is
  held meanwhile, so threads sharing one generator get what serial calls get.
* The tensor is rewired in place and returned as the same object, for any
  device and for float32/float64/float16/bfloat16; bad input raises before
  anything is written.
* ``stabilize_strength`` calls the initializer on the tensor in its own
  shape every time, returns it in its original shape, never keeps a
  candidate with NaN or infinite values while a finite one exists, scores
  one-row and one-column tensors by their one strength variance, and
  restores the weights if the initializer fails.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from . import _C, _bridge
from ._claims import claim
from .functional import _is_empty, _stabilize, default_threads
from .seeding import SeedWords, seed_words, state_seed, words_from_state

__all__ = ["PA_rewiring_np", "PA_rewiring_torch", "rewiring_np", "rewiring_torch", "stabilize_strength"]


def _legacy_seed(seed: Any, fn: str) -> tuple[SeedWords | None, np.random.PCG64 | None]:
    """(the words of a truthy seed, or None; the PCG64 bit generator to follow, or None).
    Both None: unseeded."""
    if isinstance(seed, np.random.Generator):
        seed = seed.bit_generator
    if isinstance(seed, np.random.BitGenerator):
        # default_rng(bitgen) shares the stream: both passes draw from it in turn.
        if not isinstance(seed, np.random.PCG64):
            raise ValueError(f"{fn}: seed: only PCG64 generators can be followed, got {type(seed).__name__}")
        return None, seed
    try:
        return (seed_words(seed) if seed else None), None
    except (TypeError, ValueError) as e:  # what numpy.random.default_rng refuses
        raise type(e)(f"{fn}: invalid seed {seed!r}: {e}") from None


def _rewire(weights: Any, words: SeedWords, passes: int, reseed: bool, fn: str) -> SeedWords:
    """The kernel with the reference's sampler; returns the stream's final state."""
    return _bridge.rewire(
        weights,
        words,
        passes=passes,
        sampler=_C.SAMPLER_NUMPY,
        reseed=reseed,
        threads=default_threads(weights),
        fn=fn,
        arg="weights",
    )


def _run(weights: Any, seed: Any, passes: int, fn: str) -> Any:
    _bridge.check_weights(weights, fn, "weights", accept_dtensor=False)
    words, bitgen = _legacy_seed(seed, fn)
    if _is_empty(weights, fn):
        return weights
    if bitgen is None:
        # A truthy seed restarts every pass from it (the reference's result);
        # unseeded, the passes continue one stream: independent, as the
        # reference's fresh entropy for each pass makes them.
        with claim([weights]):
            _rewire(weights, words or seed_words(state_seed(None, fn)), passes, words is not None, fn)
        return weights
    # Hold the generator's lock from reading its state to writing it back, as
    # numpy's own methods do, so concurrent calls draw disjoint numbers.  The
    # memory is claimed first: a thread that already holds it (an initializer
    # inside stabilize_strength) must not wait for a lock whose holder waits for it.
    with claim([weights]), bitgen.lock:
        state = bitgen.state
        final = _rewire(weights, words_from_state(state), passes, False, fn)
        state["state"] = {"state": (final[0] << 64) | final[1], "inc": (final[2] << 64) | final[3]}
        bitgen.state = state
    return weights


def PA_rewiring_np(weights: Any, seed: Any = False) -> Any:
    """Preferential-attachment rewiring of ``weights`` in place (rows, then columns).

    Drop-in for the reference ``PA_rewiring_np``: a truthy int ``seed`` gives
    its result bit for bit, up to the sign of zeros.  A falsy ``seed`` derives
    one from torch's default generator without drawing from it (see the
    module notes).  Returns ``weights``.
    """
    return _run(weights, seed, 2, "PA_rewiring_np")


def PA_rewiring_torch(weights: Any, seed: Any = False) -> Any:
    """Same as :func:`PA_rewiring_np` (float64 strengths; see the module notes)."""
    return _run(weights, seed, 2, "PA_rewiring_torch")


def rewiring_np(weights: Any, seed: Any) -> Any:
    """One rewiring pass over the rows of a 2-D array or tensor, in place.

    Works on strided views: ``rewiring_np(w.T, s)`` rewires the columns of ``w``.
    """
    return _run(weights, seed, 1, "rewiring_np")


def rewiring_torch(weights: Any, seed: Any) -> Any:
    """Same as :func:`rewiring_np` (float64 strengths)."""
    return _run(weights, seed, 1, "rewiring_torch")


def stabilize_strength(initializer: Callable[[torch.Tensor], Any], weights: torch.Tensor, K: int = 100) -> torch.Tensor:
    """Random search over ``K`` initialisations for the lowest strength variance.

    Drop-in for the reference (see the module notes for the fixed defects);
    same as :func:`parewire.stabilize_strength_`.
    """
    return _stabilize(weights, initializer, K, "stabilize_strength", ("weights", "K"))
