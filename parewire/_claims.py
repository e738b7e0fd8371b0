"""Memory a call is rewriting: a second call on overlapping memory waits for the first.

Rewiring reads a whole tensor and writes it back later.  Two calls on one
tensor, or on overlapping views of one storage, from two threads at once would
read each other's half-written rows and lose or duplicate values.  So every
public entry point claims the bytes it will write before it reads them; a call
whose bytes overlap what another thread has claimed waits until that claim is
released.  Concurrent calls on one object therefore give the result of the
same calls made one after the other (in whichever order they got their
claims), never a mixture.  A thread may claim again what it already holds, so
an initializer that itself calls parewire on its argument does not wait for
itself.

The claims cover the memory a call writes in place.  ``rewire_model`` claims
every parameter it will rewire for the whole call, so its all-or-nothing
restore cannot undo another call's work; its worker threads then run the
kernels without claiming again.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["claim", "extent", "storage_span"]

_changed = threading.Condition()
#: (device, first byte, one past the last byte, thread) of every claim held.
_held: list[tuple[str, int, int, int]] = []


def storage_span(t: torch.Tensor) -> tuple[tuple[Any, ...] | None, tuple[int, int]]:
    """(device, storage address, storage bytes) and the byte span of ``t``'s elements in it."""
    if isinstance(t, nn.parameter.UninitializedParameter) or t.is_meta or t.numel() == 0:
        return None, (0, 0)
    if t.layout != torch.strided:
        return None, (0, 0)
    try:
        st = t.untyped_storage()
        base = st.data_ptr()
        nbytes = st.nbytes()
    except (RuntimeError, NotImplementedError, TypeError):  # tensors without a storage of their own
        return None, (0, 0)
    es = t.element_size()
    lo = t.storage_offset() * es
    hi = lo + es * (1 + sum((n - 1) * s for n, s in zip(t.shape, t.stride())))
    return (str(t.device), base, nbytes), (int(lo), int(hi))


def extent(x: Any) -> tuple[str, int, int] | None:
    """``(device, first byte, one past the last byte)`` of the elements of a tensor or
    array, or None when it has no memory of its own to claim (empty, meta, DTensor)."""
    if isinstance(x, torch.Tensor):
        storage, (lo, hi) = storage_span(x)  # the span parameters are identified by (_inventory)
        if storage is None or storage[1] == 0:  # no memory of its own (a DTensor's wrapper, fake tensors)
            return None
        return storage[0], storage[1] + lo, storage[1] + hi
    if isinstance(x, np.ndarray) and x.size:
        base = x.__array_interface__["data"][0]
        steps = [(n - 1) * s for n, s in zip(x.shape, x.strides)]  # numpy strides may be negative
        return "cpu", base + sum(s for s in steps if s < 0), base + sum(s for s in steps if s > 0) + x.itemsize
    return None


@contextlib.contextmanager
def claim(items: Iterable[Any]) -> Iterator[None]:
    """Holds the memory of ``items`` for the block, after waiting for any other thread's
    claim on overlapping memory to be released (Ctrl-C interrupts the wait)."""
    me = threading.get_ident()
    mine = [(d, s, e, me) for d, s, e in filter(None, map(extent, items))]

    def free() -> bool:
        return not any(d == hd and s < he and hs < e and who != me for d, s, e, _ in mine for hd, hs, he, who in _held)

    with _changed:
        _changed.wait_for(free)
        _held.extend(mine)
    try:
        yield
    finally:
        with _changed:
            for c in mine:
                _held.remove(c)
            _changed.notify_all()
