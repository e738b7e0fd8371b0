/* The rewiring pass and the PA driver.
 *
 * One pass over a 2-D matrix stored in contiguous scratch (row stride rs,
 * column stride cs, in elements):
 *
 *     st = 0
 *     for r in 1 .. rows-1:
 *         st += row r-1 (as rewired), in float64
 *         P   = (st + |min st|) + 1,  p = P / sum(P)
 *         targets = weighted permutation of the columns, weights p
 *         row r: the j-th smallest value moves to column targets[j]
 *
 * Rows are moved as raw bits, so every value keeps its exact pattern.  A
 * transposed pass (cs != 1) works on tiles of adjacent columns copied out
 * with a blocked transpose, never by walking a column with a stride of a
 * whole row.  The driver works on a scratch copy of the tensor and writes
 * it back only when every pass has succeeded: all or nothing.
 */
#include <float.h>
#include <stdlib.h>

#include "internal.h"

/* Rows per tile in a transposed pass: adjacent columns of the scratch. */
#define PW_TILE_ROWS 32

/* Carves n elements of size bytes, 64-byte aligned, from a block (or, with
 * base NULL, only counts the bytes). */
static void *carve(char *base, size_t *used, int64_t n, size_t size)
{
    void *p = base ? base + *used : NULL;
    *used += ((size_t)n * size + 63) & ~(size_t)63;
    return p;
}

/* Lays the buffers out in block (NULL: measures); returns the bytes used. */
static size_t row_ws_layout(pw_row_ws *ws, char *block, int64_t n, pw_sampler sampler)
{
    size_t used = 0;
    ws->strength = carve(block, &used, n, sizeof(double));
    ws->weight = carve(block, &used, n, sizeof(double));
    ws->order = carve(block, &used, n + 1, sizeof(pw_idx)); /* +1: branchless appends may write one past */
    ws->vals = carve(block, &used, n, sizeof(uint64_t));
    ws->vals_tmp = carve(block, &used, n, sizeof(uint64_t));
    if (sampler == PW_SAMPLER_NUMPY) {
        ws->np.prob = carve(block, &used, n, sizeof(double));
        ws->np.cdf = carve(block, &used, n + 1, sizeof(double)); /* + a sentinel */
        ws->np.quantile = carve(block, &used, n, sizeof(double));
        ws->np.remaining = carve(block, &used, n, sizeof(pw_idx));
        ws->np.guide = carve(block, &used, n + 1, sizeof(pw_idx));
        ws->np.seen = carve(block, &used, n, 1);
    } else {
        ws->fast.exps = carve(block, &used, n, sizeof(double));
        ws->fast.key = carve(block, &used, n, sizeof(double));
        ws->fast.words = carve(block, &used, n, sizeof(uint64_t));
        ws->fast.sortword = carve(block, &used, n, sizeof(uint64_t));
        ws->fast.sort_tmp = carve(block, &used, n, sizeof(uint64_t));
        ws->fast.run_tmp = carve(block, &used, n, sizeof(pw_idx));
    }
    return used;
}

pw_status pw_row_ws_init(pw_row_ws *ws, int64_t cap, pw_sampler sampler)
{
    memset(ws, 0, sizeof *ws);
    if (cap < 1)
        cap = 1;
    ws->cap = cap;
    const size_t bytes = row_ws_layout(ws, NULL, cap, sampler);
    /* 64 more bytes: the block's start is rounded up to a cache line */
    ws->block = pw_alloc((int64_t)bytes + 64, 1);
    if (!ws->block)
        return PW_ERR_NOMEM;
    char *aligned = (char *)ws->block + ((64 - (uintptr_t)ws->block % 64) % 64);
    row_ws_layout(ws, aligned, cap, sampler);
    return PW_OK;
}

void pw_row_ws_free(pw_row_ws *ws)
{
    free(ws->block);
    memset(ws, 0, sizeof *ws);
}

/* The row operations of each element format (see pw_row_ops). */
#define PW_ROW_OPS(NAME, T, TO_DOUBLE, SORT)                                        \
    static void NAME##_prepare(void *sorted, void *tmp, const void *row, int64_t n) \
    {                                                                               \
        const T *a = (const T *)row;                                                \
        T *k = (T *)sorted;                                                         \
        for (int64_t i = 0; i < n; i++)                                             \
            k[i] = pw_key_##T(a[i]);                                                \
        SORT(k, (T *)tmp, n);                                                       \
    }                                                                               \
    static void NAME##_accumulate(void *out, double *st, const void *row, int64_t n, \
                                  pw_range *range)                                  \
    {                                                                               \
        const T *a = (const T *)row;                                                \
        double mn = INFINITY, mx = -INFINITY;                                       \
        for (int64_t i = 0; i < n; i++) {                                           \
            const double v = 0.0 + TO_DOUBLE(a[i]); /* as st = 0; st += row */     \
            st[i] = v;                                                              \
            mn = v < mn ? v : mn;                                                   \
            mx = v > mx ? v : mx;                                                   \
        }                                                                           \
        if (out != row)                                                             \
            memcpy(out, row, (size_t)n * sizeof(T));                                \
        range->min = mn;                                                            \
        range->max = mx;                                                            \
    }                                                                               \
    static void NAME##_place(void *row, const void *sorted, const pw_idx *targets,  \
                             double *st, int64_t n, pw_range *range)                \
    {                                                                               \
        T *a = (T *)row;                                                            \
        const T *k = (const T *)sorted;                                             \
        double mn0 = INFINITY, mn1 = INFINITY, mx0 = -INFINITY, mx1 = -INFINITY;    \
        int64_t j = 0;                                                              \
        for (; j + 2 <= n; j += 2) { /* two chains of min / max */                  \
            const T v0 = pw_unkey_##T(k[j]), v1 = pw_unkey_##T(k[j + 1]);           \
            const pw_idx c0 = targets[j], c1 = targets[j + 1];                      \
            a[c0] = v0;                                                             \
            a[c1] = v1;                                                             \
            const double s0 = st[c0] + TO_DOUBLE(v0);                               \
            const double s1 = st[c1] + TO_DOUBLE(v1);                               \
            st[c0] = s0;                                                            \
            st[c1] = s1;                                                            \
            mn0 = s0 < mn0 ? s0 : mn0;                                              \
            mn1 = s1 < mn1 ? s1 : mn1;                                              \
            mx0 = s0 > mx0 ? s0 : mx0;                                              \
            mx1 = s1 > mx1 ? s1 : mx1;                                              \
        }                                                                           \
        for (; j < n; j++) {                                                        \
            const T v = pw_unkey_##T(k[j]);                                         \
            const pw_idx c = targets[j];                                            \
            a[c] = v;                                                               \
            const double s = st[c] + TO_DOUBLE(v);                                  \
            st[c] = s;                                                              \
            mn0 = s < mn0 ? s : mn0;                                                \
            mx0 = s > mx0 ? s : mx0;                                                \
        }                                                                           \
        range->min = mn1 < mn0 ? mn1 : mn0;                                         \
        range->max = mx1 > mx0 ? mx1 : mx0;                                         \
    }

PW_ROW_OPS(f32, uint32_t, pw_f32_to_double, pw_sort_u32)
PW_ROW_OPS(f64, uint64_t, pw_f64_to_double, pw_sort_u64)
PW_ROW_OPS(f16, uint16_t, pw_f16_to_double, pw_sort_u16)
PW_ROW_OPS(bf16, uint16_t, pw_bf16_to_double, pw_sort_u16)

pw_row_ops pw_row_ops_for(pw_dtype dtype)
{
    pw_row_ops ops = {f32_prepare, f32_accumulate, f32_place};
    switch (dtype) {
    case PW_FLOAT32: break;
    case PW_FLOAT64: ops.prepare = f64_prepare; ops.accumulate = f64_accumulate; ops.place = f64_place; break;
    case PW_FLOAT16: ops.prepare = f16_prepare; ops.accumulate = f16_accumulate; ops.place = f16_place; break;
    case PW_BFLOAT16: ops.prepare = bf16_prepare; ops.accumulate = bf16_accumulate; ops.place = bf16_place; break;
    }
    return ops;
}

/* The weights P = (st + |min st|) + 1 of the next row sum to a finite
 * total (the reference would divide by inf otherwise).  The total is only
 * computed when the largest P times n could come near overflow. */
static int weights_finite(const double *st, pw_range range, int64_t n, double *weight)
{
    const double shift = fabs(range.min);
    if ((range.max + shift) + 1.0 <= DBL_MAX / 4.0 / (double)n)
        return 1; /* every partial sum stays below DBL_MAX / 2 */
    for (int64_t i = 0; i < n; i++)
        weight[i] = (st[i] + shift) + 1.0;
    return pw_pairwise_sum(weight, n) < INFINITY; /* also catches NaN */
}

/* Draws the targets for the next row from the strength st. */
static pw_status draw_targets(pw_pcg64 *g, pw_sampler sampler, int64_t n, const double *exps, double emax,
                              pw_range range, pw_row_ws *ws, const pw_simd_ops *simd)
{
    const double *st = ws->strength;
    if (sampler == PW_SAMPLER_FAST) {
        if (!weights_finite(st, range, n, ws->weight))
            return PW_ERR_OVERFLOW;
        pw_choice_fast(exps, emax, st, range.min, n, ws->order, &ws->fast, simd);
        return PW_OK;
    }
    double *p = ws->weight;
    const double shift = fabs(range.min);
    for (int64_t i = 0; i < n; i++)
        p[i] = (st[i] + shift) + 1.0; /* two roundings, as the reference writes it */
    const double total = pw_pairwise_sum(p, n);
    if (!(total < INFINITY)) /* also catches NaN */
        return PW_ERR_OVERFLOW;
    pw_choice_numpy(g, p, total, n, ws->order, &ws->np, simd);
    return PW_OK;
}

static pw_status rewire_pass(char *base, pw_dtype dtype, int64_t rows, int64_t cols, int64_t rs,
                             int64_t cs, pw_pcg64 *g, const pw_options *opt, pw_row_ws *ws,
                             char *tile, const pw_simd_ops *simd)
{
    const size_t es = pw_dtype_size(dtype);
    const pw_row_ops ops = pw_row_ops_for(dtype);
    if (rows < 2)
        return PW_OK;
    pw_range range = {0.0, 0.0};

    const int tiled = cs != 1;
    const int64_t block = tiled ? PW_TILE_ROWS : rows;
    for (int64_t r0 = 0; r0 < rows; r0 += block) {
        const int64_t nr = r0 + block < rows ? block : rows - r0;
        char *rowbase = base + r0 * rs * (int64_t)es;
        int64_t stride = rs; /* elements between consecutive rows being worked on */
        if (tiled) {
            pw_copy2d(tile, cols, 1, rowbase, rs, cs, nr, cols, es);
            rowbase = tile;
            stride = cols;
        }
        for (int64_t k = 0; k < nr; k++) {
            char *row = rowbase + k * stride * (int64_t)es;
            if (r0 + k == 0) {
                ops.accumulate(row, ws->strength, row, cols, &range);
                continue;
            }
            if (opt->cancel && pw_cancel_requested(opt->cancel))
                return PW_ERR_CANCELLED;
            ops.prepare(ws->vals, ws->vals_tmp, row, cols);
            double emax = 0.0;
            if (opt->sampler == PW_SAMPLER_FAST)
                emax = pw_exponentials(g, cols, ws->fast.exps, ws->fast.words);
            pw_status s = draw_targets(g, opt->sampler, cols, ws->fast.exps, emax, range, ws, simd);
            if (s != PW_OK)
                return s;
            ops.place(row, ws->vals, ws->order, ws->strength, cols, &range);
        }
        if (tiled)
            pw_copy2d(base + r0 * rs * (int64_t)es, rs, cs, tile, cols, 1, nr, cols, es);
    }
    return PW_OK;
}

/* Row length of the scratch copy for rows of n elements: rows of 2 KiB
 * and more are padded to an odd number of cache lines (at most 6% more
 * memory), so that the 32 rows a column tile reads fall into different L1
 * sets (a row of 4096 float32 is 16 KiB: every row would map to the same
 * few sets). */
static int64_t padded_row(int64_t n, size_t es)
{
    const int64_t line = 64 / (int64_t)es;
    if (n * (int64_t)es < 2048)
        return n;
    int64_t ld = (n + line - 1) / line * line;
    if ((ld / line) % 2 == 0)
        ld += line;
    return ld;
}

pw_status pw_rewire(const pw_tensor *t, const pw_options *opt, pw_seed *seed)
{
    pw_view v;
    const pw_status s = pw_view_init(&v, t, 1);
    return s != PW_OK ? s : pw_rewire_view(&v, opt, seed);
}

pw_status pw_rewire_view(const pw_view *v, const pw_options *opt, pw_seed *seed)
{
    const pw_tensor *t = &v->tensor;
    const int64_t rows = v->rows, cols = v->cols;
    pw_status s;
    if (!v->writable)
        return PW_ERR_ARGUMENT;
    if ((opt->passes != 1 && opt->passes != 2) ||
        (opt->sampler != PW_SAMPLER_NUMPY && opt->sampler != PW_SAMPLER_FAST))
        return PW_ERR_ARGUMENT;
    if ((rows >= 2 && (uint64_t)cols > PW_IDX_MAX) || (cols >= 2 && (uint64_t)rows > PW_IDX_MAX))
        return PW_ERR_SHAPE;
    const int64_t numel = rows * cols;
    if (numel == 0)
        return PW_OK;

    const size_t es = pw_dtype_size(t->dtype);
    const int64_t longest = rows > cols ? rows : cols;
    /* The scratch copy's rows are ld elements apart. */
    int64_t trs, tcs;
    const int64_t ld = opt->passes == 2 && pw_matrix_strides(t, &trs, &tcs) ? padded_row(cols, es) : cols;
    char *scratch = pw_alloc_large(rows * ld, es);
    char *tile = opt->passes == 2 ? pw_alloc(PW_TILE_ROWS * rows, es) : NULL;
    pw_row_ws ws;
    s = pw_row_ws_init(&ws, longest, opt->sampler);
    if (!scratch || (opt->passes == 2 && !tile) || s != PW_OK) {
        free(scratch);
        free(tile);
        if (s == PW_OK)
            pw_row_ws_free(&ws);
        return PW_ERR_NOMEM;
    }

    if (ld == cols)
        pw_gather(t, scratch);
    else
        pw_copy2d(scratch, ld, 1, t->data, trs, tcs, rows, cols, es);
    for (int64_t r = 0; r < rows; r += ld == cols ? rows : 1) {
        if (!pw_all_finite(scratch + r * ld * (int64_t)es, ld == cols ? numel : cols, t->dtype)) {
            s = PW_ERR_NONFINITE;
            goto done;
        }
    }
    const pw_simd_ops *simd = pw_simd_current(); /* one variant for the whole call */
    pw_pcg64 g;
    pw_pcg64_set(&g, seed->state_hi, seed->state_lo, seed->inc_hi, seed->inc_lo);
    s = rewire_pass(scratch, t->dtype, rows, cols, ld, 1, &g, opt, &ws, tile, simd);
    if (s == PW_OK && opt->passes == 2) {
        if (opt->reseed_each_pass)
            pw_pcg64_set(&g, seed->state_hi, seed->state_lo, seed->inc_hi, seed->inc_lo);
        s = rewire_pass(scratch, t->dtype, cols, rows, 1, ld, &g, opt, &ws, tile, simd);
    }
    if (s == PW_OK) {
        if (ld == cols)
            pw_scatter(t, scratch);
        else
            pw_copy2d(t->data, trs, tcs, scratch, ld, 1, rows, cols, es);
        uint64_t w[4];
        pw_pcg64_get(&g, w);
        seed->state_hi = w[0];
        seed->state_lo = w[1];
        seed->inc_hi = w[2];
        seed->inc_lo = w[3];
    }
done:
    free(scratch);
    free(tile);
    pw_row_ws_free(&ws);
    return s;
}
