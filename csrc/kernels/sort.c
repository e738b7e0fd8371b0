/* Sorting unsigned keys: LSD radix sorts, all stable.
 *
 * All digit histograms come from one read; a digit on which every key
 * agrees is skipped (common for the exponent byte of initialised weights).
 * Long arrays use 11-bit digits (three passes cover 32 bits instead of four;
 * the three 2048-entry histograms still fit in L1), short ones 8-bit digits
 * (fewer counters to clear and sum), the shortest insertion sort.
 */
#include <stdlib.h>

#include "internal.h"

#define PW_INSERTION_MAX 32

/* Stable insertion sort of a by the bits (v >> SHIFT) & MASK. */
#define PW_INSERTION(T, a, n, SHIFT, MASK)                               \
    for (int64_t i_ = 1; i_ < (n); i_++) {                               \
        const T v_ = (a)[i_];                                            \
        const T vk_ = (T)((v_ >> (SHIFT)) & (MASK));                     \
        int64_t j_ = i_;                                                 \
        while (j_ > 0 && (T)(((a)[j_ - 1] >> (SHIFT)) & (MASK)) > vk_) { \
            (a)[j_] = (a)[j_ - 1];                                       \
            j_--;                                                        \
        }                                                                \
        (a)[j_] = v_;                                                    \
    }

/* LSD radix sort of a[0..n) by NDIG digits of BITS bits starting at bit
 * FIRST; tmp holds n elements.  The result ends in a. */
#define PW_RADIX_BODY(T, a, tmp, n, FIRST, BITS, NDIG)                 \
    {                                                                  \
        enum { NB_ = 1 << (BITS) };                                    \
        uint32_t count[NDIG][NB_];                                     \
        memset(count, 0, sizeof count);                                \
        for (int64_t i = 0; i < (n); i++) {                            \
            const T v = (a)[i];                                        \
            for (int d = 0; d < (NDIG); d++)                           \
                count[d][(v >> ((FIRST) + (BITS) * d)) & (NB_ - 1)]++; \
        }                                                              \
        T *src = (a), *dst = (tmp);                                    \
        for (int d = 0; d < (NDIG); d++) {                             \
            const int shift = (FIRST) + (BITS) * d;                    \
            uint32_t *c = count[d];                                    \
            if (c[(src[0] >> shift) & (NB_ - 1)] == (uint32_t)(n))     \
                continue; /* every key has this digit */               \
            uint32_t sum = 0;                                          \
            for (int b = 0; b < NB_; b++) {                            \
                const uint32_t k = c[b];                               \
                c[b] = sum;                                            \
                sum += k;                                              \
            }                                                          \
            for (int64_t i = 0; i < (n); i++) {                        \
                const T v = src[i];                                    \
                dst[c[(v >> shift) & (NB_ - 1)]++] = v;                \
            }                                                          \
            T *s = src;                                                \
            src = dst;                                                 \
            dst = s;                                                   \
        }                                                              \
        if (src != (a))                                                \
            memcpy((a), src, (size_t)(n) * sizeof(T));                 \
    }

/* Defines NAME(a, tmp, n): PW_RADIX_BODY with these digits. */
#define PW_DEFINE_RADIX(NAME, T, FIRST, BITS, NDIG) \
    static void NAME(T *a, T *tmp, int64_t n) PW_RADIX_BODY(T, a, tmp, n, FIRST, BITS, NDIG)

void pw_sort_u16(uint16_t *a, uint16_t *tmp, int64_t n)
{
    if (n <= PW_INSERTION_MAX) {
        PW_INSERTION(uint16_t, a, n, 0, 0xFFFFu)
        return;
    }
    PW_RADIX_BODY(uint16_t, a, tmp, n, 0, 8, 2)
}

/* Finishes a sort that is already ordered by a prefix of the bits: an
 * insertion pass that moves each element back past larger ones.  Returns 0
 * if that took more than `budget` moves (many equal prefixes), leaving a
 * permutation of the input for the caller to sort another way. */
#define PW_DEFINE_FINISH(NAME, T)                    \
    static int NAME(T *a, int64_t n, int64_t budget) \
    {                                                \
        for (int64_t i = 1; i < n; i++) {            \
            const T v = a[i];                        \
            if (a[i - 1] <= v)                       \
                continue;                            \
            int64_t j = i;                           \
            do {                                     \
                a[j] = a[j - 1];                     \
                j--;                                 \
            } while (j > 0 && a[j - 1] > v);         \
            a[j] = v;                                \
            budget -= i - j;                         \
            if (budget < 0)                          \
                return 0;                            \
        }                                            \
        return 1;                                    \
    }

/* Rows at least this long sort with 11-bit digits. */
#define PW_WIDE_DIGITS_MIN 1024

/* Value rows: two radix passes on the top 16 (short rows) or 22 bits, then
 * an insertion pass over the nearly sorted result -- half the passes of a
 * full radix sort on weights, whose top bits are nearly all distinct.  Rows
 * with many equal prefixes (e.g. quantised weights) exceed the insertion
 * budget and get the full radix sort: 8-bit digits, or for long rows 11-bit
 * ones (32 bits: digits of 11, 11 and 10 bits; 64 bits: 6 digits of 11
 * bits, the top one has 9).  Defines NAME for BITS-bit keys of type T, with
 * its radix passes and its insertion pass as NAME_top16, NAME_top22,
 * NAME_full8, NAME_full11 and NAME_finish. */
#define PW_DEFINE_VALUE_SORT(NAME, T, BITS)                      \
    PW_DEFINE_RADIX(NAME##_top16, T, (BITS) - 16, 8, 2)          \
    PW_DEFINE_RADIX(NAME##_top22, T, (BITS) - 22, 11, 2)         \
    PW_DEFINE_RADIX(NAME##_full8, T, 0, 8, (BITS) / 8)           \
    PW_DEFINE_RADIX(NAME##_full11, T, 0, 11, ((BITS) + 10) / 11) \
    PW_DEFINE_FINISH(NAME##_finish, T)                           \
    void NAME(T *a, T *tmp, int64_t n)                           \
    {                                                            \
        if (n <= PW_INSERTION_MAX) {                             \
            PW_INSERTION(T, a, n, 0, ~(T)0)                      \
            return;                                              \
        }                                                        \
        const int wide = n >= PW_WIDE_DIGITS_MIN;                \
        if (wide)                                                \
            NAME##_top22(a, tmp, n);                             \
        else                                                     \
            NAME##_top16(a, tmp, n);                             \
        if (NAME##_finish(a, n, 2 * n))                          \
            return;                                              \
        if (wide)                                                \
            NAME##_full11(a, tmp, n);                            \
        else                                                     \
            NAME##_full8(a, tmp, n);                             \
    }

PW_DEFINE_VALUE_SORT(pw_sort_u32, uint32_t, 32)
PW_DEFINE_VALUE_SORT(pw_sort_u64, uint64_t, 64)

PW_DEFINE_RADIX(radix_hi_11, uint64_t, 32, 11, 2)

void pw_sort_by_prefix(uint64_t *a, uint64_t *tmp, int64_t n)
{
    if (n <= PW_INSERTION_MAX) {
        PW_INSERTION(uint64_t, a, n, 32, 0xFFFFFFFFULL)
    } else {
        radix_hi_11(a, tmp, n);
    }
}

static void radix_u32_hi8(uint32_t *a, uint32_t *tmp, int64_t n, int first)
{
    PW_RADIX_BODY(uint32_t, a, tmp, n, first, 8, 2)
}

static void radix_u32_hi10(uint32_t *a, uint32_t *tmp, int64_t n, int first)
{
    PW_RADIX_BODY(uint32_t, a, tmp, n, first, 10, 2)
}

void pw_sort_u32_prefix(uint32_t *a, uint32_t *tmp, int64_t n, int first, int bits)
{
    if (n <= PW_INSERTION_MAX) {
        PW_INSERTION(uint32_t, a, n, first, 0xFFFFFFFFu)
    } else if (bits <= 16) {
        radix_u32_hi8(a, tmp, n, first);
    } else {
        radix_u32_hi10(a, tmp, n, first);
    }
}

void pw_sort_idx_by_key(pw_idx *idx, pw_idx *tmp, const uint64_t *key, int64_t n)
{
    if (n <= PW_INSERTION_MAX) {
        for (int64_t i = 1; i < n; i++) {
            const pw_idx v = idx[i];
            const uint64_t vk = key[v];
            int64_t j = i;
            while (j > 0 && key[idx[j - 1]] > vk) {
                idx[j] = idx[j - 1];
                j--;
            }
            idx[j] = v;
        }
        return;
    }
    pw_idx *src = idx, *dst = tmp;
    for (int shift = 0; shift < 64; shift += 8) {
        uint32_t c[256];
        memset(c, 0, sizeof c);
        for (int64_t i = 0; i < n; i++)
            c[(key[src[i]] >> shift) & 0xFF]++;
        if (c[(key[src[0]] >> shift) & 0xFF] == (uint32_t)n)
            continue;
        uint32_t sum = 0;
        for (int b = 0; b < 256; b++) {
            const uint32_t k = c[b];
            c[b] = sum;
            sum += k;
        }
        for (int64_t i = 0; i < n; i++)
            dst[c[(key[src[i]] >> shift) & 0xFF]++] = src[i];
        pw_idx *s = src;
        src = dst;
        dst = s;
    }
    if (src != idx)
        memcpy(idx, src, (size_t)n * sizeof(pw_idx));
}
