/* Drives the parewire kernels directly, without Python, on random layouts.
 *
 * Built with -fsanitize=address,undefined (and run once more under valgrind)
 * by scripts/kernel_check.sh.  Every case checks what the kernels promise:
 *  - a rewire only permutes the view's values; memory outside it, including
 *    guard zones around the buffer, is untouched;
 *  - any layout, thread count and SIMD variant gives the result of a
 *    contiguous copy with the same seed on one thread;
 *  - one pass keeps every row's multiset; the returned stream state agrees;
 *  - a non-finite value or a raised cancel flag fails with the buffer
 *    bit-identical (all or nothing);
 *  - sizes that overflow are refused before memory is touched (data = NULL).
 *
 * usage: kernel_fuzz [cases] [seed]
 *        kernel_fuzz digest [threads]   one hash of a fixed case list's results
 *        kernel_fuzz variants           the SIMD variants this CPU runs
 */
#define _POSIX_C_SOURCE 199309L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../csrc/kernels/parewire.h"
#include "../csrc/kernels/pcg64.h" /* PW_U128_EMULATED: which 128-bit arithmetic this build has */
#include "../csrc/kernels/thread.h" /* the helper thread, as the kernels start theirs */

#define GUARD 64 /* elements of guard zone on each side of a buffer */

static uint64_t rng_state;

static uint64_t next(void) /* splitmix64 */
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static int64_t between(int64_t lo, int64_t hi) { return lo + (int64_t)(next() % (uint64_t)(hi - lo + 1)); }

static int failures, rewired, refused;

#define CHECK(cond, ...)                                                \
    do {                                                                \
        if (!(cond)) {                                                  \
            failures++;                                                 \
            fprintf(stderr, "case %d: check failed: %s: ", icase, #cond); \
            fprintf(stderr, __VA_ARGS__);                               \
            fprintf(stderr, "\n");                                      \
            return;                                                     \
        }                                                               \
    } while (0)

/* A finite random value's bit pattern, wide but with float64 sums in range. */
static uint64_t random_word(pw_dtype dt)
{
    uint64_t b = next();
    switch (dt) {
    case PW_FLOAT16:
        b &= 0xFFFF;
        if ((b & 0x7C00) == 0x7C00)
            b &= ~(uint64_t)0x4000;
        return b;
    case PW_BFLOAT16:
        b &= 0xFFFF;
        if ((b & 0x7F80) == 0x7F80)
            b &= ~(uint64_t)0x4000;
        return b;
    case PW_FLOAT32:
        b &= 0xFFFFFFFF;
        if ((b & 0x7F800000) == 0x7F800000)
            b &= ~(uint64_t)0x40000000;
        return b;
    case PW_FLOAT64: {
        uint64_t e = (uint64_t)between(1023 - 60, 1023 + 60);
        return (b & 0x800FFFFFFFFFFFFFULL) | (e << 52);
    }
    }
    return 0;
}

static uint64_t nonfinite_word(pw_dtype dt)
{
    switch (dt) {
    case PW_FLOAT16: return 0x7C00 | (next() & 1 ? 0x8000 : 0) | (next() & 1 ? 0x200 : 0);
    case PW_BFLOAT16: return 0x7F80 | (next() & 1 ? 0x8000 : 0) | (next() & 1 ? 0x40 : 0);
    case PW_FLOAT32: return 0x7F800000u | (next() & 1 ? 0x80000000u : 0) | (next() & 1 ? 0x400000u : 0);
    case PW_FLOAT64: return 0x7FF0000000000000ULL | (next() & 1 ? 0x8000000000000000ULL : 0) | (next() & 1);
    }
    return 0;
}

static uint64_t load(const char *p, size_t es)
{
    uint64_t v = 0;
    if (es == 2) { uint16_t x; memcpy(&x, p, 2); v = x; }
    if (es == 4) { uint32_t x; memcpy(&x, p, 4); v = x; }
    if (es == 8) { memcpy(&v, p, 8); }
    return v;
}

static void store(char *p, size_t es, uint64_t v)
{
    if (es == 2) { uint16_t x = (uint16_t)v; memcpy(p, &x, 2); }
    if (es == 4) { uint32_t x = (uint32_t)v; memcpy(p, &x, 4); }
    if (es == 8) { memcpy(p, &v, 8); }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Element offsets of the view, in logical row-major order. */
static void offsets(int ndim, const int64_t *shape, const int64_t *strides, int64_t n, int64_t *out)
{
    int64_t idx[8] = {0};
    for (int64_t i = 0; i < n; i++) {
        int64_t off = 0;
        for (int d = 0; d < ndim; d++)
            off += idx[d] * strides[d];
        out[i] = off;
        for (int d = ndim - 1; d >= 0; d--) {
            if (++idx[d] < shape[d])
                break;
            idx[d] = 0;
        }
    }
}

static void one_case(int icase)
{
    const pw_dtype dt = (pw_dtype)between(0, 3);
    const size_t es = pw_dtype_size(dt);
    const int ndim = (int)between(2, 4);
    /* now and then a matrix larger than the kernels' tiles and blocks */
    const int64_t most = ndim == 2 ? (between(0, 15) == 0 ? 150 : 33) : 6;
    int64_t shape[4], strides[4];
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) {
        shape[d] = between(1, most);
        if (between(0, 40) == 0)
            shape[d] = between(0, 1); /* sometimes empty, sometimes a unit dimension */
    }
    const int64_t kind = between(0, 59);
    if (kind < 2) { /* rows of >= 4 KiB: the kernels pad their scratch rows */
        shape[0] = between(2, 4);
        shape[ndim - 1] = between(2048, 2100);
        for (int d = 1; d < ndim - 1; d++)
            shape[d] = 1 + (d == 1);
    } else if (kind < 4) { /* PW_THREADS_MIN_NUMEL or more: a helper thread may prepare rows */
        shape[0] = between(150, 260);
        shape[ndim - 1] = between(150, 260);
        for (int d = 1; d < ndim - 1; d++)
            shape[d] = 1;
    }
    for (int d = 0; d < ndim; d++)
        n *= shape[d];
    /* Memory order: a random permutation, innermost step 1..2, gaps 0..1 per
     * dimension, some dimensions walked backwards. */
    int perm[4];
    for (int d = 0; d < ndim; d++)
        perm[d] = d;
    for (int d = ndim - 1; d > 0; d--) {
        int j = (int)between(0, d);
        int t = perm[d];
        perm[d] = perm[j];
        perm[j] = t;
    }
    int64_t s = between(1, 2), span = 1;
    for (int k = ndim - 1; k >= 0; k--) {
        strides[perm[k]] = s;
        s *= shape[perm[k]] + between(0, 1);
        if (s == 0)
            s = 1;
    }
    int64_t start = 0;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] > 0)
            span += (shape[d] - 1) * strides[d];
        if (between(0, 3) == 0) {
            if (shape[d] > 0)
                start += (shape[d] - 1) * strides[d];
            strides[d] = -strides[d];
        }
    }
    const int64_t len = span + 2 * GUARD;
    char *buf = malloc((size_t)len * es), *before = malloc((size_t)len * es);
    int64_t *off = malloc((size_t)(n > 0 ? n : 1) * sizeof(int64_t));
    char *dense = malloc((size_t)(n > 0 ? n : 1) * es);
    uint64_t *w0 = malloc((size_t)(n > 0 ? n : 1) * 8), *w1 = malloc((size_t)(n > 0 ? n : 1) * 8);
    for (int64_t i = 0; i < len; i++)
        store(buf + i * (int64_t)es, es, random_word(dt));
    char *origin = buf + (GUARD + start) * (int64_t)es;
    offsets(ndim, shape, strides, n, off);
    const int poison = n > 0 && between(0, 9) == 0;
    if (poison)
        store(origin + off[between(0, n - 1)] * (int64_t)es, es, nonfinite_word(dt));
    memcpy(before, buf, (size_t)len * es);
    for (int64_t i = 0; i < n; i++)
        store(dense + i * (int64_t)es, es, load(origin + off[i] * (int64_t)es, es));

    pw_tensor view = {origin, dt, ndim, shape, strides};
    int64_t dstrides[4], c = 1;
    for (int d = ndim - 1; d >= 0; d--) {
        dstrides[d] = c;
        c *= shape[d];
    }
    pw_tensor flat = {dense, dt, ndim, shape, dstrides};
    pw_cancel cancel;
    pw_cancel_init(&cancel);
    int cancelled = between(0, 12) == 0;
    if (cancelled)
        pw_cancel_set(&cancel);
    pw_options opt = {(int)between(1, 2), (pw_sampler)between(0, 1), (int)between(0, 1), &cancel, 1};
    pw_seed seed = {next(), next(), next(), next() | 1}, seed2 = seed;
    /* the view on any thread count and SIMD variant, its contiguous copy on
     * one thread and another variant: the same bits */
    const char *const *variants = pw_simd_variants();
    int nvariants = 0;
    while (variants[nvariants])
        nvariants++;
    pw_options opt_view = opt;
    opt_view.threads = (int)between(1, 4);

    pw_stats st1, st2;
    CHECK(pw_strength_stats(&view, &st1) == PW_OK && pw_strength_stats(&flat, &st2) == PW_OK, "stats");
    CHECK(memcmp(&st1, &st2, sizeof st1) == 0 || poison, "statistics depend on the layout");

    pw_simd_select(variants[between(0, nvariants - 1)]);
    pw_status r1 = pw_rewire(&view, &opt_view, &seed);
    pw_simd_select(variants[between(0, nvariants - 1)]);
    pw_status r2 = pw_rewire(&flat, &opt, &seed2);
    pw_simd_select(NULL);
    const int64_t rows = shape[0], cols = rows ? n / rows : 0;
    pw_status want = PW_OK;
    if (n > 0 && poison)
        want = PW_ERR_NONFINITE;
    else if (n > 0 && cancelled && (rows >= 2 || (opt.passes == 2 && cols >= 2)))
        want = PW_ERR_CANCELLED;
    CHECK(r1 == want && r2 == want, "status %d / %d, expected %d (dtype %d shape %lld x %lld, threads %d)", r1, r2,
          want, dt, (long long)rows, (long long)cols, opt_view.threads);
    if (r1 != PW_OK) {
        refused++;
        CHECK(memcmp(buf, before, (size_t)len * es) == 0, "a failed rewire changed memory");
        goto out;
    }
    rewired++;
    CHECK(memcmp(&seed, &seed2, sizeof seed) == 0, "stream state depends on the layout");
    for (int64_t i = 0; i < n; i++) {
        w0[i] = load(before + (GUARD + start + off[i]) * (int64_t)es, es);
        w1[i] = load(origin + off[i] * (int64_t)es, es);
        CHECK(w1[i] == load(dense + i * (int64_t)es, es), "view and contiguous copy differ at %lld", (long long)i);
    }
    /* memory the view does not reach (guards, gaps) is untouched */
    for (int64_t i = 0; i < n; i++)
        store(buf + (GUARD + start + off[i]) * (int64_t)es, es, load(before + (GUARD + start + off[i]) * (int64_t)es, es));
    CHECK(memcmp(buf, before, (size_t)len * es) == 0, "memory outside the view changed");
    if (opt.passes == 1) {
        for (int64_t r = 0; r < rows; r++) {
            qsort(w0 + r * cols, (size_t)cols, 8, cmp_u64);
            qsort(w1 + r * cols, (size_t)cols, 8, cmp_u64);
        }
    } else {
        qsort(w0, (size_t)n, 8, cmp_u64);
        qsort(w1, (size_t)n, 8, cmp_u64);
    }
    CHECK(memcmp(w0, w1, (size_t)n * 8) == 0, "not a permutation (passes=%d)", opt.passes);
out:
    free(buf);
    free(before);
    free(off);
    free(dense);
    free(w0);
    free(w1);
}

/* Sizes the checks must refuse without reading memory: data is NULL. */
static void refusals(void)
{
    int icase = -1;
    struct {
        int ndim;
        int64_t shape[3], strides[3];
        pw_status want;
    } cases[] = {
        {2, {INT64_C(1) << 32, INT64_C(1) << 32}, {1, 1}, PW_ERR_SHAPE},           /* numel overflows */
        {2, {INT64_C(1) << 62, 4}, {4, 1}, PW_ERR_SHAPE},                           /* bytes overflow */
        {2, {2, INT64_C(1) << 32}, {INT64_C(1) << 32, 1}, PW_ERR_SHAPE},            /* a row of 2**32 */
        {2, {INT64_C(1) << 32, 2}, {2, 1}, PW_ERR_SHAPE},                           /* a column of 2**32 */
        {2, {2, 3}, {INT64_C(1) << 62, 1}, PW_ERR_SHAPE},                           /* span overflows */
        {2, {2, 3}, {INT64_MIN, 1}, PW_ERR_SHAPE},
        {2, {3, -1}, {1, 1}, PW_ERR_SHAPE},
        {3, {INT64_C(1) << 21, INT64_C(1) << 21, INT64_C(1) << 21}, {0, 0, 0}, PW_ERR_SHAPE},
        {2, {INT64_C(1) << 20, INT64_C(1) << 20}, {1, 1}, PW_ERR_OVERLAP},          /* 2**40, overlapping */
        {2, {INT64_C(1) << 20, INT64_C(1) << 20}, {0, 1}, PW_ERR_OVERLAP},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pw_tensor t = {NULL, PW_FLOAT32, cases[i].ndim, cases[i].shape, cases[i].strides};
        pw_options opt = {2, PW_SAMPLER_NUMPY, 1, NULL, 1};
        pw_seed seed = {0, 1, 0, 1};
        pw_status got = pw_rewire(&t, &opt, &seed);
        if (got != cases[i].want) {
            failures++;
            fprintf(stderr, "refusal %zu: status %d, expected %d\n", i, got, cases[i].want);
        }
    }
    (void)icase;
}


/* Whether two indices of the view share an offset, by enumeration. */
static int overlaps_by_enumeration(int ndim, const int64_t *shape, const int64_t *strides)
{
    int64_t n = 1;
    for (int d = 0; d < ndim; d++)
        n *= shape[d];
    if (n < 2)
        return 0;
    uint64_t *off = malloc((size_t)n * sizeof(uint64_t));
    int64_t *tmp = malloc((size_t)n * sizeof(int64_t));
    offsets(ndim, shape, strides, n, tmp);
    for (int64_t i = 0; i < n; i++)
        off[i] = (uint64_t)tmp[i] ^ 0x8000000000000000ULL; /* signed order as unsigned */
    qsort(off, (size_t)n, sizeof(uint64_t), cmp_u64);
    int dup = 0;
    for (int64_t i = 1; i < n && !dup; i++)
        dup = off[i] == off[i - 1];
    free(off);
    free(tmp);
    return dup;
}

/* pw_check_tensor's overlap verdict equals enumeration: every 2-D view with
 * extents <= 6 and strides in [-7, 7], every 3-D view with extents <= 4 and
 * strides in [0, 6], and random 4-D views.  (Zero extents never overlap.) */
static void overlap_exhaustive(void)
{
    int64_t shape[4], strides[4];
    static float mem[1];
    int checked = 0;
#define PW_CHECK_OVERLAP(ND)                                                                   \
    do {                                                                                       \
        pw_tensor t = {mem, PW_FLOAT32, (ND), shape, strides};                                 \
        int64_t r, c;                                                                          \
        const pw_status got = pw_check_tensor(&t, 1, &r, &c);                                  \
        const int want = overlaps_by_enumeration((ND), shape, strides);                        \
        checked++;                                                                             \
        if ((got == PW_ERR_OVERLAP) != want || (got != PW_OK && got != PW_ERR_OVERLAP)) {      \
            failures++;                                                                        \
            fprintf(stderr, "overlap: shape (%lld, %lld, %lld, %lld)[:%d] strides (%lld, %lld, %lld, %lld): " \
                    "status %d, enumeration says %d\n", (long long)shape[0], (long long)shape[1], \
                    (long long)shape[2], (long long)shape[3], (ND), (long long)strides[0],       \
                    (long long)strides[1], (long long)strides[2], (long long)strides[3], got, want); \
        }                                                                                      \
    } while (0)
    shape[2] = shape[3] = strides[2] = strides[3] = 0;
    for (shape[0] = 1; shape[0] <= 6; shape[0]++)
        for (shape[1] = 1; shape[1] <= 6; shape[1]++)
            for (strides[0] = -7; strides[0] <= 7; strides[0]++)
                for (strides[1] = -7; strides[1] <= 7; strides[1]++)
                    PW_CHECK_OVERLAP(2);
    for (shape[0] = 1; shape[0] <= 4; shape[0]++)
        for (shape[1] = 1; shape[1] <= 4; shape[1]++)
            for (shape[2] = 1; shape[2] <= 4; shape[2]++)
                for (strides[0] = 0; strides[0] <= 6; strides[0]++)
                    for (strides[1] = 0; strides[1] <= 6; strides[1]++)
                        for (strides[2] = 0; strides[2] <= 6; strides[2]++)
                            PW_CHECK_OVERLAP(3);
    for (int i = 0; i < 20000; i++) {
        for (int d = 0; d < 4; d++) {
            shape[d] = between(1, 7);
            strides[d] = between(-40, 40);
        }
        PW_CHECK_OVERLAP(4);
    }
#undef PW_CHECK_OVERLAP
    (void)checked;
}


/* A rewire cancelled while it runs (two threads, a tensor large enough for
 * the helper): PW_ERR_CANCELLED with the tensor untouched, or PW_OK if it
 * finished first; either way both threads are done when it returns. */
typedef struct {
    pw_tensor t;
    pw_options opt;
    pw_seed seed;
    pw_status status;
} cancel_job;

static void cancel_worker(void *arg)
{
    cancel_job *j = arg;
    j->status = pw_rewire(&j->t, &j->opt, &j->seed);
}

static void cancel_midway(void)
{
    enum { R = 300, C = 400 };
    float *w = malloc(R * C * sizeof(float)), *before = malloc(R * C * sizeof(float));
    for (int i = 0; i < R * C; i++)
        w[i] = (float)(next() >> 40) / 16777216.0f - 0.5f;
    memcpy(before, w, R * C * sizeof(float));
    int64_t shape[2] = {R, C}, strides[2] = {C, 1};
    int cancelled = 0;
    for (int k = 0; k < 8; k++) {
        pw_cancel cancel;
        pw_cancel_init(&cancel);
        cancel_job j = {{w, PW_FLOAT32, 2, shape, strides}, {2, (pw_sampler)(k % 2), 1, &cancel, 2}, {1, 2, 3, 5}, PW_OK};
        pw_thread th;
        if (pw_thread_start(&th, cancel_worker, &j) != 0)
            return;
        struct timespec ts = {0, (long)(k + 1) * 300000L};
        nanosleep(&ts, NULL);
        pw_cancel_set(&cancel);
        pw_thread_join(&th);
        if (j.status == PW_ERR_CANCELLED) {
            cancelled++;
            if (memcmp(w, before, R * C * sizeof(float)) != 0) {
                failures++;
                fprintf(stderr, "cancel midway: a cancelled rewire changed the tensor\n");
            }
        } else if (j.status == PW_OK) {
            memcpy(before, w, R * C * sizeof(float));
        } else {
            failures++;
            fprintf(stderr, "cancel midway: status %d\n", (int)j.status);
        }
    }
    if (cancelled == 0)
        fprintf(stderr, "cancel midway: every rewire finished before its cancel (not a failure)\n");
    free(w);
    free(before);
}

/* Step slices address distinct elements and must be accepted (an earlier
 * overlap test refused them). */
static void step_slices(void)
{
    float mem[30] = {0};
    for (int i = 0; i < 30; i++)
        mem[i] = (float)i;
    int64_t shape[2] = {6, 3}, strides[2] = {5, 2};
    pw_tensor t = {mem, PW_FLOAT32, 2, shape, strides};
    int64_t r, c;
    if (pw_check_tensor(&t, 1, &r, &c) != PW_OK) {
        failures++;
        fprintf(stderr, "a (6, 5)[:, ::2] view (strides 5, 2) is refused\n");
    }
}


/* ---- digest: one hash over the results of a fixed list of cases ----
 *
 * Builds that must agree bit for bit (scalar -DPW_NO_SIMD, emulated 128-bit
 * PCG64, another compiler, each SIMD variant, any thread count) print the
 * same digest; tests/test_kernel_builds.py compares them.  The cases reach
 * the kernels' long-row paths (11-bit radix digits, guide tables, tiles,
 * huge weight ratios, ties, the numpy sampler's tiny-mass rounds). */

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9E3779B97F4A7C15ULL + (h << 6) + (h >> 2);
    return h * 0xFF51AFD7ED558CCDULL;
}

/* kind 0: bell-shaped; 1: few distinct values (ties); 2: +-0 and a few
 * normals; 3: float64 spanning ~600 decades; 4: all equal */
static uint64_t digest_value(pw_dtype dt, int kind)
{
    double v;
    switch (kind) {
    case 1: v = (double)between(-3, 3) / 4.0; break;
    case 2: v = between(0, 6) == 0 ? (double)between(-1000, 1000) / 300.0 : (next() & 1 ? -0.0 : 0.0); break;
    case 3: {
        const int e = (int)between(-300, 300);
        v = (next() & 1 ? -1.0 : 1.0) * (1.0 + (double)(next() >> 12) / 4503599627370496.0) * pow(2.0, e * 3.3);
        if (between(0, 3) == 0)
            v = 1e300;
        break;
    }
    case 4: v = 0.5; break;
    default: {
        double acc = 0.0;
        for (int k = 0; k < 4; k++)
            acc += (double)(next() >> 11) / 9007199254740992.0 - 0.5;
        v = acc * 0.05;
    }
    }
    switch (dt) {
    case PW_FLOAT64: { uint64_t b; memcpy(&b, &v, 8); return b; }
    case PW_FLOAT32: { float f = (float)v; uint32_t b; memcpy(&b, &f, 4); return b; }
    case PW_BFLOAT16: { float f = (float)v; uint32_t b; memcpy(&b, &f, 4); return b >> 16; }
    case PW_FLOAT16: { /* via bits of a float: truncate to the nearest half below, clamp to finite */
        float f = (float)v;
        uint32_t b;
        memcpy(&b, &f, 4);
        const uint32_t sign = (b >> 16) & 0x8000u;
        const int e = (int)((b >> 23) & 0xFF) - 127 + 15;
        if (e <= 0)
            return sign;
        if (e >= 31)
            return sign | 0x7BFFu;
        return sign | (uint32_t)(e << 10) | ((b >> 13) & 0x3FFu);
    }
    }
    return 0;
}

static uint64_t digest_case(int64_t rows, int64_t cols, pw_dtype dt, int kind, int transposed, pw_options opt,
                            uint64_t *h)
{
    const size_t es = pw_dtype_size(dt);
    const int64_t n = rows * cols;
    char *buf = malloc((size_t)(n > 0 ? n : 1) * es);
    for (int64_t i = 0; i < n; i++)
        store(buf + i * (int64_t)es, es, digest_value(dt, kind));
    int64_t shape[2] = {rows, cols}, strides[2] = {cols, 1};
    if (transposed) { /* the same memory seen as its transpose's transpose */
        strides[0] = 1;
        strides[1] = rows;
    }
    pw_tensor t = {buf, dt, 2, shape, strides};
    pw_seed seed = {next(), next(), next(), next() | 1};
    const pw_status s = pw_rewire(&t, &opt, &seed);
    *h = mix(*h, (uint64_t)s);
    for (int64_t i = 0; i < n; i++)
        *h = mix(*h, load(buf + i * (int64_t)es, es));
    *h = mix(mix(mix(mix(*h, seed.state_hi), seed.state_lo), seed.inc_hi), seed.inc_lo);
    free(buf);
    return (uint64_t)n;
}

static int digest(int threads)
{
    static const int64_t shapes[][2] = {
        {2, 2}, {3, 5}, {7, 3}, {1, 9}, {9, 1}, {17, 33}, {33, 17}, {64, 64}, {31, 1025}, {1025, 31},
        {100, 300}, {5, 2000}, {2000, 5}, {129, 1536}, {1537, 130}, {300, 4099}, {2, 40000},
    };
    uint64_t h = 0;
    int64_t total = 0;
    rng_state = 777;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int kind = 0; kind < 5; kind++)
            for (int dt = 0; dt < 4; dt++) {
                if (kind == 3 && dt != PW_FLOAT64)
                    continue;
                if (shapes[i][0] * shapes[i][1] > 200000 && (kind == 2 || kind == 4 || dt >= 2))
                    continue;
                for (int sampler = 0; sampler < 2; sampler++) {
                    pw_options opt = {(int)between(1, 2), (pw_sampler)sampler, (int)between(0, 1), NULL, threads};
                    total += digest_case(shapes[i][0], shapes[i][1], (pw_dtype)dt, kind, (int)between(0, 1), opt,
                                         &h);
                }
            }
#ifdef PW_U128_EMULATED
    const char *u128 = "emulated";
#else
    const char *u128 = "native";
#endif
    printf("kernel_fuzz digest %016llx (%lld elements rewired, threads=%d, uint128=%s, simd=%s)\n",
           (unsigned long long)h, (long long)total, threads, u128, pw_simd_selected());
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "digest") == 0)
        return digest(argc > 2 ? atoi(argv[2]) : 1);
    if (argc > 1 && strcmp(argv[1], "variants") == 0) { /* the SIMD variants this CPU runs */
        for (const char *const *v = pw_simd_variants(); *v; v++)
            printf("%s\n", *v);
        return 0;
    }
    int cases = argc > 1 ? atoi(argv[1]) : 3000;
    rng_state = argc > 2 ? strtoull(argv[2], NULL, 10) : 20260701;
    for (int i = 0; i < cases; i++)
        one_case(i);
    refusals();
    step_slices();
    overlap_exhaustive();
    cancel_midway();
    printf("kernel_fuzz: %d cases (%d rewired, %d refused as expected), %d failures\n", cases, rewired, refused,
           failures);
    return failures != 0;
}
