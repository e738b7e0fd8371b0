/* parewire kernels: preferential-attachment rewiring on raw memory.
 *
 * Plain C11, no Python, no torch.  Callers (the CPython binding) describe a
 * tensor by data pointer, dtype, shape and strides in elements; the kernels
 * view it as a 2-D matrix of R = shape[0] rows and C = numel / R columns.
 * Every entry checks its tensor (pw_check_tensor); the *_view entries take
 * a tensor checked once by pw_view_init.  A kernel fails only by returning
 * a status (bad layout, allocation, non-finite values, cancellation), never
 * by printing, exiting or aborting, and on failure the tensor's memory is
 * exactly as it was.
 */
#ifndef PAREWIRE_H
#define PAREWIRE_H

#include <stddef.h>
#include <stdint.h>

#if !defined(__STDC_VERSION__) || __STDC_VERSION__ < 201112L
#if !defined(_MSC_VER)
#error "parewire kernels need a C11 compiler"
#endif
#endif

typedef enum {
    PW_OK = 0,
    PW_ERR_NOMEM,     /* scratch allocation failed */
    PW_ERR_NONFINITE, /* a NaN or infinite weight */
    PW_ERR_OVERFLOW,  /* strengths overflow float64 (weights near DBL_MAX) */
    PW_ERR_CANCELLED, /* *cancel became non-zero between rows */
    PW_ERR_SHAPE,     /* ndim < 1, negative extent, or a size overflows */
    PW_ERR_OVERLAP,   /* strides make distinct indices share memory */
    PW_ERR_ARGUMENT   /* unknown dtype, sampler or pass count */
} pw_status;

typedef enum { PW_FLOAT32 = 0, PW_FLOAT64 = 1, PW_FLOAT16 = 2, PW_BFLOAT16 = 3 } pw_dtype;

typedef enum {
    PW_SAMPLER_NUMPY = 0, /* numpy Generator.choice(replace=False, p=P), bit for bit */
    PW_SAMPLER_FAST = 1   /* exponential keys: same distribution, one sort per row */
} pw_sampler;

#define PW_MAX_NDIM 64

typedef struct {
    void *data; /* address of element [0, 0, ...] */
    pw_dtype dtype;
    int ndim;
    const int64_t *shape;
    const int64_t *strides; /* in elements; may be negative or zero-extent */
} pw_tensor;

/* The PCG64 words numpy reports: state = (hi << 64) | lo, likewise inc. */
typedef struct {
    uint64_t state_hi, state_lo, inc_hi, inc_lo;
} pw_seed;

/* A cancellation request shared between threads: any thread may set it,
 * kernels read it between rows (an atomic, so reading while another thread
 * writes is defined behaviour). */
#if defined(_MSC_VER) && !defined(__clang__)
typedef struct {
    volatile long flag; /* MSVC: volatile long accesses are atomic on every target it supports */
} pw_cancel;
static inline void pw_cancel_set(pw_cancel *c) { c->flag = 1; }
static inline int pw_cancel_requested(const pw_cancel *c) { return c->flag != 0; }
#else
#include <stdatomic.h>
typedef struct {
    atomic_int flag;
} pw_cancel;
static inline void pw_cancel_set(pw_cancel *c) { atomic_store_explicit(&c->flag, 1, memory_order_relaxed); }
static inline int pw_cancel_requested(const pw_cancel *c)
{
    return atomic_load_explicit(&((pw_cancel *)c)->flag, memory_order_relaxed) != 0;
}
#endif
static inline void pw_cancel_init(pw_cancel *c) { c->flag = 0; }

typedef struct {
    int passes; /* 2: rows then columns (PA rewiring); 1: rows only */
    pw_sampler sampler;
    int reseed_each_pass; /* 1: every pass starts from *seed (the reference);
                               0: the second pass continues the first's stream */
    pw_cancel *cancel;    /* optional; checked between rows */
    int threads;          /* threads one call may use (<= 1: the caller's only);
                               the result does not depend on it.  2 or more:
                               a helper thread prepares rows ahead of the
                               chain, for tensors of PW_THREADS_MIN_NUMEL
                               elements or more (more helpers are not used) */
} pw_options;

#define PW_THREADS_MIN_NUMEL 32768

typedef struct {
    int64_t rows, cols;
    double row_mean, row_var; /* sums along each row (in-strength of output neurons) */
    double col_mean, col_var; /* sums along each column (out-strength of inputs) */
} pw_stats;

size_t pw_dtype_size(pw_dtype dtype);

/* Validates shape/strides/dtype for the kernels; `writable` also rejects
 * views whose elements overlap in memory.  Fills *rows / *cols. */
pw_status pw_check_tensor(const pw_tensor *t, int writable, int64_t *rows, int64_t *cols);

/* A tensor that passed pw_check_tensor, with its 2-D extents: made by
 * pw_view_init only.  The *_view kernels take it and check nothing again,
 * so a caller that validates first runs the checks once per call.  The
 * shape and strides arrays stay the caller's and must outlive the view. */
typedef struct {
    pw_tensor tensor;
    int64_t rows, cols;
    int writable; /* checked for overlap, as pw_rewire_view needs */
} pw_view;

pw_status pw_view_init(pw_view *v, const pw_tensor *t, int writable);

/* Rewires t in place.  On PW_OK, *seed holds the stream state after the last
 * pass; on any error t's memory is untouched. */
pw_status pw_rewire(const pw_tensor *t, const pw_options *opt, pw_seed *seed);
pw_status pw_rewire_view(const pw_view *v, const pw_options *opt, pw_seed *seed);

/* Row and column sums of the 2-D view in float64: mean and unbiased variance
 * (NaN for a variance over one value). */
pw_status pw_strength_stats(const pw_tensor *t, pw_stats *out);

/* The same, also writing the row sums (length rows) and column sums (length
 * cols) themselves; either pointer may be NULL. */
pw_status pw_strength_sums(const pw_tensor *t, double *row_sums, double *col_sums, pw_stats *out);
pw_status pw_strength_sums_view(const pw_view *v, double *row_sums, double *col_sums, pw_stats *out);

/* SIMD variants of the hot loops, chosen at run time; every variant gives
 * the same bits.  pw_simd_variants: the names this build and CPU can run,
 * "portable" first, the best last, NULL-terminated.  pw_simd_select: use
 * `name` from now on in this process (NULL: the automatic choice -- the
 * PAREWIRE_SIMD environment variable if it names one, else the best);
 * PW_ERR_ARGUMENT if the name is unknown or the CPU cannot run it.
 * pw_simd_selected: the variant kernel calls use now. */
const char *const *pw_simd_variants(void);
pw_status pw_simd_select(const char *name);
const char *pw_simd_selected(void);

#endif
