/* Tensor layout: validation, and moving elements between a strided tensor
 * and contiguous scratch.  Elements are moved as raw 2/4/8-byte words. */
#if defined(__linux__) && !defined(_DEFAULT_SOURCE)
#define _DEFAULT_SOURCE /* madvise */
#endif
#include <stddef.h>
#include <stdlib.h>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "internal.h"

size_t pw_dtype_size(pw_dtype dtype)
{
    switch (dtype) {
    case PW_FLOAT32: return 4;
    case PW_FLOAT64: return 8;
    case PW_FLOAT16:
    case PW_BFLOAT16: return 2;
    }
    return 0;
}

/* a * b for a, b >= 0; 1 if the product exceeds INT64_MAX. */
static int mul_overflows(int64_t a, int64_t b, int64_t *out)
{
    if (a != 0 && b > INT64_MAX / a)
        return 1;
    *out = a * b;
    return 0;
}

void *pw_alloc(int64_t count, size_t size)
{
    /* every scratch allocation of the kernels comes through here, so no
     * size product can wrap around */
    if (count <= 0 || size == 0 || (uint64_t)count > (uint64_t)PTRDIFF_MAX / size)
        return NULL;
    return malloc((size_t)count * size);
}

void *pw_alloc_large(int64_t count, size_t size)
{
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    /* A large scratch copy is touched first by the gather: 2 MiB pages
     * take 512 times fewer faults there and fewer TLB misses in the
     * strided column pass.  Linux maps them on request (MADV_HUGEPAGE)
     * for aligned ranges; without transparent huge pages nothing changes. */
    const size_t huge = (size_t)1 << 21;
    if (count > 0 && size > 0 && (uint64_t)count <= ((uint64_t)PTRDIFF_MAX - huge) / size &&
        (size_t)count * size >= PW_HUGE_SCRATCH_MIN) {
        const size_t bytes = ((size_t)count * size + huge - 1) & ~(huge - 1);
        void *p = aligned_alloc(huge, bytes);
        if (p)
            madvise(p, bytes, MADV_HUGEPAGE); /* advice only: failure is harmless */
        return p;
    }
#endif
    return pw_alloc(count, size);
}

static int64_t gcd64(int64_t a, int64_t b)
{
    while (b != 0) {
        const int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static int64_t floor_div(int64_t a, int64_t b) /* b > 0 */
{
    const int64_t q = a / b;
    return q - (a % b != 0 && a < 0);
}

/* Dimensions of extent >= 2, |stride| > 0, ordered by decreasing stride. */
typedef struct {
    int k;
    int64_t stride[PW_MAX_NDIM], most[PW_MAX_NDIM]; /* most = extent - 1 */
    int64_t below[PW_MAX_NDIM + 1];                 /* below[j]: farthest offset dims j.. reach */
} pw_dims;

/* Work limit of the exact search for three or more interleaved dimensions;
 * beyond it the view is refused as overlapping (conservative). */
#define PW_OVERLAP_SEARCH_MAX 65536

/* Is there d != 0 with |d_j| <= most[j] and sum d_j stride[j] = 0 for the
 * dims from j on, given the partial sum `sum` of the dims before j
 * (`nonzero`: some d before j was not 0)?  *budget counts search nodes. */
static int collides(const pw_dims *g, int j, int64_t sum, int nonzero, int64_t *budget)
{
    if (--*budget < 0)
        return 1;
    if (j == g->k - 2 && sum == 0 && !nonzero) {
        /* two dims left, nothing chosen yet: d_a a = -d_b b has a solution
         * besides 0 iff b/gcd <= most_a and a/gcd <= most_b */
        const int64_t a = g->stride[j], b = g->stride[j + 1], gd = gcd64(a, b);
        return b / gd <= g->most[j] && a / gd <= g->most[j + 1];
    }
    if (j == g->k - 1) {
        /* the last dim must cancel the sum exactly */
        const int64_t s = g->stride[j];
        if (sum % s != 0)
            return 0;
        const int64_t d = sum / s;
        return (d != 0 || nonzero) && d <= g->most[j] && d >= -g->most[j];
    }
    /* |sum + d s| <= below[j + 1], or the dims after j cannot cancel it */
    const int64_t s = g->stride[j], reach = g->below[j + 1];
    int64_t lo = -floor_div(reach + sum, s), hi = floor_div(reach - sum, s);
    lo = lo < -g->most[j] ? -g->most[j] : lo;
    hi = hi > g->most[j] ? g->most[j] : hi;
    if (!nonzero && lo < 0)
        lo = 0; /* d and -d collide alike: the first non-zero d is positive */
    for (int64_t d = lo; d <= hi; d++)
        if (collides(g, j + 1, sum + d * s, nonzero || d != 0, budget))
            return 1;
    return 0;
}

/* Whether distinct indices of t (non-empty, span checked) share an address.
 * Exact for up to two dimensions of extent >= 2 (a closed form) and, by a
 * pruned search, for more unless that search exceeds PW_OVERLAP_SEARCH_MAX
 * steps: then the answer is a conservative "overlaps". */
static int overlaps(const pw_tensor *t)
{
    pw_dims g;
    g.k = 0;
    for (int d = 0; d < t->ndim; d++) {
        if (t->shape[d] < 2)
            continue;
        const int64_t s = t->strides[d] < 0 ? -t->strides[d] : t->strides[d];
        if (s == 0)
            return 1;
        int j = g.k++;
        while (j > 0 && g.stride[j - 1] < s) {
            g.stride[j] = g.stride[j - 1];
            g.most[j] = g.most[j - 1];
            j--;
        }
        g.stride[j] = s;
        g.most[j] = t->shape[d] - 1;
    }
    if (g.k < 2)
        return 0;
    /* reach of the lower dims (<= the span checked before: no overflow);
     * the usual case, each stride beyond everything below it, is settled
     * here without a search */
    int chain = 1;
    g.below[g.k] = 0;
    for (int j = g.k - 1; j >= 0; j--) {
        chain &= g.stride[j] > g.below[j + 1];
        g.below[j] = g.below[j + 1] + g.stride[j] * g.most[j];
    }
    if (chain)
        return 0;
    int64_t budget = PW_OVERLAP_SEARCH_MAX;
    return collides(&g, 0, 0, 0, &budget);
}

pw_status pw_check_tensor(const pw_tensor *t, int writable, int64_t *rows, int64_t *cols)
{
    const size_t es = pw_dtype_size(t->dtype);
    if (es == 0)
        return PW_ERR_ARGUMENT;
    if (t->ndim < 2 || t->ndim > PW_MAX_NDIM)
        return PW_ERR_SHAPE;
    int64_t c = 1, span = 0;
    int any_zero = 0;
    for (int d = 0; d < t->ndim; d++) {
        if (t->shape[d] < 0)
            return PW_ERR_SHAPE;
        if (t->shape[d] == 0)
            any_zero = 1;
    }
    for (int d = 1; d < t->ndim; d++)
        if (mul_overflows(c, t->shape[d], &c))
            return PW_ERR_SHAPE;
    int64_t numel;
    if (mul_overflows(t->shape[0], c, &numel) || numel > INT64_MAX / (int64_t)es ||
        (uint64_t)numel * es > (uint64_t)SIZE_MAX)
        return PW_ERR_SHAPE;
    if (!any_zero) {
        /* the farthest element must be addressable in bytes */
        for (int d = 0; d < t->ndim; d++) {
            int64_t s = t->strides[d];
            if (s == INT64_MIN)
                return PW_ERR_SHAPE;
            int64_t reach;
            if (mul_overflows(t->shape[d] - 1, s < 0 ? -s : s, &reach) || reach > INT64_MAX - span)
                return PW_ERR_SHAPE;
            span += reach;
        }
        if (span > INT64_MAX / (int64_t)es)
            return PW_ERR_SHAPE;
        if (writable && overlaps(t))
            return PW_ERR_OVERLAP;
    }
    *rows = t->shape[0];
    *cols = c;
    return PW_OK;
}

pw_status pw_view_init(pw_view *v, const pw_tensor *t, int writable)
{
    const pw_status s = pw_check_tensor(t, writable, &v->rows, &v->cols);
    v->tensor = *t;
    v->writable = s == PW_OK && writable;
    return s;
}

#define PW_BLOCK 32

#define PW_COPY2D_BODY(T)                                                       \
    {                                                                           \
        T *d = (T *)dst;                                                        \
        const T *s = (const T *)src;                                            \
        if (dcs == 1 && scs == 1) {                                             \
            for (int64_t r = 0; r < rows; r++)                                  \
                memcpy(d + r * drs, s + r * srs, (size_t)cols * sizeof(T));     \
            return;                                                             \
        }                                                                       \
        for (int64_t r0 = 0; r0 < rows; r0 += PW_BLOCK) {                       \
            const int64_t r1 = r0 + PW_BLOCK < rows ? r0 + PW_BLOCK : rows;     \
            for (int64_t c0 = 0; c0 < cols; c0 += PW_BLOCK) {                   \
                const int64_t c1 = c0 + PW_BLOCK < cols ? c0 + PW_BLOCK : cols; \
                for (int64_t r = r0; r < r1; r++)                               \
                    for (int64_t c = c0; c < c1; c++)                           \
                        d[r * drs + c * dcs] = s[r * srs + c * scs];            \
            }                                                                   \
        }                                                                       \
        return;                                                                 \
    }

#if !defined(PW_NO_SIMD) && (defined(__SSE2__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2))
#include <emmintrin.h>
#define PW_HAVE_SSE2 1

/* out[i * ldo + j] = in[j * ldi + i] for 4-byte elements: 4x4 blocks
 * transposed in registers (a pure copy of bits, so identical to the scalar
 * loop), inside 32x32 blocks that stay in L1. */
static void transpose_u32(uint32_t *out, int64_t ldo, const uint32_t *in, int64_t ldi, int64_t ni, int64_t nj)
{
    for (int64_t i0 = 0; i0 < ni; i0 += PW_BLOCK) {
        const int64_t i1 = i0 + PW_BLOCK < ni ? i0 + PW_BLOCK : ni;
        for (int64_t j0 = 0; j0 < nj; j0 += PW_BLOCK) {
            const int64_t j1 = j0 + PW_BLOCK < nj ? j0 + PW_BLOCK : nj;
            int64_t i = i0;
            for (; i + 4 <= i1; i += 4) {
                int64_t j = j0;
                for (; j + 4 <= j1; j += 4) {
                    const __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(in + j * ldi + i));
                    const __m128i b =
                        _mm_loadu_si128((const __m128i *)(const void *)(in + (j + 1) * ldi + i));
                    const __m128i c =
                        _mm_loadu_si128((const __m128i *)(const void *)(in + (j + 2) * ldi + i));
                    const __m128i d =
                        _mm_loadu_si128((const __m128i *)(const void *)(in + (j + 3) * ldi + i));
                    const __m128i ab0 = _mm_unpacklo_epi32(a, b), ab1 = _mm_unpackhi_epi32(a, b);
                    const __m128i cd0 = _mm_unpacklo_epi32(c, d), cd1 = _mm_unpackhi_epi32(c, d);
                    _mm_storeu_si128((__m128i *)(void *)(out + i * ldo + j), _mm_unpacklo_epi64(ab0, cd0));
                    _mm_storeu_si128((__m128i *)(void *)(out + (i + 1) * ldo + j),
                                     _mm_unpackhi_epi64(ab0, cd0));
                    _mm_storeu_si128((__m128i *)(void *)(out + (i + 2) * ldo + j),
                                     _mm_unpacklo_epi64(ab1, cd1));
                    _mm_storeu_si128((__m128i *)(void *)(out + (i + 3) * ldo + j),
                                     _mm_unpackhi_epi64(ab1, cd1));
                }
                for (; j < j1; j++)
                    for (int64_t k = 0; k < 4; k++)
                        out[(i + k) * ldo + j] = in[j * ldi + i + k];
            }
            for (; i < i1; i++)
                for (int64_t j = j0; j < j1; j++)
                    out[i * ldo + j] = in[j * ldi + i];
        }
    }
}
#endif

void pw_copy2d(void *dst, int64_t drs, int64_t dcs, const void *src, int64_t srs, int64_t scs, int64_t rows,
               int64_t cols, size_t es)
{
#ifdef PW_HAVE_SSE2
    if (es == 4 && dcs == 1 && srs == 1 && scs != 1) { /* d[r][c] = s[c][r] */
        transpose_u32((uint32_t *)dst, drs, (const uint32_t *)src, scs, rows, cols);
        return;
    }
    if (es == 4 && drs == 1 && scs == 1 && dcs != 1) { /* d[c][r] = s[r][c] */
        transpose_u32((uint32_t *)dst, dcs, (const uint32_t *)src, srs, cols, rows);
        return;
    }
#endif
    switch (es) {
    case 2: PW_COPY2D_BODY(uint16_t)
    case 4: PW_COPY2D_BODY(uint32_t)
    case 8: PW_COPY2D_BODY(uint64_t)
    default: return;
    }
}

/* Drops extent-1 dimensions and merges dimensions that are contiguous with
 * each other, so common layouts reach the fast paths of pw_copy2d. */
static int collapse(const pw_tensor *t, int64_t *shape, int64_t *strides)
{
    int nd = 0;
    for (int d = 0; d < t->ndim; d++) {
        if (t->shape[d] == 1)
            continue;
        if (nd > 0 && strides[nd - 1] == t->strides[d] * t->shape[d]) {
            shape[nd - 1] *= t->shape[d];
            strides[nd - 1] = t->strides[d];
        } else {
            shape[nd] = t->shape[d];
            strides[nd] = t->strides[d];
            nd++;
        }
    }
    return nd;
}

/* to_tensor = 0: tensor -> contiguous buf; 1: buf -> tensor. */
static void transfer(const pw_tensor *t, void *buf, int to_tensor)
{
    const size_t es = pw_dtype_size(t->dtype);
    int64_t shape[PW_MAX_NDIM + 2], strides[PW_MAX_NDIM + 2];
    int nd = collapse(t, shape, strides);
    /* Pad to at least two dimensions: [outer..., rows, cols]. */
    while (nd < 2) {
        memmove(shape + 1, shape, (size_t)nd * sizeof(int64_t));
        memmove(strides + 1, strides, (size_t)nd * sizeof(int64_t));
        shape[0] = 1;
        strides[0] = 0;
        nd++;
    }
    const int64_t rows = shape[nd - 2], cols = shape[nd - 1];
    const int64_t plane = rows * cols;
    int64_t outer = 1;
    for (int d = 0; d < nd - 2; d++)
        outer *= shape[d];
    int64_t idx[PW_MAX_NDIM];
    memset(idx, 0, sizeof idx);
    char *tbase = (char *)t->data;
    char *b = (char *)buf;
    for (int64_t o = 0; o < outer; o++) {
        int64_t off = 0;
        for (int d = 0; d < nd - 2; d++)
            off += idx[d] * strides[d];
        char *tp = tbase + off * (int64_t)es;
        char *bp = b + o * plane * (int64_t)es;
        if (to_tensor)
            pw_copy2d(tp, strides[nd - 2], strides[nd - 1], bp, cols, 1, rows, cols, es);
        else
            pw_copy2d(bp, cols, 1, tp, strides[nd - 2], strides[nd - 1], rows, cols, es);
        for (int d = nd - 3; d >= 0; d--) {
            if (++idx[d] < shape[d])
                break;
            idx[d] = 0;
        }
    }
}

int pw_matrix_strides(const pw_tensor *t, int64_t *rs, int64_t *cs)
{
    /* dims 1.. must merge into one: each stride is the next one's times its extent */
    int64_t stride = 1, inner = 0; /* inner: extent so far of the merged dim */
    int have = 0;
    for (int d = t->ndim - 1; d >= 1; d--) {
        if (t->shape[d] == 1)
            continue;
        if (!have) {
            stride = t->strides[d];
            inner = t->shape[d];
            have = 1;
        } else if (t->strides[d] == stride * inner) {
            inner *= t->shape[d];
        } else {
            return 0;
        }
    }
    *rs = t->strides[0];
    *cs = have ? stride : 1;
    return 1;
}

void pw_gather(const pw_tensor *t, void *dst) { transfer(t, dst, 0); }

void pw_scatter(const pw_tensor *t, const void *src) { transfer(t, (void *)src, 1); }

/* Defines NAME(data, n, exp): whether none of the n T at data has every bit
 * of exp set -- with exp a format's exponent field, no Inf or NaN.  The loop
 * has no early exit, so it vectorises. */
#define PW_DEFINE_NONE_ALL_ONES(NAME, T)                \
    static int NAME(const void *data, int64_t n, T exp) \
    {                                                   \
        const T *a = (const T *)data;                   \
        T bad = 0;                                      \
        for (int64_t i = 0; i < n; i++)                 \
            bad |= ((a[i] & exp) == exp);               \
        return !bad;                                    \
    }
PW_DEFINE_NONE_ALL_ONES(none_all_ones_u16, uint16_t)
PW_DEFINE_NONE_ALL_ONES(none_all_ones_u32, uint32_t)
PW_DEFINE_NONE_ALL_ONES(none_all_ones_u64, uint64_t)

int pw_all_finite(const void *data, int64_t n, pw_dtype dtype)
{
    switch (dtype) {
    case PW_FLOAT32: return none_all_ones_u32(data, n, 0x7F800000u);
    case PW_FLOAT64: return none_all_ones_u64(data, n, 0x7FF0000000000000ULL);
    case PW_FLOAT16: return none_all_ones_u16(data, n, 0x7C00u);
    case PW_BFLOAT16: return none_all_ones_u16(data, n, 0x7F80u);
    }
    return 0;
}
