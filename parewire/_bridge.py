"""Hands tensors to the C kernels: type checks, DLPack export, device round trips.

Everything here translates; nothing decides.  The kernels accept CPU memory
in float32, float64, float16 and bfloat16, any strides that do not overlap.
Tensors on other devices go through a host copy that is written back into
the caller's tensor only after the kernel has succeeded.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from . import _C
from .seeding import SeedWords

TORCH_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
NUMPY_DTYPES = (np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.float16))


def _subject(fn: str, arg: str | None) -> str:
    """How messages name the value: ``"pa_rewire_: tensor"``, or ``fn`` alone
    when it already names it (``"rewire_model: parameter '0.weight'"``)."""
    return f"{fn}: {arg}" if arg else fn


def _class_names(w: Any) -> tuple[str, ...]:
    return tuple(c.__name__ for c in type(w).__mro__)


def _dispatches_itself(w: torch.Tensor) -> bool:
    """A tensor subclass with its own ``__torch_dispatch__`` (wrapper
    subclasses such as FakeTensor and DTensor): its values need not live in
    its own memory, which is all the kernels can see."""
    return any("__torch_dispatch__" in vars(c) for c in type(w).__mro__ if c is not torch.Tensor)


def _in_func_transform(w: torch.Tensor) -> bool:
    functorch = getattr(torch._C, "_functorch", None)
    wrapped = getattr(functorch, "is_functorch_wrapped_tensor", None)
    return bool(wrapped is not None and wrapped(w))


def _check_torch(w: torch.Tensor, fn: str, arg: str | None, accept_dtensor: bool) -> None:
    what = _subject(fn, arg)
    # Kinds whose attributes (shape, layout, data) raise torch internals are named first.
    if isinstance(w, (nn.parameter.UninitializedParameter, nn.parameter.UninitializedBuffer)):
        raise ValueError(
            f"{what} is an uninitialised (lazy) parameter and has no values yet; "
            "run a forward pass (or materialize()) first"
        )
    if w.is_nested:
        raise TypeError(f"{what} is a nested tensor; rewire its tensors one by one (tensor.unbind())")
    if _in_func_transform(w):
        raise TypeError(
            f"{what} is a tensor inside a torch.func transform (vmap, grad, ...), which has no "
            "memory of its own; call parewire outside the transform"
        )
    names = _class_names(w)
    if "FakeTensor" in names:
        raise TypeError(f"{what} is a FakeTensor and has no values; rewire the real tensor, outside FakeTensorMode")
    if "DTensor" in names:
        if not accept_dtensor:
            raise TypeError(
                f"{what} is a DTensor (its values are spread over ranks); "
                "use rewire_model(..., group=...) to rewire a sharded model"
            )
    elif _dispatches_itself(w):
        raise TypeError(
            f"{what} is a {type(w).__name__}, a tensor subclass that dispatches its own "
            "operations (__torch_dispatch__), so its values need not be in its own memory; "
            "pass the plain tensor that holds them"
        )
    if w.layout != torch.strided:
        raise TypeError(
            f"{what} must be a dense (strided) tensor, got layout {w.layout}; "
            "rewire tensor.to_dense() and convert the result back"
        )
    if w.dtype not in TORCH_DTYPES:
        raise TypeError(f"{what} must be a floating tensor (float32, float64, float16 or bfloat16), got {w.dtype}")
    if w.is_meta:
        raise ValueError(f"{what} is a meta tensor and has no values; materialise it first (to_empty + init)")


def _check_numpy(w: np.ndarray, fn: str, arg: str | None) -> None:
    if w.dtype not in NUMPY_DTYPES:
        raise TypeError(
            f"{_subject(fn, arg)} must be a float16, float32 or float64 array in native byte order, got {w.dtype}"
        )


def _check_ndim(w: Any, fn: str, arg: str | None) -> None:
    if w.ndim < 2:
        raise ValueError(f"{_subject(fn, arg)} must have 2 or more dimensions, got shape {tuple(w.shape)}")


def check_weights(w: Any, fn: str, arg: str | None = None, *, accept_dtensor: bool = True) -> None:
    """Raise TypeError / ValueError if the kernels cannot rewire ``w`` in place.

    Messages start with ``fn`` and, when given, the parameter's name ``arg``
    (``"pa_rewire_: tensor must be ..."``).  A DTensor passes (its dtype and
    shape are checked) unless ``accept_dtensor`` is False: the model layer
    gathers it into a plain tensor first; the tensor-level functions cannot."""
    if isinstance(w, torch.Tensor):
        _check_torch(w, fn, arg, accept_dtensor)
    elif isinstance(w, np.ndarray):
        _check_numpy(w, fn, arg)
        if not w.flags.writeable:
            raise ValueError(
                f"{_subject(fn, arg)} is a read-only array; rewiring writes in place (pass a writeable copy)"
            )
    else:
        raise TypeError(f"{_subject(fn, arg)} must be a torch.Tensor or numpy.ndarray, got {type(w).__name__}")
    _check_ndim(w, fn, arg)


def check_readable(w: Any, fn: str, arg: str | None = None, *, accept_dtensor: bool = True) -> None:
    """Like :func:`check_weights` for functions that only read ``w``: read-only
    arrays and overlapping views are fine; other DLPack producers are passed on."""
    if isinstance(w, torch.Tensor):
        _check_torch(w, fn, arg, accept_dtensor)
    elif isinstance(w, np.ndarray):
        _check_numpy(w, fn, arg)
    elif not hasattr(w, "__dlpack__") or not hasattr(w, "ndim") or not hasattr(w, "shape"):
        raise TypeError(f"{_subject(fn, arg)} must be a torch.Tensor or numpy.ndarray, got {type(w).__name__}")
    _check_ndim(w, fn, arg)


@contextlib.contextmanager
def _public_errors(fn: str | None, arg: str | None) -> Iterator[None]:
    """Re-raises the binding's errors ("parewire._C.rewire: ...") as
    "<fn>: <arg>: ..." when ``fn`` is given; the binding's exception stays as
    the new one's ``__context__``.  Interrupts and other errors pass unchanged."""
    try:
        yield
    except (TypeError, ValueError, OverflowError, MemoryError) as e:
        msg = str(e)
        for name in ("parewire._C.rewire", "parewire._C.strength_stats"):
            if fn and msg.startswith(name + ":"):
                raise type(e)(_subject(fn, arg) + msg[len(name) :]) from None
        raise


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
    if not isinstance(w, torch.Tensor) or w.is_inference():
        return
    increment = getattr(getattr(torch.autograd, "graph", None), "increment_version", None)
    if increment is not None:
        increment(w)
        return
    # torch < 2.1 has no increment_version.  An in-place op under no_grad
    # bumps the version and records nothing; copying the tensor onto itself
    # is one that cannot change a bit (not even -0.0 or a NaN payload).
    with torch.no_grad():
        w.copy_(w)


class CancelToken:
    """One cancellation request shared by every kernel of a call.

    ``set()`` may be called from any thread (a signal handler included);
    kernels that were given the token stop within one row and leave their
    tensor as it was.  Wraps ``parewire._C.CancelFlag`` where the extension
    offers it; otherwise only the Python side sees the request.
    """

    def __init__(self) -> None:
        flag_type = getattr(_C, "CancelFlag", None)
        self.flag = flag_type() if flag_type is not None else None
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()
        if self.flag is not None:
            self.flag.set()

    def is_set(self) -> bool:
        return self._event.is_set()


def rewire(
    w: Any,
    seed: SeedWords,
    *,
    passes: int,
    sampler: int,
    reseed: bool = True,
    cancel: CancelToken | None = None,
    threads: int = 1,
    fn: str | None = None,
    arg: str | None = None,
) -> SeedWords:
    """Runs the rewiring kernel on ``w`` in place; returns the final stream state.
    ``cancel`` stops it within one row when set from another thread;
    ``threads`` (>= 1) the kernel may use, without changing the result.  The
    binding's errors name the public function ``fn`` and its parameter
    ``arg`` when given (see :func:`_public_errors`)."""
    extra = {"cancel": cancel.flag} if cancel is not None and cancel.flag is not None else {}
    if threads != 1:
        extra["threads"] = threads
    with _public_errors(fn, arg), host_view(w, write_back=True) as h:
        final = _C.rewire(_capsule(h), seed, passes, sampler, reseed, **extra)
    _bump_version(w)
    return final


def strength_stats(w: Any, sums: bool = False, fn: str | None = None, arg: str | None = None) -> tuple[Any, ...]:
    """(rows, cols, row_mean, row_var, col_mean, col_var), plus the row and
    column sums as float64 arrays when ``sums``.  Errors as in :func:`rewire`."""
    with _public_errors(fn, arg), host_view(w, write_back=False) as h:
        try:
            capsule = _capsule(h)
        except BufferError:
            # numpy < 2.1 cannot flag read-only arrays in DLPack and refuses
            # to export them; reading a copy gives the same statistics.
            if not (isinstance(h, np.ndarray) and not h.flags.writeable):
                raise
            capsule = _capsule(h.copy())
        if not sums:
            return _C.strength_stats(capsule, False)
        *stats, row_sums, col_sums = _C.strength_stats(capsule, True)
    return (*stats, np.frombuffer(row_sums, dtype=np.float64), np.frombuffer(col_sums, dtype=np.float64))


def numel(w: Any) -> int:
    return int(w.numel()) if isinstance(w, torch.Tensor) else int(w.size)


def has_internal_overlap(t: torch.Tensor) -> bool:
    """Whether two indices of ``t`` address the same element of its storage.

    Exact for strided tensors: torch's own quick test, then the sufficient
    "each stride clears the reach of the smaller ones" rule, then (up to
    2**24 elements) a count of distinct offsets; larger tensors that pass
    neither test count as overlapping.
    """
    if t.numel() < 2:
        return False
    quick = getattr(torch, "_debug_has_internal_overlap", None)
    if quick is not None and quick(t) == 0:  # 0: certainly none; 1: certainly some; 2: cannot tell
        return False
    dims = sorted((abs(s), n) for n, s in zip(t.shape, t.stride()) if n > 1)
    reach = 0
    for stride, n in dims:
        if stride <= reach:
            break
        reach += (n - 1) * stride
    else:
        return False
    if t.numel() > 1 << 24:
        return True
    offsets = np.zeros((), dtype=np.int64)
    for n, s in zip(t.shape, t.stride()):
        offsets = offsets[..., None] + np.arange(n, dtype=np.int64) * s
    return int(np.unique(offsets).size) != t.numel()
