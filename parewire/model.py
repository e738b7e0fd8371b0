"""Rewiring whole models: the two entry points, :func:`rewire_model` and :func:`rewirer`.

Both are thin shells around one path::

    model -> inventory (_inventory.py) -> seeds -> runner (_runner.py) -> report
             which parameters, oriented     from       per parameter (_step.py):
             how; checked before any        stable     init -> stabilize -> rewire
             write                          names      -> stats; threads, restore

The distributed path (:mod:`parewire.distributed`) shares the inventory and
the per-parameter step and adds agreement between ranks.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any, Callable, Union

import torch
from torch import nn

from . import distributed, functional
from ._claims import claim
from ._inventory import Entry, Inventory, Layers, Patterns, build_inventory, is_dtensor, unwrap
from ._options import DEFAULT_SAMPLER, INITIALIZERS, Init, Request, RewireOptions, make_options
from ._registry import rule_for
from ._runner import (
    RESTORE_MODES,
    Job,
    Restore,
    RestoreMode,
    RunFailed,
    choose_restore,
    default_workers,
    make_snapshots,
    run,
)
from ._step import Measured, measure, name_error, rewire_entry
from .report import ParameterRecord, RewireReport
from .seeding import check_seed, derive_seed, resolve_seed

__all__ = [
    "DEFAULT_SAMPLER",
    "INITIALIZERS",
    "RESTORE_MODES",
    "RewireOptions",
    "Rewirer",
    "make_options",
    "rewire_model",
    "rewirer",
]

Progress = Union[bool, Callable[[ParameterRecord, int, int], None]]


def _check_workers(workers: Any, fn: str) -> None:
    if workers is None:
        return
    if isinstance(workers, bool) or not isinstance(workers, int):
        raise TypeError(f"{fn}: workers must be a positive int or None, got {workers!r}")
    if workers < 1:
        raise ValueError(f"{fn}: workers must be a positive int or None, got {workers}")


def _non_finite(e: Entry, finite: bool, fn: str) -> ValueError:
    what = "holds NaN or Inf" if not finite else "has neuron strengths that overflow float64"
    return ValueError(f"{fn}: parameter {e.name!r} {what}; rewiring needs finite weights")


def _validate(entries: list[Entry], options: RewireOptions, fn: str) -> list[Measured | None]:
    """What can be known to fail is found before the first write; returns the
    "before" statistics where they can already be measured (no ``init``).
    (The distributed path checks in :func:`parewire.distributed.rewire`.)"""
    for e in entries:
        if is_dtensor(e.tensor):
            raise ValueError(
                f"{fn}: parameter {e.name!r} is a DTensor (sharded or replicated over a device mesh); "
                "PA rewiring needs whole weight matrices: pass group= (True for the default process group) "
                "so that the ranks rewire it together"
            )
    if options.init is not None:
        return [None] * len(entries)
    out: list[Measured | None] = []
    for e in entries:
        measured = measure(e.view)
        stats = measured[0]
        if not all(math.isfinite(x) for x in (stats.in_mean, stats.out_mean)):
            with torch.no_grad():
                raise _non_finite(e, bool(torch.isfinite(e.tensor.detach()).all()), fn)
        out.append(measured)
    return out


def _report(
    request: Request, model: str, records: list[ParameterRecord], workers: int, seconds: float, mode: Restore | None
) -> RewireReport:
    o = request.options
    return RewireReport(
        model=model,
        records=records,
        seed=request.base,
        sampler=o.sampler,
        init=o.init_name,
        stabilize=o.stabilize,
        workers=workers,
        seconds=seconds,
        restore=mode,
    )


def _drive(
    inventory: Inventory,
    request: Request,
    *,
    dist_call: distributed.Call | None,
    model_name: str,
    t_start: float,
) -> RewireReport:
    """The one path from an inventory to a report (see the module docstring)."""
    entries = inventory.to_rewire
    workers = request.workers
    n_workers = workers if workers is not None else default_workers(len(entries))
    capacity = workers if workers is not None else default_workers(1 << 30)  # threads the run may use

    def report(records: list[ParameterRecord], mode: Restore | None) -> RewireReport:
        by_name = {r.name: r for r in records}
        in_order = [by_name.get(e.name) or e.record() for e in inventory.entries]
        return _report(request, model_name, in_order, n_workers, time.perf_counter() - t_start, mode)

    if dist_call is not None:
        return distributed.rewire(
            dist_call, inventory.entries, entries, dataclasses.replace(request, workers=n_workers), report
        )
    with claim([e.tensor for e in entries]):  # another call on these weights waits for this one
        return _drive_local(entries, request, report, n_workers, capacity)


def _drive_local(
    entries: list[Entry],
    request: Request,
    report: Callable[[list[ParameterRecord], Restore | None], RewireReport],
    n_workers: int,
    capacity: int,
) -> RewireReport:
    """The single-process part of :func:`_drive`: check, then run every parameter's step."""
    options, fn = request.options, request.fn
    befores = _validate(entries, options, fn)
    seeds = [derive_seed(request.base, e.name) for e in entries]
    nbytes = sum(e.tensor.numel() * e.tensor.element_size() for e in entries)
    mode = choose_restore(request.restore, nbytes, options.init is not None, request.restore_dir, fn)
    jobs = [Job(e.name, e.tensor, e.tensor.numel()) for e in entries]

    def work(i: int, cancel: Any, threads: int) -> ParameterRecord:
        try:
            return rewire_entry(
                entries[i], seeds[i], options, before=befores[i], coupled=request.seeded, cancel=cancel, threads=threads
            )
        except BaseException as e:  # noqa: B036 - named, then handled by the runner
            raise name_error(e, fn, entries[i].name) from e.__cause__

    try:
        records = run(
            jobs,
            work,
            workers=n_workers,
            snapshots=make_snapshots(mode, request.restore_dir),
            progress=request.progress,
            capacity=capacity,
        )
    except RunFailed as failure:
        error = failure.error
        partial = report([r for r in failure.done if r is not None], mode)
        try:
            error.rewire_report = partial  # type: ignore[attr-defined]
        except AttributeError:  # pragma: no cover - exceptions with __slots__
            pass
        if mode == "none" and hasattr(error, "add_note"):
            error.add_note(
                f"{fn}: restore='none': {len(partial.rewired)} of {len(entries)} parameters were rewired and "
                "kept; the exception's rewire_report lists them with their seeds"
            )
        raise error from error.__cause__
    return report(records, mode)


def rewire_model(
    model: nn.Module | Mapping[str, torch.Tensor],
    *,
    init: Init = None,
    stabilize: int = 0,
    seed: int | None = None,
    sampler: functional.Sampler = DEFAULT_SAMPLER,
    layers: Layers = None,
    exclude: Patterns = None,
    progress: Progress = False,
    workers: int | None = None,
    generator: torch.Generator | None = None,
    name: str | None = None,
    group: Any = None,
    restore: RestoreMode = "auto",
    restore_dir: str | None = None,
    timeout: float | datetime.timedelta | None = None,
) -> RewireReport:
    """Initialise (optionally) and PA-rewire the weights of a whole model, in place.

    Which parameters: by default those of registered layer types
    (:func:`parewire.register_layer`): the weights of ``nn.Linear``,
    ``nn.Conv1d/2d/3d``, ``nn.ConvTranspose1d/2d/3d``, the input projections
    of ``nn.MultiheadAttention`` and transformers' ``Conv1D``.  Each is
    rewired as a matrix whose rows are its output neurons (dimension 1 for
    ``ConvTranspose*`` and ``Conv1D``).  Each parameter gets its own seed,
    derived from the model seed and the parameter's name, so the same seed
    gives the same model whatever ``workers`` is, and whether the model is
    wrapped by ``torch.compile``, DDP or ``DataParallel`` or not.

    Args:
        model: an ``nn.Module``, or a ``state_dict``-like mapping of names to
            tensors (then every floating tensor with >= 2 dimensions is a
            candidate, oriented by dimension 0, and ``layers`` may only be
            name patterns).
        init: ``None`` keeps the current weights; a ``torch.nn.init`` name
            (``"orthogonal"``, ``"kaiming_normal"``, ``"kaiming_uniform"``,
            ``"xavier_uniform"``, ``"xavier_normal"``, ``"normal"``,
            ``"uniform"``, ``"trunc_normal"``); a callable that fills its
            tensor argument in place; or either with keyword arguments,
            ``("kaiming_normal", {"mode": "fan_out", "nonlinearity": "relu"})``.
            Applied to each selected weight, viewed with its output neurons on
            dimension 0, before rewiring.
        stabilize: ``K > 0`` keeps the best of ``K`` draws of ``init`` (lowest
            strength variance, :func:`parewire.stabilize_strength_`) before
            rewiring; needs ``init``.
        seed: the model seed (a non-negative int).  ``None`` derives one from
            the state of ``generator`` / torch's default generator without
            advancing it, so ``torch.manual_seed`` makes unseeded calls
            reproducible and leaves paired studies paired.  Seeded, each
            parameter is rewired as ``pa_rewire_(w, seed=record.seed)`` would
            (with the numpy sampler both passes start from that seed, as the
            reference's seeded call does); unseeded, the two passes are
            independent, as the reference's unseeded call's are.
        sampler: ``"numpy"`` (bit-compatible with the authors' code) or ``"fast"``.
        layers: which parameters: ``None`` (the registered layer types), a
            module type or a list of them (their registered parameters, or all
            parameters of unregistered types), a predicate
            ``f(module_name, module) -> bool`` (likewise), or ``fnmatch``
            patterns on parameter names (``"layer1.*"``,
            ``["*.conv*.weight", "fc.weight"]``).
        exclude: ``fnmatch`` patterns of parameter names to leave alone.
        progress: show a tqdm progress bar (nothing if tqdm is missing), or a
            callable ``f(record, done, total)`` called as each parameter
            completes.
        workers: threads working on different parameters (default: the CPUs
            available, at most one per parameter).  Results do not depend on it.
        generator: the torch Generator whose state an unseeded call derives
            its seed from (default: None, torch's default generator).
        name: what the report calls the model (default: its class name).
        group: a ``torch.distributed`` process group, or ``True`` for the
            default group, to share the work among its ranks (see
            :mod:`parewire.distributed`); every rank calls ``rewire_model``
            with the same arguments and gets the same weights and report as a
            single process would; ranks called differently all raise
            ``parewire.distributed.DistributedRewireError`` before anything
            moves.  ``None`` (default): this process alone.
        restore: how the weights are kept for all-or-nothing:
            ``"memory"`` (a host copy of each parameter), ``"disk"`` (copies
            in an unnamed temporary file in ``restore_dir``), ``"none"`` (no
            copies: after a failure, the exception's ``rewire_report`` lists
            the parameters that were rewired and kept), or ``"auto"``
            (default): ``"none"`` when ``init`` is given (the old values are
            being replaced anyway), else memory while the copies fit half the
            available memory (or ``PAREWIRE_MEMORY_BUDGET``), else disk.
        restore_dir: the folder for ``restore="disk"`` (default: the system's
            temporary folder).
        timeout: with ``group``: how many seconds (or a ``datetime.timedelta``)
            a rank waits at each agreement step, and for each write-back
            broadcast, before every rank raises ``DistributedRewireError``
            naming the ranks that did not answer (default: the process
            group's timeout).  It must cover the slowest rank's share of the
            rewiring.

    Returns:
        A :class:`parewire.RewireReport`: one record per parameter with >= 2
        dimensions (rewired, tied, skipped with the reason, or not considered),
        strength statistics before and after, seeds and times.

    Selected parameters that are frozen (``requires_grad=False``), have fewer
    than 2 dimensions, a single row or column (they cannot change), no
    elements, an unsupported dtype, are lazy (uninitialised) or on the meta
    device are skipped with a reason; meta tensors raise ``ValueError``
    instead when ``layers`` selected them explicitly.  Tied parameters
    (identical views of one storage) are rewired once, under their first
    selected name; different views of shared memory and expanded parameters
    raise ``ValueError`` before anything is written.

    Examples:
        >>> model = torchvision.models.resnet18()
        >>> report = parewire.rewire_model(model, init="orthogonal", seed=0)
        >>> print(report)
        >>> parewire.rewire_model(model, layers=[nn.Conv2d], exclude="conv1.*", seed=1)

    Note:
        All or nothing: every selected parameter is checked before the first
        one is written (layout, dtype, NaN/Inf when ``init`` is None), and if
        anything fails later -- an initializer raising, Ctrl-C -- every
        running kernel is stopped, every worker waited for, and every
        parameter restored (``restore`` permitting) before the exception
        propagates.  A parameter is never left half-written.

    Note:
        A named ``init`` draws from a private ``torch.Generator`` per
        parameter (seeded from that parameter's seed) in the worker threads;
        on float16/bfloat16 weights it draws in float32 and rounds.  A
        callable ``init`` draws from torch's global RNG: each call runs alone
        with the global RNG seeded from the parameter's seed and restored
        afterwards, so it is reproducible too, but not parallel.
    """
    fn = "rewire_model"
    t_start = time.perf_counter()
    # With group=, a failure here is told to the other ranks before it propagates.
    with distributed.call(group, fn) as dist_call:
        distributed.set_timeout(dist_call, timeout, fn)
        options = make_options(init, stabilize, sampler, fn)
        check_seed(seed, fn)
        _check_workers(workers, fn)
        if name is not None and not isinstance(name, str):
            raise TypeError(f"{fn}: name must be a str or None, got {type(name).__name__}")
        if not (isinstance(progress, bool) or callable(progress)):
            raise TypeError(f"{fn}: progress must be a bool or a callable (record, done, total), got {progress!r}")
        if restore not in RESTORE_MODES:
            raise ValueError(f"{fn}: restore must be one of {RESTORE_MODES}, got {restore!r}")
        distributed.reshard_fsdp(model, fn)  # FSDP2's gathered parameters would drop what is written
        inventory = build_inventory(model, layers, exclude, fn)
        base = resolve_seed(seed, generator, fn)
        if name is None:
            name = type(unwrap(model) if isinstance(model, nn.Module) else model).__name__
        request = Request(options, base, seed is not None, workers, restore, restore_dir, progress, fn)
        return _drive(inventory, request, dist_call=dist_call, model_name=name, t_start=t_start)


# -- model.apply ---------------------------------------------------------------------------


class Rewirer:
    """A callable for ``model.apply(...)`` that initialises and rewires matching modules.

    Made by :func:`rewirer`.  Each call looks at one module; if it is one of
    ``layers`` (default: the registered layer types, see
    :func:`parewire.register_layer`), its own parameters go through the same
    path as :func:`rewire_model`'s and their records are appended to
    :attr:`report`.  Parameters are named ``"<Type>#<k>.<param>"`` where
    ``k`` counts the matching modules in the order ``apply`` visits them;
    seeds are derived from the base seed and that name, so the same model and
    seed give the same weights (but not the same as :func:`rewire_model`,
    whose seeds come from the parameters' real names).  A tensor shared by
    several modules is rewired once, by the first.  Each module is all or
    nothing; modules visited earlier stay rewired if a later one fails.
    """

    def __init__(self, request: Request, types: tuple[type[nn.Module], ...] | None) -> None:
        self.options = request.options
        self.seed = request.base
        self.types = types
        self._request = request
        self.report = _report(self._request, "model.apply", [], 1, 0.0, None)
        self._count = 0
        self._claimed: dict[tuple[Any, ...], str] = {}

    def __call__(self, module: nn.Module) -> None:
        if not (isinstance(module, self.types) if self.types is not None else rule_for(module) is not None):
            return
        prefix = f"{type(module).__name__}#{self._count}"
        self._count += 1
        t0 = time.perf_counter()
        inventory = build_inventory(module, self.types, None, "rewirer", prefix=prefix, recurse=False, warn_empty=False)
        for e in inventory.entries:
            first = self._claimed.get(e.identity)
            if first is not None and e.status != "not considered":
                e.status, e.reason = "tied", f"tied to {first}"
        part = _drive(inventory, self._request, dist_call=None, model_name="model.apply", t_start=t0)
        for e in inventory.to_rewire:
            self._claimed[e.identity] = e.name
        self.report.records.extend(r for r in part.records if r.status != "not considered")
        self.report.seconds += part.seconds


def rewirer(
    *,
    init: Init = None,
    stabilize: int = 0,
    seed: int | None = None,
    sampler: functional.Sampler = DEFAULT_SAMPLER,
    layers: type[nn.Module] | Sequence[type[nn.Module]] | None = None,
    generator: torch.Generator | None = None,
) -> Rewirer:
    """A per-module rewiring function for ``model.apply``, with its report.

    Options mean what they mean in :func:`rewire_model`.

    Examples:
        >>> rw = parewire.rewirer(init="kaiming_normal", seed=0)
        >>> model.apply(rw)
        >>> print(rw.report)
    """
    fn = "rewirer"
    options = make_options(init, stabilize, sampler, fn)
    check_seed(seed, fn)
    types: tuple[type[nn.Module], ...] | None
    if layers is None:
        types = None
    elif isinstance(layers, type) and issubclass(layers, nn.Module):
        types = (layers,)
    elif (
        isinstance(layers, (list, tuple))
        and layers
        and all(isinstance(t, type) and issubclass(t, nn.Module) for t in layers)
    ):
        types = tuple(layers)
    else:
        raise TypeError(f"{fn}: layers must be module types, got {layers!r}")
    base = resolve_seed(seed, generator, fn)
    return Rewirer(Request(options, base, seed is not None, 1, "memory", None, False, fn), types)
