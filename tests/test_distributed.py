"""rewire_model(group=...) across 2 and 3 gloo processes equals one process, bit for bit."""

import multiprocessing
import os

import pytest
import torch
import torch.distributed as dist

import parewire
from parewire.distributed import plan

import dist_worker

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")


def spawn(world, case, tmp_path, timeout=180):
    ctx = multiprocessing.get_context("spawn")
    init_file = tmp_path / "init"
    out = tmp_path / "out"
    procs = [ctx.Process(target=dist_worker.run, args=(r, world, str(init_file), str(out), case)) for r in range(world)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout)
    hung = [p for p in procs if p.is_alive()]
    for p in hung:
        p.kill()
    assert not hung, f"{len(hung)} rank(s) hung"
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    return [torch.load(f"{out}.{r}", weights_only=False) for r in range(world)]


def single_process(case):
    dtype = torch.bfloat16 if case.endswith("bf16") else torch.float32
    model = dist_worker.build_model(dtype)
    parewire.rewire_model(model, seed=11)
    return model.state_dict()


def test_plan_is_balanced_and_deterministic():
    sizes = [100, 1, 50, 50, 7, 300, 2]
    owners = plan(sizes, 3)
    assert owners == plan(sizes, 3)
    loads = [sum(s for s, o in zip(sizes, owners) if o == r) for r in range(3)]
    # largest first onto the least-loaded rank, ties to the lower rank:
    # 300->0, 100->1, 50->2, 50->2, 7->1, 2->2, 1->2
    assert owners == [1, 2, 2, 2, 1, 0, 2] and loads == [300, 107, 103]
    assert plan(sizes, 1) == [0] * len(sizes)
    with pytest.raises(ValueError):
        plan(sizes, 0)


@pytest.mark.parametrize("world,case", [(2, "replicated"), (3, "replicated"), (2, "replicated_bf16"), (3, "fsdp"), (2, "fsdp_bf16")])
def test_distributed_equals_single_process(world, case, tmp_path):
    expected = single_process(case)
    results = spawn(world, case, tmp_path)
    for res in results:
        assert res["outcome"][0] == "ok"
        assert set(res["state"]) == set(expected)
        for k, v in expected.items():
            assert torch.equal(res["state"][k].view(torch.int16) if v.dtype == torch.bfloat16 else res["state"][k],
                               v.view(torch.int16) if v.dtype == torch.bfloat16 else v), k


@pytest.mark.parametrize("world,case", [(2, "blocks_fsdp"), (2, "blocks_replicated")])
def test_same_shape_blocks_are_each_initialised_and_rewired(world, case, tmp_path):
    """FSDP2 parameters are DTensors whose data_ptr() is 0: identity must not come from it."""
    single = dist_worker.build_blocks()
    report = parewire.rewire_model(single, init="kaiming_uniform", seed=7)
    assert len(report.rewired) == 6
    expected = single.state_dict()
    for res in spawn(world, case, tmp_path):
        kind, statuses = res["outcome"]
        assert kind == "ok" and statuses == [(r.name, "rewired") for r in report.records]
        for k, v in res["state"].items():
            if k.endswith("weight"):
                assert not (v == dist_worker.SENTINEL).any(), k
                assert torch.equal(v, expected[k]), k
            else:  # biases are not touched
                assert (v == dist_worker.SENTINEL).all(), k


def test_unseeded_ranks_agree_on_rank_zeros_seed(tmp_path):
    results = spawn(2, "unseeded", tmp_path)
    a, b = (r["state"] for r in results)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["4.weight"], dist_worker.build_model().state_dict()["4.weight"])


def test_a_failure_on_one_rank_raises_on_every_rank_and_changes_nothing(tmp_path):
    results = spawn(3, "fail", tmp_path)
    original = dist_worker.build_model().state_dict()
    for rank, res in enumerate(results):
        kind, message = res["outcome"]
        assert kind == "error" and "NaN" in message
        for k, v in original.items():
            if rank == 2 and k == "4.weight":
                continue  # that rank put the NaN there itself
            assert torch.equal(res["state"][k], v), (rank, k)
