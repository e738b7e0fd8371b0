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
 * This program times each step alone, with the kernels' own code, over
 * exactly the rows a rewiring visits, and adds them up: the floor.
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

enum { VALUE_SORT, RNG, EXPONENTIALS, KEYS, KEY_SORT, SCATTER, NSTEPS };
static const char *const step_names[NSTEPS] = {"value sort", "RNG words", "exponentials", "keys",
                                               "key sort", "scatter"};

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

/* One pass: `rows` rows of `n` values at stride `n` in m.  Adds each step's
 * seconds to t[]. */
static void one_pass(const float *m, int64_t rows, int64_t n, floor_ws *ws, double t[NSTEPS])
{
    const pw_row_ops ops = pw_row_ops_for(PW_FLOAT32);
    const pw_simd_ops *simd = pw_simd_current();
    float *out = malloc((size_t)n * sizeof(float));
    double *st = ws->st;
    pw_pcg64 g;
    pw_pcg64_set(&g, 0x1234, 0x5678, 0x9abc, 0xdef1);
    pw_range range;
    ops.accumulate(out, st, m, n, &range);
    /* The steps run row by row, as in a rewiring, each timed on its own:
     * step k of row r sees what steps < k of row r produced. */
    for (int64_t r = 1; r < rows; r++) {
        const float *row = m + r * n;
        double t0 = cpu_now();
        ops.prepare(ws->vals, ws->vals_tmp, row, n);
        double t1 = cpu_now();
        pw_pcg64_fill64(&g, n, ws->words);
        double t2 = cpu_now();
        const double emax = pw_exponentials(&g, n, ws->exps, ws->words, simd);
        double t3 = cpu_now();
        pw_fast_keys(ws->exps, emax, st, range.min, n, &ws->fast, simd);
        double t4 = cpu_now();
        pw_fast_order(n, ws->order, &ws->fast, simd);
        double t5 = cpu_now();
        ops.place(out, ws->vals, ws->order, st, n, &range);
        double t6 = cpu_now();
        t[VALUE_SORT] += t1 - t0;
        t[RNG] += t2 - t1;
        /* pw_exponentials draws its own words: its time less the words' */
        t[EXPONENTIALS] += (t3 - t2) - (t2 - t1);
        t[KEYS] += t4 - t3;
        t[KEY_SORT] += t5 - t4;
        t[SCATTER] += t6 - t5;
    }
    free(out);
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
    double best[NSTEPS];
    for (int k = 0; k < NSTEPS; k++)
        best[k] = 1e30;
    for (int64_t rep = 0; rep < reps; rep++) {
        double t[NSTEPS] = {0};
        one_pass(m, rows, cols, &ws, t);
        one_pass(mt, cols, rows, &ws, t);
        for (int k = 0; k < NSTEPS; k++)
            best[k] = t[k] < best[k] ? t[k] : best[k];
    }
    double total = 0.0;
    if (json)
        printf("{\"rows\": %lld, \"cols\": %lld, \"steps\": {", (long long)rows, (long long)cols);
    for (int k = 0; k < NSTEPS; k++) {
        const double ns = best[k] / (double)n * 1e9;
        total += ns;
        if (json)
            printf("%s\"%s\": %.3f", k ? ", " : "", step_names[k], ns);
        else
            printf("%-14s %6.2f ns/param\n", step_names[k], ns);
    }
    if (json)
        printf("}, \"floor_ns_per_param\": %.3f}\n", total);
    else
        printf("%-14s %6.2f ns/param  (%lldx%lld, float32, best of %lld)\n", "floor", total, (long long)rows,
               (long long)cols, (long long)reps);
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
