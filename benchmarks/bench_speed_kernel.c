/* Times pw_rewire directly, without Python, for profiling the kernels.
 *
 *   cc -O3 -std=c11 -Icsrc/kernels benchmarks/bench_speed_kernel.c csrc/kernels/[lprs]*.c -lm -o /tmp/bk
 *   /tmp/bk ROWS COLS SAMPLER(0 numpy, 1 fast) REPEATS
 *
 * Also useful under -fsanitize=address,undefined, and with
 * -DPW_EMULATE_UINT128 (the checksums must not change).
 *
 * Prints ns per parameter (best of REPEATS) and a checksum of the result so
 * that kernel changes meant to be exact can be compared run to run.
 */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "parewire.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); /* CPU time: robust to a busy machine */
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 5)
        return 2;
    int64_t rows = atoll(argv[1]), cols = atoll(argv[2]);
    int sampler = atoi(argv[3]), reps = atoi(argv[4]);
    size_t n = (size_t)(rows * cols);
    float *orig = malloc(n * sizeof(float)), *w = malloc(n * sizeof(float));
    uint64_t s = 88172645463325252ULL;
    for (size_t i = 0; i < n; i++) { /* xorshift uniforms, sum of 4 ~ bell shaped */
        float acc = 0;
        for (int k = 0; k < 4; k++) {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            acc += (float)(s >> 40) * (1.0f / 16777216.0f) - 0.5f;
        }
        orig[i] = acc * 0.05f;
    }
    int64_t shape[2] = {rows, cols}, strides[2] = {cols, 1};
    pw_tensor t = {w, PW_FLOAT32, 2, shape, strides};
    pw_options opt = {2, (pw_sampler)sampler, 1, NULL, 1};
    double best = 1e30;
    uint64_t sum = 0;
    for (int r = 0; r < reps; r++) {
        memcpy(w, orig, n * sizeof(float));
        pw_seed seed = {0x1234, 0x5678, 0x9abc, 0xdef1};
        double t0 = now();
        pw_status st = pw_rewire(&t, &opt, &seed);
        double dt = now() - t0;
        if (st != PW_OK)
            return 1;
        best = dt < best ? dt : best;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t b;
        memcpy(&b, &w[i], 4);
        sum = sum * 1000003u + b;
    }
    free(orig);
    free(w);
    printf("%lldx%lld sampler=%d  %.2f ns/param  checksum %016llx\n", (long long)rows, (long long)cols, sampler,
           best / n * 1e9, (unsigned long long)sum);
    return 0;
}
