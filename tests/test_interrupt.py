"""Ctrl-C and cancellation during long rewires: KeyboardInterrupt from inside
the kernel call, weights bit-identical, the process healthy afterwards.

SIGINT: a child process rewires a large layer again and again; the parent
sends SIGINT.  The child reports where the KeyboardInterrupt surfaced: on the
``_C.rewire`` line (the binding polled the signal, cancelled the kernel and
joined it) or elsewhere (the signal fell between two calls, which proves
nothing, so the parent sends another).  The latency from signal to exception
is printed (run with -s to see it).

CancelFlag: kernels running on Python worker threads (where no signal is ever
seen) share one ``_C.CancelFlag``; setting it must stop every one of them
within 0.2 s (issue 11: one row, where a whole call takes about a second),
each with its array unchanged.  Every child runs under a timeout.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any

import pytest

CHILD = textwrap.dedent(
    r"""
    import signal, sys, time, traceback
    # A parent started in the background may pass SIGINT down as ignored, and
    # Python keeps an ignored SIGINT ignored: restore the KeyboardInterrupt handler.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    import torch
    import parewire
    from parewire import _bridge

    rows, cols, sampler = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    w = torch.randn(rows, cols, generator=torch.Generator().manual_seed(0))
    snapshot = w.clone()
    done = 0
    print("ready", flush=True)
    while True:
        try:
            t0 = time.perf_counter()
            parewire.pa_rewire_(w, seed=done + 1, sampler=sampler)
            done += 1
            snapshot.copy_(w)
        except KeyboardInterrupt as e:
            caught = time.perf_counter()
            frames = traceback.extract_tb(e.__traceback__)
            inside = frames[-1].filename == _bridge.__file__ and "_C.rewire" in frames[-1].line
            intact = torch.equal(w, snapshot) and w.view(torch.int32).equal(snapshot.view(torch.int32))
            print(f"interrupted inside={inside} intact={intact} caught={caught:.6f} done={done}", flush=True)
            if inside:
                break
    # the interpreter and the extension still work
    parewire.pa_rewire_(torch.randn(64, 64), seed=1)
    print("healthy", flush=True)
    """
)


def line_reader(stream, timeout=120.0):
    """readline() with a timeout, so a child that stops answering fails the test instead of hanging it."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in iter(stream.readline, ""):
            lines.put(line)
        lines.put("")  # end of output

    threading.Thread(target=pump, daemon=True).start()

    def read() -> str:
        try:
            return lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"the child process said nothing for {timeout:.0f} s")

    return read


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigint_cancels_a_long_rewire_and_leaves_the_weights_intact():
    sampler = "numpy"  # the cancel flag is checked between rows, whatever the sampler
    from parewire import _C

    rows = cols = 4096  # 16 Mi elements: about a second per call, far above INTERRUPT_THRESHOLD
    assert rows * cols >= 16 * _C.INTERRUPT_THRESHOLD
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(rows), str(cols), sampler],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    readline = line_reader(proc.stdout)
    try:
        assert readline().strip() == "ready"
        reports = []
        for attempt in range(20):
            time.sleep(0.4 + 0.1 * attempt)  # inside a call, most likely
            sent = time.perf_counter()
            proc.send_signal(signal.SIGINT)
            line = readline().strip()
            if not line.startswith("interrupted"):
                proc.kill()  # so reading its stderr cannot block
                assert proc.stderr is not None
                pytest.fail(f"unexpected answer {line!r}; child stderr: {proc.stderr.read()}")
            fields = dict(kv.split("=") for kv in line.split()[1:])
            reports.append(fields)
            if fields["inside"] == "True":
                assert fields["intact"] == "True", "weights changed by an interrupted rewire"
                # perf_counter is CLOCK_MONOTONIC on Linux: comparable across processes
                latency = float(fields["caught"]) - sent
                print(f"\nSIGINT -> KeyboardInterrupt in {latency * 1000:.0f} ms ({sampler}, attempt {attempt + 1})")
                break
        else:
            pytest.fail(f"SIGINT never landed inside the kernel: {reports}")
        assert readline().strip() == "healthy"
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# Kernels on worker threads sharing one flag; the main thread sets it (after
# the calls are well under way, or before they start) and reports, per call,
# how it ended, how long after flag.set() it ended, how long the call took,
# and whether the array kept its exact bytes.
CANCEL_CHILD = textwrap.dedent(
    r"""
    import json, sys, threading, time
    import numpy as np
    from parewire import _C

    kernels, preset, n = int(sys.argv[1]), sys.argv[2] == "preset", int(sys.argv[3])
    arrays = [np.random.default_rng(i).standard_normal((n, n)).astype(np.float32) for i in range(kernels)]
    before = [a.tobytes() for a in arrays]
    flag = _C.CancelFlag()
    if preset:
        flag.set()
    ready = threading.Barrier(kernels + 1)
    ends = [None] * kernels

    def work(i):
        ready.wait()
        start = time.perf_counter()
        try:
            _C.rewire(arrays[i].__dlpack__(), (0, 1, 0, 1), cancel=flag)
            ends[i] = ("finished", start, time.perf_counter())
        except KeyboardInterrupt:
            ends[i] = ("cancelled", start, time.perf_counter())

    workers = [threading.Thread(target=work, args=(i,)) for i in range(kernels)]
    for w in workers:
        w.start()
    ready.wait()
    if not preset:
        time.sleep(0.3)  # inside calls that take about a second
    set_at = time.perf_counter()
    flag.set()
    for w in workers:
        w.join()
    print(json.dumps({
        "outcomes": [e[0] for e in ends],
        "after_set": [e[2] - set_at for e in ends],
        "call": [e[2] - e[1] for e in ends],
        "identical": [a.tobytes() == b for a, b in zip(arrays, before)],
    }))
    """
)

N = 4096  # 16 Mi float32 elements: about a second per call
# Issue 11 asks for an answer within 0.2 s.  Under scripts/sanitize.sh
# (ASan, -O1) the kernel's phases between row checks (copying 64 MB in and
# out) take several times longer; a kernel that never read the flag would
# still take far longer than the relaxed bound (a whole call, seconds).
WITHIN = 2.0 if "asan" in os.environ.get("LD_PRELOAD", "") else 0.2


def run_child(*args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", CANCEL_CHILD, *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("kernels", [1, 2])
def test_cancel_flag_stops_kernels_on_worker_threads_within_a_row(kernels):
    r = run_child(str(kernels), "running", str(N))
    print(
        f"\nflag.set() -> KeyboardInterrupt on {kernels} worker thread(s): "
        + ", ".join(f"{t * 1000:.0f} ms" for t in r["after_set"])
    )
    assert r["outcomes"] == ["cancelled"] * kernels, r
    assert r["identical"] == [True] * kernels, "a cancelled kernel changed its array"
    assert max(r["after_set"]) < WITHIN, r


def test_cancel_flag_set_before_the_call_stops_it_at_once():
    r = run_child("2", "preset", str(N))
    assert r["outcomes"] == ["cancelled", "cancelled"], r
    assert r["identical"] == [True, True]
    assert max(r["call"]) < WITHIN, r  # a whole call takes about a second


# The thread-pool pattern with Ctrl-C: one kernel on a worker thread, one on
# the main thread, one flag.  SIGINT reaches the main thread's call, which
# sets the shared flag, so the worker's kernel stops too.
SIGNAL_CHILD = textwrap.dedent(
    r"""
    import json, signal, sys, threading, time
    signal.signal(signal.SIGINT, signal.default_int_handler)
    import numpy as np
    from parewire import _C

    n = int(sys.argv[1])
    main_w, worker_w = (np.random.default_rng(i).standard_normal((n, n)).astype(np.float32) for i in (0, 1))
    before = [main_w.tobytes(), worker_w.tobytes()]
    flag = _C.CancelFlag()
    ends = {}

    def work():
        try:
            _C.rewire(worker_w.__dlpack__(), (0, 1, 0, 1), cancel=flag)
            ends["worker"] = ("finished", time.perf_counter())
        except KeyboardInterrupt:
            ends["worker"] = ("cancelled", time.perf_counter())

    t = threading.Thread(target=work)
    t.start()
    print("ready", flush=True)
    try:
        _C.rewire(main_w.__dlpack__(), (0, 1, 0, 1), cancel=flag)
        ends["main"] = ("finished", time.perf_counter())
    except KeyboardInterrupt:
        ends["main"] = ("interrupted", time.perf_counter())
    t.join()
    print(json.dumps({
        "ends": ends,
        "flag_set": flag.is_set(),
        "identical": [main_w.tobytes() == before[0], worker_w.tobytes() == before[1]],
    }), flush=True)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigint_on_the_main_thread_sets_the_shared_flag_and_stops_the_workers_too():
    proc = subprocess.Popen(
        [sys.executable, "-c", SIGNAL_CHILD, str(N)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    readline = line_reader(proc.stdout)
    try:
        assert readline().strip() == "ready"
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        line = readline().strip()
        assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
        r = json.loads(line)
        assert r["ends"]["main"][0] == "interrupted", r
        assert r["ends"]["worker"][0] == "cancelled", r
        assert r["flag_set"], "the signal did not set the caller's flag"
        assert r["identical"] == [True, True], r
        assert r["ends"]["worker"][1] - r["ends"]["main"][1] < WITHIN, r
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
