"""Model-level policy: which parameters to rewire, how to initialise them, with which seeds.

The per-parameter work lives in :func:`rewire_parameter` (``name, tensor,
seed, options -> ParameterRecord``); :func:`rewire_model` selects the
parameters, validates all of them, derives their seeds and runs
:func:`rewire_parameter` over them in a thread pool, restoring every weight if
anything fails.  Distributed drivers can reuse the same pieces.
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import os
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Type, Union

import numpy as np
import torch
from torch import nn

from . import _bridge, distributed, functional
from .report import ParameterRecord, RewireReport
from .seeding import check_seed, derive_seed, resolve_seed

__all__ = [
    "DEFAULT_SAMPLER",
    "DEFAULT_LAYERS",
    "INITIALIZERS",
    "RewireOptions",
    "Rewirer",
    "make_options",
    "rewire_model",
    "rewire_parameter",
    "rewirer",
    "select_parameters",
]

#: The sampler ``rewire_model``, ``rewirer`` and the command line use by default.
DEFAULT_SAMPLER: functional.Sampler = "numpy"

#: Modules whose weights are rewired when no ``layers`` selector is given.
DEFAULT_LAYERS: Tuple[Type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)

#: ``init=`` names -> ``torch.nn.init`` functions (a trailing ``_`` is accepted too).
INITIALIZERS: Dict[str, Callable[..., Any]] = {
    "uniform": nn.init.uniform_,
    "normal": nn.init.normal_,
    "trunc_normal": nn.init.trunc_normal_,
    "xavier_uniform": nn.init.xavier_uniform_,
    "xavier_normal": nn.init.xavier_normal_,
    "kaiming_uniform": nn.init.kaiming_uniform_,
    "kaiming_normal": nn.init.kaiming_normal_,
    "orthogonal": nn.init.orthogonal_,
}

Layers = Union[
    None,
    Type[nn.Module],
    Sequence[Type[nn.Module]],
    Callable[[str, nn.Module], bool],
    str,
    Sequence[str],
]
Patterns = Union[None, str, Sequence[str]]

# User initializers draw from torch's global RNG, which threads share: each
# such call runs alone, with the global RNG seeded from the parameter's seed.
_GLOBAL_RNG_LOCK = threading.Lock()


@dataclass(frozen=True)
class RewireOptions:
    """What to do to each selected parameter (validated by :func:`make_options`)."""

    init: Optional[Callable[..., Any]] = None
    init_name: Optional[str] = None
    #: True when ``init`` accepts ``generator=``: it then runs in worker
    #: threads with a private generator instead of the locked global RNG.
    init_takes_generator: bool = False
    stabilize: int = 0
    sampler: functional.Sampler = DEFAULT_SAMPLER


def _takes_generator(fn: Callable[..., Any]) -> bool:
    import inspect

    try:
        return "generator" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def make_options(
    init: Union[None, str, Callable[..., Any]] = None,
    stabilize: int = 0,
    sampler: functional.Sampler = DEFAULT_SAMPLER,
    fn: str = "rewire_model",
) -> RewireOptions:
    """Check ``init`` / ``stabilize`` / ``sampler`` and resolve an init name."""
    functional.sampler_code(sampler, fn)
    if isinstance(stabilize, bool) or not isinstance(stabilize, int):
        raise TypeError(f"{fn}: stabilize must be a non-negative int, got {stabilize!r}")
    if stabilize < 0:
        raise ValueError(f"{fn}: stabilize must be a non-negative int, got {stabilize}")
    if init is None:
        if stabilize:
            raise ValueError(
                f"{fn}: stabilize={stabilize} needs an initializer to draw candidates from; "
                "pass init= (e.g. init='orthogonal')"
            )
        return RewireOptions(sampler=sampler)
    if isinstance(init, str):
        key = init[:-1] if init.endswith("_") else init
        if key not in INITIALIZERS:
            raise ValueError(f"{fn}: unknown init {init!r}; choose one of {sorted(INITIALIZERS)} or pass a callable")
        f = INITIALIZERS[key]
        # Named initializers get a private generator when this torch offers it.
        return RewireOptions(f, key, _takes_generator(f), stabilize, sampler)
    if not callable(init):
        raise TypeError(f"{fn}: init must be None, a torch.nn.init name or a callable, got {type(init).__name__}")
    name = getattr(init, "__name__", None) or type(init).__name__
    return RewireOptions(init, name, False, stabilize, sampler)


# -- selection ---------------------------------------------------------------


def _patterns(value: Patterns, what: str, fn: str) -> Tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)) and all(isinstance(p, str) for p in value):
        return tuple(value)
    raise TypeError(f"{fn}: {what} must be a name pattern or a list of name patterns, got {value!r}")


def _matches(name: str, patterns: Tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _is_type_list(value: Any) -> bool:
    if isinstance(value, type):
        return issubclass(value, nn.Module)
    return (
        isinstance(value, (list, tuple))
        and len(value) > 0
        and all(isinstance(t, type) and issubclass(t, nn.Module) for t in value)
    )


def _candidates(
    model: Union[nn.Module, Mapping[str, Any]], layers: Layers, fn: str
) -> Iterator[Tuple[str, Any, bool]]:
    """(name, tensor, frozen-counts) for every parameter the ``layers`` selector picks."""
    if isinstance(layers, (list, tuple)) and not layers:
        raise ValueError(f"{fn}: layers is empty; pass None for the default layers")
    if isinstance(model, nn.Module):
        if layers is None or _is_type_list(layers):
            types = DEFAULT_LAYERS if layers is None else (layers if isinstance(layers, type) else tuple(layers))
            keep_module: Callable[[str, nn.Module], bool] = lambda n, m: isinstance(m, types)  # noqa: E731
            include: Tuple[str, ...] = ()
        elif isinstance(layers, (str, list, tuple)):
            include = _patterns(layers, "layers", fn)  # type: ignore[arg-type]
            keep_module = lambda n, m: True  # noqa: E731
        elif callable(layers) and not isinstance(layers, type):
            keep_module, include = layers, ()  # type: ignore[assignment]
        else:
            raise TypeError(
                f"{fn}: layers must be None, module types, a predicate (name, module) -> bool "
                f"or name patterns, got {layers!r}"
            )
        for mod_name, module in model.named_modules():
            if not keep_module(mod_name, module):
                continue
            for p_name, p in module.named_parameters(recurse=False):
                name = f"{mod_name}.{p_name}" if mod_name else p_name
                if include and not _matches(name, include):
                    continue
                yield name, p, True
    elif isinstance(model, Mapping):
        if layers is not None and not isinstance(layers, (str, list, tuple)) or _is_type_list(layers):
            raise TypeError(f"{fn}: a state_dict can only be selected from by name patterns, got layers={layers!r}")
        include = _patterns(layers, "layers", fn)  # type: ignore[arg-type]
        for name, t in model.items():
            if not isinstance(name, str) or not isinstance(t, torch.Tensor):
                continue
            if include and not _matches(name, include):
                continue
            yield name, t, False
    else:
        raise TypeError(f"{fn}: expected an nn.Module or a state_dict (a mapping of names to tensors), "
                        f"got {type(model).__name__}")


def _skip_reason(name: str, t: torch.Tensor, frozen_counts: bool) -> Optional[str]:
    if isinstance(t, nn.parameter.UninitializedParameter):
        return "uninitialised (lazy)"
    if t.is_meta:
        return "meta tensor (no values)"
    if t.dtype not in _bridge.TORCH_DTYPES:
        return f"dtype {str(t.dtype).replace('torch.', '')}"
    if t.ndim < 2:
        return "1-D (bias)" if t.ndim == 1 and name.endswith("bias") else f"{t.ndim}-D"
    if t.numel() == 0:
        return "no elements"
    if frozen_counts and not t.requires_grad:
        return "frozen (requires_grad=False)"
    return None


def _tensor_key(t: torch.Tensor) -> Tuple[Any, ...]:
    """Identical views of one storage are one parameter (tied, or a state_dict's aliases)."""
    return (str(t.device), t.data_ptr(), tuple(t.shape), tuple(t.stride()), t.dtype)


def select_parameters(
    model: Union[nn.Module, Mapping[str, Any]],
    layers: Layers = None,
    exclude: Patterns = None,
    fn: str = "rewire_model",
) -> Tuple[List[Tuple[str, torch.Tensor]], List[ParameterRecord], List[str]]:
    """``(to rewire, skipped records, every name in model order)``, tied parameters once.

    Meta tensors are skipped with a reason when the default selection meets
    them, and raise ``ValueError`` when ``layers`` asked for them.
    """
    excluded = _patterns(exclude, "exclude", fn)
    chosen: List[Tuple[str, torch.Tensor]] = []
    records: List[ParameterRecord] = []
    seen: Dict[Tuple[Any, ...], str] = {}
    order: List[str] = []
    for name, t, frozen_counts in _candidates(model, layers, fn):
        order.append(name)
        if excluded and _matches(name, excluded):
            reason: Optional[str] = "excluded"
        else:
            reason = _skip_reason(name, t, frozen_counts)
        if reason == "meta tensor (no values)" and layers is not None:
            raise ValueError(
                f"{fn}: parameter {name!r} is a meta tensor and has no values to rewire; "
                "materialise the model first (to_empty + init)"
            )
        if reason is None:
            key = _tensor_key(t)
            if key in seen:
                reason = f"tied to {seen[key]}"
            else:
                seen[key] = name
                chosen.append((name, t))
                continue
        records.append(_skipped_record(name, t, reason))
    return chosen, records, order


def _skipped_record(name: str, t: torch.Tensor, reason: str) -> ParameterRecord:
    if isinstance(t, nn.parameter.UninitializedParameter):  # has no shape yet
        return ParameterRecord(name, (), "uninitialised", str(t.device), skipped=reason)
    return ParameterRecord(name, tuple(t.shape), str(t.dtype).replace("torch.", ""), str(t.device), skipped=reason)


# -- one parameter -------------------------------------------------------------


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


def _measure(t: torch.Tensor) -> Tuple[functional.StrengthStats, np.ndarray, np.ndarray]:
    """Strength statistics plus per-neuron strengths (row sums, column sums) in float64,
    from one pass of the C kernel."""
    *stats, rows, cols = _bridge.strength_stats(t, sums=True)
    return functional.StrengthStats(*stats), rows, cols


def rewire_parameter(name: str, tensor: torch.Tensor, seed: int, options: RewireOptions) -> ParameterRecord:
    """Initialise (optionally), stabilise (optionally), measure and rewire one tensor in place.

    ``seed`` seeds the rewiring; the initializer draws from a stream derived
    from it (``derive_seed(seed, "init")``), so the result depends on nothing
    but ``(tensor, seed, options)`` — not on threads or processing order.
    On error the tensor may hold the initializer's values: callers that
    promise all-or-nothing keep a copy (as :func:`rewire_model` does).
    """
    init_seconds = 0.0
    if options.init is not None:
        trials = max(1, options.stabilize)
        init_seed = derive_seed(seed, "init")
        t0 = time.perf_counter()
        if options.init_takes_generator:
            g = torch.Generator(device=tensor.device).manual_seed(init_seed)
            functional.stabilize_strength_(tensor, functools.partial(options.init, generator=g), trials)
        else:
            with _GLOBAL_RNG_LOCK, _seeded_global_rng(tensor.device, init_seed):
                functional.stabilize_strength_(tensor, options.init, trials)
        init_seconds = time.perf_counter() - t0
    before, in_b, out_b = _measure(tensor)
    t0 = time.perf_counter()
    functional.pa_rewire_(tensor, seed=seed, sampler=options.sampler)
    seconds = time.perf_counter() - t0
    after, in_a, out_a = _measure(tensor)
    return ParameterRecord(
        name=name,
        shape=tuple(tensor.shape),
        dtype=str(tensor.dtype).replace("torch.", ""),
        device=str(tensor.device),
        seed=seed,
        before=before,
        after=after,
        seconds=seconds,
        init_seconds=init_seconds,
        strengths={"in_before": in_b, "out_before": out_b, "in_after": in_a, "out_after": out_a},
    )


def _validate(chosen: List[Tuple[str, torch.Tensor]], options: RewireOptions, fn: str) -> None:
    """Everything that can be known to fail is found before the first write."""
    for name, t in chosen:
        _bridge.check_weights(t, f"{fn}: parameter {name!r}")
        if options.init is None:
            with torch.no_grad():
                if not bool(torch.isfinite(t.detach()).all()):
                    raise ValueError(f"{fn}: parameter {name!r} holds NaN or Inf; rewiring needs finite weights")


def _snapshot(t: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """(the tensor's own storage view, a host copy of its values)."""
    return t.detach(), t.detach().to("cpu", copy=True)


def _restore(t: torch.Tensor, snap: Tuple[torch.Tensor, torch.Tensor]) -> None:
    own, values = snap
    with torch.no_grad():
        if t.data_ptr() != own.data_ptr() or t.shape != own.shape or t.dtype != own.dtype:
            t.data = own  # an initializer swapped the storage: re-attach the caller's
        own.copy_(values)


def _default_workers(n: int) -> int:
    try:
        cpus = len(os.sched_getaffinity(0))  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, n))


def _progress_bar(enabled: bool, total: int) -> Any:
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # progress is a nicety: no tqdm, no bar
        return None
    return tqdm(total=total, desc="rewiring", unit="param")


def _run_all(
    chosen: List[Tuple[str, torch.Tensor]],
    seeds: List[int],
    options: RewireOptions,
    workers: int,
    progress: bool,
    restore: bool = True,
) -> List[ParameterRecord]:
    """Run every parameter; on any error restore all of them and re-raise.

    ``restore=False`` skips the host copies kept for that, for callers whose
    tensors are private scratch copies anyway."""
    snapshots: Dict[int, Tuple[torch.Tensor, torch.Tensor]] = {}
    results: List[Optional[ParameterRecord]] = [None] * len(chosen)
    bar = _progress_bar(progress, len(chosen))

    def task(i: int) -> None:
        name, t = chosen[i]
        if restore:
            snapshots[i] = _snapshot(t)
        results[i] = rewire_parameter(name, t, seeds[i], options)

    try:
        if workers <= 1 or len(chosen) <= 1:
            for i in range(len(chosen)):
                task(i)
                if bar is not None:
                    bar.update(1)
        else:
            pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="parewire")
            try:
                # Largest first, so no worker is left with a big layer at the end.
                by_size = sorted(range(len(chosen)), key=lambda i: (-chosen[i][1].numel(), i))
                futures = [pool.submit(task, i) for i in by_size]
                pending = set(futures)
                while pending:
                    done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                    for f in done:
                        f.result()  # raises the first failure
                        if bar is not None:
                            bar.update(1)
            finally:
                # On failure: drop what has not started, let running tasks finish.
                pool.shutdown(wait=True, cancel_futures=True)
    except BaseException:
        for i, snap in snapshots.items():
            _restore(chosen[i][1], snap)
        raise
    finally:
        if bar is not None:
            bar.close()
    return results  # type: ignore[return-value]


def _check_workers(workers: Any, fn: str) -> None:
    if workers is None:
        return
    if isinstance(workers, bool) or not isinstance(workers, int):
        raise TypeError(f"{fn}: workers must be a positive int or None, got {workers!r}")
    if workers < 1:
        raise ValueError(f"{fn}: workers must be a positive int or None, got {workers}")


def rewire_model(
    model: Union[nn.Module, Mapping[str, torch.Tensor]],
    *,
    init: Union[None, str, Callable[..., Any]] = None,
    stabilize: int = 0,
    seed: Optional[int] = None,
    sampler: functional.Sampler = DEFAULT_SAMPLER,
    layers: Layers = None,
    exclude: Patterns = None,
    progress: bool = False,
    workers: Optional[int] = None,
    generator: Optional[torch.Generator] = None,
    name: Optional[str] = None,
    group: Any = None,
) -> RewireReport:
    """Initialise (optionally) and PA-rewire the weights of a whole model, in place.

    By default every weight of ``nn.Linear`` and ``nn.Conv1d/2d/3d`` modules
    is rewired with :func:`parewire.pa_rewire_`; each parameter gets its own
    seed, derived from the model seed and the parameter's name, so the same
    seed gives the same model whatever ``workers`` is.

    Args:
        model: an ``nn.Module``, or a ``state_dict``-like mapping of names to
            tensors (then every floating tensor with >= 2 dimensions is a
            candidate and ``layers`` may only be name patterns).
        init: ``None`` keeps the current weights; a ``torch.nn.init`` name
            (``"orthogonal"``, ``"kaiming_normal"``, ``"kaiming_uniform"``,
            ``"xavier_uniform"``, ``"xavier_normal"``, ``"normal"``,
            ``"uniform"``, ``"trunc_normal"``; see ``INITIALIZERS``) or a
            callable that fills its tensor argument in place.  Applied to
            each selected weight before rewiring.
        stabilize: ``K > 0`` keeps the best of ``K`` draws of ``init`` (lowest
            strength variance, :func:`parewire.stabilize_strength_`) before
            rewiring; needs ``init``.
        seed: the model seed (a non-negative int).  ``None`` draws one from
            ``generator`` / torch's default generator, so ``torch.manual_seed``
            makes unseeded calls reproducible.
        sampler: ``"numpy"`` (bit-compatible with the authors' code) or ``"fast"``.
        layers: which parameters: ``None`` (the default layers above), a
            module type or a list of them (all parameters of those modules),
            a predicate ``f(module_name, module) -> bool`` (all parameters of
            the modules it accepts), or ``fnmatch`` patterns on parameter
            names (``"layer1.*"``, ``["*.conv*.weight", "fc.weight"]``).
        exclude: ``fnmatch`` patterns of parameter names to leave alone.
        progress: show a tqdm progress bar (nothing if tqdm is missing).
        workers: threads working on different parameters (default: the CPUs
            available, at most one per parameter).  Results do not depend on it.
        generator: the torch Generator to draw the model seed from when
            ``seed`` is None (default: None).
        name: what the report calls the model (default: its class name).
        group: a ``torch.distributed`` process group, or ``True`` for the
            default group, to share the work among its ranks (see
            :mod:`parewire.distributed`); every rank calls ``rewire_model``
            with the same arguments and gets the same weights and report as a
            single process would.  ``None`` (default): this process alone.

    Returns:
        A :class:`parewire.RewireReport`: one record per parameter considered
        (rewired or skipped, with the reason), strength statistics before and
        after, seeds and times.

    Selected parameters that are frozen (``requires_grad=False``), have fewer
    than 2 dimensions (biases), no elements, an unsupported dtype, are lazy
    (uninitialised) or on the meta device are skipped with a reason; meta
    tensors raise ``ValueError`` instead when ``layers`` selected them
    explicitly.  Tied parameters are rewired once (the first name wins).

    Examples:
        >>> model = torchvision.models.resnet18()
        >>> report = parewire.rewire_model(model, init="orthogonal", seed=0)
        >>> print(report)
        >>> report.plot("strengths.png")
        >>> parewire.rewire_model(model, layers=[nn.Conv2d], exclude="conv1.*", seed=1)

    Note:
        All or nothing: every selected parameter is validated before the
        first one is written (dtype, dimensions, NaN/Inf when ``init`` is
        None), and if anything fails later — an initializer raising, an
        interrupt — every parameter is restored to its exact previous values
        before the exception propagates.  For this the call keeps a host copy
        of each parameter it has started on, i.e. up to one copy of the
        selected weights in CPU memory.

    Note:
        A named ``init`` draws from a private ``torch.Generator`` per
        parameter (seeded from that parameter's seed) and runs in the worker
        threads.  A callable ``init`` draws from torch's global RNG: each call
        runs alone with the global RNG seeded from the parameter's seed and
        restored afterwards, so it is reproducible too, but not parallel.
    """
    fn = "rewire_model"
    t_start = time.perf_counter()
    options = make_options(init, stabilize, sampler, fn)
    check_seed(seed, fn)
    _check_workers(workers, fn)
    if name is not None and not isinstance(name, str):
        raise TypeError(f"{fn}: name must be a str or None, got {type(name).__name__}")
    chosen, skipped, order = select_parameters(model, layers, exclude, fn)
    dist_group = distributed.resolve_group(group)
    if dist_group is None:
        _validate(chosen, options, fn)
    else:
        # A check that fails on one rank only (its replica holds a NaN) must
        # fail on every rank, or the others would wait for it forever.
        distributed.agree(lambda: _validate(chosen, options, fn), dist_group)
    base = resolve_seed(seed, generator)
    if dist_group is not None:
        base = distributed.broadcast_seed(base, dist_group)
    seeds = [derive_seed(base, n) for n, _ in chosen]
    n_workers = workers if workers is not None else _default_workers(len(chosen))
    if dist_group is None:
        done = _run_all(chosen, seeds, options, n_workers, bool(progress))
    else:
        seed_of = dict(zip((n for n, _ in chosen), seeds))

        def run_share(items: List[Tuple[str, torch.Tensor]]) -> List[ParameterRecord]:
            # the owners' private full copies: nothing to restore on failure
            return _run_all(items, [seed_of[n] for n, _ in items], options, n_workers, bool(progress), restore=False)

        done = distributed.rewire_parameters(chosen, run_share, dist_group)

    by_name = {r.name: r for r in done + skipped}
    records = [by_name[n] for n in order]
    return RewireReport(
        model=name if name is not None else type(model).__name__,
        records=records,
        seed=base,
        sampler=options.sampler,
        init=options.init_name,
        stabilize=options.stabilize,
        workers=n_workers,
        seconds=time.perf_counter() - t_start,
    )


# -- model.apply ---------------------------------------------------------------


class Rewirer:
    """A callable for ``model.apply(...)`` that initialises and rewires matching modules.

    Made by :func:`rewirer`.  Each call looks at one module; if it is one of
    ``layers`` (default: Linear and Conv1d/2d/3d), its own parameters are
    handled like :func:`rewire_model` handles a model's (skips included) and
    their records are appended to :attr:`report`.  Parameters are named
    ``"<Type>#<k>.<param>"`` where ``k`` counts the matching modules in the
    order ``apply`` visits them; seeds are derived from the base seed and
    that name, so the same model and seed give the same weights (but not the
    same as :func:`rewire_model`, whose seeds come from the parameters' real
    names).  Each module is all or nothing; modules visited earlier stay
    rewired if a later one fails.
    """

    def __init__(
        self,
        *,
        init: Union[None, str, Callable[..., Any]] = None,
        stabilize: int = 0,
        seed: Optional[int] = None,
        sampler: functional.Sampler = DEFAULT_SAMPLER,
        layers: Union[Type[nn.Module], Sequence[Type[nn.Module]], None] = None,
        generator: Optional[torch.Generator] = None,
    ) -> None:
        fn = "rewirer"
        self.options = make_options(init, stabilize, sampler, fn)
        check_seed(seed, fn)
        if layers is None:
            self.types: Tuple[Type[nn.Module], ...] = DEFAULT_LAYERS
        elif _is_type_list(layers):
            self.types = (layers,) if isinstance(layers, type) else tuple(layers)  # type: ignore[arg-type]
        else:
            raise TypeError(f"{fn}: layers must be module types, got {layers!r}")
        self.seed = resolve_seed(seed, generator)
        self.report = RewireReport(
            model="model.apply", records=[], seed=self.seed, sampler=self.options.sampler,
            init=self.options.init_name, stabilize=self.options.stabilize, workers=1,
        )
        self._count = 0

    def __call__(self, module: nn.Module) -> None:
        if not isinstance(module, self.types):
            return
        prefix = f"{type(module).__name__}#{self._count}"
        self._count += 1
        t0 = time.perf_counter()
        own = {f"{prefix}.{n}": p for n, p in module.named_parameters(recurse=False)}
        chosen, skipped, order = select_parameters(own, None, None, "rewirer")
        # a mapping has no notion of frozen: apply the module rule here
        frozen = [(n, p) for n, p in chosen if not p.requires_grad]
        chosen = [(n, p) for n, p in chosen if p.requires_grad]
        skipped += [_skipped_record(n, p, "frozen (requires_grad=False)") for n, p in frozen]
        _validate(chosen, self.options, "rewirer")
        done = _run_all(chosen, [derive_seed(self.seed, n) for n, _ in chosen], self.options, 1, False)
        by_name = {r.name: r for r in done + skipped}
        self.report.records.extend(by_name[n] for n in order)
        self.report.seconds += time.perf_counter() - t0


def rewirer(
    *,
    init: Union[None, str, Callable[..., Any]] = None,
    stabilize: int = 0,
    seed: Optional[int] = None,
    sampler: functional.Sampler = DEFAULT_SAMPLER,
    layers: Union[Type[nn.Module], Sequence[Type[nn.Module]], None] = None,
    generator: Optional[torch.Generator] = None,
) -> Rewirer:
    """A per-module rewiring function for ``model.apply``, with its report.

    Options mean what they mean in :func:`rewire_model`.

    Examples:
        >>> rw = parewire.rewirer(init="kaiming_normal", seed=0)
        >>> model.apply(rw)
        >>> print(rw.report)
    """
    return Rewirer(init=init, stabilize=stabilize, seed=seed, sampler=sampler, layers=layers, generator=generator)
