/* The PA driver and the row operations of each element format.
 *
 * The driver works on a scratch copy of the tensor (pass.c runs the
 * passes over it) and writes it back only when every pass has succeeded:
 * all or nothing.  Rows are moved as raw bits, so every value keeps its
 * exact pattern.
 */
#include <float.h>
#include <stdlib.h>

#include "internal.h"
#include "thread.h"

/* The row operations of each element format (see pw_row_ops). */
#define PW_ROW_OPS(NAME, T, TO_DOUBLE, SORT)                                                              \
    static void NAME##_prepare(void *sorted, void *tmp, const void *row, int64_t n)                       \
    {                                                                                                     \
        const T *a = (const T *)row;                                                                      \
        T *k = (T *)sorted;                                                                               \
        for (int64_t i = 0; i < n; i++)                                                                   \
            k[i] = pw_key_##T(a[i]);                                                                      \
        SORT(k, (T *)tmp, n);                                                                             \
    }                                                                                                     \
    static void NAME##_accumulate(void *out, double *st, const void *row, int64_t n, pw_range *range)     \
    {                                                                                                     \
        const T *a = (const T *)row;                                                                      \
        double mn = INFINITY, mx = -INFINITY;                                                             \
        for (int64_t i = 0; i < n; i++) {                                                                 \
            const double v = 0.0 + TO_DOUBLE(a[i]); /* as st = 0; st += row */                            \
            st[i] = v;                                                                                    \
            mn = v < mn ? v : mn;                                                                         \
            mx = v > mx ? v : mx;                                                                         \
        }                                                                                                 \
        if (out != row)                                                                                   \
            memcpy(out, row, (size_t)n * sizeof(T));                                                      \
        range->min = mn;                                                                                  \
        range->max = mx;                                                                                  \
    }                                                                                                     \
    static void NAME##_place(void *row, const void *sorted, const pw_idx *targets, double *st, int64_t n, \
                             pw_range *range)                                                             \
    {                                                                                                     \
        T *a = (T *)row;                                                                                  \
        const T *k = (const T *)sorted;                                                                   \
        double mn0 = INFINITY, mn1 = INFINITY, mx0 = -INFINITY, mx1 = -INFINITY;                          \
        int64_t j = 0;                                                                                    \
        for (; j + 2 <= n; j += 2) { /* two chains of min / max */                                        \
            const T v0 = pw_unkey_##T(k[j]), v1 = pw_unkey_##T(k[j + 1]);                                 \
            const pw_idx c0 = targets[j], c1 = targets[j + 1];                                            \
            a[c0] = v0;                                                                                   \
            a[c1] = v1;                                                                                   \
            const double s0 = st[c0] + TO_DOUBLE(v0);                                                     \
            const double s1 = st[c1] + TO_DOUBLE(v1);                                                     \
            st[c0] = s0;                                                                                  \
            st[c1] = s1;                                                                                  \
            mn0 = s0 < mn0 ? s0 : mn0;                                                                    \
            mn1 = s1 < mn1 ? s1 : mn1;                                                                    \
            mx0 = s0 > mx0 ? s0 : mx0;                                                                    \
            mx1 = s1 > mx1 ? s1 : mx1;                                                                    \
        }                                                                                                 \
        for (; j < n; j++) {                                                                              \
            const T v = pw_unkey_##T(k[j]);                                                               \
            const pw_idx c = targets[j];                                                                  \
            a[c] = v;                                                                                     \
            const double s = st[c] + TO_DOUBLE(v);                                                        \
            st[c] = s;                                                                                    \
            mn0 = s < mn0 ? s : mn0;                                                                      \
            mx0 = s > mx0 ? s : mx0;                                                                      \
        }                                                                                                 \
        range->min = mn1 < mn0 ? mn1 : mn0;                                                               \
        range->max = mx1 > mx0 ? mx1 : mx0;                                                               \
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
    case PW_FLOAT64:
        ops.prepare = f64_prepare;
        ops.accumulate = f64_accumulate;
        ops.place = f64_place;
        break;
    case PW_FLOAT16:
        ops.prepare = f16_prepare;
        ops.accumulate = f16_accumulate;
        ops.place = f16_place;
        break;
    case PW_BFLOAT16:
        ops.prepare = bf16_prepare;
        ops.accumulate = bf16_accumulate;
        ops.place = bf16_place;
        break;
    }
    return ops;
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

/* Copying a plain strided matrix between the tensor and the scratch copy,
 * row range by row range (and, into scratch, checking it is finite). */
typedef struct {
    const pw_tensor *t;
    char *scratch;
    int64_t rows, cols, ld, trs, tcs;
    size_t es;
    int matrix;       /* the 2-D view is a plain strided matrix (trs, tcs) */
    int to_tensor;    /* 0: tensor -> scratch; 1: back */
    int64_t r0, r1;   /* the rows of the helper's half */
    int nonfinite[2]; /* per half, into scratch */
} pw_copy_job;

static void copy_rows(pw_copy_job *j, int64_t r0, int64_t r1, int half)
{
    const int64_t es = (int64_t)j->es, c = j->cols;
    if (j->to_tensor) {
        pw_copy2d((char *)j->t->data + r0 * j->trs * es, j->trs, j->tcs, j->scratch + r0 * j->ld * es, j->ld,
                  1, r1 - r0, c, j->es);
        return;
    }
    /* in chunks of about 256 KiB, each checked while it is still in cache */
    const int64_t chunk = 1 + ((int64_t)1 << 18) / (c * es);
    int bad = 0;
    for (int64_t a = r0; a < r1 && !bad; a += chunk) {
        const int64_t n = r1 - a < chunk ? r1 - a : chunk;
        char *scr = j->scratch + a * j->ld * es;
        pw_copy2d(scr, j->ld, 1, (char *)j->t->data + a * j->trs * es, j->trs, j->tcs, n, c, j->es);
        if (j->ld == c) /* no padding: one stretch */
            bad = !pw_all_finite(scr, n * c, j->t->dtype);
        else
            for (int64_t r = 0; r < n && !bad; r++)
                bad = !pw_all_finite(scr + r * j->ld * es, c, j->t->dtype);
    }
    j->nonfinite[half] = bad;
}

static void copy_helper(void *arg)
{
    pw_copy_job *j = (pw_copy_job *)arg;
    copy_rows(j, j->r0, j->r1, 1);
}

/* All rows; with `split`, the second half on a helper thread (joined
 * before returning; without a thread to be had, here). */
static void copy_rows_split(pw_copy_job *j, int split)
{
    const int64_t rows = j->rows;
    j->nonfinite[0] = j->nonfinite[1] = 0;
    pw_thread th;
    j->r0 = rows / 2;
    j->r1 = rows;
    if (split && pw_thread_start(&th, copy_helper, j) == 0) {
        copy_rows(j, 0, rows / 2, 0);
        pw_thread_join(&th);
    } else {
        copy_rows(j, 0, rows, 0);
    }
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
    /* The scratch copy's rows are ld elements apart.  A plain strided
     * matrix (the usual case) is copied by rows, on two threads when the
     * call may use them; any other layout by pw_gather / pw_scatter. */
    pw_copy_job job;
    job.t = t;
    job.rows = rows;
    job.cols = cols;
    job.nonfinite[0] = job.nonfinite[1] = 0;
    job.matrix = pw_matrix_strides(t, &job.trs, &job.tcs);
    job.ld = job.matrix && opt->passes == 2 ? padded_row(cols, es) : cols;
    job.es = es;
    job.scratch = pw_alloc_large(rows * job.ld, es);
    if (!job.scratch)
        return PW_ERR_NOMEM;
    const int split = job.matrix && opt->threads >= 2 && numel >= PW_THREADS_MIN_NUMEL && rows >= 2;
    job.to_tensor = 0;
    if (job.matrix) {
        copy_rows_split(&job, split);
    } else {
        pw_gather(t, job.scratch);
        job.nonfinite[0] = !pw_all_finite(job.scratch, numel, t->dtype);
    }
    if (job.nonfinite[0] || job.nonfinite[1]) {
        s = PW_ERR_NONFINITE;
        goto done;
    }
    const pw_row_ops ops = pw_row_ops_for(t->dtype);
    const pw_passes ps = {job.scratch, rows, cols, job.ld,           es,
                          opt->passes, &ops, opt,  pw_simd_current() /* one variant for the whole call */};
    pw_seed out = *seed;
    s = pw_run_passes(&ps, &out);
    if (s == PW_OK) {
        job.to_tensor = 1;
        if (job.matrix)
            copy_rows_split(&job, split);
        else
            pw_scatter(t, job.scratch);
        *seed = out;
    }
done:
    free(job.scratch);
    return s;
}
