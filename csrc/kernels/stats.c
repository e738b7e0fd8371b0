/* Strength statistics: row and column sums of the 2-D view, in float64. */
#include <stdlib.h>

#include "internal.h"

static void mean_var(const double *a, int64_t n, double *mean, double *var)
{
    /* two passes: the mean, then squared deviations (numerically stable) */
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += a[i];
    const double m = n > 0 ? s / (double)n : NAN;
    double ss = 0.0;
    for (int64_t i = 0; i < n; i++)
        ss += pw_product(a[i] - m, a[i] - m);
    *mean = m;
    *var = n > 1 ? ss / (double)(n - 1) : NAN;
}

#define PW_SUM_ROWS(T, TO_DOUBLE)                            \
    {                                                        \
        const T *a = (const T *)buf;                         \
        for (int64_t r = 0; r < rows; r++) {                 \
            double acc = 0.0;                                \
            for (int64_t c = 0; c < cols; c++) {             \
                const double v = TO_DOUBLE(a[r * cols + c]); \
                acc += v;                                    \
                colsum[c] += v;                              \
            }                                                \
            rowsum[r] = acc;                                 \
        }                                                    \
        break;                                               \
    }

pw_status pw_strength_sums(const pw_tensor *t, double *row_sums, double *col_sums, pw_stats *out)
{
    pw_view v;
    const pw_status s = pw_view_init(&v, t, 0);
    return s != PW_OK ? s : pw_strength_sums_view(&v, row_sums, col_sums, out);
}

pw_status pw_strength_sums_view(const pw_view *v, double *row_sums, double *col_sums, pw_stats *out)
{
    const pw_tensor *t = &v->tensor;
    const int64_t rows = v->rows, cols = v->cols;
    pw_status s = PW_OK;
    out->rows = rows;
    out->cols = cols;
    if (rows == 0 || cols == 0) {
        /* an empty tensor allocates nothing: every sum is 0 */
        for (int64_t r = 0; row_sums && r < rows; r++)
            row_sums[r] = 0.0;
        for (int64_t c = 0; col_sums && c < cols; c++)
            col_sums[c] = 0.0;
        out->row_mean = rows > 0 ? 0.0 : NAN;
        out->row_var = rows > 1 ? 0.0 : NAN;
        out->col_mean = cols > 0 ? 0.0 : NAN;
        out->col_var = cols > 1 ? 0.0 : NAN;
        return PW_OK;
    }
    const int64_t numel = rows * cols;
    void *buf = pw_alloc(numel, pw_dtype_size(t->dtype));
    double *rowsum = row_sums ? row_sums : pw_alloc(rows, sizeof(double));
    double *colsum = col_sums ? col_sums : pw_alloc(cols, sizeof(double));
    if (!buf || !rowsum || !colsum) {
        s = PW_ERR_NOMEM;
        goto done;
    }
    for (int64_t c = 0; c < cols; c++)
        colsum[c] = 0.0;
    pw_gather(t, buf);
    switch (t->dtype) {
    case PW_FLOAT32: PW_SUM_ROWS(uint32_t, pw_f32_to_double)
    case PW_FLOAT64: PW_SUM_ROWS(uint64_t, pw_f64_to_double)
    case PW_FLOAT16: PW_SUM_ROWS(uint16_t, pw_f16_to_double)
    case PW_BFLOAT16: PW_SUM_ROWS(uint16_t, pw_bf16_to_double)
    }
    mean_var(rowsum, rows, &out->row_mean, &out->row_var);
    mean_var(colsum, cols, &out->col_mean, &out->col_var);
done:
    free(buf);
    if (rowsum != row_sums)
        free(rowsum);
    if (colsum != col_sums)
        free(colsum);
    return s;
}

pw_status pw_strength_stats(const pw_tensor *t, pw_stats *out)
{
    return pw_strength_sums(t, NULL, NULL, out);
}
