"""Hands tensors to the C kernels: type checks, DLPack export, device round trips.

Everything here translates; nothing decides.  The kernels accept CPU memory
in float32, float64, float16 and bfloat16, any strides that do not overlap.
Tensors on other devices go through a host copy that is written back into
the caller's tensor only after the kernel has succeeded.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Tuple

import numpy as np
import torch

from . import _C

SeedWords = Tuple[int, int, int, int]

TORCH_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
NUMPY_DTYPES = (np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.float16))


def _check_torch(w: torch.Tensor, fn: str) -> None:
    if w.layout != torch.strided:
        raise TypeError(f"{fn}: expected a dense (strided) tensor, got layout {w.layout}")
    if w.dtype not in TORCH_DTYPES:
        raise TypeError(
            f"{fn}: expected a floating tensor (float32, float64, float16 or bfloat16), got {w.dtype}"
        )
    if w.is_meta:
        raise ValueError(f"{fn}: a meta tensor has no values; materialise it first (to_empty + init)")


def _check_numpy(w: np.ndarray, fn: str) -> None:
    if w.dtype not in NUMPY_DTYPES:
        raise TypeError(f"{fn}: expected a float16, float32 or float64 array in native byte order, got {w.dtype}")


def _check_ndim(w: Any, fn: str) -> None:
    if w.ndim < 2:
        raise ValueError(f"{fn}: only tensors with 2 or more dimensions are supported, got shape {tuple(w.shape)}")


def check_weights(w: Any, fn: str) -> None:
    """Raise TypeError / ValueError if the kernels cannot rewire ``w`` in place."""
    if isinstance(w, torch.Tensor):
        _check_torch(w, fn)
    elif isinstance(w, np.ndarray):
        _check_numpy(w, fn)
        if not w.flags.writeable:
            raise ValueError(f"{fn}: the array is read-only; rewiring writes in place")
    else:
        raise TypeError(f"{fn}: expected a torch.Tensor or numpy.ndarray, got {type(w).__name__}")
    _check_ndim(w, fn)


def check_readable(w: Any, fn: str) -> None:
    """Like :func:`check_weights` for functions that only read ``w``: read-only
    arrays and overlapping views are fine; other DLPack producers are passed on."""
    if isinstance(w, torch.Tensor):
        _check_torch(w, fn)
    elif isinstance(w, np.ndarray):
        _check_numpy(w, fn)
    elif not hasattr(w, "__dlpack__") or not hasattr(w, "ndim") or not hasattr(w, "shape"):
        raise TypeError(f"{fn}: expected a torch.Tensor or numpy.ndarray, got {type(w).__name__}")
    _check_ndim(w, fn)


def _capsule(x: Any) -> Any:
    """A DLPack capsule for a CPU tensor or array (versioned protocol when offered)."""
    if isinstance(x, torch.Tensor):
        x = x.detach()  # __dlpack__ refuses tensors that require grad
    try:
        return x.__dlpack__(max_version=(1, 0))
    except TypeError:  # producers older than DLPack 1.0 (torch < 2.9, numpy < 2.1)
        return x.__dlpack__()


def _needs_scratch(w: Any) -> bool:
    """True when the kernels cannot work on ``w``'s own memory: device tensors,
    and negative views (``__dlpack__`` exports their stored values, which are
    the negated logical ones)."""
    return isinstance(w, torch.Tensor) and (w.device.type != "cpu" or w.is_neg())


@contextlib.contextmanager
def host_view(w: Any, *, write_back: bool) -> Iterator[Any]:
    """Yields a CPU tensor/array sharing or mirroring ``w``.

    CPU data is yielded as is.  Otherwise a host copy of the logical values is
    yielded and, if ``write_back`` and the block succeeds, copied back into
    ``w`` in place; if the block raises, ``w`` is never touched.
    """
    if not _needs_scratch(w):
        yield w
        return
    host = w.detach().to("cpu").resolve_neg()
    if host.is_neg() or host.data_ptr() == w.data_ptr():
        host = host.clone()
    yield host
    if write_back:
        with torch.no_grad():
            w.detach().copy_(host)


def _bump_version(w: Any) -> None:
    """Tell autograd that ``w`` changed in place (as ``nn.init`` does under
    ``no_grad``), so a graph that saved it fails loudly instead of computing
    wrong gradients.  The kernels write through DLPack, which autograd cannot see."""
    if isinstance(w, torch.Tensor) and not w.is_inference():
        increment = getattr(getattr(torch.autograd, "graph", None), "increment_version", None)
        if increment is not None:
            increment(w)


def rewire(w: Any, seed: SeedWords, *, passes: int, sampler: int, reseed: bool = True) -> SeedWords:
    """Runs the rewiring kernel on ``w`` in place; returns the final stream state."""
    with host_view(w, write_back=True) as h:
        final = _C.rewire(_capsule(h), seed, passes, sampler, reseed)
    _bump_version(w)
    return final


def strength_stats(w: Any, sums: bool = False) -> Tuple[Any, ...]:
    """(rows, cols, row_mean, row_var, col_mean, col_var), plus the row and
    column sums as float64 arrays when ``sums``."""
    with host_view(w, write_back=False) as h:
        try:
            capsule = _capsule(h)
        except BufferError:
            # numpy < 2.1 cannot flag read-only arrays in DLPack and refuses
            # to export them; reading a copy gives the same statistics.
            if not (isinstance(h, np.ndarray) and not h.flags.writeable):
                raise
            capsule = _capsule(h.copy())
        out = _C.strength_stats(capsule, sums)
    if sums:
        out = out[:6] + (np.frombuffer(out[6], dtype=np.float64), np.frombuffer(out[7], dtype=np.float64))
    return out


def numel(w: Any) -> int:
    return int(w.numel()) if isinstance(w, torch.Tensor) else int(w.size)
