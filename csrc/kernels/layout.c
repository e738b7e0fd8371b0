/* Tensor layout: validation, and moving elements between a strided tensor
 * and contiguous scratch.  Elements are moved as raw 2/4/8-byte words. */
#include <stdlib.h>

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

static int mul_overflows(int64_t a, int64_t b, int64_t *out)
{
    /* a, b >= 0 */
    if (a != 0 && b > INT64_MAX / a)
        return 1;
    *out = a * b;
    return 0;
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
    }
    if (writable && !any_zero) {
        /* Sufficient condition for distinct addresses: with the dimensions
         * of extent > 1 ordered by |stride|, each stride clears the whole
         * span of the ones below it. */
        int64_t st[PW_MAX_NDIM], ex[PW_MAX_NDIM];
        int k = 0;
        for (int d = 0; d < t->ndim; d++) {
            if (t->shape[d] < 2)
                continue;
            int64_t s = t->strides[d] < 0 ? -t->strides[d] : t->strides[d];
            int j = k++;
            while (j > 0 && st[j - 1] > s) {
                st[j] = st[j - 1];
                ex[j] = ex[j - 1];
                j--;
            }
            st[j] = s;
            ex[j] = t->shape[d];
        }
        int64_t need = 1;
        for (int j = 0; j < k; j++) {
            if (st[j] < need)
                return PW_ERR_OVERLAP;
            if (mul_overflows(st[j], ex[j], &need))
                need = INT64_MAX;
        }
    }
    *rows = t->shape[0];
    *cols = c;
    return PW_OK;
}

#define PW_BLOCK 32

#define PW_COPY2D_BODY(T)                                                                   \
    {                                                                                       \
        T *d = (T *)dst;                                                                    \
        const T *s = (const T *)src;                                                        \
        if (dcs == 1 && scs == 1) {                                                         \
            for (int64_t r = 0; r < rows; r++)                                              \
                memcpy(d + r * drs, s + r * srs, (size_t)cols * sizeof(T));                 \
            return;                                                                         \
        }                                                                                   \
        for (int64_t r0 = 0; r0 < rows; r0 += PW_BLOCK) {                                   \
            const int64_t r1 = r0 + PW_BLOCK < rows ? r0 + PW_BLOCK : rows;                 \
            for (int64_t c0 = 0; c0 < cols; c0 += PW_BLOCK) {                               \
                const int64_t c1 = c0 + PW_BLOCK < cols ? c0 + PW_BLOCK : cols;             \
                for (int64_t r = r0; r < r1; r++)                                           \
                    for (int64_t c = c0; c < c1; c++)                                       \
                        d[r * drs + c * dcs] = s[r * srs + c * scs];                        \
            }                                                                               \
        }                                                                                   \
        return;                                                                             \
    }

void pw_copy2d(void *dst, int64_t drs, int64_t dcs, const void *src, int64_t srs, int64_t scs,
               int64_t rows, int64_t cols, size_t es)
{
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

void pw_gather(const pw_tensor *t, void *dst) { transfer(t, dst, 0); }

void pw_scatter(const pw_tensor *t, const void *src) { transfer(t, (void *)src, 1); }

int pw_all_finite(const void *data, int64_t n, pw_dtype dtype)
{
    switch (dtype) {
    case PW_FLOAT32: {
        const uint32_t *a = (const uint32_t *)data;
        uint32_t bad = 0;
        for (int64_t i = 0; i < n; i++)
            bad |= ((a[i] & 0x7F800000u) == 0x7F800000u);
        return !bad;
    }
    case PW_FLOAT64: {
        const uint64_t *a = (const uint64_t *)data;
        uint64_t bad = 0;
        for (int64_t i = 0; i < n; i++)
            bad |= ((a[i] & 0x7FF0000000000000ULL) == 0x7FF0000000000000ULL);
        return !bad;
    }
    case PW_FLOAT16: {
        const uint16_t *a = (const uint16_t *)data;
        unsigned bad = 0;
        for (int64_t i = 0; i < n; i++)
            bad |= ((a[i] & 0x7C00u) == 0x7C00u);
        return !bad;
    }
    case PW_BFLOAT16: {
        const uint16_t *a = (const uint16_t *)data;
        unsigned bad = 0;
        for (int64_t i = 0; i < n; i++)
            bad |= ((a[i] & 0x7F80u) == 0x7F80u);
        return !bad;
    }
    }
    return 0;
}
