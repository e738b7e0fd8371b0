/* The floor: the irreducible work of one PA rewiring, step by step.
 *
 * A PA rewiring of an R x C float32 matrix has to, for every row but the
 * first of both passes (R - 1 rows of C, then C - 1 rows of R):
 *   1. sort the row's values,
 *   2. draw its random words (PCG64),
 *   3. turn them into exponentials,
 *   4. compute the keys E_i / P_i (and their sort words),
 *   5. sort the keys,
 *   6. scatter the sorted values to their targets, updating the strengths.
 * This program runs these steps, with the kernels' own code, over exactly
 * the rows a rewiring visits -- nothing else -- and times the loop: the
 * floor.  Each step's share is the difference between loops that stop
 * after it and before it (the random words' share of the exponentials
 * from a loop of words alone); the timer is read twice a loop, not per row.
 * Everything else a rewiring does (copying the tensor in and out, column
 * tiles, checks, the chain of dependencies between rows) is overhead
 * above it; benchmarks/bench_speed.py reports each sampler against it.
 *
 *   cc -O3 -std=c11 benchmarks/bench_floor.c csrc/kernels/[a-z]*.c -lm -lpthread -o /tmp/floor
 *   /tmp/floor ROWS COLS [REPEATS]
 *
 * Prints one line per step (ns per parameter, best of REPEATS in thread
 * CPU time) and the total; with --json, one JSON object instead.
 */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../csrc/kernels/internal.h"
#include "bench_floor.h"

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

enum { NSTEPS = 5 };
static const char *const step_names[NSTEPS] = {"value sort", "exponentials", "keys", "key sort", "scatter"};

static void fill(float *w, size_t n)
{
    uint64_t s = BENCH_SEED;
    for (size_t i = 0; i < n; i++)
        w[i] = bench_value(&s);
}

/* Buffers of one row's steps. */
typedef struct {
    uint32_t *vals, *vals_tmp;
    uint64_t *words;
    double *exps, *st;
    pw_idx *order;
    pw_fast_ws fast;
} floor_ws;

/* One pass over `rows` rows of `n` values at stride `n` in m, running the
 * first `steps` steps of every row (0: only the random words); returns its
 * thread CPU time.  Step k of a row sees what steps < k produced; without
 * the scatter the strengths stay those of row 0. */
static double one_pass(const float *m, int64_t rows, int64_t n, floor_ws *ws, int steps)
{
    const pw_row_ops ops = pw_row_ops_for(PW_FLOAT32);
    const pw_simd_ops *simd = pw_simd_current();
    float *out = malloc((size_t)n * sizeof(float));
    double *st = ws->st;
    pw_pcg64 g;
    pw_pcg64_set(&g, 0x1234, 0x5678, 0x9abc, 0xdef1);
    pw_range range;
    ops.accumulate(out, st, m, n, &range);
    const double t0 = cpu_now();
    for (int64_t r = 1; r < rows; r++) {
        if (steps == 0) {
            pw_pcg64_fill64(&g, n, ws->words);
            continue;
        }
        ops.prepare(ws->vals, ws->vals_tmp, m + r * n, n);
        if (steps < 2)
            continue;
        const double emax = pw_exponentials(&g, n, ws->exps, ws->words, simd); /* words included */
        if (steps < 3)
            continue;
        pw_fast_keys(ws->exps, emax, st, range.min, n, &ws->fast, simd);
        if (steps < 4)
            continue;
        pw_fast_order(n, ws->order, &ws->fast, simd);
        if (steps < 5)
            continue;
        ops.place(out, ws->vals, ws->order, st, n, &range);
    }
    const double t = cpu_now() - t0;
    free(out);
    return t;
}

int main(int argc, char **argv)
{
    int json = 0, pos = 0;
    int64_t arg[3] = {0, 0, 5};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (pos < 3)
            arg[pos++] = atoll(argv[i]);
    }
    if (pos < 2) {
        fprintf(stderr, "usage: %s ROWS COLS [REPEATS] [--json]\n", argv[0]);
        return 2;
    }
    const int64_t rows = arg[0], cols = arg[1], reps = arg[2];
    const size_t n = (size_t)(rows * cols);
    float *m = malloc(n * sizeof(float)), *mt = malloc(n * sizeof(float));
    fill(m, n);
    for (int64_t r = 0; r < rows; r++) /* the columns pass reads the transpose */
        for (int64_t c = 0; c < cols; c++)
            mt[c * rows + r] = m[r * cols + c];
    const size_t cap = (size_t)(rows > cols ? rows : cols);
    floor_ws ws;
    ws.vals = malloc(cap * 4);
    ws.vals_tmp = malloc(cap * 4);
    ws.words = malloc(cap * 8);
    ws.exps = malloc(cap * 8);
    ws.st = malloc(cap * 8);
    ws.order = malloc((cap + 1) * sizeof(pw_idx));
    ws.fast.key = malloc(cap * 8);
    ws.fast.sortword = malloc(cap * 8);
    ws.fast.sort_tmp = malloc(cap * 8);
    ws.fast.run_tmp = malloc(cap * sizeof(pw_idx));
    double best[NSTEPS + 1]; /* best[k]: the loop of the first k steps; best[0]: random words alone */
    for (int k = 0; k <= NSTEPS; k++)
        best[k] = 1e30;
    for (int64_t rep = 0; rep < reps; rep++)
        for (int k = 0; k <= NSTEPS; k++) {
            const double t = one_pass(m, rows, cols, &ws, k) + one_pass(mt, cols, rows, &ws, k);
            best[k] = t < best[k] ? t : best[k];
        }
    const double per = 1e9 / (double)n;
    double share[NSTEPS];
    for (int k = 1; k <= NSTEPS; k++) /* the loop up to step k less the loop before it */
        share[k - 1] = (best[k] - (k > 1 ? best[k - 1] : 0.0)) * per;
    if (json) {
        printf("{\"rows\": %lld, \"cols\": %lld, \"steps\": {", (long long)rows, (long long)cols);
        for (int k = 0; k < NSTEPS; k++)
            printf("%s\"%s\": %.3f", k ? ", " : "", step_names[k], share[k]);
        printf("}, \"random_words\": %.3f, \"floor_ns_per_param\": %.3f}\n", best[0] * per, best[NSTEPS] * per);
    } else {
        for (int k = 0; k < NSTEPS; k++) {
            printf("%-14s %6.2f ns/param", step_names[k], share[k]);
            if (k == 1)
                printf("  (of which random words: %.2f)", best[0] * per);
            printf("\n");
        }
        printf("%-14s %6.2f ns/param  (%lldx%lld, float32, best of %lld)\n", "floor", best[NSTEPS] * per,
               (long long)rows, (long long)cols, (long long)reps);
    }
    free(ws.vals);
    free(ws.vals_tmp);
    free(ws.words);
    free(ws.exps);
    free(ws.st);
    free(ws.order);
    free(ws.fast.key);
    free(ws.fast.sortword);
    free(ws.fast.sort_tmp);
    free(ws.fast.run_tmp);
    free(m);
    free(mt);
    return 0;
}
