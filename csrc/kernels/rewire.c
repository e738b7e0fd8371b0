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
#include <stdlib.h>

#include "internal.h"

/* Rows per tile in a transposed pass: adjacent columns of the scratch. */
#define PW_TILE_ROWS 32

pw_status pw_row_ws_init(pw_row_ws *ws, int64_t cap)
{
    memset(ws, 0, sizeof *ws);
    if (cap < 1)
        cap = 1;
    const int64_t n = cap;
    ws->cap = cap;
    ws->st = pw_alloc(n, sizeof(double));
    ws->p = pw_alloc(n, sizeof(double));
    ws->q = pw_alloc(n, sizeof(double));
    ws->x = pw_alloc(n, sizeof(double));
    ws->rem = pw_alloc(n, sizeof(pw_idx));
    ws->order = pw_alloc(n + 1, sizeof(pw_idx)); /* +1: branchless appends may write one past */
    ws->guide = pw_alloc(n * PW_GUIDE_PER_COLUMN + 1, sizeof(pw_idx));
    ws->seen = pw_alloc(n, 1);
    ws->k64 = pw_alloc(n, sizeof(uint64_t));
    ws->t64 = pw_alloc(n, sizeof(uint64_t));
    if (!ws->st || !ws->p || !ws->q || !ws->x || !ws->rem || !ws->order || !ws->guide ||
        !ws->seen || !ws->k64 || !ws->t64) {
        pw_row_ws_free(ws);
        return PW_ERR_NOMEM;
    }
    return PW_OK;
}

void pw_row_ws_free(pw_row_ws *ws)
{
    free(ws->st);
    free(ws->p);
    free(ws->q);
    free(ws->x);
    free(ws->rem);
    free(ws->order);
    free(ws->guide);
    free(ws->seen);
    free(ws->k64);
    free(ws->t64);
    memset(ws, 0, sizeof *ws);
}

/* Per element format: add a row into st; sort a row and deal its values to
 * the target columns, adding them into st on the way. */
#define PW_ROW_OPS(NAME, T, KEYT, TO_DOUBLE, SORT)                                  \
    static void NAME##_accumulate(double *st, const void *row, int64_t n)           \
    {                                                                               \
        const T *a = (const T *)row;                                                \
        for (int64_t i = 0; i < n; i++)                                             \
            st[i] += TO_DOUBLE(a[i]);                                               \
    }                                                                               \
    static void NAME##_place(void *row, const pw_idx *targets, double *st,          \
                             int64_t n, pw_row_ws *ws)                              \
    {                                                                               \
        T *a = (T *)row;                                                            \
        T *k = (T *)ws->k64, *tmp = (T *)ws->t64;                                   \
        for (int64_t i = 0; i < n; i++)                                             \
            k[i] = pw_key_##KEYT(a[i]);                                             \
        SORT(k, tmp, n);                                                            \
        for (int64_t j = 0; j < n; j++) {                                           \
            const T v = pw_unkey_##KEYT(k[j]);                                      \
            a[targets[j]] = v;                                                      \
            st[targets[j]] += TO_DOUBLE(v);                                         \
        }                                                                           \
    }

PW_ROW_OPS(f32, uint32_t, uint32_t, pw_f32_to_double, pw_sort_u32)
PW_ROW_OPS(f64, uint64_t, uint64_t, pw_f64_to_double, pw_sort_u64)
PW_ROW_OPS(f16, uint16_t, uint16_t, pw_f16_to_double, pw_sort_u16)
PW_ROW_OPS(bf16, uint16_t, uint16_t, pw_bf16_to_double, pw_sort_u16)

typedef struct {
    void (*accumulate)(double *st, const void *row, int64_t n);
    void (*place)(void *row, const pw_idx *targets, double *st, int64_t n, pw_row_ws *ws);
} pw_row_ops;

static pw_row_ops row_ops(pw_dtype dtype)
{
    pw_row_ops ops = {f32_accumulate, f32_place};
    switch (dtype) {
    case PW_FLOAT32: break;
    case PW_FLOAT64: ops.accumulate = f64_accumulate; ops.place = f64_place; break;
    case PW_FLOAT16: ops.accumulate = f16_accumulate; ops.place = f16_place; break;
    case PW_BFLOAT16: ops.accumulate = bf16_accumulate; ops.place = bf16_place; break;
    }
    return ops;
}

/* Draws the targets for the next row from the strength st. */
static pw_status draw_targets(pw_pcg64 *g, pw_sampler sampler, int64_t n, pw_row_ws *ws)
{
    const double *st = ws->st;
    double *p = ws->p;
    double mn = st[0];
    for (int64_t i = 1; i < n; i++)
        mn = st[i] < mn ? st[i] : mn;
    const double shift = fabs(mn);
    for (int64_t i = 0; i < n; i++)
        p[i] = (st[i] + shift) + 1.0; /* two roundings, as the reference writes it */
    const double total = pw_pairwise_sum(p, n);
    if (!(total < INFINITY)) /* also catches NaN */
        return PW_ERR_OVERFLOW;
    if (sampler == PW_SAMPLER_FAST) {
        pw_choice_fast(g, p, n, ws->order, ws);
    } else {
        pw_choice_numpy(g, p, total, n, ws->order, ws);
    }
    return PW_OK;
}

static pw_status rewire_pass(char *base, pw_dtype dtype, int64_t rows, int64_t cols, int64_t rs,
                             int64_t cs, pw_pcg64 *g, const pw_options *opt, pw_row_ws *ws,
                             char *tile)
{
    const size_t es = pw_dtype_size(dtype);
    const pw_row_ops ops = row_ops(dtype);
    if (rows < 2)
        return PW_OK;
    for (int64_t i = 0; i < cols; i++)
        ws->st[i] = 0.0;

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
                ops.accumulate(ws->st, row, cols);
                continue;
            }
            if (opt->cancel && pw_cancel_requested(opt->cancel))
                return PW_ERR_CANCELLED;
            pw_status s = draw_targets(g, opt->sampler, cols, ws);
            if (s != PW_OK)
                return s;
            ops.place(row, ws->order, ws->st, cols, ws);
        }
        if (tiled)
            pw_copy2d(base + r0 * rs * (int64_t)es, rs, cs, tile, cols, 1, nr, cols, es);
    }
    return PW_OK;
}

pw_status pw_rewire(const pw_tensor *t, const pw_options *opt, pw_seed *seed)
{
    int64_t rows, cols;
    pw_status s = pw_check_tensor(t, 1, &rows, &cols);
    if (s != PW_OK)
        return s;
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
    char *scratch = pw_alloc(numel, es);
    char *tile = opt->passes == 2 ? pw_alloc(PW_TILE_ROWS * rows, es) : NULL;
    pw_row_ws ws;
    s = pw_row_ws_init(&ws, longest);
    if (!scratch || (opt->passes == 2 && !tile) || s != PW_OK) {
        free(scratch);
        free(tile);
        if (s == PW_OK)
            pw_row_ws_free(&ws);
        return PW_ERR_NOMEM;
    }

    pw_gather(t, scratch);
    if (!pw_all_finite(scratch, numel, t->dtype)) {
        s = PW_ERR_NONFINITE;
        goto done;
    }
    pw_pcg64 g;
    pw_pcg64_set(&g, seed->state_hi, seed->state_lo, seed->inc_hi, seed->inc_lo);
    s = rewire_pass(scratch, t->dtype, rows, cols, cols, 1, &g, opt, &ws, tile);
    if (s == PW_OK && opt->passes == 2) {
        if (opt->reseed_each_pass)
            pw_pcg64_set(&g, seed->state_hi, seed->state_lo, seed->inc_hi, seed->inc_lo);
        s = rewire_pass(scratch, t->dtype, cols, rows, 1, cols, &g, opt, &ws, tile);
    }
    if (s == PW_OK) {
        pw_scatter(t, scratch);
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
