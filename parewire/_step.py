"""One parameter: initialise -> stabilise -> measure -> rewire -> measure.

Everything here works on the view of the parameter whose rows are output
neurons (``Entry.view``).  With an initializer the work happens in a scratch
copy that is written into the parameter by one final ``copy_``, so a
parameter is either left as it was or holds its finished result, whatever
fails or interrupts midway; without one, the kernel itself works on scratch
and writes the result back only when it has succeeded.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Iterator
from typing import Any, Callable

import numpy as np
import torch

from . import _C, _bridge, functional
from ._inventory import Entry, oriented
from ._options import RewireOptions
from .functional import StrengthStats
from .report import ParameterRecord
from .seeding import derive_seed, seed_words

__all__ = ["Measured", "measure", "name_error", "rewire_entry"]

#: Statistics plus the per-neuron strengths (row sums, column sums) in float64.
Measured = tuple[StrengthStats, np.ndarray, np.ndarray]

# Callable initializers draw from torch's global RNG, which threads share: each
# such call runs alone, with the global RNG seeded from the parameter's seed.
_GLOBAL_RNG_LOCK = threading.Lock()

_HALF = (torch.float16, torch.bfloat16)


def measure(t: torch.Tensor) -> Measured:
    """Strength statistics of ``t`` (rows = dim 0) and its strengths, from one kernel pass."""
    *stats, rows, cols = _bridge.strength_stats(t, sums=True)
    return StrengthStats(*stats), rows, cols


@contextlib.contextmanager
def _seeded_global_rng(device: torch.device, seed: int) -> Iterator[None]:
    """torch's global RNG (CPU, and the tensor's CUDA device) seeded, then restored."""
    cuda = device.type == "cuda"
    index = device.index if device.index is not None else (torch.cuda.current_device() if cuda else None)
    with torch.random.fork_rng(devices=[index] if cuda else []):
        torch.default_generator.manual_seed(seed)
        if cuda:
            torch.cuda.default_generators[index].manual_seed(seed)
        yield


def _in_float32(init: Callable[..., Any]) -> Callable[[torch.Tensor], Any]:
    """Run ``init`` on a float32 twin and round into the 16-bit tensor (torch cannot
    run every initializer in float16/bfloat16, e.g. orthogonal's QR)."""

    def run(t: torch.Tensor) -> None:
        twin = torch.empty(t.shape, dtype=torch.float32, device=t.device)
        init(twin)
        t.copy_(twin)

    return run


def _init_in_place(t: torch.Tensor, init: Callable[..., Any]) -> None:
    shape, dtype, ptr = t.shape, t.dtype, t.data_ptr()
    init(t)
    if t.shape != shape or t.dtype != dtype or t.data_ptr() != ptr:
        raise RuntimeError(
            "the initializer replaced the tensor's storage, shape or dtype; it must fill the tensor in place"
        )


def _initialise(scratch: torch.Tensor, seed: int, options: RewireOptions) -> None:
    assert options.init is not None
    init = options.init
    trials = options.stabilize

    def run(f: Callable[..., Any]) -> None:
        if trials > 1:
            functional.stabilize_strength_(scratch, f, trials)
        else:
            _init_in_place(scratch, f)

    init_seed = derive_seed(seed, "init")
    if options.named:
        if options.init_takes_generator:
            g = torch.Generator(device=scratch.device).manual_seed(init_seed)
            init = functools.partial(init, generator=g)
        if scratch.dtype in _HALF:
            init = _in_float32(init)
        if options.init_takes_generator:
            run(init)
            return
    with _GLOBAL_RNG_LOCK, _seeded_global_rng(scratch.device, init_seed):
        run(init)


def _rewire(
    t: torch.Tensor,
    seed: int,
    options: RewireOptions,
    coupled: bool,
    cancel: _bridge.CancelToken | None,
    threads: int,
) -> None:
    code = functional.sampler_code(options.sampler, "rewire_model")
    # coupled: a seeded numpy-sampler call restarts each pass from the seed, as the
    # reference's seeded call does (pa_rewire_(w, seed=record.seed) reproduces it).
    # Otherwise the column pass continues the row pass's stream: independent passes.
    reseed = coupled and code == _C.SAMPLER_NUMPY
    threads = functional.default_threads(t, available=threads)  # a second thread only where it pays
    _bridge.rewire(t, seed_words(seed), passes=2, sampler=code, reseed=reseed, cancel=cancel, threads=threads)


def rewire_entry(
    entry: Entry,
    seed: int,
    options: RewireOptions,
    *,
    target: torch.Tensor | None = None,
    before: Measured | None = None,
    coupled: bool = True,
    cancel: _bridge.CancelToken | None = None,
    threads: int = 1,
) -> ParameterRecord:
    """Initialise (optionally), stabilise (optionally), measure and rewire one parameter in place.

    ``target`` is the tensor to write (default: the parameter itself; the
    distributed path passes a private full copy).  ``before`` may carry the
    statistics measured while validating (only without ``init``).
    ``coupled=False`` (unseeded runs) makes the two passes independent for the
    numpy sampler too.  The result depends on nothing but the values,
    ``seed``, ``options`` and ``coupled`` (not on ``threads``, the threads the
    kernel may use on this parameter).
    """
    param = entry.tensor
    view = oriented((param if target is None else target).detach(), entry.out_dim)
    init_seconds = 0.0
    if options.init is None:
        work = view
    else:
        t0 = time.perf_counter()
        # A named initializer overwrites every value; a callable may read them.
        work = (
            torch.empty(view.shape, dtype=view.dtype, device=view.device)
            if options.named
            else view.clone(memory_format=torch.contiguous_format)
        )
        _initialise(work, seed, options)
        init_seconds = time.perf_counter() - t0
        before = None
    if before is None:
        before = measure(work)
    t0 = time.perf_counter()
    _rewire(work, seed, options, coupled, cancel, threads)
    seconds = time.perf_counter() - t0
    after = measure(work)
    if work is not view:
        with torch.no_grad():
            view.copy_(work)  # the one write into the parameter
    (b, in_b, out_b), (a, in_a, out_a) = before, after
    return ParameterRecord(
        name=entry.name,
        shape=tuple(param.shape),
        dtype=str(param.dtype).replace("torch.", ""),
        device=str(param.device),
        seed=seed,
        before=b,
        after=a,
        seconds=seconds,
        init_seconds=init_seconds,
        strengths={"in_before": in_b, "out_before": out_b, "in_after": in_a, "out_after": out_a},
        module=entry.module_type,
        out_dim=entry.out_dim,
    )


def name_error(error: BaseException, fn: str, name: str) -> BaseException:
    """The same error, saying which parameter it came from."""
    if isinstance(error, (KeyboardInterrupt, SystemExit)) or f"parameter {name!r}" in str(error):
        return error
    if type(error) in (ValueError, TypeError, RuntimeError, NotImplementedError, MemoryError, OverflowError):
        named = type(error)(f"{fn}: parameter {name!r}: {error}")
        named.__cause__ = error
        return named
    if hasattr(error, "add_note"):
        error.add_note(f"{fn}: while rewiring parameter {name!r}")
    return error
