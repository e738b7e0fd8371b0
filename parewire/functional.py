"""Tensor-level API in the style of ``torch.nn.init``."""

from __future__ import annotations

import math
import operator
import sys
import warnings
from typing import Any, Callable, Literal, NamedTuple, Optional, TypeVar

import torch

from . import _bridge, _C
from .seeding import check_seed, resolve_seed, seed_words

__all__ = ["SAMPLERS", "StrengthStats", "pa_rewire_", "strength_stats", "stabilize_strength_"]

T = TypeVar("T")
Sampler = Literal["numpy", "fast"]
SAMPLERS = {"numpy": _C.SAMPLER_NUMPY, "fast": _C.SAMPLER_FAST}


def sampler_code(sampler: str, fn: str) -> int:
    try:
        return SAMPLERS[sampler]
    except (KeyError, TypeError):
        raise ValueError(f"{fn}: unknown sampler {sampler!r}; choose one of {sorted(SAMPLERS)}") from None


def _is_empty(w: Any, fn: str) -> bool:
    if _bridge.numel(w) == 0:
        warnings.warn(f"{fn}: rewiring a zero-element tensor is a no-op", stacklevel=3)
        return True
    return False


def pa_rewire_(
    tensor: T,
    *,
    seed: Optional[int] = None,
    sampler: Sampler = "numpy",
    generator: Optional[torch.Generator] = None,
) -> T:
    r"""Rewire ``tensor`` in place by preferential attachment (PA).

    The tensor is viewed as a matrix :math:`W` of :math:`R = \text{size}(0)`
    rows (output neurons) and :math:`C = \text{numel}/R` columns.  Row by row,
    the values of row :math:`r` are sorted and dealt to columns drawn without
    replacement with probability

    .. math::
        P_j \propto s_j + |\min_k s_k| + 1, \qquad s_j = \sum_{i<r} W_{ij},

    so the smallest value goes to the first-drawn column; then the same pass
    runs over the columns (:math:`W^\top`).  Values only move, so the
    multiset of weights is unchanged while the spread of neuron strengths
    shrinks.  From Scabini, De Baets and Bruno, *Improving Deep Neural
    Network Random Initialization Through Neuronal Rewiring*
    (arXiv:2207.08148).

    Args:
        tensor: an n-dimensional ``torch.Tensor`` or ``numpy.ndarray``
            (n >= 2) of float32, float64, float16 or bfloat16, on any device.
        seed: an int seed; ``seed=s`` with ``sampler="numpy"`` reproduces the
            authors' ``PA_rewiring_np(tensor, s)`` bit for bit.  ``None``
            draws a seed from ``generator``.
        sampler: ``"numpy"`` (bit-compatible with the reference) or
            ``"fast"`` (same distribution, different random numbers, faster).
        generator: the torch Generator to draw a seed from when ``seed`` is
            None (default: None, torch's default generator).

    Returns:
        ``tensor``, rewired in place (same object, shape, dtype, device and
        ``requires_grad``; no autograd history is recorded).

    Examples:
        >>> w = torch.empty(3, 5)
        >>> nn.init.orthogonal_(w)
        >>> parewire.pa_rewire_(w, seed=0)

    Note:
        On any error the tensor is left exactly as it was.

    Note:
        With ``sampler="numpy"`` both passes restart from ``seed``, as the
        reference does, so the row and column passes reuse the same random
        numbers (this is what makes the result bit-identical).  The
        ``"fast"`` sampler's column pass continues the row pass's stream
        instead, so its two passes are independent: each pass has the same
        distribution as the reference's, and the whole result has the
        distribution of two independent passes.
    """
    fn = "pa_rewire_"
    _bridge.check_weights(tensor, fn)
    code = sampler_code(sampler, fn)
    check_seed(seed, fn)
    if _is_empty(tensor, fn):
        return tensor
    words = seed_words(resolve_seed(seed, generator, fn))
    _bridge.rewire(tensor, words, passes=2, sampler=code, reseed=code == _C.SAMPLER_NUMPY)
    return tensor


class StrengthStats(NamedTuple):
    """Strength statistics of a weight viewed as (rows, cols) = (size(0), numel/size(0)).

    ``in_*``: the in-strength of each output neuron, i.e. row sums.
    ``out_*``: the out-strength of each input neuron (× kernel position),
    i.e. column sums.  Variances are unbiased (like ``torch.var``), computed
    in float64; a variance over a single neuron is NaN.
    """

    rows: int
    cols: int
    in_mean: float
    in_var: float
    out_mean: float
    out_var: float

    @property
    def score(self) -> float:
        """The stabilisation score: mean of the two strength variances."""
        return (self.out_var + self.in_var) / 2.0


def strength_stats(tensor: Any) -> StrengthStats:
    """Row- and column-sum (in/out strength) mean and variance of ``tensor``'s 2-D view.

    Examples:
        >>> parewire.strength_stats(torch.ones(4, 3)).in_mean
        3.0
    """
    fn = "strength_stats"
    _bridge.check_readable(tensor, fn)
    return StrengthStats(*_bridge.strength_stats(tensor))


def stabilize_strength_(
    tensor: torch.Tensor, initializer: Callable[[torch.Tensor], Any], trials: int = 100
) -> torch.Tensor:
    r"""Keep the best of ``trials`` initialisations by strength variance, in place.

    Calls ``initializer(tensor)`` ``trials`` times and keeps the candidate
    with the lowest score

    .. math::
        \tfrac12\left(\operatorname{Var}(\text{column sums}) +
        \operatorname{Var}(\text{row sums})\right)

    (strictly lower wins, so among equal scores the first stays).  The
    initializer always sees the tensor in its own shape.  If it raises, or
    replaces the tensor's storage, shape or dtype, the original values are
    restored and the error propagates.

    Args:
        tensor: the weight, any shape with at least 2 dimensions.
        initializer: fills its argument in place, e.g. ``nn.init.orthogonal_``.
        trials: number of candidates (a positive int).

    Returns:
        ``tensor`` holding the chosen candidate.
    """
    fn = "stabilize_strength"
    if not callable(initializer):
        raise TypeError(f"{fn}: initializer must be callable, got {type(initializer).__name__}")
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{fn}: expected a torch.Tensor, got {type(tensor).__name__}")
    if isinstance(trials, bool):
        raise TypeError(f"{fn}: K must be a positive int, got {trials!r}")
    try:
        trials = operator.index(trials)  # ints and numpy integers, not floats
    except TypeError:
        raise TypeError(f"{fn}: K must be a positive int, got {trials!r}") from None
    if trials < 1:
        raise ValueError(f"{fn}: K must be a positive int, got {trials}")
    if trials > sys.maxsize:
        raise ValueError(f"{fn}: K={trials} is too large (at most {sys.maxsize})")
    _bridge.check_weights(tensor, fn)
    if _is_empty(tensor, fn):
        return tensor
    if _has_internal_overlap(tensor):
        # the best candidate could not be written back faithfully
        raise ValueError(f"{fn}: the tensor's elements overlap in memory (an expanded or as_strided view); "
                         "use a .clone() instead")

    shape, dtype, device, ptr = tensor.shape, tensor.dtype, tensor.device, tensor.data_ptr()
    with torch.no_grad():
        own = tensor.detach()  # the caller's storage, whatever the initializer does
        original = own.clone()
        best = torch.empty_like(original)
        best_score = math.inf
        try:
            for trial in range(trials):
                initializer(tensor)
                if tensor.shape != shape or tensor.dtype != dtype or tensor.device != device or tensor.data_ptr() != ptr:
                    raise RuntimeError(
                        f"{fn}: the initializer replaced the tensor's storage, shape, dtype or device; "
                        "it must fill the tensor in place"
                    )
                score = strength_stats(tensor).score
                if trial == 0 or score < best_score:
                    best_score = score
                    best.copy_(tensor)
        except BaseException:
            _restore(tensor, own, original, ptr)
            raise
        tensor.copy_(best)
    return tensor


def _has_internal_overlap(t: torch.Tensor) -> bool:
    """Whether two indices of ``t`` share memory (exact; torch strides are >= 0)."""
    if t.numel() < 2:
        return False
    quick = getattr(torch, "_debug_has_internal_overlap", None)
    if quick is not None and quick(t) == 0:  # 0: certainly no overlap; 1: overlap; 2: too hard to tell
        return False
    span = 1 + sum((n - 1) * st for n, st in zip(t.shape, t.stride()))
    offsets = torch.arange(span, device="cpu").as_strided(tuple(t.shape), t.stride())
    return int(torch.unique(offsets).numel()) != t.numel()


def _restore(tensor: torch.Tensor, own: torch.Tensor, original: torch.Tensor, ptr: int) -> None:
    """Put the original values back into the caller's storage, re-attaching it
    if an initializer swapped the tensor's storage."""
    with torch.no_grad():
        if tensor.data_ptr() != ptr or tensor.shape != own.shape or tensor.dtype != own.dtype:
            tensor.data = own
        own.copy_(original)
