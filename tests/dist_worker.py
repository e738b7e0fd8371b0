"""Process body for tests/test_distributed.py (importable by spawned children)."""

import os
import sys
import traceback

import torch
import torch.distributed as dist
from torch import nn

import parewire


def build_model(dtype=torch.float32):
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 16, 3), nn.Flatten(),
        nn.Linear(16, 33), nn.ReLU(), nn.Linear(33, 7), nn.Linear(7, 5, bias=False),
    )
    return model.to(dtype)


SENTINEL = 12345.0


def build_blocks(device=None):
    """Same-shape blocks, as in every transformer: parameter identity cannot come from shapes."""
    torch.manual_seed(0)
    return nn.Sequential(*[nn.Linear(24, 24, device=device) for _ in range(5)], nn.Linear(24, 6, device=device))


def run(rank, world, init_file, out_path, case):
    try:
        dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
        dtype = torch.bfloat16 if case.endswith("bf16") else torch.float32
        if case.startswith("blocks"):
            run_blocks(rank, world, out_path, case)
            return
        model = build_model(dtype)
        if case.startswith("fsdp"):
            from torch.distributed.device_mesh import init_device_mesh
            from torch.distributed.fsdp import fully_shard

            mesh = init_device_mesh("cpu", (world,))
            for m in model:
                if any(True for _ in m.parameters()):
                    fully_shard(m, mesh=mesh)
            fully_shard(model, mesh=mesh)
        if case == "fail":
            with torch.no_grad():
                if rank == world - 1:  # only this rank sees a NaN: every rank must raise
                    model[4].weight[0, 0] = float("nan")
        kwargs = {"seed": 11} if case != "unseeded" else {}
        if case == "unseeded":
            torch.manual_seed(100 + rank)  # ranks disagree; rank 0's draw must win
        try:
            report = parewire.rewire_model(model, group=True, **kwargs)
            outcome = ("ok", [r.name for r in report.records if r.skipped is None])
        except parewire.distributed.DistributedRewireError as exc:
            outcome = ("error", str(exc))
        state = {}
        for k, v in model.state_dict().items():
            state[k] = v.full_tensor() if hasattr(v, "full_tensor") else v
        torch.save({"outcome": outcome, "state": state}, f"{out_path}.{rank}")
        dist.barrier()
        dist.destroy_process_group()
    except Exception:
        traceback.print_exc()
        sys.exit(1)


def run_blocks(rank, world, out_path, case):
    """The README's FSDP2 recipe: build on meta, shard, to_empty, fill with garbage, then
    rewire_model(init=...) initialises and rewires every block (cases blocks_fsdp, blocks_replicated)."""
    if case == "blocks_fsdp":
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        model = build_blocks(device="meta")
        mesh = init_device_mesh("cpu", (world,))
        for m in model:
            fully_shard(m, mesh=mesh)
        fully_shard(model, mesh=mesh)
        model.to_empty(device="cpu")
    else:
        model = build_blocks()
    with torch.no_grad():
        for p in model.parameters():
            (p.to_local() if hasattr(p, "to_local") else p).fill_(SENTINEL)
    report = parewire.rewire_model(model, init="kaiming_uniform", seed=7, group=True)
    outcome = ("ok", [(r.name, r.status) for r in report.records])
    state = {}
    for k, v in model.state_dict().items():
        state[k] = v.full_tensor() if hasattr(v, "full_tensor") else v
    torch.save({"outcome": outcome, "state": state}, f"{out_path}.{rank}")
    dist.barrier()
    dist.destroy_process_group()
