"""rewire_model(group=...) over 2, 3 and 4 gloo processes: equal to one process, bit for bit, for every
layout; and when ranks disagree, fail, are interrupted, go silent or die, every rank raises and no weight
is left half-changed.

The cases run in three batches (tests/dist_worker.py), one process group per world size, so that the
file pays for torch's import in spawned processes three times, not once per test.
"""

import multiprocessing
import os
import time
from typing import Any, Callable

import dist_worker
import pytest
import torch
import torch.distributed as dist
from _helpers import bits

import parewire
from parewire.distributed import plan

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")

BATCHES = {
    2: [
        "replicated",
        "replicated_bf16",
        "fsdp_bf16",
        "blocks_fsdp",
        "blocks_replicated",
        "mixed_precision",
        "tensor_parallel",
        "shard_dim1",
        "unseeded",
        "unsharded_after_no_grad_forward",
        "unsharded_kept_after_forward",
        "unsharded_after_raised_forward",
        "differ_shape",
        "differ_extra_layer",
        "differ_frozen",
        "differ_order",
        "differ_options",
        "bad_argument_on_one_rank",
        "nan_on_one_rank_mixed",
        "interrupt_while_rewiring",
        "interrupt_during_write_back",
        "full_disk_during_write_back",
        "interrupt_during_write_back_restore_none",
        "silent_rank_timeout",
        "group_smaller_than_mesh",
        "docs_examples",
    ],
    3: ["replicated", "fsdp", "fail", "killed_during_write_back"],
    4: ["hsdp", "tp_fsdp", "tp_fsdp_raised_forward", "subgroups", "few_parameters", "tensor_parallel"],
}
#: A batch that takes longer than this has hung (a rank stuck in a collective): its processes are killed.
BATCH_TIMEOUT = 150


class Batch:
    """The saved results of one batch: ``batch[case]`` is the list of per-rank dicts."""

    def __init__(self, world, folder, exitcodes):
        self.world, self.folder, self.exitcodes = world, folder, exitcodes

    def __getitem__(self, case):
        out = []
        for r in range(self.world):
            path = os.path.join(self.folder, f"{case}.{r}")
            if not os.path.exists(path):
                pytest.fail(
                    f"case {case!r} did not finish on rank {r} of {self.world} "
                    f"(the batch hung or crashed; exit codes {self.exitcodes})"
                )
            res = torch.load(path, weights_only=False)
            if "crash" in res:
                pytest.fail(f"case {case!r} raised on rank {r}:\n{res['crash']}")
            out.append(res)
        return out


def run_batch(world, folder):
    ctx = multiprocessing.get_context("spawn")
    init_file = os.path.join(folder, "init")
    procs = [
        ctx.Process(target=dist_worker.run, args=(r, world, init_file, folder, BATCHES[world])) for r in range(world)
    ]
    for p in procs:
        p.start()
    deadline = time.monotonic() + BATCH_TIMEOUT
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
    for p in procs:
        if p.is_alive():
            p.kill()
            p.join()
    return Batch(world, folder, [p.exitcode for p in procs])


@pytest.fixture(scope="module")
def batches(tmp_path_factory):
    cache = {}

    def get(world):
        if world not in cache:
            cache[world] = run_batch(world, str(tmp_path_factory.mktemp(f"world{world}")))
        return cache[world]

    return get


def single(build, **kwargs):
    """The state one process gets from rewire_model(build(), **kwargs)."""
    model = build()
    parewire.rewire_model(model, **kwargs)
    return model


def assert_same(state, expected, what=""):
    assert set(state) == set(expected), what
    for k, v in expected.items():
        assert bits(state[k]).tobytes() == bits(v).tobytes(), f"{what} {k}"


def assert_unchanged(results, key_before="before", key_after="state"):
    for r, res in enumerate(results):
        assert_same(res[key_after], res[key_before], f"rank {r} changed")


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


# -- layouts: bit-identical to one process ---------------------------------------------------

LAYOUTS: list[tuple[int, str, Callable[[], Any], dict[str, Any]]] = [
    (2, "replicated", dist_worker.build_model, {}),
    (3, "replicated", dist_worker.build_model, {}),
    (2, "replicated_bf16", lambda: dist_worker.build_model(torch.bfloat16), {}),
    (3, "fsdp", dist_worker.build_model, {}),
    (2, "fsdp_bf16", lambda: dist_worker.build_model(torch.bfloat16), {}),
    (2, "mixed_precision", dist_worker.build_mlp, {}),
    (4, "hsdp", dist_worker.build_model, {}),
    (2, "tensor_parallel", dist_worker.build_tp, {}),
    (4, "tensor_parallel", dist_worker.build_tp, {}),
    (4, "tp_fsdp", dist_worker.build_tp, {}),
    (2, "shard_dim1", dist_worker.build_model, {}),
    (4, "few_parameters", dist_worker.build_few, {}),
]


@pytest.mark.parametrize("world,case,build,kwargs", LAYOUTS, ids=[f"{c}-{w}" for w, c, _, _ in LAYOUTS])
def test_layout_equals_single_process(batches, world, case, build, kwargs):
    expected = single(build, seed=11, **kwargs).state_dict()
    results = batches(world)[case]
    for r, res in enumerate(results):
        assert res["outcome"][0] == "ok", (r, res["outcome"])
        assert_same(res["state"], expected, f"rank {r}")
    if case == "tp_fsdp":  # the layout the name promises
        assert "_StridedShard" in results[0]["placements"]["0.weight"]


def test_subgroups_equal_single_process(batches):
    expected = single(dist_worker.build_model, seed=11).state_dict()
    for r, res in enumerate(batches(4)["subgroups"]):
        assert [o[0] for o in res["outcomes"]] == ["ok", "ok"], res["outcomes"]
        for state in res["states"]:
            assert_same(state, expected, f"rank {r}")


@pytest.mark.parametrize("case", ["blocks_fsdp", "blocks_replicated"])
def test_same_shape_blocks_are_each_initialised_and_rewired(batches, case):
    """FSDP2 parameters are DTensors whose data_ptr() is 0: identity must not come from it."""
    single_model = dist_worker.build_blocks()
    report = parewire.rewire_model(single_model, init="kaiming_uniform", seed=7)
    assert len(report.rewired) == 6
    expected = single_model.state_dict()
    for res in batches(2)[case]:
        kind, statuses, _ = res["outcome"]
        assert kind == "ok" and statuses == [(r.name, "rewired") for r in report.records]
        for k, v in res["state"].items():
            if k.endswith("weight"):
                assert not (v == dist_worker.SENTINEL).any(), k
                assert torch.equal(v, expected[k]), k
            else:  # biases are not touched
                assert (v == dist_worker.SENTINEL).all(), k


def test_unseeded_ranks_agree_on_rank_zeros_seed(batches):
    a, b = batches(2)["unseeded"]
    assert a["outcome"][0] == b["outcome"][0] == "ok"
    assert a["outcome"][2] == b["outcome"][2]  # the reports' seed: rank 0's
    assert_same(a["state"], b["state"])
    model = dist_worker.build_model()
    torch.manual_seed(100)  # rank 0's generator state
    report = parewire.rewire_model(model)
    assert report.seed == a["outcome"][2]
    assert_same(a["state"], model.state_dict())


# -- 1. FSDP2 parameters left unsharded ------------------------------------------------------


@pytest.mark.parametrize("case", ["unsharded_after_no_grad_forward", "unsharded_kept_after_forward"])
def test_unsharded_fsdp_parameters_keep_their_rewiring(batches, case):
    """The rewired values are what state_dict() and the next forward see."""
    reference = single(dist_worker.build_mlp, seed=11)
    with torch.no_grad():
        expected_forward = reference(dist_worker.batch_input(8))
    expected = reference.state_dict()
    for r, res in enumerate(batches(2)[case]):
        assert res["outcome"][0] == "ok", res["outcome"]
        assert "Parameter" in res["kinds_before"]  # some weights really were unsharded
        assert_same(res["state"], expected, f"rank {r} state_dict")
        assert_same(res["state_after_forward"], expected, f"rank {r} after the next forward")
        assert torch.equal(res["forward"], expected_forward)


@pytest.mark.parametrize(
    "world,case,build",
    [(2, "unsharded_after_raised_forward", dist_worker.build_mlp), (4, "tp_fsdp_raised_forward", dist_worker.build_tp)],
)
def test_fsdp_stuck_unsharded_is_refused_then_works_after_reset(batches, world, case, build):
    expected = single(build, seed=11).state_dict()
    for r, res in enumerate(batches(world)[case]):
        kind, exc_type, message, _, cause = res["refused"]
        assert (kind, exc_type, cause) == ("error", "DistributedRewireError", "ValueError"), res["refused"]
        assert "unsharded" in message and "reset_iter_state" in message
        assert_same(res["unchanged"], res["before"], f"rank {r}")
        assert res["outcome"][0] == "ok", res["outcome"]
        assert_same({k: v for k, v in res["state"].items() if k in expected}, expected, f"rank {r}")


# -- 2. ranks called differently: refused before any data moves ------------------------------


def _refused_everywhere(results, *fragments):
    for r, res in enumerate(results):
        kind, exc_type, message, ranks, _ = res["outcome"]
        assert (kind, exc_type) == ("error", "DistributedRewireError"), (r, res["outcome"])
        for fragment in fragments:
            assert fragment in message, (r, fragment, message)
        assert res["data_collectives"] == 0, f"rank {r} moved data before refusing"
        assert_same(res["state"], res["before"], f"rank {r} changed")
    return [res["outcome"][2] for res in results]


def test_different_shapes_are_refused(batches):
    messages = _refused_everywhere(
        batches(2)["differ_shape"], "parameter #0", "(40, 23)", "(40, 24)", "rank 0", "rank 1"
    )
    assert messages[0] == messages[1]


def test_an_extra_layer_is_refused(batches):
    _refused_everywhere(batches(2)["differ_extra_layer"], "parameter #2", "'2.weight'", "nothing")


def test_a_weight_frozen_on_one_rank_is_refused(batches):
    _refused_everywhere(batches(2)["differ_frozen"], "parameter #1", "frozen", "requires_grad=False")


def test_another_layer_order_is_refused(batches):
    _refused_everywhere(batches(2)["differ_order"], "parameter #0", "'a.weight'", "'b.weight'")


@pytest.mark.parametrize(
    "k",
    range(len(dist_worker.DIFFERENT_CALLS)),
    ids=[f"{what}-{i}" for i, (what, _, _) in enumerate(dist_worker.DIFFERENT_CALLS)],
)
def test_different_seeds_or_options_are_refused(batches, k):
    what = dist_worker.DIFFERENT_CALLS[k][0]
    _refused_everywhere([res["calls"][k] for res in batches(2)["differ_options"]], f"disagree on {what}")


# -- 3. a failure on one rank is every rank's, with collectives in step ------------------------


def test_a_bad_argument_on_one_rank_is_told_to_the_others(batches):
    results = batches(2)["bad_argument_on_one_rank"]
    _refused_everywhere(results, "rank 1: ValueError", "stabilize")
    assert results[1]["outcome"][4] == "ValueError"  # rank 1 chains its own error


def test_nan_on_one_rank_of_a_mixed_model_raises_everywhere(batches):
    results = batches(2)["nan_on_one_rank_mixed"]
    for res in results:
        for attempt in res["results"]:
            kind, exc_type, message, ranks, _ = attempt["outcome"]
            assert (kind, exc_type) == ("error", "DistributedRewireError"), attempt
            assert "NaN" in message and attempt["where"] in message and ranks == [1]
        # nothing changed (rank 1's own NaN aside), and the next call still lines up and works
        for attempt in res["results"]:
            changed = [k for k in res["original"] if not torch.equal(attempt["state"][k], res["original"][k])]
            assert changed in ([], [attempt["where"]]), changed
        assert res["outcome"][0] == "ok"
    expected = single(dist_worker.build_model, seed=11).state_dict()
    for res in results:
        assert_same(res["state"], expected)


def test_a_failure_on_one_rank_raises_on_every_rank_and_changes_nothing(batches):
    results = batches(3)["fail"]
    original = dist_worker.build_model().state_dict()
    for rank, res in enumerate(results):
        kind, _, message, ranks, _ = res["outcome"]
        assert kind == "error" and "NaN" in message and ranks == [2]
        for k, v in original.items():
            if rank == 2 and k == "4.weight":
                continue  # that rank put the NaN there itself
            assert torch.equal(res["state"][k], v), (rank, k)


# -- 4. interrupts, silence, death -----------------------------------------------------------


def test_ctrl_c_on_one_rank_is_told_to_the_others(batches):
    results = batches(2)["interrupt_while_rewiring"]
    assert results[1]["first"][:2] == ("error", "KeyboardInterrupt")
    kind, exc_type, message, ranks, _ = results[0]["first"]
    assert (kind, exc_type, ranks) == ("error", "DistributedRewireError", [1]) and "KeyboardInterrupt" in message
    expected = single(dist_worker.build_pair, seed=11).state_dict()
    for res in results:
        assert_same(res["unchanged"], res["before"])
        assert res["outcome"][0] == "ok"  # rank 1 survived its interrupt; nobody was left waiting
        assert_same(res["state"], expected)


def test_ctrl_c_during_write_back_restores_every_rank(batches):
    results = batches(2)["interrupt_during_write_back"]
    assert results[1]["outcome"][:2] == ("error", "KeyboardInterrupt")
    assert results[0]["outcome"][:2] == ("error", "DistributedRewireError")
    assert "write-back" in results[0]["outcome"][2]
    assert_unchanged(results)


def test_a_full_disk_during_write_back_restores_every_rank_without_waiting(batches):
    results = batches(2)["full_disk_during_write_back"]
    for r in results:  # every rank is told which rank failed and why
        kind, exc_type, message, *_ = r["outcome"]
        assert (kind, exc_type) == ("error", "DistributedRewireError"), r["outcome"]
        assert "rank 1: OSError" in message and "could not keep a copy of" in message, message
    assert_unchanged(results)
    assert max(r["seconds"] for r in results) < 30, "a rank waited for the timeout"


def test_restore_none_keeps_what_the_write_back_wrote(batches):
    results = batches(2)["interrupt_during_write_back_restore_none"]
    assert results[1]["outcome"][:2] == ("error", "KeyboardInterrupt")
    kind, exc_type, message, _, _ = results[0]["outcome"]
    assert (kind, exc_type) == ("error", "DistributedRewireError")
    assert "restore='none': 12 of 12 parameters were written on rank 0" in message
    expected = single(dist_worker.build_twelve, seed=3).state_dict()
    for r, res in enumerate(results):
        assert_same(res["state"], expected, f"rank {r}")


def test_bad_timeouts_are_refused():
    model = dist_worker.build_pair()
    with pytest.raises(ValueError, match="rewire_model: timeout must be positive"):
        parewire.rewire_model(model, timeout=0)
    with pytest.raises(TypeError, match="rewire_model: timeout must be a number of seconds"):
        parewire.rewire_model(model, timeout="10")  # type: ignore[arg-type]


def test_a_silent_rank_is_named_after_the_timeout(batches):
    results = batches(2)["silent_rank_timeout"]
    kind, exc_type, message, ranks, _ = results[0]["outcome"]
    assert (kind, exc_type, ranks) == ("error", "DistributedRewireError", [1])
    assert "rank(s) [1] did not reach" in message and "1.5 s" in message
    assert results[1]["late_rank_came_after"]  # rank 1 called only after rank 0 had given up
    kind, exc_type, message, ranks, _ = results[1]["outcome"]
    assert (kind, exc_type, ranks) == ("error", "DistributedRewireError", [1])
    assert_unchanged(results)


def test_a_rank_killed_during_write_back_leaves_the_others_unchanged(batches):
    batch = batches(3)
    assert batch.exitcodes[2] == -9  # it really died
    survivors = [
        torch.load(os.path.join(batch.folder, f"killed_during_write_back.{r}"), weights_only=False) for r in (0, 1)
    ]
    for r, res in enumerate(survivors):
        assert res["outcome"][:2] == ("error", "DistributedRewireError"), res["outcome"]
        assert "write-back" in res["outcome"][2]
        assert_same(res["state"], res["before"], f"rank {r}")


# -- 5. a group smaller than a mesh ----------------------------------------------------------


def test_a_group_smaller_than_a_mesh_is_refused_up_front(batches):
    results = batches(2)["group_smaller_than_mesh"]
    kind, exc_type, message, _, cause = results[0]["outcome"]
    assert (kind, exc_type, cause) == ("error", "DistributedRewireError", "ValueError")
    assert "sharded over ranks [0, 1]" in message and "only ranks [0]" in message
    assert_same(results[0]["state"], results[0]["before"])


def test_the_examples_of_docs_distributed_md_run_on_every_rank(batches):
    for res in batches(2)["docs_examples"]:
        assert res["blocks"] >= 2 and res["rewired"] == 5
