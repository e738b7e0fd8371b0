"""Tensor-level API in the style of ``torch.nn.init``."""

from __future__ import annotations

import math
import operator
import sys
import warnings
from typing import Any, Callable, Literal, NamedTuple, TypeVar

import torch

from . import _C, _bridge
from ._claims import claim
from .seeding import check_generator, check_seed, resolve_seed, seed_words

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
    seed: int | None = None,
    sampler: Sampler = "numpy",
    generator: torch.Generator | None = None,
    threads: int | None = None,
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
            authors' ``PA_rewiring_np(tensor, s)`` (see the note on signed
            zeros).  ``None`` derives a seed from the state of ``generator``
            without drawing from it.
        sampler: ``"numpy"`` (bit-compatible with the reference) or
            ``"fast"`` (same distribution, different random numbers, faster).
        generator: the torch Generator whose state gives the seed when
            ``seed`` is None (default: None, torch's default generator); it
            is read, never advanced.
        threads: threads the kernel may use on this one tensor.  2 or more
            let a second thread prepare rows ahead of the sequential chain
            (from 32768 elements on); the result is the same bits for every
            value.  ``None`` (default): ``torch.get_num_threads()`` for
            matrices of at least 2048 x 2048 (see :func:`default_threads`),
            one thread below, where the handing over of rows costs about
            what the second thread saves.

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
        With a ``seed`` and ``sampler="numpy"`` both passes restart from
        ``seed``, as the reference does, so the row and column passes reuse
        the same random numbers (this is what makes the result identical to
        the reference's).  Otherwise (the ``"fast"`` sampler, or no seed)
        the column pass continues the row pass's stream, so the two passes
        are independent, as in the reference's unseeded call: each pass has
        the reference's distribution, and the whole result has the
        distribution of two independent passes.

    Note:
        Without a seed, nothing is drawn from torch's random streams: the
        seed is derived from the generator's current state (see
        ``docs/seeds.md``), so ``torch.manual_seed`` makes the call
        reproducible, a baseline and a rewired run from the same seed see the
        same random numbers everywhere else, and a second call at an
        unchanged state gets another seed.

    Note:
        Identical to the reference means bit for bit, up to the sign of
        zeros: values that compare equal but differ in bits (``+0.0`` and
        ``-0.0``) may land in each other's places, because the reference's
        ``np.sort`` leaves the order of equal keys unspecified (it differs
        between numpy builds and sort kinds).  Every value, and the multiset
        of bit patterns, is the same.
    """
    fn = "pa_rewire_"
    _bridge.check_weights(tensor, fn, "tensor", accept_dtensor=False)
    code = sampler_code(sampler, fn)
    check_seed(seed, fn)
    check_generator(generator, fn)
    nthreads = _threads(threads, fn) if threads is not None else default_threads(tensor)
    if _is_empty(tensor, fn):
        return tensor
    words = seed_words(resolve_seed(seed, generator, fn))
    # Only a given seed with the numpy sampler restarts the column pass from
    # the seed (the reference's coupling, for its exact result); otherwise
    # the column pass continues the stream, so the passes are independent.
    reseed = seed is not None and code == _C.SAMPLER_NUMPY
    with claim([tensor]):
        _bridge.rewire(tensor, words, passes=2, sampler=code, reseed=reseed, threads=nthreads, fn=fn, arg="tensor")
    return tensor


#: Both sides of the 2-D view from which ``threads=None`` uses a second thread.
THREADS_MIN_SIDE = 2048


def default_threads(tensor: Any, available: int | None = None) -> int:
    """Threads ``pa_rewire_(threads=None)`` uses on ``tensor``: ``available`` (default
    ``torch.get_num_threads()``) for a 2-D view of at least
    ``THREADS_MIN_SIDE`` rows and columns, else 1.

    Measured on two cores (``benchmarks/bench_speed.py``): a second thread
    gains 1.3-1.5x on 2048 x 2048 and larger, and nothing, or a loss, on
    rows of a few hundred columns, where each row's hand-over costs about
    what the second thread saves.
    """
    shape = tuple(tensor.shape)
    rows = int(shape[0]) if shape else 0
    cols = math.prod(int(n) for n in shape[1:]) if len(shape) > 1 else 0
    if rows < THREADS_MIN_SIDE or cols < THREADS_MIN_SIDE:
        return 1
    return max(1, torch.get_num_threads() if available is None else available)


def _threads(threads: Any, fn: str) -> int:
    if isinstance(threads, bool):
        raise TypeError(f"{fn}: threads must be a positive int or None, got {threads!r}")
    try:
        n = operator.index(threads)
    except TypeError:
        raise TypeError(f"{fn}: threads must be a positive int or None, got {type(threads).__name__}") from None
    if n < 1:
        raise ValueError(f"{fn}: threads must be a positive int or None, got {n}")
    return min(n, 2**31 - 1)


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
        """The mean of the two strength variances: NaN with one row or one
        column (:func:`stabilize_strength_` then uses the one that exists)."""
        return (self.out_var + self.in_var) / 2.0


def _stabilization_score(s: StrengthStats) -> float:
    """What :func:`stabilize_strength_` minimises: :attr:`StrengthStats.score`,
    or with one row (one column) the one strength variance that exists."""
    if s.rows == 1:
        return s.out_var
    if s.cols == 1:
        return s.in_var
    return s.score


def strength_stats(tensor: Any) -> StrengthStats:
    """Row- and column-sum (in/out strength) mean and variance of ``tensor``'s 2-D view.

    Examples:
        >>> parewire.strength_stats(torch.ones(4, 3)).in_mean
        3.0
    """
    fn = "strength_stats"
    _bridge.check_readable(tensor, fn, "tensor", accept_dtensor=False)
    return StrengthStats(*_bridge.strength_stats(tensor, fn=fn, arg="tensor"))


def stabilize_strength_(
    tensor: torch.Tensor, initializer: Callable[[torch.Tensor], Any], trials: int = 100
) -> torch.Tensor:
    r"""Keep the best of ``trials`` initialisations by strength variance, in place.

    Calls ``initializer(tensor)`` ``trials`` times and keeps the candidate
    with the lowest score

    .. math::
        \tfrac12\left(\operatorname{Var}(\text{column sums}) +
        \operatorname{Var}(\text{row sums})\right)

    (strictly lower wins, so among equal scores the first stays; with one
    row or one column, the one variance that exists).  The initializer
    always sees the tensor in its own shape.

    Args:
        tensor: the weight, any shape with at least 2 dimensions.
        initializer: fills its argument in place, e.g. ``nn.init.orthogonal_``.
        trials: number of candidates (a positive int).

    Returns:
        ``tensor`` holding the chosen candidate.

    Raises:
        ValueError: the initializer filled NaN or infinite values in every
            trial.
        TypeError: the initializer does not support the tensor's dtype (e.g.
            ``orthogonal_`` on float16).

    Examples:
        >>> w = torch.empty(64, 32)
        >>> parewire.stabilize_strength_(w, nn.init.orthogonal_, trials=10)

    Note:
        A candidate holding NaN or infinite values is never kept while one
        with finite values exists; among finite candidates, one whose score
        is NaN is kept only if no other has a score.  If the initializer
        raises, or replaces the tensor's storage, shape or dtype, or never
        gives finite values, the original values are restored before the
        error propagates.
    """
    return _stabilize(tensor, initializer, trials, "stabilize_strength_", ("tensor", "trials"))


def _stabilize(tensor: Any, initializer: Any, trials: Any, fn: str, names: tuple[str, str]) -> torch.Tensor:
    """:func:`stabilize_strength_` under the public name ``fn``, whose tensor
    and count parameters are called ``names``."""
    arg, count = names
    if not callable(initializer):
        raise TypeError(f"{fn}: initializer must be callable, got {type(initializer).__name__}")
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{fn}: {arg} must be a torch.Tensor, got {type(tensor).__name__}")
    if isinstance(trials, bool):
        raise TypeError(f"{fn}: {count} must be a positive int, got {trials!r}")
    try:
        trials = operator.index(trials)  # ints and numpy integers, not floats
    except TypeError:
        raise TypeError(f"{fn}: {count} must be a positive int, got {trials!r}") from None
    if trials < 1:
        raise ValueError(f"{fn}: {count} must be a positive int, got {trials}")
    if trials > sys.maxsize:
        raise ValueError(f"{fn}: {count}={trials} is too large (at most {sys.maxsize})")
    _bridge.check_weights(tensor, fn, arg, accept_dtensor=False)
    if _is_empty(tensor, fn):
        return tensor
    if tensor.is_inference() and not torch.is_inference_mode_enabled():
        raise ValueError(
            f"{fn}: {arg} is an inference tensor, which no initializer may fill outside "
            "torch.inference_mode(); pass tensor.clone(), or call inside inference_mode"
        )
    if _bridge.has_internal_overlap(tensor):
        # the best candidate could not be written back faithfully
        raise ValueError(
            f"{fn}: {arg} has elements that overlap in memory (an expanded or as_strided view); use a .clone() instead"
        )

    shape, dtype, device, ptr = tensor.shape, tensor.dtype, tensor.device, tensor.data_ptr()
    with torch.no_grad(), claim([tensor]):
        own = tensor.detach()  # the caller's storage, whatever the initializer does
        original = own.clone()
        best = torch.empty_like(original)
        best_rank: tuple[int, float] | None = None  # (0: has a score, 1: NaN score; the score)
        try:
            for _ in range(trials):
                _call_initializer(initializer, tensor, fn, arg)
                if (
                    tensor.shape != shape
                    or tensor.dtype != dtype
                    or tensor.device != device
                    or tensor.data_ptr() != ptr
                ):
                    raise RuntimeError(
                        f"{fn}: the initializer replaced the tensor's storage, shape, dtype or device; "
                        "it must fill the tensor in place"
                    )
                if not bool(torch.isfinite(own).all()):
                    continue  # never kept
                score = _stabilization_score(strength_stats(own))
                rank = (1, 0.0) if math.isnan(score) else (0, score)
                if best_rank is None or rank < best_rank:
                    best_rank = rank
                    best.copy_(own)
            if best_rank is None:
                raise ValueError(
                    f"{fn}: the initializer filled {arg} with NaN or infinite values in all "
                    f"{trials} trials; {arg} is left as it was"
                )
        except BaseException:
            _restore(tensor, own, original, ptr)
            raise
        tensor.copy_(best)
    return tensor


def _call_initializer(initializer: Callable[[torch.Tensor], Any], tensor: torch.Tensor, fn: str, arg: str) -> None:
    """``initializer(tensor)``; a dtype it does not implement becomes a TypeError that says what to do."""
    try:
        initializer(tensor)
    except (NotImplementedError, RuntimeError) as e:
        if isinstance(e, RuntimeError) and "not implemented for" not in str(e):
            raise
        func = getattr(initializer, "func", initializer)  # functools.partial
        name = getattr(func, "__name__", None) or type(func).__name__
        raise TypeError(
            f"{fn}: the initializer {name} does not support {arg} of dtype {tensor.dtype} on {tensor.device} "
            f"({e}); initialise a float32 copy instead, e.g. "
            "lambda t: t.copy_(init(torch.empty_like(t, dtype=torch.float32)))"
        ) from e


def _restore(tensor: torch.Tensor, own: torch.Tensor, original: torch.Tensor, ptr: int) -> None:
    """Put the original values back into the caller's storage, re-attaching it
    if an initializer swapped the tensor's storage."""
    with torch.no_grad():
        if tensor.data_ptr() != ptr or tensor.shape != own.shape or tensor.dtype != own.dtype:
            tensor.data = own
        own.copy_(original)
