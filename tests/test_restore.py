"""All or nothing at model level: restore="memory" | "disk" | "none" | "auto", failures and
Ctrl-C (one and two signals, one and several workers), and the memory each mode costs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from _helpers import bits
from torch import nn

import parewire
from parewire import _runner


def state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same(a, b):
    return a.keys() == b.keys() and all(np.array_equal(bits(a[k]), bits(b[k])) for k in a)


def net(n=8, width=30):
    torch.manual_seed(0)
    return nn.Sequential(*[nn.Linear(width, width) for _ in range(n)])


def failing_init(at):
    calls = []

    def init(t):
        calls.append(1)
        if len(calls) == at:
            raise RuntimeError("initializer exploded")
        nn.init.normal_(t)

    return init


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("restore", ["memory", "disk"])
def test_memory_and_disk_restore_every_parameter_byte_for_byte(workers, restore, tmp_path):
    model = net()
    before = state(model)
    with pytest.raises(RuntimeError, match="initializer exploded") as info:
        parewire.rewire_model(
            model, init=failing_init(5), seed=0, workers=workers, restore=restore, restore_dir=str(tmp_path)
        )
    assert same(state(model), before)
    assert os.listdir(tmp_path) == []  # the snapshot file is gone (it never had a name)
    assert info.value.rewire_report.restore == restore  # type: ignore[attr-defined]  # set by rewire_model


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("restore", ["none", "auto"])
def test_without_copies_exactly_the_reported_parameters_are_rewired(workers, restore):
    """With init=, "auto" keeps no copies: the old values are being replaced anyway."""
    model = net()
    before = state(model)
    with pytest.raises(RuntimeError, match="initializer exploded") as info:
        parewire.rewire_model(model, init=failing_init(5), seed=3, workers=workers, restore=restore)
    report = info.value.rewire_report  # type: ignore[attr-defined]  # set by rewire_model
    assert report.restore == "none"
    done = {r.name for r in report.rewired}
    assert 1 <= len(done) <= 7
    # replaying the reported parameters from their seeds gives exactly what is in the model
    replay = net()
    parewire.rewire_model(replay, init=failing_init(10**9), seed=3, workers=1, layers=sorted(done))
    after = state(model)
    for k in after:
        expected = replay.state_dict()[k] if k in done else before[k]
        np.testing.assert_array_equal(bits(after[k]), bits(expected), err_msg=k)
    if hasattr(info.value, "__notes__"):
        assert any("restore='none'" in n for n in info.value.__notes__)


def test_auto_without_init_keeps_copies_in_memory_then_on_disk_then_refuses(monkeypatch, tmp_path):
    model = net(n=3)
    assert parewire.rewire_model(model, seed=0).restore == "memory"
    monkeypatch.setenv("PAREWIRE_MEMORY_BUDGET", "1K")
    report = parewire.rewire_model(model, seed=0, restore_dir=str(tmp_path))
    assert report.restore == "disk" and os.listdir(tmp_path) == []
    monkeypatch.setattr("parewire._runner.shutil.disk_usage", lambda p: type("Usage", (), {"free": 10})())
    before = state(model)
    with pytest.raises(MemoryError, match=r"fits neither the memory budget.*restore='none'"):
        parewire.rewire_model(model, seed=0)
    assert same(state(model), before)
    monkeypatch.setenv("PAREWIRE_MEMORY_BUDGET", "lots")
    with pytest.raises(ValueError, match="PAREWIRE_MEMORY_BUDGET must be a size"):
        parewire.rewire_model(model, seed=0)
    assert same(state(model), before)


def test_bad_restore_arguments_are_refused_before_any_work(tmp_path):
    model = net(n=2)
    before = state(model)
    with pytest.raises(ValueError, match="restore must be one of"):
        parewire.rewire_model(model, restore="tape")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"restore_dir .* is not a folder"):
        parewire.rewire_model(model, restore="disk", restore_dir=str(tmp_path / "missing"))
    assert same(state(model), before)


def test_memory_budget_parses_sizes(monkeypatch):
    for text, value in (("8G", 8 << 30), ("512M", 512 << 20), ("1.5k", 1536), ("1000000", 10**6), ("2GiB", 2 << 30)):
        monkeypatch.setenv("PAREWIRE_MEMORY_BUDGET", text)
        assert _runner.memory_budget() == value


# -- Ctrl-C ----------------------------------------------------------------------------------------

INTERRUPTED = textwrap.dedent(
    r"""
    import json, os, signal, sys, threading, time
    signal.signal(signal.SIGINT, signal.default_int_handler)
    import torch
    from torch import nn
    import parewire

    restore, workers, signals, init = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    torch.manual_seed(0)
    model = nn.Sequential(*[nn.Linear(1024, 1024, bias=False) for _ in range(24)])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    started = threading.Event()

    def progress(record, done, total):
        started.set()

    def interrupt():
        started.wait(60)
        for _ in range(signals):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)

    threading.Thread(target=interrupt, daemon=True).start()
    t0 = time.perf_counter()
    try:
        parewire.rewire_model(model, seed=1, workers=workers, restore=restore, progress=progress,
                              init=None if init == "none" else init)
        outcome, done = "finished", None
    except KeyboardInterrupt as e:
        outcome = "interrupted"
        report = getattr(e, "rewire_report", None)
        done = sorted(r.name for r in report.rewired) if report is not None else None
    seconds = time.perf_counter() - t0
    # a signal still on its way after the run (the first one cancels it within a row) belongs to no one
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    changed = sorted(k for k, v in model.state_dict().items() if not torch.equal(v, before[k]))
    print(json.dumps({"outcome": outcome, "changed": changed, "done": done, "seconds": seconds}), flush=True)
    """
)


def run_interrupted(restore, workers, signals, init="none"):
    out = subprocess.run(
        [sys.executable, "-c", INTERRUPTED, restore, str(workers), str(signals), init],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("signals", [1, 2])
def test_ctrl_c_restores_every_parameter_whatever_the_workers_and_signals(workers, signals):
    for _ in range(3):
        res = run_interrupted("memory", workers, signals)
        if res["outcome"] == "finished":  # the signals came after the last parameter: try again
            continue
        assert res["outcome"] == "interrupted" and res["changed"] == [], res
        return
    pytest.fail("rewire_model finished before the interrupt three times")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_without_copies_leaves_exactly_the_reported_parameters_rewired(workers):
    res = run_interrupted("none", workers, 2, init="orthogonal")
    if res["outcome"] == "interrupted":
        assert res["done"] == res["changed"] and len(res["changed"]) < 24, res


# -- a full disk -----------------------------------------------------------------------------------

FULL_DISK = textwrap.dedent(
    """
    import json, os, resource, signal, sys, tempfile
    import torch
    from torch import nn
    import parewire

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
    torch.manual_seed(0)
    model = nn.Sequential(*[nn.Linear(256, 256) for _ in range(6)])  # 256 KiB per weight
    before = {k: v.clone() for k, v in model.state_dict().items()}
    folder = tempfile.mkdtemp()
    resource.setrlimit(resource.RLIMIT_FSIZE, (600_000, 600_000))  # room for two copies, not six
    try:
        parewire.rewire_model(model, seed=0, restore="disk", restore_dir=folder, workers=int(sys.argv[1]))
        error = None
    except OSError as e:
        error = str(e)
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    print(json.dumps({"error": error, "changed": changed, "left": os.listdir(folder)}))
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
@pytest.mark.parametrize("workers", [1, 2])
def test_a_full_disk_during_the_copies_names_the_parameter_and_changes_nothing(workers):
    out = subprocess.run([sys.executable, "-c", FULL_DISK, str(workers)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["error"] is not None, "rewire_model did not fail on a full disk"
    assert re.search(r"could not keep a copy of '\d\.weight' for restore='disk'.*restore_dir=", res["error"]), res
    assert res["changed"] == [] and res["left"] == [], res


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc: a folder nobody can create files in")
def test_a_restore_dir_without_room_for_a_file_fails_before_any_work():
    model = net(2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(OSError, match=r"restore='disk' could not create its temporary file in '/proc'"):
        parewire.rewire_model(model, seed=0, restore="disk", restore_dir="/proc")
    assert same(model.state_dict(), before)


# -- memory ----------------------------------------------------------------------------------------

PEAK = textwrap.dedent(
    r"""
    import json, sys
    import torch
    from torch import nn
    import parewire

    def rss(field):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field))

    torch.manual_seed(0)
    model = nn.Sequential(*[nn.Linear(4096, 4096, bias=False) for _ in range(16)])  # 1 GiB of float32
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    parewire.rewire_model(nn.Linear(64, 64), seed=0)  # import-time and first-call allocations
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak (VmHWM) to the current RSS
    start = rss("VmRSS:")
    report = parewire.rewire_model(model, seed=0, sampler="fast", workers=2, restore=sys.argv[1])
    print(json.dumps({"size": size, "extra": rss("VmHWM:") - start, "restore": report.restore}))
    """
)


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux's /proc peak-RSS reset")
@pytest.mark.skipif("asan" in os.environ.get("LD_PRELOAD", ""), reason="ASan's allocator changes what RSS measures")
@pytest.mark.parametrize("restore", ["memory", "disk", "none"])
def test_disk_and_none_keep_extra_memory_far_below_the_model(restore):
    out = subprocess.run([sys.executable, "-c", PEAK, restore], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["restore"] == restore
    ratio = res["extra"] / res["size"]
    print(f"restore={restore}: peak extra RSS {ratio:.2f} x the model")
    if restore == "memory":
        assert ratio > 0.9  # the copies are really there: the measurement can see them
    else:
        assert ratio < 0.3


def test_progress_arrives_as_each_parameter_completes_with_workers():
    """The callback (and tqdm's bar) moves while the run goes on, not all at once at the end."""
    torch.manual_seed(0)
    model = nn.Sequential(*[nn.Linear(256, 256, bias=False) for _ in range(8)])
    before = state(model)
    seen = []

    def progress(record, done, total):
        changed = sum(not torch.equal(v, before[k]) for k, v in model.state_dict().items())
        seen.append((done, total, record.name, changed))

    report = parewire.rewire_model(model, seed=0, workers=2, progress=progress)
    assert [d for d, *_ in seen] == list(range(1, 9)) and {t for _, t, *_ in seen} == {8}
    assert sorted(n for _, _, n, _ in seen) == sorted(r.name for r in report.rewired)
    assert seen[0][3] < 8  # the first call came while parameters were still unwritten


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_reaches_kernels_on_worker_threads_quickly():
    """Two large layers on two workers: both kernels see the cancel request within a row."""
    code = textwrap.dedent(
        r"""
        import json, os, signal, threading, time
        signal.signal(signal.SIGINT, signal.default_int_handler)
        import torch
        from torch import nn
        import parewire

        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(5000, 5000, bias=False), nn.Linear(5000, 5000, bias=False))
        before = {k: v.clone() for k, v in model.state_dict().items()}
        sent = []

        def interrupt():
            time.sleep(1.0)  # both kernels are well under way (each takes seconds)
            sent.append(time.perf_counter())
            os.kill(os.getpid(), signal.SIGINT)

        threading.Thread(target=interrupt, daemon=True).start()
        try:
            parewire.rewire_model(model, seed=0, sampler="numpy", workers=2, restore="memory")
            print(json.dumps({"outcome": "finished"}))
        except KeyboardInterrupt:
            latency = time.perf_counter() - sent[0]
            intact = all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
            print(json.dumps({"outcome": "interrupted", "latency": latency, "intact": intact}))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["outcome"] == "interrupted" and res["intact"], res
    print(f"Ctrl-C to KeyboardInterrupt with two worker kernels: {res['latency']:.3f} s (restore included)")
    limit = 2.0 if "asan" in os.environ.get("LD_PRELOAD", "") else 0.5
    assert res["latency"] < limit, res
