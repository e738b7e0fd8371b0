"""Rewiring across ``torch.distributed`` ranks: work split by parameter, every step agreed.

PA rewiring needs each whole weight matrix, so shards are never rewired on
their own.  Every rank calls ``rewire_model(..., group=...)``; the call runs
in phases separated by *agreements*::

    local checks --agree "plan"--> gather, rewire own share --agree "rewired"--> exchange records
                 --> write back (old values kept) --agree "written"--> keep, or every rank restores

* **plan**: each rank checks what it can alone (its arguments, its FSDP2
  state, its DTensors' meshes against ``group``, NaN/Inf in its own values,
  room for the restore copies) and publishes a fingerprint of the call: every
  option and, for every selected parameter, its name, what will happen to it,
  its (global) shape, dtype, placements and mesh.  A local failure or any
  difference raises :class:`DistributedRewireError` on every rank, naming the
  first differing item and the ranks, before any data moves.  An unseeded
  call takes group rank 0's seed.
* **rewired**: a size-balanced plan gives each parameter one owner; DTensors
  are gathered (every rank, same order), each owner initialises and rewires
  private full copies.  Nothing of the caller's has been written yet.
* **written**: the results are broadcast in model order and written into the
  parameters (re-sharded for DTensors), after the old values of this rank's
  part were saved (``restore=``).  Only when every rank reports that it wrote
  everything are the saved values dropped; otherwise every rank restores.

An agreement is a step on the process group's store (not a collective): each
rank publishes its status and waits for everyone's, at most ``timeout``
seconds; the first decision (all well, a failure, or "rank r did not
answer") is written once and read by all, so every rank takes the same
branch, and a rank that is interrupted (Ctrl-C), fails, or gives up tells
the others instead of leaving them waiting.  Between agreements only
collectives that every rank reaches in the same order run.  Because each
parameter's seed comes from its name and the base seed, the result is
bit-identical to a single process, for any world size and layout.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import heapq
import pickle
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Protocol, cast

import torch
import torch.distributed as dist

from ._bridge import CancelToken
from ._inventory import NOT_CONSIDERED, is_dtensor
from ._runner import Job, Restore, RunFailed, choose_restore, make_snapshots, run, save_snapshot
from ._runner import _InterruptGuard as InterruptGuard
from ._step import name_error, rewire_entry
from .seeding import derive_seed

if TYPE_CHECKING:
    from torch.distributed.tensor import DTensor

    from ._inventory import Entry
    from ._options import Request, RewireOptions
    from .report import ParameterRecord, RewireReport

__all__ = ["DistributedRewireError", "Call", "call", "plan", "resolve_group", "reshard_fsdp", "rewire", "set_timeout"]


class DistributedRewireError(RuntimeError):
    """Raised on every rank when the ranks disagree, or any rank failed, timed out or was interrupted.

    ``ranks`` holds the (global) ranks the message is about.
    """

    def __init__(self, message: str, ranks: Sequence[int] = ()) -> None:
        super().__init__(message)
        self.ranks = list(ranks)


def plan(numels: Sequence[int], world: int) -> list[int]:
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


def resolve_group(group: Any, fn: str = "rewire_model") -> Any | None:
    """``None``/``False``: no distribution; ``True``: the default group; else a ProcessGroup of this rank."""
    if group is None or group is False:
        return None
    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError(f"{fn}: group= needs an initialised torch.distributed process group")
    if group is True:
        return dist.group.WORLD
    if not isinstance(group, dist.ProcessGroup):
        raise TypeError(f"{fn}: group must be None, True or a torch.distributed ProcessGroup, got {group!r}")
    if dist.get_rank(group) < 0:
        raise ValueError(f"{fn}: this process (rank {dist.get_rank()}) is not a member of group {_ranks(group)}")
    return group


def _ranks(group: Any) -> list[int]:
    return list(dist.get_process_group_ranks(group))


# -- FSDP2 -----------------------------------------------------------------------------------


def reshard_fsdp(model: Any, fn: str = "rewire_model") -> None:
    """Put every FSDP2 module of ``model`` back in its sharded state, or refuse.

    After a forward under ``torch.no_grad()`` (or with
    ``reshard_after_forward=False``) FSDP2 keeps the gathered parameters
    registered as plain tensors; values written into them are thrown away at
    the next reshard, ``state_dict()`` or forward.  ``FSDPModule.reshard()``
    is local (no communication) and loses nothing that would not be lost
    anyway.  A module stuck in a forward or backward that raised cannot be
    resharded by it: that is a ``ValueError``.
    """
    fsdp = sys.modules.get("torch.distributed.fsdp")  # never imported: no FSDP2 module can exist
    module_type = getattr(fsdp, "FSDPModule", None)
    if module_type is None or not hasattr(model, "named_modules"):
        return
    stuck = []
    for name, module in model.named_modules():
        if isinstance(module, module_type):
            module.reshard()
            if not _fsdp_sharded(module):
                stuck.append(name or type(module).__name__)
    if stuck:
        hint = (
            "call reset_iter_state() on the root module"
            if hasattr(module_type, "reset_iter_state")
            else "finish or reset the training step"
        )
        raise ValueError(
            f"{fn}: FSDP2 module(s) {stuck} still hold unsharded parameters after reshard() (a forward or backward "
            f"that raised leaves them so); values written now would be undone by the next forward. {hint}, "
            "then rewire"
        )


def _fsdp_sharded(module: Any) -> bool:
    """Whether every parameter group of an FSDP2 module is sharded (True where torch hides it)."""
    try:
        groups = module._get_fsdp_state()._fsdp_param_groups
        return all(bool(getattr(g, "is_sharded", True)) for g in groups)
    except (AttributeError, TypeError):
        return True


# -- agreements ------------------------------------------------------------------------------

_OK = "ok"
_calls: dict[str, int] = {}  # calls made per group: every rank counts the same


#: (all well, message, ranks it names, every rank's payload when all is well)
_Verdict = tuple[bool, str, list[int], list[Any]]


class _Store(Protocol):
    """The calls made on c10d's store.  torch's stubs give ``set`` and ``compare_set`` str values;
    the binding takes bytes as well, and the values here are pickles."""

    def set(self, key: str, value: bytes) -> None: ...
    def get(self, key: str) -> bytes: ...
    def add(self, key: str, value: int) -> int: ...
    def check(self, keys: list[str]) -> bool: ...
    def compare_set(self, key: str, expected_value: str, desired_value: bytes) -> bytes: ...


@dataclass
class _Status:
    """What one rank publishes at one step."""

    error: str | None = None  # "ExcType: message", or None
    payload: Any = None


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Call:
    """One distributed ``rewire_model`` call: its group, timeout and agreement steps.

    Every rank of the group makes the same calls in the same order, so the
    n-th call has the same store prefix everywhere.
    """

    def __init__(self, group: Any, fn: str) -> None:
        self.group = group
        self.fn = fn
        self.rank = dist.get_rank(group)
        self.world = dist.get_world_size(group)
        self.ranks = _ranks(group)
        key = str(getattr(group, "group_name", "") or ",".join(map(str, self.ranks)))
        _calls[key] = _calls.get(key, 0) + 1
        self.prefix = f"parewire/{key}/{_calls[key]}/"
        self.store = cast(_Store, dist.distributed_c10d._get_default_store())
        default = getattr(self.store, "timeout", None)  # the process group's timeout
        self.timeout: float = default.total_seconds() if default is not None else 1800.0
        #: steps decided so far (passed or failed)
        self.decided_steps: list[str] = []
        #: Ctrl-C that arrived while this rank waited for a step the others had already passed
        self.interrupt: BaseException | None = None

    # -- the store protocol --

    def _key(self, step: str, what: Any) -> str:
        return f"{self.prefix}{step}/{what}"

    def _publish(self, step: str, status: _Status) -> None:
        self.store.set(self._key(step, self.rank), pickle.dumps(status))
        self.store.add(self._key(step, "count"), 1)

    def _decide(self, step: str, verdict: _Verdict) -> _Verdict:
        """Write ``verdict`` unless one was written first; the one written wins on every rank."""
        won: _Verdict = pickle.loads(self.store.compare_set(self._key(step, "verdict"), "", pickle.dumps(verdict)))
        return won

    def _judge(self, step: str) -> _Verdict:
        """The verdict once every rank has published: the payloads travel in it, so that the
        ranks that only read the verdict need one read, not one per rank."""
        statuses = [pickle.loads(self.store.get(self._key(step, r))) for r in range(self.world)]
        errors = [(self.ranks[r], s.error) for r, s in enumerate(statuses) if s.error]
        if not errors:
            return True, _OK, [], [s.payload for s in statuses]
        return False, "; ".join(f"rank {r}: {e}" for r, e in errors), [r for r, _ in errors], []

    def _failure(self, message: str, ranks: list[int]) -> _Verdict:
        return False, message, ranks, []

    def _await(self, step: str, guard: InterruptGuard) -> _Verdict:
        """The verdict of ``step``: waits for every status, a verdict, the timeout, or Ctrl-C."""
        deadline = time.monotonic() + self.timeout
        delay = 0.001
        verdict_key, count_key = self._key(step, "verdict"), self._key(step, "count")
        while True:
            if self.store.check([verdict_key]):
                written: _Verdict = pickle.loads(self.store.get(verdict_key))
                return written
            if self.store.add(count_key, 0) >= self.world:
                return self._decide(step, self._judge(step))
            if guard.raised is not None:
                me = self.ranks[self.rank]
                return self._decide(step, self._failure(f"rank {me}: {_describe(guard.raised)}", [me]))
            if time.monotonic() > deadline:
                silent = [self.ranks[r] for r in range(self.world) if not self.store.check([self._key(step, r)])]
                return self._decide(
                    step,
                    self._failure(
                        f"rank(s) {silent} did not reach this step within {self.timeout:g} s (timeout=)", silent
                    ),
                )
            time.sleep(delay)
            delay = min(2 * delay, 0.05)

    def agree(
        self, step: str, work: Callable[[], Any], share: Callable[[Any], Any] = lambda result: None, when: str = ""
    ) -> tuple[Any, list[Any]]:
        """``work()`` here, then agree: returns (its result, every rank's ``share(result)``).

        If ``work`` raised on any rank, that rank decides the step at once
        (it does not wait for the others) and every rank raises
        :class:`DistributedRewireError` naming it, chained to its own
        exception if it has one; KeyboardInterrupt and SystemExit are
        re-raised as themselves on the rank they happened on.  ``when`` is
        added to the message (what state the weights are in).
        """
        result, local = None, None
        me = self.ranks[self.rank]
        try:
            if self.interrupt is not None:  # Ctrl-C while waiting at the last step: stop here
                raise self.interrupt
            result = work()
            status = _Status(payload=share(result))
        except BaseException as exc:  # noqa: B036 - every rank hears of it below
            local = exc
            status = _Status(error=_describe(exc))
        guard = InterruptGuard(CancelToken())
        try:
            self._publish(step, status)
            if status.error is not None:
                verdict = self._decide(step, self._failure(f"rank {me}: {status.error}", [me]))
            else:
                with guard:
                    verdict = self._await(step, guard)
        except Exception as exc:  # the store is gone (the process that served it died?)
            raise DistributedRewireError(
                f"{self.fn} lost the process group's store at step {step!r}{when}: {_describe(exc)}"
            ) from (local or exc)
        if guard.raised is not None:
            self.interrupt = guard.raised
        ok, message, ranks, payloads = verdict
        self.decided_steps.append(step)
        if not ok:
            if local is not None and not isinstance(local, Exception):
                raise local
            if self.interrupt is not None:
                raise self.interrupt
            raise DistributedRewireError(f"{self.fn} failed at step {step!r}{when}: {message}", ranks) from local
        return result, payloads

    def decided(self, step: str) -> bool:
        """Whether ``step`` is already decided (by a rank that failed): no use working towards it."""
        return bool(self.store.check([self._key(step, "verdict")]))

    def fail_plan(self, exc: BaseException) -> None:
        """Tell the others that this rank failed before the first agreement (and raise)."""

        def again() -> None:
            raise exc

        self.agree("plan", again, when=" (before any data moved; no weights were changed)")


@contextlib.contextmanager
def call(group: Any, fn: str = "rewire_model") -> Iterator[Call | None]:
    """A :class:`Call` for ``group`` (None without one); an exception this rank raises before
    the first agreement is published there, so the other ranks raise instead of waiting."""
    group = resolve_group(group, fn)
    if group is None:
        yield None
        return
    current = Call(group, fn)
    try:
        yield current
    except BaseException as exc:  # noqa: B036 - told to the others, then raised
        if not current.decided_steps:
            current.fail_plan(exc)
        raise


def set_timeout(current: Call | None, timeout: Any, fn: str) -> None:
    """Check ``timeout=`` (seconds or a ``datetime.timedelta``; None: the process group's) and give it
    to ``current``: how long each agreement waits, and each write-back broadcast."""
    if timeout is None:
        return
    seconds = timeout.total_seconds() if isinstance(timeout, datetime.timedelta) else timeout
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError(f"{fn}: timeout must be a number of seconds, a datetime.timedelta or None, got {timeout!r}")
    if not seconds > 0:
        raise ValueError(f"{fn}: timeout must be positive, got {timeout!r}")
    if current is not None:
        current.timeout = float(seconds)


# -- the fingerprint -------------------------------------------------------------------------


def _layout(t: torch.Tensor) -> str:
    if not is_dtensor(t):
        return "plain tensor"
    mesh = t.device_mesh
    names = getattr(mesh, "mesh_dim_names", None)
    shape = tuple(mesh.mesh.shape)
    where = ", ".join(f"{n}={s}" for n, s in zip(names, shape)) if names else "x".join(map(str, shape))
    return f"DTensor {tuple(t.placements)} on mesh ({where})"


def _fingerprint(entries: Sequence[Entry], request: Request) -> list[tuple[str, str]]:
    """(item, value) pairs that must be equal on every rank: options, then every selected parameter."""
    options = request.options
    init = options.init
    if init is not None and not options.named:
        inner = getattr(init, "func", init)  # a partial with keyword arguments
        init_text = f"{getattr(inner, '__module__', '?')}.{getattr(inner, '__qualname__', type(inner).__name__)}"
        init_text += f" {dict(options.init_kwargs)!r}" if options.init_kwargs else ""
    else:
        init_text = repr(options.init_name)
    items = [
        ("seed", str(request.base) if request.seeded else "none (rank 0's is used)"),
        ("init", init_text),
        ("stabilize", str(options.stabilize)),
        ("sampler", repr(options.sampler)),
        ("restore", repr(request.restore)),
    ]
    for k, e in enumerate(e for e in entries if e.status != NOT_CONSIDERED):
        t = e.tensor
        what = e.status if e.reason is None else f"{e.status} ({e.reason})"
        if isinstance(t, torch.nn.parameter.UninitializedParameter):  # no shape, no layout yet
            items.append((f"parameter #{k}", f"{e.name!r} {what}"))
            continue
        items.append(
            (
                f"parameter #{k}",
                (
                    f"{e.name!r} {what}, shape {tuple(t.shape)}, "
                    f"{str(t.dtype).replace('torch.', '')}, out_dim {e.out_dim}, "
                    f"requires_grad={t.requires_grad}, {_layout(t)}"
                ),
            )
        )
    return items


def _digest(items: list[tuple[str, str]]) -> str:
    return hashlib.sha256(repr(items).encode()).hexdigest()


def _first_difference(prints: list[list[tuple[str, str]]], ranks: list[int]) -> tuple[str, list[int]]:
    """Where the ranks' fingerprints first differ, and the ranks that differ from group rank 0."""
    n = max(len(p) for p in prints)
    for i in range(n):
        values = [p[i] if i < len(p) else ("end", "nothing (fewer parameters)") for p in prints]
        if any(v != values[0] for v in values):
            by_value: dict[tuple[str, str], list[int]] = {}
            for r, v in zip(ranks, values):
                by_value.setdefault(v, []).append(r)
            label = values[0][0] if values[0][0] != "end" else next(v[0] for v in values if v[0] != "end")
            detail = "; ".join(
                f"rank{'s' if len(rs) > 1 else ''} {', '.join(map(str, rs))}: {v[1]}" for v, rs in by_value.items()
            )
            return f"the ranks disagree on {label}: {detail}", [r for r, v in zip(ranks, values) if v != values[0]]
    return "the ranks' calls differ", []  # pragma: no cover - equal fingerprints have equal digests


# -- the run ---------------------------------------------------------------------------------


def _local(t: torch.Tensor) -> torch.Tensor:
    return t.to_local() if is_dtensor(t) else t


def _check_local(entries: Sequence[Entry], options: RewireOptions, current: Call, fn: str) -> None:
    """What this rank can find wrong alone, before anything moves."""
    members = set(current.ranks)
    for e in entries:
        if is_dtensor(e.tensor):
            mesh_ranks = sorted(int(r) for r in e.tensor.device_mesh.mesh.flatten().tolist())
            if not members.issuperset(mesh_ranks):
                raise ValueError(
                    f"{fn}: parameter {e.name!r} is sharded over ranks {mesh_ranks}, but group= has only ranks "
                    f"{sorted(members)}; gathering it needs every rank of its mesh: pass a group that contains the "
                    "mesh (group=True for the default group)"
                )
    if options.init is None:  # this rank's values only (a DTensor's local shard): no collective here
        with torch.no_grad():
            for e in entries:
                if not bool(torch.isfinite(_local(e.tensor).detach()).all()):
                    raise ValueError(
                        f"{fn}: parameter {e.name!r} holds NaN or Inf on rank {dist.get_rank()}; "
                        "rewiring needs finite weights"
                    )


def _write_shard(param: DTensor, full: torch.Tensor) -> torch.Tensor:
    """This rank's shard of ``full`` laid out as the DTensor ``param``'s local tensor (no communication)."""
    try:
        from torch.distributed.tensor import distribute_tensor
    except ImportError:  # torch < 2.4 (private there; the stubs of newer torch do not re-export it)
        from torch.distributed._tensor import distribute_tensor  # type: ignore[attr-defined]
    return distribute_tensor(full, param.device_mesh, param.placements, src_data_rank=None).to_local()


def _agree_on_plan(
    current: Call, inventory_entries: Sequence[Entry], entries: Sequence[Entry], request: Request
) -> tuple[Restore, int]:
    """Step "plan": local checks and the fingerprint.  Returns this rank's restore mode and the base
    seed every rank uses (group rank 0's)."""
    fn = request.fn
    untouched = " (before any data moved; no weights were changed)"
    local_bytes = sum(_local(e.tensor).numel() * e.tensor.element_size() for e in entries)

    def check() -> tuple[Restore, str]:
        _check_local(entries, request.options, current, fn)
        # The write-back keeps this rank's old values so that every rank can go back: "auto" picks memory
        # or disk even with init= (a DTensor half old and half new would be neither).
        mode = choose_restore(request.restore, local_bytes, False, request.restore_dir, fn)
        return mode, _digest(_fingerprint(inventory_entries, request))

    (mode, _), shared = current.agree("plan", check, lambda result: (result[1], request.base), untouched)
    if any(digest != shared[0][0] for digest, _ in shared):
        _, prints = current.agree("plan-detail", lambda: None, lambda _: _fingerprint(inventory_entries, request))
        message, differing = _first_difference(prints, current.ranks)
        raise DistributedRewireError(
            f"{fn}: the ranks were called differently{untouched}: {message}", [current.ranks[0], *differing]
        )
    return mode, shared[0][1]


def _gather_share(
    current: Call, entries: Sequence[Entry], owners: list[int], has_init: bool
) -> dict[int, torch.Tensor]:
    """Private full copies of the parameters this rank owns; DTensors are gathered by every rank in
    the same order (with ``init=`` there is nothing worth gathering).  Ctrl-C waits for the end."""
    mine: dict[int, torch.Tensor] = {}
    with InterruptGuard(CancelToken()) as guard:
        for i, e in enumerate(entries):
            p, owner = e.tensor, owners[i] == current.rank
            if is_dtensor(p) and has_init:
                if owner:
                    mine[i] = torch.empty(p.shape, dtype=p.dtype, device=_local(p).device)
            elif is_dtensor(p):
                full = p.full_tensor()  # a collective on its mesh
                if owner:
                    mine[i] = full.detach().contiguous()
                del full
            elif owner:
                mine[i] = p.detach().clone(memory_format=torch.contiguous_format)
    if guard.raised is not None:
        raise guard.raised
    return mine


def _rewire_share(
    mine: dict[int, torch.Tensor], entries: Sequence[Entry], request: Request, base: int, workers: int
) -> dict[int, ParameterRecord]:
    """Initialise and rewire the owned copies in place (threads, Ctrl-C: the runner's)."""
    order = sorted(mine)
    jobs = [Job(entries[i].name, mine[i], mine[i].numel()) for i in order]

    def work(k: int, cancel: Any, threads: int) -> ParameterRecord:
        e = entries[order[k]]
        try:
            return rewire_entry(
                e,
                derive_seed(base, e.name),
                request.options,
                target=mine[order[k]],
                coupled=request.seeded,
                cancel=cancel,
                threads=threads,
            )
        except BaseException as exc:  # noqa: B036 - named, then handled by the runner
            raise name_error(exc, request.fn, e.name) from exc.__cause__

    try:  # private copies: nothing of the caller's to restore
        records = run(
            jobs, work, workers=workers, snapshots=make_snapshots("none"), progress=request.progress, capacity=workers
        )
    except RunFailed as failure:
        raise failure.error from None
    return dict(zip(order, records))


def _write_back(
    current: Call,
    entries: Sequence[Entry],
    owners: list[int],
    mine: dict[int, torch.Tensor],
    snapshots: Any,
    written: list[int],
) -> None:
    """Broadcast every result from its owner and write this rank's part, saving the old values first.
    Ctrl-C waits for the end of the loop (communication only): stopping midway would leave the others
    waiting in a broadcast until the timeout."""
    group = current.group
    wait = datetime.timedelta(seconds=current.timeout)
    failed: BaseException | None = None  # a copy that could not be kept: stop writing, keep broadcasting
    with InterruptGuard(CancelToken()) as guard:
        for i, e in enumerate(entries):
            p = e.tensor
            target = _local(p).detach()
            src = owners[i] if group is dist.group.WORLD else dist.get_global_rank(group, owners[i])
            if owners[i] == current.rank:
                buf = mine.pop(i)
            else:
                buf = torch.empty(p.shape, dtype=p.dtype, device=target.device)
            work = cast("dist.Work", dist.broadcast(buf, src=src, group=group, async_op=True))  # async: never None
            work.wait(wait)
            new = _write_shard(p, buf) if is_dtensor(p) else buf
            if failed is None:
                try:
                    save_snapshot(snapshots, e.name, target)
                except (OSError, MemoryError) as exc:
                    failed = exc
            if failed is None:
                with torch.no_grad():
                    target.copy_(new)
                written.append(i)
            del buf, new
    if guard.raised is not None:
        raise guard.raised
    if failed is not None:
        raise failed


def rewire(
    current: Call,
    inventory_entries: Sequence[Entry],
    entries: Sequence[Entry],
    request: Request,
    make_report: Callable[[list[ParameterRecord], Restore | None], RewireReport],
) -> RewireReport:
    """The distributed path of ``rewire_model`` (see the module docstring).

    ``inventory_entries`` are every entry of the inventory (the fingerprint
    covers skipped and tied ones too); ``entries`` those to rewire; ``request.workers`` is resolved.
    """
    fn, options, restore, workers = request.fn, request.options, request.restore, request.workers or 1
    mode, base = _agree_on_plan(current, inventory_entries, entries, request)
    owners = plan([e.tensor.numel() for e in entries], current.world)
    mine: dict[int, torch.Tensor] = {}

    def gather_and_rewire() -> dict[int, ParameterRecord]:
        mine.update(_gather_share(current, entries, owners, options.init is not None))
        if current.decided("rewired"):  # another rank failed already: do not start the work
            return {}
        return _rewire_share(mine, entries, request, base, workers)

    own_records, _ = current.agree("rewired", gather_and_rewire, when=" (no weights were changed)")
    records: dict[int, ParameterRecord] = {}
    snapshots = make_snapshots(mode, request.restore_dir)
    written: list[int] = []

    def exchange_and_write() -> None:
        with InterruptGuard(CancelToken()) as guard:
            shares: list[Any] = [None] * current.world
            dist.all_gather_object(shares, own_records, group=current.group)
        for part in shares:
            records.update(part)
        if guard.raised is not None:
            raise guard.raised
        _write_back(current, entries, owners, mine, snapshots, written)

    kept = "restore='none': what was written is kept" if restore == "none" else "every rank restored its weights"
    try:
        current.agree("written", exchange_and_write, when=f" (during write-back; {kept})")
    except BaseException as exc:  # noqa: B036 - restored, then raised
        failed = snapshots.restore()
        snapshots.close()
        if failed:
            raise RuntimeError(f"{fn}: could not restore {failed} on rank {dist.get_rank()}") from exc
        if mode == "none" and hasattr(exc, "add_note"):
            exc.add_note(
                f"{fn}: restore='none': {len(written)} of {len(entries)} parameters were written on "
                f"rank {dist.get_rank()} before the failure and kept"
            )
        raise
    snapshots.close()
    report = make_report([records[i] for i in range(len(entries))], mode)
    report.seed = base  # group rank 0's, which every rank used
    if current.interrupt is not None:  # Ctrl-C after every rank had passed the last step: weights are whole
        raise current.interrupt
    return report
