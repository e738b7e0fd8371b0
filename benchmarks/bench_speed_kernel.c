/* Times pw_rewire directly, without Python, for profiling the kernels.
 *
 *   cc -O3 -std=c11 benchmarks/bench_speed_kernel.c csrc/kernels/[a-z]*.c -lm -lpthread -o /tmp/bk
 *   /tmp/bk ROWS COLS SAMPLER(0 numpy, 1 fast) REPEATS [THREADS] [DTYPE(0 f32, 1 f64, 2 f16, 3 bf16)]
 *
 * Prints ns per parameter -- the best of REPEATS in wall time and in process
 * CPU time (all threads) -- and a checksum of the result, so kernel
 * changes meant to be exact can be compared run to run (with
 * -DPW_EMULATE_UINT128, -DPW_NO_SIMD, PAREWIRE_SIMD=<variant> or another
 * thread count the checksum must not change).  Instruction counts of the
 * kernel alone:
 *
 *   valgrind --tool=callgrind --toggle-collect=pw_rewire /tmp/bk 512 4608 1 1
 */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../csrc/kernels/parewire.h"
#include "bench_floor.h"

static double now(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* The benchmarks' bell-shaped values in the given format. */
static void fill(void *w, size_t n, pw_dtype dt)
{
    uint64_t s = BENCH_SEED;
    for (size_t i = 0; i < n; i++) {
        const float v = bench_value(&s);
        uint32_t b;
        memcpy(&b, &v, 4);
        switch (dt) {
        case PW_FLOAT32: ((float *)w)[i] = v; break;
        case PW_FLOAT64: ((double *)w)[i] = v; break;
        case PW_BFLOAT16: ((uint16_t *)w)[i] = (uint16_t)(b >> 16); break;
        case PW_FLOAT16: { /* truncated to half precision; |v| < 0.1 */
            const int e = (int)((b >> 23) & 0xFF) - 127 + 15;
            ((uint16_t *)w)[i] = (uint16_t)(((b >> 16) & 0x8000u) | (e <= 0 ? 0 : (uint32_t)(e << 10) | ((b >> 13) & 0x3FFu)));
            break;
        }
        }
    }
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: %s ROWS COLS SAMPLER REPEATS [THREADS] [DTYPE]\n", argv[0]);
        return 2;
    }
    const int64_t rows = atoll(argv[1]), cols = atoll(argv[2]);
    const int sampler = atoi(argv[3]), reps = atoi(argv[4]);
    const int threads = argc > 5 ? atoi(argv[5]) : 1;
    const pw_dtype dt = argc > 6 ? (pw_dtype)atoi(argv[6]) : PW_FLOAT32;
    const size_t n = (size_t)(rows * cols), es = pw_dtype_size(dt);
    char *orig = malloc(n * es), *w = malloc(n * es);
    fill(orig, n, dt);
    int64_t shape[2] = {rows, cols}, strides[2] = {cols, 1};
    pw_tensor t = {w, dt, 2, shape, strides};
    pw_options opt = {2, (pw_sampler)sampler, 1, NULL, threads};
    double best = 1e30, best_wall = 1e30;
    for (int r = 0; r < reps; r++) {
        memcpy(w, orig, n * es);
        pw_seed seed = {0x1234, 0x5678, 0x9abc, 0xdef1};
        const double t0 = now(CLOCK_PROCESS_CPUTIME_ID), w0 = now(CLOCK_MONOTONIC);
        const pw_status st = pw_rewire(&t, &opt, &seed);
        const double dt_s = now(CLOCK_PROCESS_CPUTIME_ID) - t0, dw = now(CLOCK_MONOTONIC) - w0;
        if (st != PW_OK) {
            fprintf(stderr, "pw_rewire: status %d\n", (int)st);
            return 1;
        }
        best = dt_s < best ? dt_s : best;
        best_wall = dw < best_wall ? dw : best_wall;
    }
    uint64_t sum = 0;
    for (size_t i = 0; i < n * es; i++)
        sum = sum * 1000003u + (unsigned char)w[i];
    free(orig);
    free(w);
    printf("%lldx%lld sampler=%d threads=%d dtype=%d  wall %.2f  cpu %.2f ns/param  checksum %016llx\n",
           (long long)rows, (long long)cols, sampler, threads, (int)dt, best_wall / (double)n * 1e9,
           best / (double)n * 1e9, (unsigned long long)sum);
    return 0;
}
