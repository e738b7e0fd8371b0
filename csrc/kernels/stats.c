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
        ss += (a[i] - m) * (a[i] - m);
    *mean = m;
    *var = n > 1 ? ss / (double)(n - 1) : NAN;
}

#define PW_SUM_ROWS(T, TO_DOUBLE)                                           \
    {                                                                       \
        const T *a = (const T *)buf;                                        \
        for (int64_t r = 0; r < rows; r++) {                                \
            double acc = 0.0;                                               \
            for (int64_t c = 0; c < cols; c++) {                            \
                const double v = TO_DOUBLE(a[r * cols + c]);                \
                acc += v;                                                   \
                colsum[c] += v;                                             \
            }                                                               \
            rowsum[r] = acc;                                                \
        }                                                                   \
        break;                                                              \
    }

pw_status pw_strength_sums(const pw_tensor *t, double *row_sums, double *col_sums, pw_stats *out)
{
    int64_t rows, cols;
    pw_status s = pw_check_tensor(t, 0, &rows, &cols);
    if (s != PW_OK)
        return s;
    const size_t es = pw_dtype_size(t->dtype);
    const int64_t numel = rows * cols;
    void *buf = malloc(numel > 0 ? (size_t)numel * es : 1);
    double *rowsum = row_sums ? row_sums : malloc(rows > 0 ? (size_t)rows * sizeof(double) : 1);
    double *colsum = col_sums ? col_sums : malloc(cols > 0 ? (size_t)cols * sizeof(double) : 1);
    if (!buf || !rowsum || !colsum) {
        s = PW_ERR_NOMEM;
        goto done;
    }
    for (int64_t c = 0; c < cols; c++)
        colsum[c] = 0.0;
    if (numel > 0)
        pw_gather(t, buf);
    else
        for (int64_t r = 0; r < rows; r++)
            rowsum[r] = 0.0;
    switch (t->dtype) {
    case PW_FLOAT32: PW_SUM_ROWS(uint32_t, pw_f32_to_double)
    case PW_FLOAT64: PW_SUM_ROWS(uint64_t, pw_f64_to_double)
    case PW_FLOAT16: PW_SUM_ROWS(uint16_t, pw_f16_to_double)
    case PW_BFLOAT16: PW_SUM_ROWS(uint16_t, pw_bf16_to_double)
    }
    out->rows = rows;
    out->cols = cols;
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
