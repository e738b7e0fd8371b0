/* Sorting unsigned keys: LSD radix with 8-bit digits.
 *
 * All digit histograms come from one read; a digit on which every key
 * agrees is skipped (common for the exponent byte of initialised weights).
 * Short arrays use insertion sort.  Every sort here is stable.
 */
#include <stdlib.h>

#include "internal.h"

#define PW_INSERTION_MAX 48

#define PW_DEFINE_RADIX(NAME, T, FIRST, NDIG)                                     \
    void NAME(T *a, T *tmp, int64_t n)                                            \
    {                                                                             \
        if (n < 2)                                                                \
            return;                                                               \
        if (n <= PW_INSERTION_MAX) {                                              \
            for (int64_t i = 1; i < n; i++) {                                     \
                T v = a[i];                                                       \
                T vk = (T)(v >> (8 * (FIRST)));                                   \
                int64_t j = i;                                                    \
                while (j > 0 && (T)(a[j - 1] >> (8 * (FIRST))) > vk) {            \
                    a[j] = a[j - 1];                                              \
                    j--;                                                          \
                }                                                                 \
                a[j] = v;                                                         \
            }                                                                     \
            return;                                                               \
        }                                                                         \
        uint32_t count[NDIG][256];                                                \
        memset(count, 0, sizeof count);                                           \
        for (int64_t i = 0; i < n; i++) {                                         \
            T v = a[i];                                                           \
            for (int d = 0; d < (NDIG); d++)                                      \
                count[d][(v >> (8 * ((FIRST) + d))) & 0xFF]++;                    \
        }                                                                         \
        T *src = a, *dst = tmp;                                                   \
        for (int d = 0; d < (NDIG); d++) {                                        \
            const int shift = 8 * ((FIRST) + d);                                  \
            uint32_t *c = count[d];                                               \
            if (c[(src[0] >> shift) & 0xFF] == (uint32_t)n)                       \
                continue; /* every key has this digit */                          \
            uint32_t sum = 0;                                                     \
            for (int b = 0; b < 256; b++) {                                       \
                uint32_t k = c[b];                                                \
                c[b] = sum;                                                       \
                sum += k;                                                         \
            }                                                                     \
            for (int64_t i = 0; i < n; i++) {                                     \
                T v = src[i];                                                     \
                dst[c[(v >> shift) & 0xFF]++] = v;                                \
            }                                                                     \
            T *s = src;                                                           \
            src = dst;                                                            \
            dst = s;                                                              \
        }                                                                         \
        if (src != a)                                                             \
            memcpy(a, src, (size_t)n * sizeof(T));                                \
    }

PW_DEFINE_RADIX(pw_sort_u16, uint16_t, 0, 2)
PW_DEFINE_RADIX(pw_sort_u32, uint32_t, 0, 4)
PW_DEFINE_RADIX(pw_sort_u64, uint64_t, 0, 8)
PW_DEFINE_RADIX(pw_sort_u64_by_hi32, uint64_t, 4, 4)
