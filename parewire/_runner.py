"""Runs the per-parameter step over many parameters: threads, interrupts, restore, progress.

All or nothing: before a parameter is first written its values are saved
(in memory, in a temporary file, or not at all — ``restore=``), and if
anything fails or the user presses Ctrl-C, every running kernel is told to
stop, *every* worker is waited for, whatever further signals arrive, and
only then are the saved values written back.  Ctrl-C is turned into a
cancel request while the run lasts (the handler only sets a flag), so it can
never land in the middle of the restore.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Callable, Literal

import torch

from ._bridge import CancelToken
from .report import ParameterRecord

__all__ = [
    "RESTORE_MODES",
    "Job",
    "Restore",
    "RestoreMode",
    "RunFailed",
    "choose_restore",
    "default_workers",
    "make_snapshots",
    "memory_budget",
    "run",
]

#: What ``restore=`` accepts (checked at run time too: :func:`choose_restore`).
RestoreMode = Literal["auto", "memory", "disk", "none"]
#: What a run keeps: ``restore=`` with ``"auto"`` decided.
Restore = Literal["memory", "disk", "none"]
RESTORE_MODES: tuple[RestoreMode, ...] = ("auto", "memory", "disk", "none")

Progress = Callable[[ParameterRecord, int, int], None]


@dataclass
class Job:
    """One parameter to run: ``key`` names it in errors and snapshots."""

    key: str
    tensor: torch.Tensor  # what the step writes (saved before it is touched)
    size: int  # for scheduling: largest first


class RunFailed(Exception):
    """Internal: carries the records that completed before ``error`` stopped the run."""

    def __init__(self, error: BaseException, done: list[ParameterRecord | None]) -> None:
        super().__init__(str(error))
        self.error = error
        self.done = done


# -- snapshots -----------------------------------------------------------------------------


class _Snapshots:
    """Saved values of the parameters a run has started on (``restore="none"``: nothing)."""

    mode = "none"

    def save(self, key: str, t: torch.Tensor) -> None:
        pass

    def restore(self) -> list[str]:
        return []

    def close(self) -> None:
        pass


class _MemorySnapshots(_Snapshots):
    mode = "memory"

    def __init__(self) -> None:
        self._saved: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def save(self, key: str, t: torch.Tensor) -> None:
        own = t.detach()
        self._saved[key] = (own, own.to("cpu", copy=True))

    def restore(self) -> list[str]:
        failed = []
        with torch.no_grad():
            for key, (own, values) in self._saved.items():
                try:
                    own.copy_(values)
                except Exception:  # pragma: no cover - checked layouts make this unreachable
                    failed.append(key)
        return failed

    def close(self) -> None:
        self._saved.clear()


class _DiskSnapshots(_Snapshots):
    """Values in one unnamed temporary file (``O_TMPFILE`` where the OS has it): it
    disappears when closed or when the process ends, however it ends."""

    mode = "disk"

    def __init__(self, folder: str | None) -> None:
        self._file = tempfile.TemporaryFile(prefix="parewire-restore-", dir=folder)
        self._fd = self._file.fileno()
        self._lock = threading.Lock()
        self._end = 0
        self._saved: dict[str, tuple[torch.Tensor, int, int]] = {}

    def _write(self, data: memoryview, offset: int) -> None:
        pwrite = getattr(os, "pwrite", None)
        while len(data):
            if pwrite is not None:
                n = pwrite(self._fd, data, offset)
            else:  # pragma: no cover - Windows
                with self._lock:
                    os.lseek(self._fd, offset, os.SEEK_SET)
                    n = os.write(self._fd, data)
            data, offset = data[n:], offset + n

    def _read(self, size: int, offset: int) -> bytearray:
        buf = bytearray(size)
        view, done = memoryview(buf), 0
        while done < size:
            if hasattr(os, "pread"):
                chunk = os.pread(self._fd, size - done, offset + done)
            else:  # pragma: no cover - Windows
                with self._lock:
                    os.lseek(self._fd, offset + done, os.SEEK_SET)
                    chunk = os.read(self._fd, size - done)
            if not chunk:
                raise OSError(f"parewire: restore file truncated at byte {offset + done}")
            view[done : done + len(chunk)] = chunk
            done += len(chunk)
        return buf

    def save(self, key: str, t: torch.Tensor) -> None:
        own = t.detach()
        host = own.to("cpu", copy=True).contiguous()
        nbytes = host.numel() * host.element_size()
        with self._lock:
            offset, self._end = self._end, self._end + nbytes
        self._write(host.view(torch.uint8).numpy().data.cast("B"), offset)
        self._saved[key] = (own, offset, nbytes)

    def restore(self) -> list[str]:
        failed = []
        with torch.no_grad():
            for key, (own, offset, nbytes) in self._saved.items():
                try:
                    raw = torch.frombuffer(self._read(nbytes, offset), dtype=torch.uint8)
                    own.copy_(raw.view(own.dtype).reshape(own.shape))
                except Exception:
                    failed.append(key)
        return failed

    def close(self) -> None:
        self._saved.clear()
        self._file.close()


def make_snapshots(mode: Restore, folder: str | None = None) -> _Snapshots:
    if mode == "memory":
        return _MemorySnapshots()
    if mode == "disk":
        try:
            return _DiskSnapshots(folder)
        except OSError as e:
            where = folder if folder is not None else tempfile.gettempdir()
            raise OSError(
                e.errno,
                f"parewire: restore='disk' could not create its temporary file in {where!r} ({e.strerror or e}); "
                "nothing was changed. Pass restore_dir= a writable folder, or restore='memory' or 'none'",
            ) from e
    return _Snapshots()


def save_snapshot(snapshots: _Snapshots, key: str, tensor: torch.Tensor) -> None:
    """Keeps ``tensor``'s values for the restore; a failure says which parameter and what to do."""
    try:
        snapshots.save(key, tensor)
    except (OSError, MemoryError) as e:
        what = f"{e.strerror or e}" if isinstance(e, OSError) else "out of memory"
        message = (
            f"parewire: could not keep a copy of {key!r} for restore={snapshots.mode!r} ({what}); every "
            "parameter is restored and nothing is changed. "
            + (
                "Pass restore_dir= a folder with room, or restore='memory'"
                if snapshots.mode == "disk"
                else "Pass restore='disk' (with restore_dir= a folder with room) or restore='none'"
            )
        )
        raise (OSError(e.errno, message) if isinstance(e, OSError) else MemoryError(message)) from e


_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _parse_bytes(text: str) -> int:
    s = text.strip().upper().removesuffix("IB").removesuffix("B")
    unit = s[-1:] if s[-1:] in _UNITS and s[-1:] else ""
    number = s[: len(s) - len(unit)]
    try:
        value = float(number) * _UNITS[unit]
    except ValueError:
        raise ValueError(f"PAREWIRE_MEMORY_BUDGET must be a size such as 8G, 512M or 1000000, got {text!r}") from None
    if value < 0:
        raise ValueError(f"PAREWIRE_MEMORY_BUDGET must not be negative, got {text!r}")
    return int(value)


def _available_memory() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def memory_budget() -> int | None:
    """Bytes that restore copies may take in memory: ``PAREWIRE_MEMORY_BUDGET``, or half
    the available memory (None when it cannot be found out)."""
    env = os.environ.get("PAREWIRE_MEMORY_BUDGET")
    if env:
        return _parse_bytes(env)
    available = _available_memory()
    return None if available is None else available // 2


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024  # type: ignore[assignment]
    raise AssertionError


def choose_restore(restore: RestoreMode, nbytes: int, has_init: bool, folder: str | None, fn: str) -> Restore:
    """The restore mode a run uses: ``restore`` itself, or what ``"auto"`` picks."""
    if restore not in RESTORE_MODES:
        raise ValueError(f"{fn}: restore must be one of {RESTORE_MODES}, got {restore!r}")
    if folder is not None and not os.path.isdir(folder):
        raise ValueError(f"{fn}: restore_dir {folder!r} is not a folder")
    if restore != "auto":
        return restore
    if has_init:
        # The values before are about to be replaced by the initializer: nothing
        # worth a copy.  Each parameter is still written whole or not at all.
        return "none"
    budget = memory_budget()
    if budget is None or nbytes <= budget:
        return "memory"
    free = shutil.disk_usage(folder or tempfile.gettempdir()).free
    if nbytes + (64 << 20) <= free:
        return "disk"
    raise MemoryError(
        f"{fn}: keeping a copy of the {_size(nbytes)} of selected weights (to restore them if anything fails) "
        f"fits neither the memory budget ({_size(budget)}: half the available memory, or "
        f"PAREWIRE_MEMORY_BUDGET) nor the free disk space in {folder or tempfile.gettempdir()} ({_size(free)}). "
        "Pass restore_dir= a folder with room, raise PAREWIRE_MEMORY_BUDGET, or restore='none' (no copies; "
        "after a failure the exception's rewire_report says which parameters were rewired)"
    )


# -- interrupts ----------------------------------------------------------------------------


class _InterruptGuard:
    """While active (main thread only), SIGINT requests cancellation instead of raising
    wherever the main thread happens to be; ``raised`` is what to raise afterwards."""

    def __init__(self, cancel: CancelToken) -> None:
        self.cancel = cancel
        self.raised: BaseException | None = None
        self._previous: Any = None
        self._installed = False

    def _handler(self, signum: int, frame: Any) -> None:
        if self.raised is None:
            previous = self._previous
            if previous is signal.default_int_handler:
                self.raised = KeyboardInterrupt()
            else:  # a handler of the user's: let it decide whether this is an interrupt
                try:
                    previous(signum, frame)
                except BaseException as e:  # noqa: B036 - whatever it raises stops the run
                    self.raised = e
                else:
                    return
        self.cancel.set()

    def __enter__(self) -> _InterruptGuard:
        if threading.current_thread() is threading.main_thread():
            previous = signal.getsignal(signal.SIGINT)
            if callable(previous):
                self._previous = previous
                signal.signal(signal.SIGINT, self._handler)
                self._installed = True
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)


# -- the run -------------------------------------------------------------------------------


def default_workers(n: int) -> int:
    try:
        # (not in os on macOS and Windows: the ignore is for a type check there, unused on Linux)
        cpus = len(os.sched_getaffinity(0))  # type: ignore[attr-defined,unused-ignore]
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, n))


def _bar(progress: bool | Progress | None, total: int) -> tuple[Progress | None, Any]:
    """(callback, tqdm bar to close) for ``progress``."""
    if callable(progress):
        return progress, None
    if not progress:
        return None, None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # progress is a nicety: no tqdm, no bar
        return None, None
    bar = tqdm(total=total, desc="rewiring", unit="param")
    return (lambda record, done, total: bar.update(1)), bar


def run(
    jobs: Sequence[Job],
    work: Callable[[int, CancelToken, int], ParameterRecord],
    *,
    workers: int,
    snapshots: _Snapshots,
    progress: bool | Progress | None = None,
    capacity: int | None = None,
) -> list[ParameterRecord]:
    """``work(i, cancel, threads)`` for every job, on ``workers`` threads; records in job order.

    ``capacity`` (default ``workers``) is the number of threads the run may
    keep busy: a job that starts when no other is waiting gets the threads
    no worker is using (``threads``), so the tail of a model -- or a model
    of one large layer -- is not left to a single core.

    On any failure or interrupt: cancel, wait for every worker, restore what
    ``snapshots`` saved, and raise :class:`RunFailed` wrapping the first
    error (the records completed so far ride along).
    """
    cancel = CancelToken()
    total = len(jobs)
    done: list[ParameterRecord | None] = [None] * total
    callback, bar = _bar(progress, total)
    first: list[BaseException] = []
    count = 0

    budget = max(workers, capacity or 1)
    lock = threading.Lock()
    running = started = 0

    def task(i: int) -> ParameterRecord | None:
        nonlocal running, started
        if cancel.is_set():
            return None
        with lock:
            running += 1
            started += 1
            # nothing left to start: the threads idle workers would have used are this job's
            threads = 1 + budget - running if started == total else 1
        try:
            save_snapshot(snapshots, jobs[i].key, jobs[i].tensor)
            return work(i, cancel, max(1, threads))
        finally:
            with lock:
                running -= 1

    def finished(i: int, record: ParameterRecord | None, error: BaseException | None) -> None:
        nonlocal count
        if error is not None:
            if not first:
                first.append(error)
            cancel.set()
        elif record is not None:
            done[i] = record
            count += 1
            if callback is not None:
                callback(record, count, total)

    guard = _InterruptGuard(cancel)
    try:
        with guard:
            if workers <= 1 or total <= 1:
                for i in range(total):
                    if cancel.is_set():
                        break
                    try:
                        record = task(i)
                    except BaseException as e:  # noqa: B036 - restored below, then re-raised
                        finished(i, None, e)
                    else:
                        finished(i, record, None)
            else:
                pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="parewire")
                try:
                    order = sorted(range(total), key=lambda i: (-jobs[i].size, i))  # largest first
                    futures: dict[Future[ParameterRecord | None], int] = {pool.submit(task, i): i for i in order}
                    pending = set(futures)
                    while pending:
                        ready, pending = wait(pending, timeout=0.05, return_when=FIRST_COMPLETED)
                        for f in ready:
                            if not f.cancelled():
                                error = f.exception()
                                finished(futures[f], None if error else f.result(), error)
                        if cancel.is_set():
                            for f in pending:
                                f.cancel()
                finally:
                    pool.shutdown(wait=True)
            if guard.raised is not None and not first:
                first.append(guard.raised)
            if first:
                failed = snapshots.restore()
                if failed:
                    raise RuntimeError(f"parewire: could not restore {failed}") from first[0]
    finally:
        if bar is not None:
            bar.close()
        snapshots.close()
    if first:
        # Ctrl-C wins over the KeyboardInterrupt a cancelled kernel raised.
        error = guard.raised if guard.raised is not None else first[0]
        raise RunFailed(error, done)
    return done  # type: ignore[return-value]
