"""Rewiring across ``torch.distributed`` ranks: work is split by parameter.

PA rewiring needs each whole weight matrix, so shards are never rewired on
their own.  Every rank walks the same parameter list; a size-balanced plan
gives each parameter one owner; the owner rewires a private full copy
(gathered first if the parameter is a DTensor); the ranks agree that every
share succeeded; then the results are written back in plan order —
broadcast for replicated parameters, re-sharded for DTensors.  Because each
parameter's seed comes from its name and the base seed, the result is
bit-identical to a single process, for any world size.

If any rank fails, every rank raises the same error and no weight changes
anywhere (the owners worked on copies).
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.distributed as dist

from ._inventory import is_dtensor as _is_dtensor

if TYPE_CHECKING:
    from ._inventory import Entry

__all__ = ["plan", "resolve_group", "broadcast_seed", "agree", "rewire_parameters", "DistributedRewireError"]


class DistributedRewireError(RuntimeError):
    """Raised on every rank when any rank failed to rewire its share."""


def plan(numels: Sequence[int], world: int) -> List[int]:
    """Owner rank of each parameter: largest first onto the least-loaded rank.

    Deterministic (ties go to the lower index and the lower rank), so every
    rank computes the same plan without communicating.
    """
    if world < 1:
        raise ValueError(f"world size must be positive, got {world}")
    heap = [(0, r) for r in range(world)]
    owners = [0] * len(numels)
    for i in sorted(range(len(numels)), key=lambda i: (-int(numels[i]), i)):
        load, r = heapq.heappop(heap)
        owners[i] = r
        heapq.heappush(heap, (load + int(numels[i]), r))
    return owners


def resolve_group(group: Any) -> Optional[Any]:
    """``None``/``False``: no distribution; ``True``: the default group; else a ProcessGroup."""
    if group is None or group is False:
        return None
    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError("rewire_model: group= needs an initialised torch.distributed process group")
    return dist.group.WORLD if group is True else group


def broadcast_seed(seed: int, group: Any) -> int:
    """Rank 0's seed on every rank, so unseeded runs agree."""
    box = [int(seed)]
    dist.broadcast_object_list(box, src=dist.get_global_rank(group, 0), group=group)
    return int(box[0])




def _write_shard(param: torch.Tensor, full: torch.Tensor) -> None:
    """Copies this rank's shard of ``full`` into the DTensor ``param``."""
    try:
        from torch.distributed.tensor import distribute_tensor
    except ImportError:
        from torch.distributed._tensor import distribute_tensor
    # Every rank holds ``full`` already, so each slices its own shard locally.
    local = distribute_tensor(full, param.device_mesh, param.placements, src_data_rank=None).to_local()
    with torch.no_grad():
        param.to_local().copy_(local)


def agree(step: Callable[[], Any], group: Any) -> Any:
    """Run ``step`` on every rank; if it raised on any rank, raise on all of them.

    Returns ``step()``'s result.  The failing rank's own exception is chained
    as the cause of its :class:`DistributedRewireError`.
    """
    rank = dist.get_rank(group)
    result, error, failure = None, None, None
    try:
        result = step()
    except Exception as exc:  # every rank hears about it below
        error, failure = f"rank {rank}: {type(exc).__name__}: {exc}", exc
    errors: List[Any] = [None] * dist.get_world_size(group)
    dist.all_gather_object(errors, error, group=group)
    if any(errors):
        raise DistributedRewireError(
            "rewire_model failed; no weights were changed. " + "; ".join(e for e in errors if e)
        ) from failure
    return result


def rewire_parameters(
    entries: Sequence["Entry"],
    run_share: Callable[[List[Tuple["Entry", torch.Tensor]]], List[Any]],
    group: Any,
) -> List[Any]:
    """Rewire ``entries`` (the inventory's) across the ranks of ``group``; returns one
    record per entry, in order.

    ``run_share(items)`` rewires a rank's share -- ``(entry, private full
    copy)`` pairs -- in place and returns a picklable record for each.  Every
    rank must call this with the same parameter names in the same order; all
    ranks return the same records.
    """
    rank, world = dist.get_rank(group), dist.get_world_size(group)
    owners = plan([e.tensor.numel() for e in entries], world)
    mine: Dict[int, torch.Tensor] = {}
    for i, p in enumerate(e.tensor for e in entries):
        if _is_dtensor(p):
            full = p.full_tensor()  # a collective: every rank, same order
            if owners[i] == rank:
                mine[i] = full.detach().contiguous()
            del full
        elif owners[i] == rank:
            mine[i] = p.detach().clone(memory_format=torch.contiguous_format)

    order = sorted(mine)
    records = agree(lambda: dict(zip(order, run_share([(entries[i], mine[i]) for i in order]))), group)
    shares: List[Any] = [None] * world
    dist.all_gather_object(shares, records, group=group)
    merged: Dict[int, Any] = {}
    for part in shares:
        merged.update(part)

    for i, p in enumerate(e.tensor for e in entries):
        src = owners[i] if group is dist.group.WORLD else dist.get_global_rank(group, owners[i])
        buf = mine.pop(i) if owners[i] == rank else torch.empty(p.shape, dtype=p.dtype, device=_local_device(p))
        dist.broadcast(buf, src=src, group=group)
        if _is_dtensor(p):
            _write_shard(p, buf)
        else:
            with torch.no_grad():
                p.detach().copy_(buf)
    return [merged[i] for i in range(len(entries))]


def _local_device(p: torch.Tensor) -> torch.device:
    return p.to_local().device if _is_dtensor(p) else p.device
