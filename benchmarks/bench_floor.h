/* Test values shared by the kernel benchmarks (bench_floor.c,
 * bench_speed_kernel.c): bell-shaped, like an initialised layer's, from a
 * fixed xorshift stream so every run and program sees the same matrix. */
#ifndef PAREWIRE_BENCH_FLOOR_H
#define PAREWIRE_BENCH_FLOOR_H

#include <stddef.h>
#include <stdint.h>

/* The i-th value of the stream, i = 0, 1, ... in order: |v| < 0.1. */
static inline float bench_value(uint64_t *s)
{
    float acc = 0;
    for (int k = 0; k < 4; k++) { /* sum of 4 uniforms */
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        acc += (float)(*s >> 40) * (1.0f / 16777216.0f) - 0.5f;
    }
    return acc * 0.05f;
}

#define BENCH_SEED 88172645463325252ULL

#endif
