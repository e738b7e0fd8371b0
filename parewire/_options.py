"""What to do to each selected parameter: the initializer (with its arguments), stabilisation, sampler."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Union

from torch import nn

from . import functional
from ._runner import Progress, RestoreMode

__all__ = ["DEFAULT_SAMPLER", "INITIALIZERS", "Init", "Request", "RewireOptions", "make_options"]

#: The sampler ``rewire_model``, ``rewirer`` and the command line use by default.
DEFAULT_SAMPLER: functional.Sampler = "numpy"

#: ``init=`` names -> ``torch.nn.init`` functions (a trailing ``_`` is accepted too).
INITIALIZERS: dict[str, Callable[..., Any]] = {
    "uniform": nn.init.uniform_,
    "normal": nn.init.normal_,
    "trunc_normal": nn.init.trunc_normal_,
    "xavier_uniform": nn.init.xavier_uniform_,
    "xavier_normal": nn.init.xavier_normal_,
    "kaiming_uniform": nn.init.kaiming_uniform_,
    "kaiming_normal": nn.init.kaiming_normal_,
    "orthogonal": nn.init.orthogonal_,
}

#: What ``init=`` accepts: a name, a callable, or either with keyword arguments.
Init = Union[None, str, Callable[..., Any], tuple[Union[str, Callable[..., Any]], Mapping[str, Any]]]


@dataclass(frozen=True)
class RewireOptions:
    """What to do to each selected parameter (validated by :func:`make_options`)."""

    init: Callable[..., Any] | None = None
    #: How the report names the initializer, arguments included.
    init_name: str | None = None
    init_kwargs: Mapping[str, Any] = field(default_factory=dict)
    #: A ``torch.nn.init`` function named by ``init=``: it draws from a private
    #: generator in the worker threads (and in float32 for 16-bit weights).
    named: bool = False
    #: True when ``init`` accepts ``generator=``.
    init_takes_generator: bool = False
    stabilize: int = 0
    sampler: functional.Sampler = DEFAULT_SAMPLER


@dataclass(frozen=True)
class Request:
    """One ``rewire_model`` or ``rewirer`` call with its arguments checked: what to do to each
    parameter, where the seeds come from, and how to run it."""

    options: RewireOptions
    #: The base seed; each parameter's seed is derived from it and the parameter's name.
    base: int
    #: An explicit ``seed=`` (both passes from one seed, as the reference) rather than a drawn one.
    seeded: bool
    #: Worker threads over parameters (None: chosen from how many there are).
    workers: int | None
    restore: RestoreMode
    restore_dir: str | None
    progress: bool | Progress
    #: The entry point, as errors name it.
    fn: str


def _takes_generator(fn: Callable[..., Any]) -> bool:
    try:
        return "generator" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _label(name: str, kwargs: Mapping[str, Any]) -> str:
    return name if not kwargs else f"{name}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"


def make_options(
    init: Init = None,
    stabilize: int = 0,
    sampler: functional.Sampler = DEFAULT_SAMPLER,
    fn: str = "rewire_model",
) -> RewireOptions:
    """Check ``init`` / ``stabilize`` / ``sampler``; resolve an init name and its arguments."""
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
    kwargs: dict[str, Any] = {}
    if isinstance(init, tuple):
        if len(init) != 2 or not isinstance(init[1], Mapping) or not all(isinstance(k, str) for k in init[1]):
            raise TypeError(
                f"{fn}: init as a tuple must be (name or callable, {{keyword: value}}), "
                f"e.g. ('kaiming_normal', {{'mode': 'fan_out'}}); got {init!r}"
            )
        kwargs = dict(init[1])
        init = init[0]
    if isinstance(init, str):
        key = init[:-1] if init.endswith("_") else init
        if key not in INITIALIZERS:
            raise ValueError(f"{fn}: unknown init {init!r}; choose one of {sorted(INITIALIZERS)} or pass a callable")
        f = INITIALIZERS[key]
        _check_kwargs(f, key, kwargs, fn)
        takes = _takes_generator(f)
        return RewireOptions(
            functools.partial(f, **kwargs) if kwargs else f,
            _label(key, kwargs),
            kwargs,
            True,
            takes,
            stabilize,
            sampler,
        )
    if not callable(init):
        raise TypeError(
            f"{fn}: init must be None, a torch.nn.init name, a callable, or one of those with keyword "
            f"arguments as a (init, dict) tuple; got {type(init).__name__}"
        )
    name = getattr(init, "__name__", None) or type(init).__name__
    if kwargs:
        _check_kwargs(init, name, kwargs, fn)
    f = functools.partial(init, **kwargs) if kwargs else init
    return RewireOptions(f, _label(name, kwargs), kwargs, False, False, stabilize, sampler)


def _check_kwargs(f: Callable[..., Any], name: str, kwargs: Mapping[str, Any], fn: str) -> None:
    """Unknown or misplaced keyword arguments fail before any weight is touched."""
    if "generator" in kwargs:
        raise ValueError(
            f"{fn}: init {name!r}: do not pass generator=; each parameter gets its own, seeded from its seed"
        )
    try:
        signature = inspect.signature(f)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(None, **kwargs)
    except TypeError as e:
        raise TypeError(f"{fn}: init {name!r} does not accept {dict(kwargs)!r}: {e}") from None
