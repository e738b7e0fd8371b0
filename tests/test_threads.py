"""Several Python threads rewiring different tensors at once give exactly the
serial results.

The binding releases the GIL around every kernel call, and the kernels keep
all state in the call (no globals), so concurrent calls on *different*
tensors are independent.  The mix covers both paths of the binding: tensors
below ``_C.INTERRUPT_THRESHOLD`` run the kernel inline, larger ones in a
helper thread that the calling thread waits on.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from _helpers import bits

import parewire
from parewire import _C

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]


def jobs():
    out = []
    big = (640, 512)  # 327,680 elements: above the threshold
    assert big[0] * big[1] >= _C.INTERRUPT_THRESHOLD
    shapes = [big, (48, 30), (31, 7, 3), big, (5, 200), (200, 5), (96, 64, 3), big]
    for i, shape in enumerate(shapes):
        g = torch.Generator().manual_seed(i)
        w = torch.randn(*shape, generator=g).to(DTYPES[i % 4])
        if i % 3 == 1:
            w = w.transpose(0, 1).contiguous().transpose(0, 1)  # strided
        out.append((w, 1000 + i, "fast" if i % 2 else "numpy"))
    return out


def run(w, seed, sampler):
    if seed % 4 == 3:
        parewire.rewiring_np(w, seed)
    else:
        parewire.pa_rewire_(w, seed=seed, sampler=sampler)
    return w


def test_threads_on_different_tensors_match_serial_calls():
    serial = [run(w.clone(), s, m) for w, s, m in jobs()]
    for _ in range(3):
        work = jobs()
        barrier = threading.Barrier(4)

        def task(args, barrier=barrier):
            barrier.wait(timeout=60) if args[1] < 1004 else None  # the first four start together
            return run(*args)

        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(task, work))
        for got, want, (w, _, _) in zip(results, serial, work):
            assert got is w
            np.testing.assert_array_equal(bits(got), bits(want))


def test_threads_computing_statistics_while_others_rewire():
    ws = [w for w, _, _ in jobs()]
    expected = [parewire.strength_stats(w) for w in ws]
    stats_box: dict[int, list[parewire.StrengthStats]] = {}

    def reader(i):
        # the reader's tensors are copies: nobody writes them
        stats_box[i] = [parewire.strength_stats(w) for w in frozen]

    frozen = [w.clone() for w in ws]
    threads = [threading.Thread(target=reader, args=(i,)) for i in range(2)]
    writers = [threading.Thread(target=run, args=(w.clone(), 7, "fast")) for w in ws[:4]]
    for t in threads + writers:
        t.start()
    for t in threads + writers:
        t.join(timeout=120)
    for i in range(2):
        for got, want in zip(stats_box[i], expected):
            np.testing.assert_array_equal(np.array(got, float), np.array(want, float))


def test_threads_sharing_a_numpy_generator_draw_what_serial_calls_draw():
    """N threads x M legacy calls with one numpy Generator as the seed (the
    reference then shares its stream) leave the generator where N*M serial
    calls leave it, and produce the same outputs in some order.  All inputs
    are equal, so an output depends only on the part of the stream it drew.
    Before: threads read the same state and drew the same numbers."""
    n_threads, per_thread = 4, 5
    w = torch.randn(96, 96, generator=torch.Generator().manual_seed(0))

    serial_rng = np.random.default_rng(2024)
    serial = []
    for _ in range(n_threads * per_thread):
        t = w.clone()
        parewire.PA_rewiring_np(t, serial_rng)
        serial.append(bits(t).tobytes())

    shared = np.random.default_rng(2024)
    barrier = threading.Barrier(n_threads)

    def task(_):
        barrier.wait(timeout=60)
        out = []
        for _ in range(per_thread):
            t = w.clone()
            parewire.PA_rewiring_np(t, shared)
            out.append(bits(t).tobytes())
        return out

    with ThreadPoolExecutor(max_workers=n_threads) as pool:
        threaded = [o for outs in pool.map(task, range(n_threads)) for o in outs]
    assert shared.bit_generator.state == serial_rng.bit_generator.state
    assert sorted(threaded) == sorted(serial)
    assert len(set(serial)) == len(serial)


# -- two threads on one object ------------------------------------------------------------
# A call claims the memory it writes (parewire/_claims.py): a second call on overlapping
# memory waits, so the result is that of the two calls made one after the other.


def _race(calls, trials=6):
    """Runs the zero-argument ``calls`` at once from as many threads, ``trials`` times;
    yields after each round."""
    for _ in range(trials):
        start = threading.Barrier(len(calls))
        errors: list[BaseException] = []

        def go(call, start=start, errors=errors):
            start.wait()
            try:
                call()
            except BaseException as e:  # noqa: B036 - reported by the assertion below
                errors.append(e)

        threads = [threading.Thread(target=go, args=(c,)) for c in calls]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not any(t.is_alive() for t in threads), "a call never finished (deadlock?)"
        assert not errors, errors
        yield


def _serial(original, steps):
    """The results of applying ``steps`` (functions of one tensor) in each order."""
    out = []
    for order in (steps, steps[::-1]):
        w = original.clone()
        for f in order:
            f(w)
        out.append(w)
    return out


def _one_of(w, candidates):
    return any(np.array_equal(bits(w), bits(c)) for c in candidates)


TWO_CALLS = {
    "one tensor": ((1024, 768), lambda t: parewire.pa_rewire_(t, seed=1), lambda t: parewire.pa_rewire_(t, seed=2)),
    "overlapping views": (
        (1200, 512),
        lambda t: parewire.pa_rewire_(t[:700], seed=3, sampler="fast"),
        lambda t: parewire.PA_rewiring_torch(t[500:], seed=4),
    ),
}


@pytest.mark.parametrize("case", sorted(TWO_CALLS))
def test_two_threads_on_one_storage_give_a_serial_result(case):
    shape, first, second = TWO_CALLS[case]
    original = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    expected = _serial(original, [first, second])
    w = original.clone()
    for _ in _race([lambda: first(w), lambda: second(w)]):
        assert _one_of(w, expected), f"two concurrent calls on {case} mixed their reads and writes"
        w.copy_(original)


def test_a_numpy_array_and_a_tensor_over_it_are_one_object():
    original = np.random.default_rng(2).standard_normal((900, 600)).astype(np.float32)
    a = original.copy()
    t = torch.from_numpy(a)
    expected = _serial(
        torch.from_numpy(original),
        [lambda x: parewire.PA_rewiring_np(x.numpy(), seed=5), lambda x: parewire.pa_rewire_(x, seed=6)],
    )
    for _ in _race([lambda: parewire.PA_rewiring_np(a, seed=5), lambda: parewire.pa_rewire_(t, seed=6)]):
        assert _one_of(t, expected)
        a[...] = original


def test_two_threads_rewiring_one_model_give_a_serial_result():
    def model():
        torch.manual_seed(0)
        return torch.nn.Sequential(*[torch.nn.Linear(384, 384) for _ in range(4)])

    def weights(m):
        return torch.cat([p.detach().flatten() for p in m.parameters()])

    expected = []
    for order in ((7, 8), (8, 7)):
        m = model()
        for s in order:
            parewire.rewire_model(m, seed=s, workers=2)
        expected.append(weights(m))
    m = model()
    original = [p.detach().clone() for p in m.parameters()]
    for _ in _race([lambda: parewire.rewire_model(m, seed=7, workers=2), lambda: parewire.rewire_model(m, seed=8)]):
        assert _one_of(weights(m), expected), "two concurrent rewire_model calls on one model mixed their work"
        with torch.no_grad():
            for p, o in zip(m.parameters(), original):
                p.copy_(o)


def test_an_initializer_may_call_parewire_on_its_own_argument():
    # the thread that holds a claim may claim the same memory again: no deadlock
    w = torch.empty(64, 48)

    def init(t):
        torch.nn.init.normal_(t)
        parewire.pa_rewire_(t, seed=0)

    for _ in _race([lambda: parewire.stabilize_strength_(w, init, trials=3)], trials=1):
        pass
    assert torch.isfinite(w).all()


WAIT_THEN_CTRL_C = textwrap.dedent(
    """
    import os, signal, threading, time, torch, parewire
    from parewire._claims import claim
    w = torch.randn(100, 100)
    held, release = threading.Event(), threading.Event()
    def holder():
        with claim([w]):
            held.set()
            release.wait(60)
    threading.Thread(target=holder, daemon=True).start()
    held.wait()
    threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
    before, t0 = w.clone(), time.monotonic()
    try:
        parewire.pa_rewire_(w, seed=0)
        print("not interrupted")
    except KeyboardInterrupt:
        print(f"interrupted {time.monotonic() - t0:.2f} unchanged {torch.equal(w, before)}")
    """
)


def test_ctrl_c_reaches_a_call_waiting_for_its_turn():
    out = subprocess.run([sys.executable, "-c", WAIT_THEN_CTRL_C], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    what, seconds, _, unchanged = out.stdout.split()
    assert what == "interrupted" and unchanged == "True", out.stdout
    assert float(seconds) < 5.0, f"Ctrl-C took {seconds} s to reach a waiting call"
