import pathlib

import numpy as np
import pytest

DATA = pathlib.Path(__file__).parent / "data"


def load_fixture(name):
    with np.load(DATA / name) as d:
        return {k: d[k] for k in d.files}


REWIRING_FIXTURES = sorted(p.name for p in DATA.glob("*.npz") if not p.name.startswith("stabilize_"))
STABILIZE_FIXTURES = sorted(p.name for p in DATA.glob("stabilize_*.npz"))


def bits(a):
    """The raw bit patterns of a float array or tensor, for bit-for-bit equality."""
    import torch

    if isinstance(a, torch.Tensor):
        a = a.detach().cpu()
        if a.dtype == torch.bfloat16:
            return a.view(torch.int16).numpy().copy()
        a = a.numpy()
    a = np.ascontiguousarray(a)
    return a.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize])


@pytest.fixture
def assert_bits_equal():
    def check(a, b):
        np.testing.assert_array_equal(bits(a), bits(b))

    return check
