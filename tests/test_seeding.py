"""Unseeded calls read torch's generator and never advance it (issue: paired studies).

The paper's evidence is paired: a baseline arm and a PA arm trained from the
same ``torch.manual_seed``, differing only in the rewiring.  Its README's
loop is unseeded (``orthogonal_(m.weight)`` then ``PA_rewiring_np(m.weight)``
per layer).  So an unseeded call must leave every torch random stream as it
found it, be reproducible under ``torch.manual_seed``, and still give two
calls in a row different rewirings.  Every test here seeds inside
``torch.random.fork_rng()`` so the global generator is restored afterwards.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from typing import Any

import numpy as np
import pytest
import torch
from _helpers import ROOT, bits, python_blocks, run_python_blocks
from torch import nn

import parewire
from parewire.seeding import resolve_seed, state_seed

UNSEEDED = {
    "PA_rewiring_np": lambda w: parewire.PA_rewiring_np(w),
    "PA_rewiring_torch": lambda w: parewire.PA_rewiring_torch(w, False),
    "rewiring_np": lambda w: parewire.rewiring_np(w, 0),
    "pa_rewire_": lambda w: parewire.pa_rewire_(w),
    "pa_rewire_(fast)": lambda w: parewire.pa_rewire_(w, sampler="fast"),
}


def readme_loop(rewire, layers=3, width=64):
    """The seed README's usage: per layer, orthogonal_ then (maybe) rewire.
    Returns the base weights, the final weights, and what torch draws next."""
    torch.manual_seed(0)
    net = [nn.Linear(width, width) for _ in range(layers)]
    base = []
    for m in net:
        nn.init.orthogonal_(m.weight)
        base.append(m.weight.detach().clone())
        if rewire is not None:
            rewire(m.weight)
    after = (torch.rand(1), nn.functional.dropout(torch.ones(256), 0.5), torch.randperm(50))
    return base, [m.weight.detach().clone() for m in net], after


@pytest.mark.parametrize("entry", list(UNSEEDED))
def test_baseline_and_pa_arms_from_one_seed_stay_paired(entry):
    """Before: the base weights of layers 2 and 3 differed between the arms,
    and so did every draw after the loop."""
    with torch.random.fork_rng():
        base_b, final_b, after_b = readme_loop(None)
        base_p, final_p, after_p = readme_loop(UNSEEDED[entry])
    for i, (b, p) in enumerate(zip(base_b, base_p)):
        np.testing.assert_array_equal(bits(b), bits(p), err_msg=f"base weights of layer {i + 1}")
    for a, b in zip(after_b, after_p):
        assert torch.equal(a, b), "torch draws after the loop"
    # and the PA arm was rewired: a permutation of its base weights, not the base weights
    for b, f in zip(base_p, final_p):
        assert not torch.equal(b, f)
        np.testing.assert_array_equal(np.sort(bits(b), axis=None), np.sort(bits(f), axis=None))


@pytest.mark.parametrize("entry", list(UNSEEDED))
def test_the_same_program_after_the_same_seed_rewires_the_same_way(entry):
    with torch.random.fork_rng():
        _, first, _ = readme_loop(UNSEEDED[entry])
        _, again, _ = readme_loop(UNSEEDED[entry])
        torch.manual_seed(1)
        other = [w.clone() for w in first]
        for w in other:
            UNSEEDED[entry](w)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(bits(a), bits(b))
    assert not torch.equal(first[0], other[0])


RERUN = textwrap.dedent(
    """
    import hashlib, sys, torch
    from torch import nn
    import parewire
    torch.manual_seed(0)
    h = hashlib.sha256()
    for _ in range(3):
        m = nn.Linear(64, 64)
        nn.init.orthogonal_(m.weight)
        getattr(parewire, sys.argv[1])(m.weight)
        h.update(m.weight.detach().numpy().tobytes())
    h.update(torch.rand(4).numpy().tobytes())
    print(h.hexdigest())
    """
)


def test_a_fresh_process_reproduces_the_loop_bit_for_bit():
    """The same program, run twice as its own process, prints the same digest
    of its rewired weights and of torch's next draws."""

    def run() -> str:
        args = [sys.executable, "-c", RERUN, "PA_rewiring_np"]
        return subprocess.run(args, capture_output=True, text=True, timeout=120, check=True).stdout.strip()

    first, second = run(), run()
    assert len(first) == 64 and first == second


@pytest.mark.parametrize("entry", list(UNSEEDED))
def test_two_unseeded_calls_in_a_row_differ(entry):
    w = torch.randn(12, 9, generator=torch.Generator().manual_seed(4))
    a, b, c = w.clone(), w.clone(), w.clone()
    with torch.random.fork_rng():
        torch.manual_seed(0)
        state = torch.get_rng_state()
        UNSEEDED[entry](a)
        UNSEEDED[entry](b)
        UNSEEDED[entry](c)
        assert torch.equal(torch.get_rng_state(), state), "the generator was advanced"
    assert not torch.equal(a, b) and not torch.equal(b, c) and not torch.equal(a, c)


def test_an_explicit_generator_is_read_not_advanced():
    w = torch.randn(10, 8, generator=torch.Generator().manual_seed(4))
    g = torch.Generator().manual_seed(11)
    state = g.get_state()
    global_state = torch.get_rng_state()
    a, b = w.clone(), w.clone()
    parewire.pa_rewire_(a, generator=g)
    parewire.pa_rewire_(b, generator=g)
    assert torch.equal(g.get_state(), state) and torch.equal(torch.get_rng_state(), global_state)
    assert not torch.equal(a, b), "two calls in a row differ"
    # a fresh generator in the same state gives the same first and second call
    h = torch.Generator().manual_seed(11)
    a2, b2 = w.clone(), w.clone()
    parewire.pa_rewire_(a2, generator=h)
    parewire.pa_rewire_(b2, generator=h)
    assert torch.equal(a, a2) and torch.equal(b, b2)
    # the generator's state is what counts: after a draw it is a new state
    torch.rand(1, generator=g)
    c = w.clone()
    parewire.pa_rewire_(c, generator=g)
    assert not torch.equal(c, a) and not torch.equal(c, b)


def test_calls_at_one_state_are_numbered_and_the_count_restarts_when_the_state_moves():
    g = torch.Generator().manual_seed(3)
    s0, s1, s2 = (state_seed(g) for _ in range(3))
    assert len({s0, s1, s2}) == 3
    start = g.get_state()
    torch.rand(1, generator=g)
    moved = state_seed(g)
    assert moved not in {s0, s1, s2}
    g.set_state(start)  # back to the first state after a call at another one: counted from 0 again
    assert state_seed(g) == s0 and state_seed(g) == s1
    # resolve_seed keeps its meaning: a given seed is itself
    assert resolve_seed(123, g) == 123 and resolve_seed(None, g) not in {s0, s1, 123}


def test_reseeding_to_the_state_of_the_previous_call_counts_as_a_repeat():
    """What the docs say parewire cannot see: manual_seed back to the very
    state of the previous unseeded call continues that state's count."""
    g = torch.Generator()
    g.manual_seed(5)
    first = state_seed(g)
    g.manual_seed(5)
    assert state_seed(g) != first
    assert state_seed(torch.Generator().manual_seed(5)) == first  # a fresh generator starts at 0


def test_the_default_generator_and_an_equal_generator_give_the_same_seed():
    with torch.random.fork_rng():
        torch.manual_seed(21)
        torch.rand(3)
        g = torch.Generator()
        g.set_state(torch.get_rng_state())
        assert state_seed(None) == state_seed(g)
        assert state_seed(torch.default_generator) == state_seed(g)  # the second call at each


def test_threads_at_one_state_get_the_serial_seeds():
    n = 16
    g = torch.Generator().manual_seed(9)
    serial = [state_seed(g) for _ in range(n)]
    shared = torch.Generator().manual_seed(9)
    barrier = threading.Barrier(n)
    got: list[Any] = [None] * n

    def work(i):
        barrier.wait(timeout=60)
        got[i] = state_seed(shared)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(got) == sorted(serial) and len(set(got)) == n


def test_rewire_model_without_a_seed_leaves_the_generator_alone():
    def net():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(8, 6), nn.Linear(6, 4))

    with torch.random.fork_rng():
        a, b, c = net(), net(), net()
        state = torch.get_rng_state()
        ra = parewire.rewire_model(a)
        rb = parewire.rewire_model(b)
        assert torch.equal(torch.get_rng_state(), state)
    assert ra.seed != rb.seed, "two calls in a row differ"
    g = torch.Generator()
    g.set_state(state)
    rc = parewire.rewire_model(c, generator=g)  # the same state in a fresh generator: the first seed
    assert rc.seed == ra.seed and torch.equal(g.get_state(), state)
    for p, q in zip(a.parameters(), c.parameters()):
        assert torch.equal(p, q)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_cuda_generator_is_read_not_advanced():
    w = torch.randn(10, 8, generator=torch.Generator().manual_seed(4))
    g = torch.Generator("cuda").manual_seed(11)
    state = g.get_state()
    a, b = w.clone(), w.clone().cuda()
    parewire.pa_rewire_(a, generator=g)
    assert torch.equal(g.get_state(), state)
    parewire.pa_rewire_(b, generator=torch.Generator("cuda").manual_seed(11))  # a CUDA tensor, same seed
    assert torch.equal(a, b.cpu())
    torch.rand(1, generator=g, device="cuda")
    c = w.clone()
    parewire.pa_rewire_(c, generator=g)
    assert not torch.equal(a, c)


def test_the_examples_in_docs_seeds_md_run():
    page = ROOT / "docs" / "seeds.md"
    if not page.exists():
        pytest.skip("run from the source tree (docs/ is not installed)")
    blocks = python_blocks(page)
    assert len(blocks) >= 3 and all(b.skip is None for b in blocks)
    for block in blocks:  # each block on its own, as a reader would paste it
        run_python_blocks(page, leave_out=block.__ne__)  # every block but this one
