"""Helpers the tests import by name (``from _helpers import bits``).

pytest puts this folder on ``sys.path`` (the tests are not a package), so the
test modules import it by name.
"""

from __future__ import annotations

import ctypes
import dataclasses
import pathlib
import re
from typing import Any, Callable, TypeVar

import numpy as np
import torch
from numpy.lib.array_utils import byte_bounds
from torch import nn

import parewire

DATA = pathlib.Path(__file__).parent / "data"
T = TypeVar("T")

# The two spellings of stabilisation, called the same way: (tensor, initializer, count).
STABILIZERS = {
    "stabilize_strength_": lambda w, init, k: parewire.stabilize_strength_(w, init, k),
    "stabilize_strength": lambda w, init, k: parewire.stabilize_strength(init, w, K=k),
}

REWIRING_FIXTURES = sorted(p.name for p in DATA.glob("*.npz") if not p.name.startswith("stabilize_"))
STABILIZE_FIXTURES = sorted(p.name for p in DATA.glob("stabilize_*.npz"))


def load_fixture(name: str) -> dict[str, np.ndarray]:
    """The arrays of ``tests/data/<name>`` (known answers of the authors' code)."""
    with np.load(DATA / name) as d:
        return {k: d[k] for k in d.files}


def present(x: T | None) -> T:
    """``x``, asserted not None: a report's optional field (statistics, seed, reduction) that the
    case under test always fills, where an ``assert`` statement cannot go (a comprehension)."""
    assert x is not None
    return x


def bits(a: Any) -> np.ndarray:
    """The raw bit patterns of a float array or tensor, for bit-for-bit equality."""
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu()
        if a.dtype == torch.bfloat16:
            raw: np.ndarray = a.view(torch.int16).numpy().copy()
            return raw
        a = a.numpy()
    a = np.ascontiguousarray(a)
    view: np.ndarray = a.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize])
    return view


def randn(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Normal values from a generator seeded by the shape (no global RNG)."""
    g = torch.Generator().manual_seed(sum(shape) + 1)
    return torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype)


def raw_storage(w: torch.Tensor) -> bytes:
    """The bytes of ``w``'s whole storage (bytes(storage) would go element by element)."""
    s = w.untyped_storage()
    return torch.empty(0, dtype=torch.uint8).set_(s, 0, (s.nbytes(),), (1,)).numpy().tobytes()


def _byte_bounds(a: np.ndarray):
    """numpy's byte_bounds (numpy.lib.array_utils since 2.0, numpy.byte_bounds before)."""
    utils = getattr(np.lib, "array_utils", None)
    return (utils.byte_bounds if utils is not None else byte_bounds)(a)


def storage_bytes(w: Any) -> bytes | None:
    """Every byte of the memory behind ``w`` (the whole storage, not just the view);
    None for objects without plain memory (meta, sparse, subclasses, non-arrays)."""
    if isinstance(w, torch.Tensor):
        if type(w) not in (torch.Tensor, nn.Parameter) or w.is_meta or w.layout != torch.strided or w.is_nested:
            return None
        return raw_storage(w)
    if isinstance(w, np.ndarray):
        root = w
        while isinstance(root.base, np.ndarray):
            root = root.base
        base: object = root.base  # (numpy's stubs say ndarray or None; it may be any buffer)
        if base is not None:  # a foreign buffer (frombuffer, broadcast_to)
            lo, hi = _byte_bounds(w)
            return bytes(np.ctypeslib.as_array((ctypes.c_uint8 * (hi - lo)).from_address(lo)))
        return root.tobytes(order="A")
    return None


def linear_holding(w: Any) -> Any:
    """A Linear whose weight shares ``w``'s memory (non-tensors are passed as is)."""
    if not isinstance(w, torch.Tensor) or type(w) not in (torch.Tensor, nn.Parameter):
        return w
    m = nn.Linear(1, 1)
    with torch.no_grad():
        m.weight = nn.Parameter(w.detach(), requires_grad=w.is_floating_point() and not w.is_inference())
    return m


# -- the documentation's examples ------------------------------------------------------------------

ROOT = pathlib.Path(__file__).resolve().parent.parent
#: Put on the line right before a ```python fence to keep that one block out of the tests:
#: ``<!-- docs-test: skip: why -->`` (a GPU, torchrun, a download); the reason is required.
SKIP_MARKER = re.compile(r"^<!--\s*docs-test:\s*skip:\s*(\S.*?)\s*-->\s*$")


@dataclasses.dataclass(frozen=True)
class CodeBlock:
    """One ```python block of a Markdown page."""

    page: pathlib.Path
    line: int  # of the first line of code, 1-based
    code: str
    skip: str | None  # the reason given by a skip marker, or None


def python_blocks(page: pathlib.Path) -> list[CodeBlock]:
    """The ```python blocks of ``page``, in order, with the skip marker of each."""
    lines = page.read_text().splitlines()
    blocks: list[CodeBlock] = []
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```python":
            marker = SKIP_MARKER.match(lines[i - 1].strip()) if i > 0 else None
            end = i + 1
            while end < len(lines) and lines[end].strip() != "```":
                end += 1
            if end == len(lines):
                raise ValueError(f"{page}:{i + 1}: a ```python block is never closed")
            blocks.append(CodeBlock(page, i + 2, "\n".join(lines[i + 1 : end]) + "\n", marker and marker.group(1)))
            i = end
        i += 1
    return blocks


def run_python_blocks(
    page: pathlib.Path,
    namespace: dict[str, Any] | None = None,
    leave_out: Callable[[CodeBlock], bool] = lambda block: False,
) -> dict[str, Any]:
    """Runs the page's blocks that are neither marked skip nor left out, in order, in one
    namespace (a page reads as one session: later blocks use what earlier ones made), with
    tracebacks that point into the page.  Torch's global RNG state is restored afterwards;
    returns the namespace."""
    namespace = {"__name__": "__docs__"} if namespace is None else namespace
    with torch.random.fork_rng():
        for block in python_blocks(page):
            if block.skip is None and not leave_out(block):
                # pad with newlines so that line numbers in tracebacks are the page's
                exec(compile("\n" * (block.line - 1) + block.code, str(page), "exec"), namespace)
    return namespace
