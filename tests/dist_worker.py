"""Process bodies for tests/test_distributed.py (importable by spawned children).

A *batch* runs many cases in one gloo process group, one after the other, so
that each world size pays torch's import and the group's set-up once.  Each
case returns a picklable dict, saved as ``<out>/<case>.<rank>`` as soon as it
is done; a barrier separates cases, so a case that leaves collectives out of
step shows up as the batch hanging (and the cases after it missing).
"""

import contextlib
import datetime
import errno
import os
import signal
import sys
import time
import traceback
from collections import OrderedDict
from typing import Any, Callable

import torch
import torch.distributed as dist
from torch import nn

import parewire
from parewire.distributed import DistributedRewireError

#: The process group's own timeout: what bounds a torch collective that a rank never reaches.
PG_TIMEOUT = 60
SENTINEL = 12345.0
CASES: dict[str, Callable[[int, int], Any]] = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def run(rank, world, init_file, out_dir, cases):
    try:
        dist.init_process_group(
            "gloo",
            init_method=f"file://{init_file}",
            rank=rank,
            world_size=world,
            timeout=datetime.timedelta(seconds=PG_TIMEOUT),
        )
        torch.set_num_threads(1)
        for name in cases:
            t0 = time.perf_counter()
            try:
                result = CASES[name](rank, world)
            except BaseException:  # noqa: B036 - the case itself broke: the test says so
                result = {"crash": traceback.format_exc()}
            result["seconds"] = time.perf_counter() - t0  # for finding slow cases, never asserted
            torch.save(result, os.path.join(out_dir, f"{name}.{rank}"))
            if result.get("exit"):  # the group is broken (a rank was killed): leave without goodbyes
                sys.stdout.flush()
                os._exit(0)
            dist.barrier()
        dist.destroy_process_group()
    except BaseException:  # noqa: B036
        traceback.print_exc()
        sys.stdout.flush()
        os._exit(1)


# -- models --------------------------------------------------------------------------------


def build_model(dtype=torch.float32):
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3),
        nn.Flatten(),
        nn.Linear(16, 33),
        nn.ReLU(),
        nn.Linear(33, 7),
        nn.Linear(7, 5, bias=False),
    )
    return model.to(dtype)


def build_blocks(device=None):
    """Same-shape blocks, as in every transformer: parameter identity cannot come from shapes."""
    torch.manual_seed(0)
    return nn.Sequential(*[nn.Linear(24, 24, device=device) for _ in range(5)], nn.Linear(24, 6, device=device))


def build_mlp():
    """Its last Linear (24 x 10 = 240 weights) belongs to the FSDP2 root when 0 and 2 are sharded on their own."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 24), nn.ReLU(), nn.Linear(24, 10))


def build_pair(first_in=23):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(first_in, 40), nn.Linear(40, 12))


def build_tp():
    """Column-wise then row-wise, 37 wide: uneven shards on 2 and 4 ranks."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(16, 37), nn.ReLU(), nn.Linear(37, 12))


def build_twelve():
    torch.manual_seed(0)
    return nn.Sequential(*[nn.Linear(16 + k, 17 + k) for k in range(12)])


def build_few():
    """Two weights: on 4 ranks, two own nothing."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(9, 6), nn.Linear(6, 4))


def batch_input(n_in):
    return torch.randn(3, n_in, generator=torch.Generator().manual_seed(5))


class Boom(nn.Module):
    def forward(self, x):
        raise RuntimeError("boom")


# -- helpers -------------------------------------------------------------------------------


def full_state(model):
    out = {}
    for k, v in model.state_dict().items():
        out[k] = (v.full_tensor() if hasattr(v, "full_tensor") else v).detach().clone()
    return out


def local_state(model):
    """This rank's part of every tensor (no communication)."""
    return {k: (v.to_local() if hasattr(v, "to_local") else v).detach().clone() for k, v in model.state_dict().items()}


def attempt(call):
    """What a rewire_model call did: ("ok", [(name, status)], seed) or ("error", type, message, ranks)."""
    try:
        report = call()
    except DistributedRewireError as exc:
        return (
            "error",
            "DistributedRewireError",
            "\n".join([str(exc), *getattr(exc, "__notes__", [])]),
            getattr(exc, "ranks", None),
            type(exc.__cause__).__name__ if exc.__cause__ is not None else None,
        )
    except (KeyboardInterrupt, ValueError, TypeError, RuntimeError) as exc:
        return ("error", type(exc).__name__, "\n".join([str(exc), *getattr(exc, "__notes__", [])]), [], None)
    return ("ok", [(r.name, r.status) for r in report.records], report.seed)


@contextlib.contextmanager
def counting_data_collectives():
    """Counts the calls of the collectives that move tensors or objects (not the store)."""
    names = ["broadcast", "all_gather_object", "all_gather", "all_gather_into_tensor", "broadcast_object_list"]
    count = {"n": 0}
    saved = {n: getattr(dist, n) for n in names}

    def wrap(f):
        def counted(*args, **kwargs):
            count["n"] += 1
            return f(*args, **kwargs)

        return counted

    for n in names:
        setattr(dist, n, wrap(saved[n]))
    try:
        yield count
    finally:
        for n, f in saved.items():
            setattr(dist, n, f)


@contextlib.contextmanager
def on_broadcast(k, action):
    """Runs ``action()`` just before this process's k-th ``dist.broadcast`` (1-based)."""
    saved = dist.broadcast
    seen = {"n": 0}

    def hooked(*args, **kwargs):
        seen["n"] += 1
        if seen["n"] == k:
            action()
        return saved(*args, **kwargs)

    dist.broadcast = hooked
    try:
        yield
    finally:
        dist.broadcast = saved


def mesh1d(world):
    from torch.distributed.device_mesh import init_device_mesh

    return init_device_mesh("cpu", (world,))


def shard_fsdp(model, mesh, children, **kwargs):
    from torch.distributed.fsdp import fully_shard

    for i in children:
        fully_shard(model[i], mesh=mesh, **kwargs)
    fully_shard(model, mesh=mesh, **kwargs)
    return model


def rewired_case(model, **kwargs):
    outcome = attempt(lambda: parewire.rewire_model(model, group=True, **kwargs))
    return {"outcome": outcome, "state": full_state(model)}


# -- layouts that must equal one process (seed 11 unless said) -------------------------------


@case
def replicated(rank, world):
    return rewired_case(build_model(), seed=11)


@case
def replicated_bf16(rank, world):
    return rewired_case(build_model(torch.bfloat16), seed=11)


@case
def fsdp(rank, world):
    model = build_model()
    return rewired_case(shard_fsdp(model, mesh1d(world), [0, 2, 4, 6, 7]), seed=11)


@case
def fsdp_bf16(rank, world):
    model = build_model(torch.bfloat16)
    return rewired_case(shard_fsdp(model, mesh1d(world), [0, 2, 4, 6, 7]), seed=11)


def _sentinel_blocks(model):
    with torch.no_grad():
        for p in model.parameters():
            (p.to_local() if hasattr(p, "to_local") else p).fill_(SENTINEL)
    return model


@case
def blocks_fsdp(rank, world):
    """The FSDP2 recipe: build on meta, shard, to_empty, garbage; init= must fill every block."""
    model = shard_fsdp(build_blocks(device="meta"), mesh1d(world), range(6))
    model.to_empty(device="cpu")
    return rewired_case(_sentinel_blocks(model), init="kaiming_uniform", seed=7)


@case
def blocks_replicated(rank, world):
    return rewired_case(_sentinel_blocks(build_blocks()), init="kaiming_uniform", seed=7)


@case
def mixed_precision(rank, world):
    """FSDP2 computing in bfloat16 over float32 shards, after a forward under no_grad."""
    from torch.distributed.fsdp import MixedPrecisionPolicy

    model = shard_fsdp(build_mlp(), mesh1d(world), [0, 2], mp_policy=MixedPrecisionPolicy(param_dtype=torch.bfloat16))
    with torch.no_grad():
        model(batch_input(8))
    return rewired_case(model, seed=11)


@case
def tensor_parallel(rank, world):
    from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, parallelize_module

    model = build_tp()
    parallelize_module(model, mesh1d(world), {"0": ColwiseParallel(), "2": RowwiseParallel()})
    return rewired_case(model, seed=11)


@case
def shard_dim1(rank, world):
    """Weights sharded along their input dimension (Shard(1)), 37 and 33 columns: uneven."""
    from torch.distributed.tensor import Shard, distribute_tensor

    model = build_model()
    mesh = mesh1d(world)
    for i in (4, 6):
        m = model[i]
        m.weight = nn.Parameter(distribute_tensor(m.weight.detach(), mesh, [Shard(1)]))
    return rewired_case(model, seed=11)


@case
def few_parameters(rank, world):
    """Fewer parameters than ranks: some ranks own nothing."""
    return rewired_case(build_few(), seed=11)


@case
def hsdp(rank, world):
    from torch.distributed.device_mesh import init_device_mesh

    mesh = init_device_mesh("cpu", (2, world // 2), mesh_dim_names=("replicate", "shard"))
    model = shard_fsdp(build_model(), mesh, [0, 2, 4, 6, 7])
    return rewired_case(model, seed=11)


def _tp_fsdp(world):
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, parallelize_module

    mesh = init_device_mesh("cpu", (world // 2, 2), mesh_dim_names=("dp", "tp"))
    model = build_tp()
    parallelize_module(model, mesh["tp"], {"0": ColwiseParallel(), "2": RowwiseParallel()})
    return shard_fsdp(model, mesh["dp"], [])


@case
def tp_fsdp(rank, world):
    model = _tp_fsdp(world)
    placements = {n: str(p.placements) for n, p in model.named_parameters()}
    return {**rewired_case(model, seed=11), "placements": placements}


@case
def subgroups(rank, world):
    """Two pairs, each rewiring on its own: a replicated model over a new_group, and FSDP2 over a
    sub-mesh rewired with that sub-mesh's group."""
    from torch.distributed.device_mesh import init_device_mesh

    pairs = [dist.new_group([0, 1]), dist.new_group([2, 3])]
    mine = pairs[rank // 2]
    replicated_model = build_model()
    first = attempt(lambda: parewire.rewire_model(replicated_model, group=mine, seed=11))
    mesh = init_device_mesh("cpu", (2, 2), mesh_dim_names=("pair", "shard"))
    sharded = shard_fsdp(build_model(), mesh["shard"], [0, 2, 4, 6, 7])
    second = attempt(lambda: parewire.rewire_model(sharded, group=mesh["shard"].get_group(), seed=11))
    return {"outcomes": [first, second], "states": [full_state(replicated_model), full_state(sharded)]}


@case
def unseeded(rank, world):
    torch.manual_seed(100 + rank)  # ranks disagree; rank 0's draw must win
    model = build_model()
    torch.manual_seed(100 + rank)
    return rewired_case(model)


# -- 1. FSDP2's unsharded state --------------------------------------------------------------


@case
def unsharded_after_no_grad_forward(rank, world):
    """Default fully_shard: the root keeps its own parameters unsharded after a no_grad forward."""
    model = shard_fsdp(build_mlp(), mesh1d(world), [0, 2])
    with torch.no_grad():
        model(batch_input(8))
    kinds = [type(p).__name__ for p in model.parameters()]
    result = rewired_case(model, seed=11)
    with torch.no_grad():
        result["forward"] = model(batch_input(8)).detach().clone()
    return {**result, "kinds_before": kinds, "state_after_forward": full_state(model)}


@case
def unsharded_kept_after_forward(rank, world):
    model = shard_fsdp(build_mlp(), mesh1d(world), [0, 2], reshard_after_forward=False)
    model(batch_input(8))  # a forward (no backward yet) leaves every module unsharded
    kinds = [type(p).__name__ for p in model.parameters()]
    result = rewired_case(model, seed=11)
    with torch.no_grad():
        result["forward"] = model(batch_input(8)).detach().clone()
    return {**result, "kinds_before": kinds, "state_after_forward": full_state(model)}


def _raised_forward(model, n_in):
    try:
        model(batch_input(n_in))
    except RuntimeError:
        pass


@case
def unsharded_after_raised_forward(rank, world):
    """A forward that raised leaves the root unsharded, and reshard() cannot undo that: refused.
    After reset_iter_state() the same call works."""
    model = build_mlp()
    model.append(Boom())
    model = shard_fsdp(model, mesh1d(world), [0, 2])
    before = full_state(model)
    _raised_forward(model, 8)
    refused = attempt(lambda: parewire.rewire_model(model, group=True, seed=11))
    unchanged = full_state(model)
    model.reset_iter_state()
    again = rewired_case(model, seed=11)
    return {"before": before, "refused": refused, "unchanged": unchanged, **again}


@case
def tp_fsdp_raised_forward(rank, world):
    model = _tp_fsdp(world)
    model.append(Boom())
    before = full_state(model)
    _raised_forward(model, 16)
    refused = attempt(lambda: parewire.rewire_model(model, group=True, seed=11))
    unchanged = full_state(model)
    model.reset_iter_state()
    return {"before": before, "refused": refused, "unchanged": unchanged, **rewired_case(model, seed=11)}


# -- 2. ranks called differently -------------------------------------------------------------


def _differ(model, **kwargs):
    before = full_state(model)
    with counting_data_collectives() as count:
        outcome = attempt(lambda: parewire.rewire_model(model, group=True, **kwargs))
    return {"outcome": outcome, "data_collectives": count["n"], "before": before, "state": full_state(model)}


@case
def differ_shape(rank, world):
    return _differ(build_pair(23 if rank == 0 else 24), seed=11)


@case
def differ_extra_layer(rank, world):
    model = build_pair()
    if rank == world - 1:
        model.append(nn.Linear(12, 12))
    return _differ(model, seed=11)


@case
def differ_frozen(rank, world):
    model = build_pair()
    if rank == world - 1:
        model[1].weight.requires_grad_(False)
    return _differ(model, seed=11)


@case
def differ_order(rank, world):
    torch.manual_seed(0)
    a, b = nn.Linear(8, 8), nn.Linear(8, 8)
    layers = [("a", a), ("b", b)] if rank == 0 else [("b", b), ("a", a)]
    return _differ(nn.Sequential(OrderedDict(layers)), seed=11)


#: (what differs, rank 0's keywords, the other ranks' keywords)
DIFFERENT_CALLS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("seed", dict(seed=11), dict(seed=14)),
    ("seed", dict(seed=11), dict()),
    ("init", dict(seed=1, init="orthogonal"), dict(seed=1, init="kaiming_uniform")),
    (
        "init",
        dict(seed=1, init=("kaiming_normal", {"mode": "fan_in"})),
        dict(seed=1, init=("kaiming_normal", {"mode": "fan_out"})),
    ),
    ("stabilize", dict(seed=1, init="orthogonal", stabilize=2), dict(seed=1, init="orthogonal", stabilize=3)),
    ("sampler", dict(seed=1, sampler="numpy"), dict(seed=1, sampler="fast")),
    ("restore", dict(seed=1, restore="memory"), dict(seed=1, restore="disk")),
    ("parameter #1", dict(seed=1, exclude="1.*"), dict(seed=1)),
    ("parameter #0", dict(seed=1, layers=["1.*"]), dict(seed=1)),
]


@case
def differ_options(rank, world):
    model = build_pair()
    return {"calls": [_differ(model, **(mine if rank == 0 else others)) for _, mine, others in DIFFERENT_CALLS]}


# -- 3. local failures become statuses -------------------------------------------------------


@case
def bad_argument_on_one_rank(rank, world):
    model = build_pair()
    return _differ(model, seed=1, init="orthogonal", stabilize=-1 if rank == 1 else 2)


def _mixed_model(world):
    """Layers 0 and 2 are FSDP2 DTensors, the rest plain replicated tensors (no FSDP root)."""
    from torch.distributed.fsdp import fully_shard

    model = build_model()
    mesh = mesh1d(world)
    fully_shard(model[0], mesh=mesh)
    fully_shard(model[6], mesh=mesh)
    return model


@case
def nan_on_one_rank_mixed(rank, world):
    model = _mixed_model(world)
    original = full_state(model)
    results = []
    for where in ("4.weight", "6.weight"):  # a plain replica, then a DTensor's local shard
        p = dict(model.named_parameters())[where]
        local = p.to_local() if hasattr(p, "to_local") else p
        keep = local.detach().clone()
        if rank == 1:
            with torch.no_grad():
                local.view(-1)[0] = float("nan")
        outcome = attempt(lambda: parewire.rewire_model(model, group=True, seed=11))
        state = full_state(model)
        with torch.no_grad():
            local.copy_(keep)
        results.append({"where": where, "outcome": outcome, "state": state})
    return {"results": results, "original": original, **rewired_case(model, seed=11)}


# -- 4. interrupts, timeouts, a rank killed ----------------------------------------------------


def _interrupt_self():
    os.kill(os.getpid(), signal.SIGINT)


@case
def interrupt_while_rewiring(rank, world):
    """Ctrl-C on rank 1 while its share is being initialised; rank 1 survives it and carries on."""

    def init(t):
        if rank == 1:
            _interrupt_self()
            time.sleep(0.2)  # the handler runs in the main thread
        nn.init.normal_(t)

    model = build_pair()
    before = full_state(model)
    first = attempt(lambda: parewire.rewire_model(model, group=True, seed=3, init=init, workers=1))
    unchanged = full_state(model)
    second = rewired_case(model, seed=11)  # nobody was left waiting: the next call works
    return {"before": before, "first": first, "unchanged": unchanged, **second}


def _interrupted_write_back(rank, **kwargs):
    """Ctrl-C on rank 1 at its 3rd write-back broadcast."""
    model = build_twelve()
    before = full_state(model)
    hook = on_broadcast(3, _interrupt_self) if rank == 1 else contextlib.nullcontext()
    with hook:
        outcome = attempt(lambda: parewire.rewire_model(model, group=True, seed=3, **kwargs))
    return {"before": before, "outcome": outcome, "state": full_state(model)}


@case
def interrupt_during_write_back(rank, world):
    return _interrupted_write_back(rank)


@case
def interrupt_during_write_back_restore_none(rank, world):
    """restore='none': no copies, so what was written stays (Ctrl-C lets the loop finish: all of it)."""
    return _interrupted_write_back(rank, restore="none")


@case
def full_disk_during_write_back(rank, world):
    """restore='disk': rank 1's disk is full at its third copy.  It stops writing but keeps broadcasting,
    so no rank waits for a timeout, and every rank restores."""
    model = build_twelve()
    before = full_state(model)
    save = parewire._runner._DiskSnapshots.save
    copies = {"n": 0}

    def filling(self, key, t):
        copies["n"] += 1
        if copies["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        save(self, key, t)

    snapshots = parewire._runner._DiskSnapshots
    if rank == 1:
        setattr(snapshots, "save", filling)  # noqa: B010 - a method replaced for the test
    t0 = time.monotonic()
    try:
        outcome = attempt(lambda: parewire.rewire_model(model, group=True, seed=3, restore="disk", timeout=50))
    finally:
        setattr(snapshots, "save", save)  # noqa: B010
    return {"before": before, "outcome": outcome, "state": full_state(model), "seconds": time.monotonic() - t0}


@case
def silent_rank_timeout(rank, world):
    """Rank 1 comes late; the others give up after timeout=, naming it, and it then learns they did."""
    store = dist.distributed_c10d._get_default_store()
    model = build_pair()
    before = full_state(model)
    if rank == 1:
        for _ in range(600):  # until the others have given up (at most 60 s)
            if store.add("silent_rank_timeout/gave_up", 0) == world - 1:
                break
            time.sleep(0.1)
        others_gave_up_first = store.add("silent_rank_timeout/gave_up", 0) == world - 1
    outcome = attempt(lambda: parewire.rewire_model(model, group=True, seed=3, timeout=1.5))
    if rank != 1:
        store.add("silent_rank_timeout/gave_up", 1)
        others_gave_up_first = None
    return {
        "before": before,
        "outcome": outcome,
        "state": full_state(model),
        "late_rank_came_after": others_gave_up_first,
    }


@case
def group_smaller_than_mesh(rank, world):
    """Rank 0 asks for a group of itself alone while its FSDP2 parameters span two ranks; rank 1 does
    not call at all."""
    alone = [dist.new_group([r]) for r in range(world)]
    model = shard_fsdp(build_model(), mesh1d(world), [0, 2, 4, 6, 7])
    before = local_state(model)
    outcome = attempt(lambda: parewire.rewire_model(model, group=alone[rank], seed=11)) if rank == 0 else None
    return {"before": before, "outcome": outcome, "state": local_state(model)}


@case
def fail(rank, world):
    model = build_model()
    with torch.no_grad():
        if rank == world - 1:  # only this rank sees a NaN: every rank must raise
            model[4].weight[0, 0] = float("nan")
    return rewired_case(model, seed=11)


@case
def killed_during_write_back(rank, world):
    """The last rank dies (SIGKILL) at its 5th write-back broadcast; the others must raise and keep
    their weights.  Leaves the group broken: the last case of a batch."""
    model = build_twelve()
    before = full_state(model)
    die = lambda: os.kill(os.getpid(), signal.SIGKILL)  # noqa: E731
    hook = on_broadcast(5, die) if rank == world - 1 else contextlib.nullcontext()
    with hook:
        outcome = attempt(lambda: parewire.rewire_model(model, group=True, seed=3, timeout=10))
    return {"before": before, "outcome": outcome, "state": full_state(model), "exit": True}


@case
def docs_examples(rank, world):
    """The python examples of docs/distributed.md, run on every rank of the batch's group."""
    import re

    page = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "docs", "distributed.md")
    with open(page) as f:
        blocks = re.findall(r"^```python\n(.*?)^```$", f.read(), re.S | re.M)
    namespace: dict[str, Any] = {}
    for block in blocks:
        exec(compile(block, page, "exec"), namespace)
    return {"blocks": len(blocks), "rewired": len(namespace["report"].rewired)}
