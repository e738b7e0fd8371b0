"""Types of parewire._C, the C extension (csrc/binding): see its docstrings."""

from typing import Final, Literal, final, overload

# PCG64 state as four 64-bit words: (state_hi, state_lo, inc_hi, inc_lo).
_SeedWords = tuple[int, int, int, int]
# rows, cols, row_mean, row_var, col_mean, col_var
_Stats = tuple[int, int, float, float, float, float]
# the same, then the row sums and the column sums as native float64 bytes
_StatsWithSums = tuple[int, int, float, float, float, float, bytes, bytes]

SAMPLER_NUMPY: Final = 0
SAMPLER_FAST: Final = 1
MAX_NDIM: Final = 64
INTERRUPT_THRESHOLD: Final = 262144
THREADS_MIN_NUMEL: Final = 32768

@final
class CancelFlag:
    """A cancellation request that kernels read between rows; stays set."""

    def __init__(self) -> None: ...
    def set(self) -> None: ...
    def is_set(self) -> bool: ...

def rewire(
    capsule: object,
    seed: _SeedWords,
    passes: int = 2,
    sampler: int = 0,
    reseed: bool = True,
    *,
    cancel: CancelFlag | None = None,
    threads: int = 1,
) -> _SeedWords: ...
@overload
def strength_stats(capsule: object, sums: Literal[False] = False) -> _Stats: ...
@overload
def strength_stats(capsule: object, sums: Literal[True]) -> _StatsWithSums: ...
@overload
def strength_stats(capsule: object, sums: bool) -> _Stats | _StatsWithSums: ...
def simd_variant(name: str | None = None) -> str: ...
def simd_variants() -> tuple[str, ...]: ...
