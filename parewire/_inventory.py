"""The parameter inventory: every candidate of a model, found and checked before anything is written.

For each parameter with >= 2 dimensions (and each one a selector names) the
inventory records its stable name, its module, the rule that selects it and
the dimension of its output neurons, its storage identity, and what will
happen to it: rewired, tied (another name of a tensor rewired under its
first name), skipped (with a reason) or not considered (no rule selects it).

Identity is by storage, not by address: identical views of one storage are
one parameter; different views whose memory overlaps, and views whose own
elements overlap (expanded tensors), are refused with a ``ValueError`` that
names the parameters.  DTensors (whose ``data_ptr()`` is 0) are told apart
by object.  Names do not depend on wrappers that leave the model unchanged
(``torch.compile``, ``DistributedDataParallel``, ``DataParallel``), so seeds
derived from them do not either.
"""

from __future__ import annotations

import fnmatch
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Union, cast

import numpy as np
import torch
from torch import nn

from . import _bridge
from ._claims import storage_span
from ._registry import rule_for
from .report import ParameterRecord

if TYPE_CHECKING:
    from typing import TypeGuard

    from torch.distributed.tensor import DTensor

__all__ = ["Entry", "Inventory", "Layers", "Patterns", "build_inventory", "is_dtensor", "oriented", "unwrap"]

Layers = Union[
    None,
    type[nn.Module],
    Sequence[type[nn.Module]],
    Callable[[str, nn.Module], bool],
    str,
    Sequence[str],
]
Patterns = Union[None, str, Sequence[str]]

REWIRE, TIED, SKIPPED, NOT_CONSIDERED = "rewire", "tied", "skipped", "not considered"


def is_dtensor(t: Any) -> TypeGuard[DTensor]:
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:  # torch < 2.4 keeps it private
        try:
            from torch.distributed._tensor import DTensor  # type: ignore[attr-defined]
        except ImportError:
            return False
    return isinstance(t, DTensor)


def oriented(t: torch.Tensor, out_dim: int) -> torch.Tensor:
    """``t`` viewed with its output-neuron dimension first (no copy)."""
    return t if out_dim == 0 else t.movedim(out_dim, 0)


@dataclass
class Entry:
    """One candidate parameter (see the module docstring)."""

    name: str
    tensor: torch.Tensor
    module_type: str | None
    out_dim: int = 0
    status: str = REWIRE
    reason: str | None = None
    #: storage identity: (device, storage address, storage bytes) or None
    storage: tuple[Any, ...] | None = field(default=None, repr=False)
    #: [first byte, one past the last byte) of the elements within the storage
    span: tuple[int, int] = field(default=(0, 0), repr=False)
    #: key equal for identical views (same storage, offset, shape, strides, dtype) or the same object
    identity: tuple[Any, ...] = field(default=(), repr=False)

    @property
    def view(self) -> torch.Tensor:
        """The parameter with its output neurons on dimension 0."""
        return oriented(self.tensor, self.out_dim)

    def record(self) -> ParameterRecord:
        """The report record of an entry that is not rewired."""
        t = self.tensor
        if isinstance(t, nn.parameter.UninitializedParameter):  # no shape yet
            shape: tuple[int, ...] = ()
            dtype = "uninitialised"
        else:
            shape, dtype = tuple(t.shape), str(t.dtype).replace("torch.", "")
        status = "not considered" if self.status == NOT_CONSIDERED else "tied" if self.status == TIED else "skipped"
        return ParameterRecord(
            self.name,
            shape,
            dtype,
            str(t.device),
            skipped=self.reason,
            status=status,
            module=self.module_type,
            out_dim=self.out_dim,
        )


@dataclass
class Inventory:
    """Every entry in model order; ``to_rewire`` are those that will be written."""

    entries: list[Entry]

    @property
    def to_rewire(self) -> list[Entry]:
        return [e for e in self.entries if e.status == REWIRE]


# -- names ---------------------------------------------------------------------------------


def unwrap(module: nn.Module) -> nn.Module:
    """The model inside wrappers that do not change it (torch.compile, DDP, DataParallel)."""
    while True:
        inner = getattr(module, "_orig_mod", None)
        if type(module).__name__ == "OptimizedModule" and isinstance(inner, nn.Module):
            module = inner
        elif isinstance(module, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            module = module.module
        else:
            return module


def _walk(module: nn.Module, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, nn.Module]]:
    """(name, module) for the module and (``recurse``) every submodule, wrappers transparent.

    A module reachable under two names is listed under both, so that its
    parameters' second names are reported as tied."""
    module = unwrap(module)
    yield prefix, module
    if not recurse:
        return
    for child_name, child in module._modules.items():
        if child is not None:
            yield from _walk(child, f"{prefix}.{child_name}" if prefix else child_name)


def _strip_common_prefix(names: Sequence[str]) -> dict[str, str]:
    """state_dict keys without a wrapper prefix every key shares (``module.``, ``_orig_mod.``)."""
    out = {n: n for n in names}
    for prefix in ("module.", "_orig_mod."):
        while out and all(v.startswith(prefix) for v in out.values()):
            out = {k: v[len(prefix) :] for k, v in out.items()}
    return out


# -- selection -----------------------------------------------------------------------------


def _patterns(value: Patterns, what: str, fn: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)) and all(isinstance(p, str) for p in value):
        return tuple(value)
    raise TypeError(f"{fn}: {what} must be a name pattern or a list of name patterns, got {value!r}")


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _is_type_list(value: Any) -> bool:
    if isinstance(value, type):
        return issubclass(value, nn.Module)
    return (
        isinstance(value, (list, tuple))
        and len(value) > 0
        and all(isinstance(t, type) and issubclass(t, nn.Module) for t in value)
    )


def _describe(layers: Layers, exclude: Patterns) -> str:
    if layers is None:
        what = "the default selection (registered layer types: see parewire.registered_layers())"
    elif isinstance(layers, type):
        what = f"layers={layers.__name__}"
    elif _is_type_list(layers):
        what = "layers=[" + ", ".join(t.__name__ for t in layers) + "]"  # type: ignore[union-attr]
    else:
        what = f"layers={layers!r}"
    return what + (f" with exclude={exclude!r}" if exclude else "")


@dataclass
class _Candidate:
    name: str
    module: nn.Module | None
    tensor: Any
    selected: bool
    out_dim: int
    why_not: str | None  # for unselected >= 2-D parameters
    frozen_counts: bool


def _module_candidates(model: nn.Module, layers: Layers, prefix: str, recurse: bool, fn: str) -> Iterator[_Candidate]:
    include: tuple[str, ...] = ()
    pick: Callable[[str, nn.Module], bool] | None = None
    if layers is None:
        pass
    elif _is_type_list(layers):
        types = (layers,) if isinstance(layers, type) else tuple(cast("Sequence[type[nn.Module]]", layers))
        pick = lambda n, m: isinstance(m, types)  # noqa: E731
    elif isinstance(layers, (str, list, tuple)):
        include = _patterns(layers, "layers", fn)
    elif callable(layers) and not isinstance(layers, type):
        pick = layers
    else:
        raise TypeError(
            f"{fn}: layers must be None, module types, a predicate (name, module) -> bool "
            f"or name patterns, got {layers!r}"
        )
    parametrize = getattr(getattr(nn.utils, "parametrize", None), "ParametrizationList", None)
    for mod_name, module in _walk(model, prefix, recurse):
        rule = rule_for(module)
        picked = pick(mod_name, module) if pick is not None else None
        for p_name, p in module._parameters.items():
            if p is None:
                continue
            name = f"{mod_name}.{p_name}" if mod_name else p_name
            in_rule = rule is not None and p_name in rule.params
            out_dim = rule.out_dim if in_rule else 0  # type: ignore[union-attr]
            if layers is None:
                selected = in_rule
            elif include:
                selected = _matches(name, include)
            else:  # types or a predicate pick modules: their rule's parameters, or all of them
                selected = bool(picked) and (in_rule or rule is None)
            why_not = None
            if not selected:
                if parametrize is not None and isinstance(module, parametrize):
                    why_not = "parametrized: rewire before registering the parametrization"
                elif any(
                    type(h).__name__ in ("WeightNorm", "SpectralNorm") for h in module._forward_pre_hooks.values()
                ):
                    why_not = "weight_norm/spectral_norm hook: rewire before applying it"
                elif rule is not None:
                    why_not = f"{type(module).__name__}.{p_name} is not in its layer rule"
                else:
                    why_not = type(module).__name__
            yield _Candidate(name, module, p, selected, out_dim, why_not, True)


def _mapping_candidates(model: Mapping[str, Any], layers: Layers, fn: str) -> Iterator[_Candidate]:
    if layers is not None and (not isinstance(layers, (str, list, tuple)) or _is_type_list(layers)):
        raise TypeError(f"{fn}: a state_dict can only be selected from by name patterns, got layers={layers!r}")
    include = _patterns(layers, "layers", fn)
    keys = [k for k, v in model.items() if isinstance(k, str) and isinstance(v, torch.Tensor)]
    stable = _strip_common_prefix(keys)
    for key in keys:
        name, t = stable[key], model[key]
        selected = _matches(name, include) if include else t.is_floating_point() and t.ndim >= 2
        yield _Candidate(name, None, t, selected, 0, None if selected else f"dtype {_dtype(t)}", False)


def _dtype(t: torch.Tensor) -> str:
    return str(t.dtype).replace("torch.", "")


def _ndim(t: Any) -> int:
    return 0 if isinstance(t, nn.parameter.UninitializedParameter) else t.ndim


def _skip_reason(c: _Candidate, layers: Layers, fn: str) -> str | None:
    t = c.tensor
    if isinstance(t, nn.parameter.UninitializedParameter):
        return "uninitialised (lazy)"
    if t.is_meta:
        if layers is not None:
            raise ValueError(
                f"{fn}: parameter {c.name!r} is a meta tensor and has no values to rewire; "
                "materialise the model first (to_empty + init)"
            )
        return "meta tensor (no values)"
    if t.layout != torch.strided:
        return f"layout {t.layout}"
    if t.dtype not in _bridge.TORCH_DTYPES:
        return f"dtype {_dtype(t)}"
    if t.ndim < 2:
        return f"{t.ndim}-D"
    if t.numel() == 0:
        return "no elements"
    if not -t.ndim <= c.out_dim < t.ndim:
        raise ValueError(
            f"{fn}: the layer rule of parameter {c.name!r} puts output neurons on dimension {c.out_dim}, "
            f"but it has shape {tuple(t.shape)}; fix the rule with parewire.register_layer"
        )
    if c.frozen_counts and not t.requires_grad:
        return "frozen (requires_grad=False)"
    rows = t.shape[c.out_dim]
    if rows == 1:
        return "cannot change (1 row)"
    if t.numel() // rows == 1:
        return "cannot change (1 column)"
    return None


# -- identity ------------------------------------------------------------------------------


def _local(t: torch.Tensor) -> torch.Tensor:
    return t.to_local() if is_dtensor(t) else t


def _identify(entry: Entry) -> None:
    t = entry.tensor
    if is_dtensor(t):
        local = _local(t)
        entry.storage, entry.span = storage_span(local)
        entry.identity = ("object", id(t))  # identical on every rank, whatever the local shard holds
        return
    entry.storage, entry.span = storage_span(t)
    if entry.storage is None:
        entry.identity = ("object", id(t))
    else:
        entry.identity = (*entry.storage, t.storage_offset(), tuple(t.shape), tuple(t.stride()), t.dtype)


def _bytes(t: torch.Tensor) -> np.ndarray:
    """Offset of every byte of ``t``'s elements in its storage (for small tensors)."""
    es = t.element_size()
    off = np.full((), t.storage_offset() * es, dtype=np.int64)
    for n, s in zip(t.shape, t.stride()):
        off = off[..., None] + np.arange(n, dtype=np.int64) * (s * es)
    return (off.reshape(-1, 1) + np.arange(es, dtype=np.int64)).ravel()


#: Above this many elements in a pair of views, overlapping byte ranges count as
#: overlap (the exact test needs memory proportional to the views).
EXACT_OVERLAP_LIMIT = 1 << 20


def _overlap(a: Entry, b: Entry) -> str | None:
    """None if ``a`` and ``b`` share no byte; else how they do."""
    (alo, ahi), (blo, bhi) = a.span, b.span
    if ahi <= blo or bhi <= alo:
        return None
    ta, tb = _local(a.tensor), _local(b.tensor)
    if all(hi - lo == t.numel() * t.element_size() for t, (lo, hi) in ((ta, a.span), (tb, b.span))):
        return "share memory"  # both dense: overlapping ranges are shared bytes
    if ta.numel() + tb.numel() > EXACT_OVERLAP_LIMIT:
        return "may share memory (their byte ranges overlap; too large to check element by element)"
    return "share memory" if np.intersect1d(_bytes(ta), _bytes(tb)).size else None


def _check_layout(entries: list[Entry], fn: str) -> None:
    """Refuse expanded views and different views of shared memory, before any write."""
    for e in entries:
        if e.status == REWIRE and _bridge.has_internal_overlap(_local(e.tensor)):
            raise ValueError(
                f"{fn}: parameter {e.name!r} has elements that overlap in memory (an expanded or as_strided view, "
                f"strides {tuple(_local(e.tensor).stride())}); rewiring would write one location twice. "
                "Make it a real tensor (param.data = param.data.clone()) or exclude it"
            )
    by_storage: dict[tuple[Any, ...], list[Entry]] = {}
    seen_identity: set[tuple[Any, ...]] = set()
    for e in entries:
        if e.storage is None or e.identity in seen_identity:
            continue
        seen_identity.add(e.identity)
        by_storage.setdefault(e.storage, []).append(e)
    for group in by_storage.values():
        if len(group) < 2:
            continue
        group.sort(key=lambda e: e.span)
        for i, a in enumerate(group):
            for b in group[i + 1 :]:
                if b.span[0] >= a.span[1]:
                    break
                if REWIRE not in (a.status, b.status):
                    continue
                how = _overlap(a, b)
                if how is not None:
                    raise ValueError(
                        f"{fn}: parameters {a.name!r} {tuple(a.tensor.shape)} and {b.name!r} "
                        f"{tuple(b.tensor.shape)} are different views that {how}; rewiring one would "
                        "change the other. Give them separate storage (clone), tie them as one "
                        "parameter, or exclude one"
                    )


def _resolve_ties(entries: list[Entry]) -> None:
    """Identical views of one storage are one parameter: the first selected name is rewired,
    the other names are tied to it; excluding any name of it excludes them all."""
    groups: dict[tuple[Any, ...], list[Entry]] = {}
    for e in entries:
        groups.setdefault(e.identity, []).append(e)
    for members in groups.values():
        if len(members) < 2:
            continue
        blocked = next((e for e in members if e.reason == "excluded"), None)
        if blocked is not None:
            for e in members:
                if e.status == REWIRE:
                    e.status, e.reason = SKIPPED, f"excluded (tied to {blocked.name})"
            continue
        canonical = next((e for e in members if e.status == REWIRE), None)
        if canonical is None:
            continue  # nothing is written: each name keeps its own reason
        for e in members:
            if e is not canonical:
                e.status, e.reason = TIED, f"tied to {canonical.name}"


# -- the inventory -------------------------------------------------------------------------


def build_inventory(
    model: nn.Module | Mapping[str, Any],
    layers: Layers = None,
    exclude: Patterns = None,
    fn: str = "rewire_model",
    *,
    prefix: str = "",
    recurse: bool = True,
    warn_empty: bool = True,
) -> Inventory:
    """Find, orient and check every candidate of ``model`` (see the module docstring).

    Raises ``ValueError`` (naming the parameters) for overlapping views,
    expanded parameters, meta tensors that ``layers`` asked for explicitly,
    and rules whose output dimension does not fit; warns when nothing is
    selected.  Nothing is written.
    """
    if isinstance(layers, (list, tuple)) and not layers:
        raise ValueError(f"{fn}: layers is empty; pass None for the default layers")
    excluded = _patterns(exclude, "exclude", fn)
    if isinstance(model, nn.Module):
        candidates: Iterator[_Candidate] = _module_candidates(model, layers, prefix, recurse, fn)
    elif isinstance(model, Mapping):
        candidates = _mapping_candidates(model, layers, fn)
    else:
        raise TypeError(
            f"{fn}: expected an nn.Module or a state_dict (a mapping of names to tensors), got {type(model).__name__}"
        )
    entries: list[Entry] = []
    for c in candidates:
        module_type = type(c.module).__name__ if c.module is not None else None
        if not c.selected:
            if _ndim(c.tensor) >= 2:
                entries.append(Entry(c.name, c.tensor, module_type, 0, NOT_CONSIDERED, c.why_not))
            continue
        reason = "excluded" if excluded and _matches(c.name, excluded) else _skip_reason(c, layers, fn)
        out_dim = c.out_dim % _ndim(c.tensor) if _ndim(c.tensor) else 0
        entries.append(Entry(c.name, c.tensor, module_type, out_dim, REWIRE if reason is None else SKIPPED, reason))
    for e in entries:
        _identify(e)
    _resolve_ties(entries)
    _check_layout(entries, fn)
    if warn_empty and not any(e.status != NOT_CONSIDERED for e in entries):
        warnings.warn(
            f"{fn}: no parameter matched {_describe(layers, exclude)}; nothing was rewired", UserWarning, stacklevel=3
        )
    return Inventory(entries)
