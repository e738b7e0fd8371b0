/* Runtime CPU dispatch of the few hot loops.
 *
 * Each loop is compiled several times from one source (simd_loops.h): for
 * the build's baseline ("portable") and, with gcc or clang on x86-64, for
 * AVX2 and AVX-512 through __attribute__((target)), so setup.py needs no
 * per-file flags and a wheel still runs on any x86-64.  The variants only
 * widen vectors: the arithmetic of every element is the same (no FMA, no
 * reassociation), so every variant gives the same bits.  A kernel call
 * reads the selected variant once and uses it throughout.
 */
#ifndef PAREWIRE_SIMD_H
#define PAREWIRE_SIMD_H

/* Included by internal.h, after pw_idx. */

#if !defined(PW_NO_SIMD) && (defined(__GNUC__) || defined(__clang__)) && \
    (defined(__x86_64__) || defined(__i386__))
#define PW_DISPATCH 1
#endif

typedef struct {
    const char *name;
    /* the fast sampler's keys: key_i = e_i / ((st_i + shift) + 1) and the
     * sort word (prefix << ib) | i, prefix = (bits - base) >> sh, or 0 for
     * keys below `below` (the double whose bits are base); ib = 32 for
     * 64-bit words */
    void (*fast_keys64)(const double *e, const double *st, double shift, uint64_t base, double below, int sh,
                        int64_t n, double *key, uint64_t *words);
    void (*fast_keys32)(const double *e, const double *st, double shift, uint64_t base, double below, int sh,
                        int ib, int64_t n, double *key, uint32_t *words);
    /* order_i = the column bits of words_i; returns whether two neighbours
     * share their prefix */
    int (*split_words64)(const uint64_t *words, int64_t n, pw_idx *order);
    int (*split_words32)(const uint32_t *words, int64_t n, int ib, pw_idx *order);
    /* the numpy sampler's lookup of a block of draws (the words): with
     * x = the word's 53-bit double, pos_d = guide[min(floor(x * dm), nb - 1)]
     * advanced past up to two cdf entries below x * total * (1 - 2**-49);
     * returns whether some pos_d may be short of the answer (its entry is
     * not above x * total * (1 + 2**-49)) */
    /* n exponentials from d into e (pw_exponentials_scalar); returns the
     * largest */
    double (*exponentials)(pw_draws *d, int64_t n, double *e);
    /* keeps the remaining columns and their probabilities whose seen byte
     * is 0, in order, at the front; returns how many */
    int64_t (*numpy_compact)(pw_idx *rem, double *pr, const unsigned char *seen, int64_t m);
    int (*numpy_lookup)(const uint64_t *words, int64_t len, double dm, int64_t nb, double total,
                        const pw_idx *guide, const double *c, pw_idx *pos);
} pw_simd_ops;

/* The variant selected for this process (pw_simd_select, else the
 * PAREWIRE_SIMD environment variable read once, else the best the CPU runs). */
const pw_simd_ops *pw_simd_current(void);

#endif
