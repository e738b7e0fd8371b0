/* Shared by the kernel files only: element formats, scratch, helpers. */
#ifndef PAREWIRE_INTERNAL_H
#define PAREWIRE_INTERNAL_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "parewire.h"
#include "pcg64.h"

/* Powers of two spelt as exact decimal fractions (MSVC cannot be relied on
 * to parse hex-float literals). */
#define PW_2POW_M24 (1.0 / 16777216.0)
#define PW_2POW_M45 (1.0 / 35184372088832.0)
#define PW_2POW_M49 (1.0 / 562949953421312.0)

/* Column indices within one row.  Rows longer than this are refused up front. */
typedef uint32_t pw_idx;
#define PW_IDX_MAX UINT32_MAX

/* Random words taken in stream order from a block filled ahead, then from
 * the generator itself. */
typedef struct {
    const uint64_t *buf;
    int64_t pos, len;
    pw_pcg64 *g;
} pw_draws;

#include "simd.h"

/* a * b rounded on its own, for the few products that feed an addition:
 * a compiler allowed to contract (-ffp-contract=fast with FMA) cannot fuse
 * it into a * b + c with one rounding, which would change results.  Only
 * used off the hot paths. */
static inline double pw_product(double a, double b)
{
    volatile double p = a * b;
    return p;
}

/* ---- element formats: values are moved as raw bits, read as double ---- */

static inline double pw_f16_to_double(uint16_t h)
{
    uint64_t sign = (uint64_t)(h >> 15) << 63;
    uint32_t exp = (h >> 10) & 0x1Fu, man = h & 0x3FFu;
    double v;
    if (exp == 0) {
        v = (double)man * PW_2POW_M24; /* zero or subnormal: exact */
        uint64_t b;
        memcpy(&b, &v, 8);
        b |= sign;
        memcpy(&v, &b, 8);
        return v;
    }
    uint64_t b = sign | ((uint64_t)(exp == 31 ? 2047 : exp - 15 + 1023) << 52) | ((uint64_t)man << 42);
    memcpy(&v, &b, 8);
    return v;
}

static inline double pw_bf16_to_double(uint16_t h)
{
    uint32_t b = (uint32_t)h << 16;
    float f;
    memcpy(&f, &b, 4);
    return (double)f;
}

static inline double pw_f32_to_double(uint32_t b)
{
    float f;
    memcpy(&f, &b, 4);
    return (double)f;
}

static inline double pw_f64_to_double(uint64_t b)
{
    double d;
    memcpy(&d, &b, 8);
    return d;
}

/* Order-preserving maps between IEEE bit patterns and unsigned sort keys
 * (negative values: all bits flipped; non-negative: sign bit set). */
#define PW_KEY_FNS(T, SIGN)                                                            \
    static inline T pw_key_##T(T b) { return (b & (SIGN)) ? (T)~b : (T)(b | (SIGN)); } \
    static inline T pw_unkey_##T(T k) { return (k & (SIGN)) ? (T)(k ^ (SIGN)) : (T)~k; }
PW_KEY_FNS(uint16_t, (uint16_t)0x8000u)
PW_KEY_FNS(uint32_t, 0x80000000u)
PW_KEY_FNS(uint64_t, 0x8000000000000000ULL)
#undef PW_KEY_FNS

/* ---- per-row scratch, sized once for the longest row of a call ---- */

/* The numpy sampler's buffers. */
typedef struct {
    double *prob;        /* p = P / sum(P) of the remaining columns, compacted with them */
    double *cdf;         /* running sums of prob over the remaining columns, then +inf */
    double *quantile;    /* cdf / total (only when the remaining mass is tiny) */
    pw_idx *remaining;   /* columns not drawn yet, ascending */
    pw_idx *guide;       /* cdf bucket -> a lower bound of the answer (cap + 1 entries) */
    unsigned char *seen; /* positions in remaining drawn this round */
} pw_numpy_ws;

/* The fast sampler's buffers. */
typedef struct {
    double *key;        /* E / P of each column */
    uint64_t *sortword; /* (key prefix << ib) | column, 64-bit words or, for rows
                           of up to 8192 columns, 32-bit ones (fast.c) */
    uint64_t *sort_tmp; /* radix scratch for sortword */
    pw_idx *run_tmp;    /* scratch for ordering a long run of equal prefixes */
} pw_fast_ws;

/* Smallest and largest column strength. */
typedef struct {
    double min, max;
} pw_range;

/* What drawing and placing a row needs (the thread that runs the chain of
 * rows). */
typedef struct {
    int64_t cap;      /* the longest row */
    double *strength; /* st: running column strength */
    double *weight;   /* P = (st + |min st|) + 1 of the row being drawn */
    pw_idx *order;    /* the row's targets: columns in draw order (cap + 1) */
    pw_numpy_ws np;   /* only for PW_SAMPLER_NUMPY */
    pw_fast_ws fast;  /* only for PW_SAMPLER_FAST */
} pw_row_ws;

/* A row made ready before its turn: everything that does not depend on
 * the strengths (pass.c). */
typedef struct {
    void *vals;   /* the row's values as sort keys, sorted (the first
                           row of a pass: its values as they are) */
    double *exps; /* fast sampler: E_i ~ Exp(1), one per column */
    double emax;  /* their largest */
} pw_prepared;

/* A call's passes over the scratch copy (pass.c). */
typedef struct pw_row_ops pw_row_ops;
typedef struct {
    char *scratch; /* rows x cols, rows ld elements apart */
    int64_t rows, cols, ld;
    size_t es;
    int npasses;
    const pw_row_ops *ops;
    const pw_options *opt;
    const pw_simd_ops *simd;
} pw_passes;
/* Runs the passes (opt->threads >= 2: with a helper thread); on PW_OK *seed
 * holds the stream state after the last pass. */
pw_status pw_run_passes(const pw_passes *ps, pw_seed *seed);

/* Per element format (rewire.c):
 *  - prepare: the strength-independent half of a row -- its values as
 *    order-preserving keys, sorted (tmp: scratch of the same size);
 *  - accumulate: the first row of a pass sets st (and copies the row to out);
 *  - place: deals the sorted values to the target columns, adding each
 *    into st and returning the smallest and largest strength (every column
 *    is touched once, so the next row needs no extra pass over st). */
struct pw_row_ops {
    void (*prepare)(void *sorted, void *tmp, const void *row, int64_t n);
    void (*accumulate)(void *out, double *st, const void *row, int64_t n, pw_range *range);
    void (*place)(void *row, const void *sorted, const pw_idx *targets, double *st, int64_t n,
                  pw_range *range);
};

pw_row_ops pw_row_ops_for(pw_dtype dtype);

/* ---- sorting (sort.c) ---- */
void pw_sort_u16(uint16_t *a, uint16_t *tmp, int64_t n);
void pw_sort_u32(uint32_t *a, uint32_t *tmp, int64_t n);
void pw_sort_u64(uint64_t *a, uint64_t *tmp, int64_t n);
/* Sorts a by bits [32, 54) only (stable; the bits above are 0); the low 32
 * bits ride along. */
void pw_sort_by_prefix(uint64_t *a, uint64_t *tmp, int64_t n);
/* Stable sort of a by bits [first, first + bits) (bits <= 20; the bits
 * above are 0). */
void pw_sort_u32_prefix(uint32_t *a, uint32_t *tmp, int64_t n, int first, int bits);
/* Stable sort of the indices idx[0..n) by key[idx[i]]; tmp holds n. */
void pw_sort_idx_by_key(pw_idx *idx, pw_idx *tmp, const uint64_t *key, int64_t n);

/* ---- random words in stream order (pass.c) ----
 * The numpy sampler's words come straight from the generator, or (threads
 * >= 2) from blocks a helper thread fills ahead; either way the same
 * stream, in the same order. */
struct pw_pipe;
typedef struct {
    pw_pcg64 *g;           /* direct: the generator itself */
    struct pw_pipe *pipe;  /* or blocks from this pipeline */
    const uint64_t *block; /* the current block */
    int64_t pos, len;
    pw_pcg64 at; /* the stream state at the start of the current block */
} pw_words;
/* The next n words of the stream. */
void pw_words_take_blocks(pw_words *s, int64_t n, uint64_t *out);
static inline void pw_words_take(pw_words *s, int64_t n, uint64_t *out)
{
    if (s->pipe == NULL)
        pw_pcg64_fill64(s->g, n, out);
    else
        pw_words_take_blocks(s, n, out);
}

/* ---- samplers (sampler.c) ---- */
/* numpy's pairwise summation order, so sums match np.sum bit for bit. */
double pw_pairwise_sum(const double *a, int64_t n);
/* Weights w (all > 0) with total = pw_pairwise_sum(w): draws with the
 * probabilities p = w / total, as numpy's P / sum(P).  Writes the n columns
 * in draw order. */
void pw_choice_numpy(pw_words *src, const double *w, double total, int64_t n, pw_idx *order,
                     const pw_numpy_ws *ws, const pw_simd_ops *simd);
/* Fast sampler (fast.c).  n exponentials drawn from g into e; returns the
 * largest.  words: scratch for n random words. */
double pw_exponentials(pw_pcg64 *g, int64_t n, double *e, uint64_t *words, const pw_simd_ops *simd);
/* The same from d (the portable loop), and its rare path: the strip edge
 * or tail of the draw r = strip i, x = its candidate. */
double pw_exponentials_scalar(pw_draws *d, int64_t n, double *e, double emax);
double pw_exponential_slow(pw_draws *d, int i, double x);
/* Targets for weights P_i = (st_i + |mn|) + 1 (mn = min st) from the
 * exponentials e (largest emax): ascending E_i / P_i, ties by column. */
void pw_choice_fast(const double *e, double emax, const double *st, double mn, int64_t n, pw_idx *order,
                    const pw_fast_ws *ws, const pw_simd_ops *simd);
/* Its two steps: the keys and their sort words, then their order. */
void pw_fast_keys(const double *e, double emax, const double *st, double mn, int64_t n, const pw_fast_ws *ws,
                  const pw_simd_ops *simd);
void pw_fast_order(int64_t n, pw_idx *order, const pw_fast_ws *ws, const pw_simd_ops *simd);

/* ---- layout (layout.c) ---- */
/* malloc of count elements of size bytes; NULL when count <= 0 or the byte
 * size overflows.  Every scratch allocation goes through it. */
void *pw_alloc(int64_t count, size_t size);
/* The same for the tensor-sized scratch: from PW_HUGE_SCRATCH_MIN bytes on
 * (Linux), 2 MiB aligned and backed by huge pages where the system allows.
 * Freed with free(). */
#define PW_HUGE_SCRATCH_MIN ((size_t)32 << 20)
void *pw_alloc_large(int64_t count, size_t size);
/* Copies the tensor, in logical row-major order, to / from contiguous dst. */
void pw_gather(const pw_tensor *t, void *dst);
/* Whether the 2-D view of t is a plain strided matrix (dims 1.. merge into
 * one); if so, its row and column strides in elements. */
int pw_matrix_strides(const pw_tensor *t, int64_t *rs, int64_t *cs);
void pw_scatter(const pw_tensor *t, const void *src);
/* 2-D strided element copy, blocked so neither side is walked column-wise. */
void pw_copy2d(void *dst, int64_t drs, int64_t dcs, const void *src, int64_t srs, int64_t scs, int64_t rows,
               int64_t cols, size_t es);
int pw_all_finite(const void *data, int64_t n, pw_dtype dtype);

#endif
