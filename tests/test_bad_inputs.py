"""The bad-input matrix: every public entry point x every kind of hostile input.

Each cell either works (and the result is checked: a rewire equals the
reference on the logical values, statistics equal numpy's, a no-op changes
nothing) or raises a ValueError / TypeError / RuntimeError whose message names
the problem.  Unless the call succeeded in rewiring, the memory behind the
caller's object is bit-identical afterwards: the whole storage is compared,
not only the view.  Fabricated DLPack capsules form a second, smaller matrix
against the binding.  Bad arguments other than the tensor (seeds, K,
initializers, ...) are in ``test_bad_arguments.py``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Callable

import capsules as cap
import numpy as np
import pytest
import torch
from _helpers import bits, linear_holding, randn, storage_bytes
from torch import nn

import parewire
from parewire import _C, _bridge, reference
from parewire.seeding import seed_words

SEED = 7
WORDS = seed_words(SEED)

# --------------------------------------------------------------- expectations


@dataclass(frozen=True)
class Raises:
    exc: type
    match: str


@dataclass(frozen=True)
class Works:
    """Returns normally; what 'correct' means depends on the entry point."""


@dataclass(frozen=True)
class NoOp:
    """Returns normally and changes nothing (zero-element tensors)."""


@dataclass(frozen=True)
class RaisesOrSkips:
    """rewire_model may skip a parameter it cannot rewire (it reports why) or
    refuse the model; either way nothing changes."""

    match: str = ""


WORKS, NOOP = Works(), NoOp()
DIMS = Raises(ValueError, r"dimensions")
NONFINITE = Raises(ValueError, r"NaN or in(f|finite)|NaN or Inf")
OVERLAP = Raises(ValueError, r"overlap")
READ_ONLY = Raises(ValueError, r"read-only")
NOT_ARRAY = Raises(TypeError, r"must be a torch\.Tensor|expected an nn\.Module|DLPack capsule")


def dtype_error(name: str) -> Raises:
    return Raises(TypeError, name)


# ------------------------------------------------------------------ the kinds


@dataclass
class Kind:
    make: Callable[[], Any]
    write: Any  # pa_rewire_, the drop-in names, _C.rewire
    read: Any = None  # strength_stats, _C.strength_stats (default: write)
    stabilize: Any = None  # stabilize_strength(_) (default: write)
    model: Any = None  # rewire_model on a Linear holding it (default: write)
    capsule: bool = True  # False: the producer refuses to export it, no _C cell
    reference_ok: bool = True  # False: compare as a permutation only
    memory: Callable[[Any], Any] = lambda w: w  # what holds the values (a wrapper's inner tensor)


def with_value(pos, value, shape=(6, 5), dtype=torch.float32):
    def make():
        w = randn(*shape, dtype=dtype)
        w[pos] = value
        return w

    return make


def np_randn(*shape, dtype=np.float32):
    return np.random.default_rng(sum(shape)).standard_normal(shape).astype(dtype)


def misaligned():
    raw = np.zeros(4 * 30 + 1, np.uint8)
    a = np.frombuffer(raw.data, dtype=np.float32, count=30, offset=1).reshape(6, 5)
    assert not a.flags.aligned and a.flags.writeable
    a[...] = np_randn(6, 5)
    return a


def read_only():
    a = np_randn(6, 5)
    a.flags.writeable = False
    return a


def non_leaf():
    leaf = randn(6, 5).requires_grad_()
    return leaf * 2


def inference():
    with torch.inference_mode():
        return randn(6, 5)


def nested():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "nested tensors are a prototype"
        return torch.nested.nested_tensor([randn(3, 5), randn(2, 5)])


def sparse_csr():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        return randn(6, 5).to_sparse_csr()


def fake():
    from torch._subclasses.fake_tensor import FakeTensorMode

    return FakeTensorMode().from_tensor(randn(6, 5))


class Wrapper(torch.Tensor):
    """A wrapper subclass (no storage of its own) that forwards every op to ``elem``."""

    @staticmethod
    def __new__(cls, elem):
        return torch.Tensor._make_wrapper_subclass(cls, elem.shape, dtype=elem.dtype, device=elem.device)

    def __init__(self, elem):
        self.elem = elem

    # torch declares Tensor.__torch_dispatch__ as a plain function assigned in the class body, which
    # mypy reads as an instance method; the classmethod below is the protocol torch documents.
    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):  # type: ignore[override]
        unwrap = lambda x: x.elem if isinstance(x, Wrapper) else x  # noqa: E731
        return func(*[unwrap(a) for a in args], **{k: unwrap(v) for k, v in (kwargs or {}).items()})


NAN, INF = float("nan"), float("inf")
KINDS: dict[str, Kind] = {
    # ---- dimensions and sizes
    "0-d": Kind(lambda: torch.tensor(1.5), DIMS, model=RaisesOrSkips()),
    "1-D": Kind(lambda: randn(5), DIMS, model=RaisesOrSkips()),
    "1-D numpy": Kind(lambda: np_randn(5), DIMS, stabilize=NOT_ARRAY, model=NOT_ARRAY),
    "zero-size 0x5": Kind(lambda: torch.empty(0, 5), NOOP, read=WORKS, model=RaisesOrSkips()),
    "zero-size 3x0x2": Kind(lambda: torch.empty(3, 0, 2), NOOP, read=WORKS, model=RaisesOrSkips()),
    "zero-size numpy": Kind(
        lambda: np.empty((4, 0), np.float32), NOOP, read=WORKS, stabilize=NOT_ARRAY, model=NOT_ARRAY
    ),
    # ---- non-finite values: rewiring refuses, statistics report them
    "NaN first row": Kind(with_value((0, 2), NAN), NONFINITE, read=WORKS, stabilize=WORKS),
    "NaN last row": Kind(with_value((5, 0), NAN), NONFINITE, read=WORKS, stabilize=WORKS),
    "NaN last column": Kind(with_value((3, 4), NAN), NONFINITE, read=WORKS, stabilize=WORKS),
    "NaN last element 4-D": Kind(with_value((3, 2, 2, 2), NAN, (4, 3, 3, 3)), NONFINITE, read=WORKS, stabilize=WORKS),
    "+Inf first row": Kind(with_value((0, 0), INF), NONFINITE, read=WORKS, stabilize=WORKS),
    "-Inf last row": Kind(with_value((5, 3), -INF), NONFINITE, read=WORKS, stabilize=WORKS),
    "+Inf last column": Kind(with_value((1, 4), INF), NONFINITE, read=WORKS, stabilize=WORKS),
    "-Inf last column float64": Kind(
        with_value((4, 4), -INF, dtype=torch.float64), NONFINITE, read=WORKS, stabilize=WORKS
    ),
    "NaN float16": Kind(with_value((5, 4), NAN, dtype=torch.float16), NONFINITE, read=WORKS, stabilize=WORKS),
    "+Inf bfloat16": Kind(with_value((0, 4), INF, dtype=torch.bfloat16), NONFINITE, read=WORKS, stabilize=WORKS),
    "NaN numpy": Kind(
        lambda: np.where(np.eye(6, 5, k=1) > 0, np.nan, np_randn(6, 5)).astype(np.float32),
        NONFINITE,
        read=WORKS,
        stabilize=NOT_ARRAY,
        model=NOT_ARRAY,
    ),
    "strengths overflow float64": Kind(
        lambda: torch.full((4, 5), 1.5e308, dtype=torch.float64),
        Raises(ValueError, "overflow float64"),
        read=WORKS,
        stabilize=WORKS,
    ),
    # ---- dtypes the kernels do not rewire
    "int64": Kind(lambda: torch.arange(30).reshape(6, 5), dtype_error("int64"), model=RaisesOrSkips()),
    "int8": Kind(lambda: torch.ones(6, 5, dtype=torch.int8), dtype_error("int8"), model=RaisesOrSkips()),
    "uint8": Kind(lambda: torch.ones(6, 5, dtype=torch.uint8), dtype_error("uint8"), model=RaisesOrSkips()),
    "bool": Kind(lambda: torch.ones(6, 5, dtype=torch.bool), dtype_error("bool"), model=RaisesOrSkips()),
    "complex64": Kind(
        lambda: torch.randn(6, 5, dtype=torch.complex64), dtype_error("complex64"), model=RaisesOrSkips()
    ),
    "complex128 conj view": Kind(
        lambda: torch.randn(6, 5, dtype=torch.complex128).conj(),
        dtype_error("complex128"),
        model=RaisesOrSkips(),
        capsule=False,
    ),
    "float8_e4m3fn": Kind(
        lambda: randn(6, 5).to(torch.float8_e4m3fn), dtype_error("float8_e4m3fn"), model=RaisesOrSkips()
    ),
    "float8_e5m2": Kind(lambda: randn(6, 5).to(torch.float8_e5m2), dtype_error("float8_e5m2"), model=RaisesOrSkips()),
    "numpy int32": Kind(
        lambda: np.arange(30, dtype=np.int32).reshape(6, 5), dtype_error("int32"), stabilize=NOT_ARRAY, model=NOT_ARRAY
    ),
    "numpy bool": Kind(lambda: np.ones((6, 5), bool), dtype_error("bool"), stabilize=NOT_ARRAY, model=NOT_ARRAY),
    "numpy complex128": Kind(
        lambda: np.ones((6, 5), np.complex128), dtype_error("complex128"), stabilize=NOT_ARRAY, model=NOT_ARRAY
    ),
    "numpy big-endian float32": Kind(
        lambda: np_randn(6, 5).astype(">f4"), dtype_error(">f4"), stabilize=NOT_ARRAY, model=NOT_ARRAY, capsule=False
    ),
    "numpy longdouble": Kind(
        lambda: np_randn(6, 5).astype(np.longdouble),
        dtype_error("float128|longdouble"),
        stabilize=NOT_ARRAY,
        model=NOT_ARRAY,
        capsule=False,
    ),
    "numpy object": Kind(
        lambda: np.full((6, 5), 1.0, dtype=object),
        dtype_error("object"),
        stabilize=NOT_ARRAY,
        model=NOT_ARRAY,
        capsule=False,
    ),
    # ---- devices and layouts
    "meta": Kind(
        lambda: torch.empty(6, 5, device="meta"), Raises(ValueError, "meta"), model=RaisesOrSkips(), capsule=False
    ),
    "sparse COO": Kind(
        lambda: randn(6, 5).to_sparse(),
        Raises(TypeError, "layout"),
        model=RaisesOrSkips("storage|layout|sparse"),
        capsule=False,
    ),
    "expanded (stride 0)": Kind(
        lambda: randn(1, 5).expand(6, 5),
        OVERLAP,
        read=WORKS,
        stabilize=OVERLAP,
        model=RaisesOrSkips("overlap|single memory location"),
    ),
    "as_strided overlapping": Kind(
        lambda: randn(15).as_strided((6, 5), (2, 1)),
        OVERLAP,
        read=WORKS,
        stabilize=OVERLAP,
        model=RaisesOrSkips("overlap|single memory location"),
    ),
    "numpy broadcast (read-only, stride 0)": Kind(
        lambda: np.broadcast_to(np_randn(1, 5), (6, 5)), READ_ONLY, read=WORKS, stabilize=NOT_ARRAY, model=NOT_ARRAY
    ),
    "numpy read-only": Kind(read_only, READ_ONLY, read=WORKS, stabilize=NOT_ARRAY, model=NOT_ARRAY),
    "numpy misaligned buffer": Kind(
        misaligned, Raises(ValueError, "not aligned"), stabilize=NOT_ARRAY, model=NOT_ARRAY
    ),
    "numpy reversed rows": Kind(lambda: np_randn(6, 5)[::-1], WORKS, stabilize=NOT_ARRAY, model=NOT_ARRAY),
    "numpy reversed columns": Kind(lambda: np_randn(6, 5)[:, ::-1], WORKS, stabilize=NOT_ARRAY, model=NOT_ARRAY),
    "numpy negative step 2": Kind(lambda: np_randn(6, 5)[::-1, ::-2], WORKS, stabilize=NOT_ARRAY, model=NOT_ARRAY),
    "torch columns step 2": Kind(lambda: randn(6, 5)[:, ::2], WORKS),
    "torch transposed": Kind(lambda: randn(5, 6).t(), WORKS),
    "torch rows step 2": Kind(lambda: randn(12, 5)[::2], WORKS),
    "torch channels_last": Kind(lambda: randn(4, 3, 2, 5).to(memory_format=torch.channels_last), WORKS),
    "torch negative view": Kind(lambda: randn(6, 5)._neg_view(), WORKS, capsule=False),
    "float16": Kind(lambda: randn(6, 5, dtype=torch.float16), WORKS),
    "bfloat16": Kind(lambda: randn(6, 5, dtype=torch.bfloat16), WORKS, reference_ok=False),
    "requires_grad leaf": Kind(lambda: nn.Parameter(randn(6, 5)), WORKS),
    "requires_grad non-leaf": Kind(non_leaf, WORKS, stabilize=WORKS),
    "inference tensor": Kind(inference, WORKS, stabilize=Raises(ValueError, "inference tensor.*clone")),
    "1xN": Kind(lambda: randn(1, 7), WORKS),
    "Nx1": Kind(lambda: randn(7, 1), WORKS),
    # ---- not arrays at all
    "list": Kind(lambda: [[1.0, 2.0], [3.0, 4.0]], NOT_ARRAY, read=Raises(TypeError, "list")),
    "None": Kind(lambda: None, NOT_ARRAY, read=Raises(TypeError, "NoneType")),
    "str": Kind(lambda: "weights", NOT_ARRAY, read=Raises(TypeError, "str")),
    "float": Kind(lambda: 1.5, NOT_ARRAY, read=Raises(TypeError, "float")),
    "dict": Kind(
        lambda: {"w": 1},
        Raises(TypeError, r"must be a torch\.Tensor|DLPack capsule"),
        read=Raises(TypeError, "dict"),
        model=RaisesOrSkips(),
    ),
    # ---- tensors without plain memory of their own (no DLPack export: no _C cell)
    "nested": Kind(nested, Raises(TypeError, "nested tensor"), model=RaisesOrSkips(), capsule=False),
    "sparse CSR": Kind(sparse_csr, Raises(TypeError, "layout torch.sparse_csr"), model=RaisesOrSkips(), capsule=False),
    "FakeTensor": Kind(fake, Raises(TypeError, "FakeTensor"), model=RaisesOrSkips(), capsule=False),
    "wrapper subclass": Kind(
        lambda: Wrapper(randn(6, 5)),
        Raises(TypeError, "Wrapper.*__torch_dispatch__"),
        model=RaisesOrSkips(),
        capsule=False,
        memory=lambda w: w.elem,
    ),
    "UninitializedParameter": Kind(
        nn.parameter.UninitializedParameter, Raises(ValueError, "uninitialised"), model=RaisesOrSkips(), capsule=False
    ),
}

# ------------------------------------------------------------- entry points


def capsule_of(w: Any) -> Any:
    if not isinstance(w, (torch.Tensor, np.ndarray)):
        return w
    try:
        return _bridge._capsule(w)
    except BufferError as exc:  # numpy < 2.1 cannot export read-only arrays at all
        if isinstance(w, np.ndarray) and not w.flags.writeable:
            pytest.skip(f"this numpy refuses to export it: {exc}")
        raise


WRITERS: dict[str, Callable[[Any], Any]] = {
    "pa_rewire_": lambda w: parewire.pa_rewire_(w, seed=SEED),
    "pa_rewire_(fast)": lambda w: parewire.pa_rewire_(w, seed=SEED, sampler="fast"),
    "PA_rewiring_np": lambda w: parewire.PA_rewiring_np(w, SEED),
    "PA_rewiring_torch": lambda w: parewire.PA_rewiring_torch(w, SEED),
    "rewiring_np": lambda w: parewire.rewiring_np(w, SEED),
    "rewiring_torch": lambda w: parewire.rewiring_torch(w, SEED),
    "_C.rewire": lambda w: _C.rewire(capsule_of(w), WORDS),
}
READERS = {
    "strength_stats": parewire.strength_stats,
    "_C.strength_stats": lambda w: _C.strength_stats(capsule_of(w)),
}
STABILIZERS = {
    "stabilize_strength_": lambda w: parewire.stabilize_strength_(w, nn.init.normal_, 3),
    "stabilize_strength": lambda w: parewire.stabilize_strength(nn.init.normal_, w, K=3),
}
ONE_PASS = {"rewiring_np", "rewiring_torch"}
PUBLIC = {  # how the public entry points' errors begin: "<function>: <parameter>"
    "pa_rewire_": "pa_rewire_: tensor",
    "pa_rewire_(fast)": "pa_rewire_: tensor",
    **{name: f"{name}: weights" for name in ("PA_rewiring_np", "PA_rewiring_torch", "rewiring_np", "rewiring_torch")},
    "strength_stats": "strength_stats: tensor",
    "stabilize_strength_": "stabilize_strength_: tensor",
    "stabilize_strength": "stabilize_strength: weights",
}


def expectation(kind: Kind, entry: str) -> Any:
    if entry in WRITERS:
        return kind.write
    if entry in READERS:
        return kind.write if kind.read is None else kind.read
    if entry in STABILIZERS:
        return kind.write if kind.stabilize is None else kind.stabilize
    return kind.write if kind.model is None else kind.model


CALL = {
    **WRITERS,
    **READERS,
    **STABILIZERS,
    "rewire_model": lambda w: parewire.rewire_model(linear_holding(w), seed=SEED),
}


def cells():
    for kname, kind in KINDS.items():
        for entry in CALL:
            if entry.startswith("_C") and not kind.capsule:
                continue
            yield pytest.param(kname, entry, id=f"{kname}-{entry}")


# ----------------------------------------------------------------- checking


def logical(w: Any) -> np.ndarray:
    """The values as the caller sees them, as a numpy array (float32 for bfloat16)."""
    if isinstance(w, torch.Tensor):
        t = w.detach().resolve_neg().resolve_conj()
        if t.dtype == torch.bfloat16:
            t = t.float()
        values: np.ndarray = t.numpy().copy()
        return values
    return np.array(w, copy=True)


def rewirable_dtype(w: Any) -> bool:
    if isinstance(w, torch.Tensor):
        plain = type(w) in (torch.Tensor, nn.Parameter) and not w.is_nested
        return plain and w.dtype in _bridge.TORCH_DTYPES and not w.is_meta and w.layout == torch.strided
    return isinstance(w, np.ndarray) and w.dtype in _bridge.NUMPY_DTYPES


def expected_rewire(before: np.ndarray, entry: str) -> np.ndarray:
    if entry in ONE_PASS:
        out: np.ndarray = before.copy()
        reference.rewire_pass(out.reshape(out.shape[0], -1), SEED)
        return out
    return reference.pa_rewire(before, SEED)


def check_works(entry: str, kind: Kind, w: Any, before_values: np.ndarray | None, result: Any) -> None:
    after = logical(w)
    if entry in WRITERS or entry == "rewire_model":
        assert before_values is not None, "a call that rewires was given a rewirable dtype"
        if entry in WRITERS and not entry.startswith("_C"):
            assert result is w, "the in-place functions return their argument"
        np.testing.assert_array_equal(np.sort(bits(after).ravel()), np.sort(bits(before_values).ravel()))
        if entry in WRITERS and entry != "pa_rewire_(fast)" and kind.reference_ok:
            np.testing.assert_array_equal(bits(after), bits(expected_rewire(before_values, entry)))
    elif entry in READERS:
        assert before_values is not None, "a call that reads was given a readable dtype"
        v = before_values.astype(np.float64).reshape(before_values.shape[0], int(np.prod(before_values.shape[1:])))
        rows, cols = v.sum(axis=1), v.sum(axis=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            want = (
                v.shape[0],
                v.shape[1],
                rows.mean() if rows.size else np.nan,
                rows.var(ddof=1) if rows.size > 1 else np.nan,
                cols.mean() if cols.size else np.nan,
                cols.var(ddof=1) if cols.size > 1 else np.nan,
            )
        got = tuple(result)
        assert got[:2] == want[:2]
        np.testing.assert_allclose(np.array(got[2:], float), np.array(want[2:], float), rtol=1e-9, atol=1e-9)
    elif entry in STABILIZERS:
        assert result is w
        assert torch.isfinite(w).all(), "the initializer's candidates replace the old values"


@pytest.mark.parametrize("kname,entry", list(cells()))
def test_bad_input_matrix(kname, entry):
    kind = KINDS[kname]
    w = kind.make()
    snapshot = storage_bytes(kind.memory(w))
    before_values = logical(w) if rewirable_dtype(w) else None
    exp = expectation(kind, entry)
    call = CALL[entry]
    requires_grad = w.requires_grad if isinstance(w, torch.Tensor) else None

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the zero-element warning
        if isinstance(exp, Raises):
            with pytest.raises(exp.exc, match=exp.match) as raised:
                call(w)
            if entry in PUBLIC:  # says which function and which of its parameters
                assert str(raised.value).startswith(PUBLIC[entry]), str(raised.value)
            unchanged = True
        elif isinstance(exp, RaisesOrSkips):
            try:
                call(w)
            except (ValueError, TypeError, RuntimeError) as e:
                assert exp.match == "" or __import__("re").search(exp.match, str(e)), str(e)
            unchanged = True
        else:
            result = call(w)
            unchanged = isinstance(exp, NoOp)
            if isinstance(exp, Works):
                check_works(entry, kind, w, before_values, result)
                unchanged = entry in READERS

    if unchanged and snapshot is not None:
        assert storage_bytes(kind.memory(w)) == snapshot, "the caller's memory changed"
    if requires_grad is not None:
        assert w.requires_grad == requires_grad


# ------------------------------------- inside torch.func transforms, DTensor

PUBLIC_CALLS = {name: CALL[name] for name in PUBLIC}


@pytest.mark.parametrize("transform", ["vmap", "grad"])
@pytest.mark.parametrize("entry", list(PUBLIC_CALLS))
def test_tensors_inside_func_transforms_are_refused_by_name(entry, transform):
    """Before: "Cannot access data pointer of Tensor that doesn't have storage"."""
    func = pytest.importorskip("torch.func")
    w = randn(3, 6, 5) if transform == "vmap" else randn(6, 5)
    snap = storage_bytes(w)

    def body(x):
        PUBLIC_CALLS[entry](x)
        return x.sum()

    with pytest.raises(TypeError, match=r"torch\.func transform .*outside the transform") as raised:
        (func.vmap(body) if transform == "vmap" else func.grad(body))(w)
    assert str(raised.value).startswith(PUBLIC[entry])
    assert storage_bytes(w) == snap


@pytest.fixture
def one_rank_mesh():
    dist = pytest.importorskip("torch.distributed")
    if not dist.is_available() or dist.is_initialized():
        pytest.skip("needs torch.distributed, not already initialised")
    try:
        from torch.distributed.device_mesh import init_device_mesh
    except ImportError:
        pytest.skip("this torch has no DeviceMesh")
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        yield init_device_mesh("cpu", (1,))
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("entry", list(PUBLIC_CALLS))
def test_dtensors_are_refused_with_a_pointer_to_rewire_model(entry, one_rank_mesh):
    try:
        from torch.distributed.tensor import Shard, distribute_tensor
    except ImportError:  # torch < 2.4: private there, and not re-exported in newer torch's stubs
        from torch.distributed._tensor import Shard, distribute_tensor  # type: ignore[attr-defined]
    local = randn(6, 5)
    snap = storage_bytes(local)
    d = distribute_tensor(local.clone(), one_rank_mesh, [Shard(0)])
    before = d.to_local().clone()
    with pytest.raises(TypeError, match=r"DTensor.*rewire_model\(\.\.\., group=\.\.\.\)") as raised:
        PUBLIC_CALLS[entry](d)
    assert str(raised.value).startswith(PUBLIC[entry])
    assert torch.equal(d.to_local(), before) and storage_bytes(local) == snap


# ------------------------------------------------------ capsule-only kinds


def buf(n=64, dtype=np.float32):
    return np.random.default_rng(n).standard_normal(n).astype(dtype)


CAPSULES: dict[str, tuple[dict[str, Any], object, object]] = {
    # name: (fabricate kwargs, rewire expectation, stats expectation)
    "wrong capsule name": (dict(shape=(4, 4), name=b"not_a_tensor"), Raises(ValueError, "not a DLPack capsule"), None),
    "NULL shape": (dict(shape=(4, 4), null_shape=True), Raises(ValueError, "no shape"), None),
    "NULL data": (dict(shape=(4, 4), data=0), Raises(ValueError, "NULL data"), None),
    "NULL data, empty": (dict(shape=(0, 4), data=0), NOOP, WORKS),
    "negative extent": (dict(shape=(4, -4)), Raises(ValueError, "negative extent"), None),
    "ndim 0": (dict(shape=(4,), ndim=0), DIMS, None),
    "ndim 1": (dict(shape=(16,)), DIMS, None),
    "ndim 65": (dict(shape=(1,) * 65), DIMS, None),
    "lanes 2": (dict(shape=(4, 4), dtype=(cap.FLOAT, 32, 2)), Raises(TypeError, "float32x2"), None),
    "int32": (dict(shape=(4, 4), dtype=(cap.INT, 32, 1)), Raises(TypeError, "int32"), None),
    "bool": (dict(shape=(4, 4), dtype=(cap.BOOL, 8, 1)), Raises(TypeError, "bool"), None),
    "float8 code": (dict(shape=(4, 4), dtype=(10, 8, 1)), Raises(TypeError, "float8_e4m3fn"), None),
    "unknown code": (dict(shape=(4, 4), dtype=(99, 32, 1)), Raises(TypeError, "type code 99"), None),
    "float 24 bits": (dict(shape=(4, 4), dtype=(cap.FLOAT, 24, 1)), Raises(TypeError, "float24"), None),
    "CUDA device": (dict(shape=(4, 4), device=cap.CUDA), Raises(ValueError, "not in CPU memory"), None),
    "DLPack 2.0": (dict(shape=(4, 4), versioned=True, version=(2, 0)), Raises(ValueError, "major version 2"), None),
    "versioned read-only": (dict(shape=(4, 4), versioned=True, flags=cap.READ_ONLY), READ_ONLY, WORKS),
    "misaligned byte_offset": (dict(shape=(4, 4), byte_offset=2), Raises(ValueError, "not aligned"), None),
    "strides NULL, byte_offset 16": (dict(shape=(3, 4), byte_offset=16), WORKS, WORKS),
    "versioned, strides given": (dict(shape=(4, 3), strides=(3, 1), versioned=True), WORKS, WORKS),
    "overlapping strides": (dict(shape=(4, 4), strides=(1, 1)), OVERLAP, WORKS),
    "shape product overflows int64": (dict(shape=(2**32, 2**32), data=16), Raises(ValueError, "overflow"), None),
    "bytes overflow int64": (dict(shape=(2**62, 4), data=16), Raises(ValueError, "overflow"), None),
    "stride span overflows": (dict(shape=(2, 3), strides=(2**62, 1), data=16), Raises(ValueError, "overflow"), None),
    "stride INT64_MIN": (dict(shape=(2, 3), strides=(-(2**63), 1), data=16), Raises(ValueError, "overflow"), None),
    "columns beyond 2**32-1": (
        dict(shape=(2, 2**32), strides=(2**32, 1), data=16),
        Raises(ValueError, r"2\*\*32 - 1"),
        "skip",
    ),
    "rows beyond 2**32-1": (
        dict(shape=(2**32, 2), strides=(2, 1), data=16),
        Raises(ValueError, r"2\*\*32 - 1"),
        "skip",
    ),
}


@pytest.mark.parametrize("entry", ["_C.rewire", "_C.strength_stats"])
@pytest.mark.parametrize("name", list(CAPSULES))
def test_fabricated_capsules(name, entry):
    """Capsules no real producer makes.  Addresses like ``data=16`` are never
    dereferenced: the checks must refuse the capsule before touching memory."""
    kwargs, on_rewire, on_stats = CAPSULES[name]
    exp = on_rewire if entry == "_C.rewire" else (on_stats or on_rewire)
    if exp == "skip":
        pytest.skip("reading a lying capsule: the statistics have no row/column limit")
    kwargs = dict(kwargs)
    memory = buf(64)
    kwargs.setdefault("data", memory)
    snap = memory.tobytes()
    fab = cap.fabricate(**kwargs)
    call = (lambda c: _C.rewire(c, WORDS)) if entry == "_C.rewire" else _C.strength_stats
    if isinstance(exp, Raises):
        with pytest.raises(exp.exc, match=exp.match):
            call(fab.capsule)
        assert fab.deleted <= 1
        if fab.deleted == 0:  # refused before taking ownership: the capsule is still usable
            assert not name.startswith("strides NULL")
    else:
        call(fab.capsule)
        assert fab.deleted == 1, "the consumer calls the deleter exactly once"
        with pytest.raises(ValueError, match="already consumed"):
            call(fab.capsule)
        assert fab.deleted == 1
    if not (isinstance(exp, Works) and entry == "_C.rewire"):
        assert memory.tobytes() == snap


def test_fabricated_capsule_with_offset_rewires_the_right_elements():
    memory = buf(64)
    before = memory.copy()
    fab = cap.fabricate(shape=(3, 4), data=memory, byte_offset=16)
    _C.rewire(fab.capsule, WORDS)
    expect = reference.pa_rewire(before[4:16].reshape(3, 4), SEED)
    np.testing.assert_array_equal(memory[4:16].reshape(3, 4), expect)
    np.testing.assert_array_equal(memory[:4], before[:4])
    np.testing.assert_array_equal(memory[16:], before[16:])


def test_consumed_and_foreign_capsules():
    c = torch.randn(3, 3).__dlpack__()
    _C.strength_stats(c)
    for f in (lambda: _C.rewire(c, WORDS), lambda: _C.strength_stats(c)):
        with pytest.raises(ValueError, match="already consumed"):
            f()
    for obj in (torch.randn(3, 3), np.zeros((3, 3)), object(), None, b"dltensor"):
        with pytest.raises(TypeError, match="expected a DLPack capsule"):
            _C.rewire(obj, WORDS)
        with pytest.raises(TypeError, match="expected a DLPack capsule"):
            _C.strength_stats(obj)


# ------------------------------------------------------------------ CUDA

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@cuda
@pytest.mark.parametrize("entry", ["pa_rewire_", "PA_rewiring_np", "rewiring_torch"])
def test_cuda_tensors_rewire_like_cpu_and_bad_ones_stay_untouched(entry):
    call = {
        "pa_rewire_": lambda w: parewire.pa_rewire_(w, seed=SEED),
        "PA_rewiring_np": lambda w: parewire.PA_rewiring_np(w, SEED),
        "rewiring_torch": lambda w: parewire.rewiring_torch(w, SEED),
    }[entry]
    cpu = randn(9, 7)
    dev = cpu.cuda()
    ident = dev.data_ptr()
    call(cpu)
    assert call(dev) is dev and dev.data_ptr() == ident and dev.is_cuda
    np.testing.assert_array_equal(bits(dev), bits(cpu))
    bad = with_value((8, 6), NAN)().cuda()
    snap = bad.clone()
    with pytest.raises(ValueError, match="NaN or infinite"):
        call(bad)
    assert torch.equal(bad.isnan(), snap.isnan()) and torch.equal(bad.nan_to_num(), snap.nan_to_num())
    with pytest.raises(TypeError, match="int64"):
        call(torch.ones(3, 3, dtype=torch.int64, device="cuda"))
