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

__all__ = ["claim", "extent"]

_changed = threading.Condition()
#: (device, first byte, one past the last byte, thread) of every claim held.
_held: list[tuple[str, int, int, int]] = []


def extent(x: Any) -> tuple[str, int, int] | None:
    """``(device, first byte, one past the last byte)`` of the elements of a tensor or
    array, or None when it has no memory of its own to claim (empty, meta, DTensor)."""
    if isinstance(x, torch.Tensor):
        try:
            base = x.data_ptr() if x.numel() and x.device.type != "meta" else 0
        except (RuntimeError, NotImplementedError):  # tensors without storage (fake, functorch wrappers)
            base = 0
        if base == 0:
            return None
        itemsize, device = x.element_size(), str(x.device)
        steps = [(n - 1) * s * itemsize for n, s in zip(x.shape, x.stride())]
    elif isinstance(x, np.ndarray):
        if x.size == 0:
            return None
        base, itemsize, device = x.__array_interface__["data"][0], x.itemsize, "cpu"
        steps = [(n - 1) * s for n, s in zip(x.shape, x.strides)]
    else:
        return None
    start = base + sum(s for s in steps if s < 0)
    end = base + sum(s for s in steps if s > 0) + itemsize
    return device, start, end


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
