"""Both samplers draw successive sampling without replacement (Plackett-Luce).

A 2-row matrix and a single row pass expose one weighted permutation: row 0
fixes the strength and so the weights P = row0 + |min row0| + 1; row 1 holds
0, 1, ..., C-1, so after the pass the column holding value j is the j-th
drawn target.  Each call continues the PCG64 stream returned by the previous
one, so the draws are independent.  For C <= 4 every permutation is counted
and compared with its exact probability

    P(pi) = prod_k P[pi_k] / (1 - sum_{j<k} P[pi_j])

by a chi-square test with fixed seeds (deterministic; a biased sampler, e.g.
one that broke key ties by column order or drew the first target uniformly,
fails it by hundreds of standard deviations at these sample sizes).
"""

import math

import numpy as np
import pytest
from _helpers import bits
from _stats import goodness_of_fit_p, plackett_luce
from scipy import stats

import parewire
from parewire import _C, reference
from parewire.seeding import seed_words

SAMPLERS = {"numpy": _C.SAMPLER_NUMPY, "fast": _C.SAMPLER_FAST}
DRAWS = 100_000


def draw_permutations(row0, sampler, seed, n):
    """n weighted permutations from one stream, with weights row0 + |min row0| + 1."""
    c = len(row0)
    w = np.zeros((2, c), dtype=np.float64)
    w[0] = row0
    ranks = np.arange(c, dtype=np.float64)
    words = seed_words(seed)
    code = SAMPLERS[sampler]
    counts: dict[tuple[int, ...], int] = {}
    for _ in range(n):
        w[1] = ranks
        words = _C.rewire(w.__dlpack__(), words, passes=1, sampler=code)
        perm = tuple(np.argsort(w[1]).tolist())  # column of value j = j-th target
        counts[perm] = counts.get(perm, 0) + 1
    np.testing.assert_array_equal(w[0], row0)  # row 0 never moves
    return counts


# row 0 of the matrix; P = row0 + |min(row0)| + 1 (float64)
WEIGHT_CASES = {
    "c2": [0.0, 2.5],  # P = (1, 3.5)
    "c3": [1.0, -1.0, 4.0],  # P = (3, 1, 6)
    "c4": [0.0, 1.0, 3.0, -2.0],  # P = (3, 4, 6, 1)
    "c4_ties": [2.0, 0.0, 2.0, 0.0],  # P = (3, 1, 3, 1): equal weights must not favour low columns
    "c4_skewed": [30.0, 0.0, 5.0, 1.0],  # P = (31, 1, 6, 2)
}


@pytest.mark.parametrize("sampler", ["fast", "numpy"])
@pytest.mark.parametrize("case", sorted(WEIGHT_CASES))
def test_permutations_follow_plackett_luce(sampler, case):
    row0 = WEIGHT_CASES[case]
    seed = 20240 + sorted(WEIGHT_CASES).index(case) + (7 if sampler == "fast" else 0)
    counts = draw_permutations(row0, sampler, seed, DRAWS)
    p = np.asarray(row0) + abs(min(row0)) + 1
    assert goodness_of_fit_p(counts, dict(plackett_luce(p))) > 1e-4
    # the first target alone: a sharper check of the leading weight
    first = np.zeros(len(row0))
    for perm, k in counts.items():
        first[perm[0]] += k
    assert stats.chisquare(first, p / p.sum() * DRAWS).pvalue > 1e-4


def test_chi_square_detects_a_biased_sampler():
    """The test has teeth: uniform permutations fail the c4 case."""
    rng = np.random.default_rng(5)
    counts: dict[tuple[int, ...], int] = {}
    for _ in range(DRAWS):
        perm = tuple(rng.permutation(4).tolist())
        counts[perm] = counts.get(perm, 0) + 1
    p = np.asarray(WEIGHT_CASES["c4"]) + 3
    assert goodness_of_fit_p(counts, dict(plackett_luce(p))) < 1e-10


def test_fast_sampler_handles_huge_weight_ratios():
    """Weights near the float64 range must not underflow keys into ties."""
    row0 = [0.0, 1e300, 1e300, 0.0]  # P = (1, 1e300+1, 1e300+1, 1)
    counts = draw_permutations(row0, "fast", 99, 20_000)
    # columns 1 and 2 come first, in either order with equal chance;
    # then 0 and 3 with equal chance
    firsts: dict[tuple[int, int], int] = {}
    for perm, k in counts.items():
        assert set(perm[:2]) == {1, 2}
        firsts[(perm[0], perm[2])] = firsts.get((perm[0], perm[2]), 0) + k
    assert len(firsts) == 4
    assert stats.chisquare(list(firsts.values())).pvalue > 1e-4


@pytest.mark.parametrize("sampler", ["fast", "numpy"])
def test_long_rows_keep_leading_marginal(sampler):
    """On a long row the first target still has probability P_i / sum(P).

    Column weights 1 (half of the columns) and 4 (the other half): the first
    target lands in the heavy half with probability 4/5.
    """
    c = 600
    row0 = np.where(np.arange(c) % 2 == 0, 3.0, 0.0)  # P = 4 or 1
    w = np.zeros((2, c))
    words = seed_words(31 + (sampler == "fast"))
    heavy = 0
    n = 4000
    for _ in range(n):
        w[0] = row0
        w[1] = np.arange(c)
        words = _C.rewire(w.__dlpack__(), words, passes=1, sampler=SAMPLERS[sampler])
        heavy += int(np.argmin(w[1]) % 2 == 0)
    expected = 0.8 * n
    sd = math.sqrt(n * 0.8 * 0.2)
    assert abs(heavy - expected) < 4.5 * sd


def test_fast_sampler_is_deterministic_and_a_permutation():
    w = np.random.default_rng(0).standard_normal((50, 70)).astype(np.float32)
    a, b = w.copy(), w.copy()
    parewire.pa_rewire_(a, seed=5, sampler="fast")
    parewire.pa_rewire_(b, seed=5, sampler="fast")
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.sort(a, axis=None), np.sort(w, axis=None))
    assert not np.array_equal(a, w)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cols", [40, 300, 1100])
@pytest.mark.parametrize("kind", ["near_equal", "quantised", "signed_zeros"])
def test_value_sorts_with_shared_prefixes_match_reference(dtype, cols, kind):
    """Rows whose values share their top bits exercise the kernels' sort
    fallbacks (prefix radix + insertion, then a full radix sort when the
    insertion budget runs out); the result must still be the reference's."""
    rng = np.random.default_rng(cols)
    shape = (5, cols)
    if kind == "near_equal":  # 1 + k ulp: identical top bits, distinct values
        w = (np.full(shape, 1, dtype) + rng.integers(0, 4000, shape) * np.finfo(dtype).eps).astype(dtype)
    elif kind == "quantised":
        w = rng.integers(-3, 4, shape).astype(dtype) / 4
    else:
        w = np.where(rng.random(shape) < 0.5, -0.0, 0.0).astype(dtype)
        w[:, ::7] = rng.standard_normal(w[:, ::7].shape)
    expected = reference.pa_rewire(w, 7)
    got = w.copy()
    parewire.pa_rewire_(got, seed=7, sampler="numpy")
    if kind == "signed_zeros":
        # np.sort treats -0.0 and 0.0 as equal and may keep either first;
        # the kernels order them by bits.  Same values, same multiset of bits.
        np.testing.assert_array_equal(got, expected)
        np.testing.assert_array_equal(np.sort(bits(got), axis=None), np.sort(bits(w), axis=None))
    else:
        np.testing.assert_array_equal(bits(got), bits(expected))


@pytest.mark.parametrize("ratio", [1.5, 4.0, 20.0, 200.0])
def test_two_columns_first_target_probability(ratio):
    """With two columns the first target is column 1 with probability
    r / (1 + r) for weight ratio r: this pins the exponential keys' law
    (a wrong ziggurat table or tail shows up as a bias at some ratio)."""
    n = 20_000
    counts = draw_permutations([0.0, ratio - 1.0], "fast", int(ratio * 10), n)
    first1 = counts.get((1, 0), 0)
    p = ratio / (1 + ratio)
    assert abs(first1 - n * p) < 4.5 * math.sqrt(n * p * (1 - p))


def test_fast_sampler_keys_far_below_the_largest_are_still_ordered_exactly():
    """Weights 1e30 next to weights 1: the heavy columns' keys lie far more
    than 63 octaves below the largest key, share the sort prefix 0 and are
    ordered by the full-key fallback; they must come first, in uniformly
    random order."""
    c = 48
    heavy = np.arange(0, c, 2)
    row0 = np.zeros(c)
    row0[heavy] = 1e30
    w = np.zeros((2, c))
    words = seed_words(123)
    firsts = np.zeros(len(heavy))
    n = 6000
    for _ in range(n):
        w[0] = row0
        w[1] = np.arange(c)
        words = _C.rewire(w.__dlpack__(), words, passes=1, sampler=_C.SAMPLER_FAST)
        order = np.argsort(w[1])
        assert set(order[: len(heavy)].tolist()) == set(heavy.tolist())
        firsts[order[0] // 2] += 1
    assert stats.chisquare(firsts).pvalue > 1e-4


@pytest.mark.parametrize("seed", [3, 4])
def test_numpy_sampler_matches_reference_when_remaining_mass_is_tiny(seed):
    """Columns of weight ~1e300 beside columns of weight 1: once the heavy
    ones are drawn, a round's remaining probability mass is ~1e-300 and the
    numpy sampler switches to its normalised path; still the reference's
    result bit for bit."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((4, 30))
    w[0, rng.permutation(30)[:12]] = 1e300
    expected = reference.pa_rewire(w, seed)
    got = w.copy()
    parewire.pa_rewire_(got, seed=seed, sampler="numpy")
    np.testing.assert_array_equal(bits(got), bits(expected))
