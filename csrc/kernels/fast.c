/* The fast sampler: exponential keys E_i / P_i (Efraimidis-Spirakis);
 * ascending key order is a successive sample without replacement with
 * weights P.
 *
 * Split in two so that a second thread can run the first part ahead:
 *  - pw_exponentials: the row's E_i (a ziggurat: one word and one multiply
 *    in ~99% of draws, no log), and their maximum -- strength-independent;
 *  - pw_choice_fast: keys, a radix sort on a short prefix of each key, and
 *    the runs of equal prefixes settled by the full key.
 * Since E_i <= E_max and P_i >= P_min, every key is at most E_max / P_min
 * (rounding is monotone), so the prefix window is fixed before any key
 * exists and key, prefix and sort word come from one loop.
 */
#include "internal.h"
#include "ziggurat.h"

/* Random words taken in stream order from a block filled ahead, then from
 * the generator itself. */
typedef struct {
    const uint64_t *buf;
    int64_t pos, len;
    pw_pcg64 *g;
} pw_draws;

static inline uint64_t draw64(pw_draws *d)
{
    return d->pos < d->len ? d->buf[d->pos++] : pw_pcg64_next64(d->g);
}

static inline double draw_double(pw_draws *d) { return pw_u53_double(draw64(d)); }

/* The strips' edges and the tail: about 1 draw in 90. */
static double exponential_slow(pw_draws *g, int i, double x)
{
    for (;;) {
        if (i == 0) /* the tail beyond r: memoryless, so r + Exp(1); (the
                       53-bit double is exact, so 1 - it is one rounding even if fused) */
            return PW_ZIG_R - log(1.0 - draw_double(g));
        const double y = pw_zig_f[i] + pw_product(draw_double(g), pw_zig_f[i + 1] - pw_zig_f[i]);
        if (y < exp(-x))
            return x;
        /* rejected: start over */
        const uint64_t r = draw64(g);
        i = (int)(r & 0xFF);
        x = pw_u53_double(r) * pw_zig_x[i];
        if (x < pw_zig_x[i + 1])
            return x;
    }
}

double pw_exponentials(pw_pcg64 *g, int64_t n, double *e, uint64_t *words)
{
    /* Exp(1) by the ziggurat method (Marsaglia and Tsang 2000).  The low 8
     * bits of a word pick the strip, the top 53 bits the position in it.
     * Every draw takes at least one word, so n words filled ahead are all
     * used and the stream is the same as drawing one at a time. */
    pw_pcg64_fill64(g, n, words);
    pw_draws src = {words, 0, n, g};
    double emax = 0.0;
    for (int64_t k = 0; k < n; k++) {
        const uint64_t r = draw64(&src);
        const int i = (int)(r & 0xFF);
        double x = pw_u53_double(r) * pw_zig_x[i];
        if (!(x < pw_zig_x[i + 1]))
            x = exponential_slow(&src, i, x);
        e[k] = x;
        emax = x > emax ? x : emax;
    }
    return emax;
}

/* Runs longer than this, of keys whose sort prefixes are equal, are settled
 * by a radix sort of their full keys instead of insertion. */
#define PW_RUN_INSERTION_MAX 16

/* Octaves of the prefix window below the keys' bound: 2**PW_OCTAVE_BITS.
 * Keys further below share prefix 0 and are ordered by the full key. */
#define PW_OCTAVE_BITS 5

/* order[a..b): column indices in column order whose keys share a prefix;
 * sorts them by full key (a stable sort: equal keys stay in column order). */
static void settle_run(pw_idx *order, int64_t a, int64_t b, const double *key, pw_idx *tmp)
{
    const int64_t len = b - a;
    if (len > PW_RUN_INSERTION_MAX) {
        pw_sort_idx_by_key(order + a, tmp, (const uint64_t *)(const void *)key, len);
        return;
    }
    for (int64_t i = a + 1; i < b; i++) {
        const pw_idx v = order[i];
        const double vk = key[v];
        int64_t j = i;
        while (j > a && key[order[j - 1]] > vk) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = v;
    }
}

void pw_fast_keys(const double *e, double emax, const double *st, double mn, int64_t n, const pw_fast_ws *ws,
                  const pw_simd_ops *simd)
{
    double *key = ws->key;
    uint64_t *words = ws->sortword;
    const double shift = fabs(mn);
    const double bound = emax / ((mn + shift) + 1.0); /* E_max / P_min >= every key */
    uint64_t kb;
    memcpy(&kb, &bound, 8);
    /* Non-negative doubles order like their bit patterns.  The prefix is
     * the key's bits above `base` -- PW_OCTAVE_BITS bits of octave, then
     * mantissa bits -- with the column in the low 32 bits of the sort word. */
    const int pbits = pw_prefix_bits(n);
    const uint64_t top = kb >> 52, window = ((uint64_t)1 << PW_OCTAVE_BITS) - 1;
    const uint64_t base = top >= window ? (top - window) << 52 : 0;
    const int sh = 52 + PW_OCTAVE_BITS - pbits; /* kb - base < 2**(52 + PW_OCTAVE_BITS) */
    double below; /* keys under this one share the bottom prefix */
    memcpy(&below, &base, 8);
    simd->fast_keys(e, st, shift, base, below, sh, n, key, words);
}

void pw_fast_order(int64_t n, pw_idx *order, const pw_fast_ws *ws, const pw_simd_ops *simd)
{
    const double *key = ws->key;
    uint64_t *words = ws->sortword;
    pw_sort_by_prefix(words, ws->sort_tmp, n);

    /* Runs of equal prefixes are in column order (the sort is stable);
     * settle each by the full key.  Most rows hold no run at all: one
     * vectorised pass finds out while it copies the columns out. */
    const int tie = simd->split_words(words, n, order);
    for (int64_t k = 1; tie && k < n; k++) {
        if ((uint32_t)(words[k] >> 32) != (uint32_t)(words[k - 1] >> 32))
            continue;
        const int64_t a = k - 1;
        while (k < n && (uint32_t)(words[k] >> 32) == (uint32_t)(words[k - 1] >> 32))
            k++;
        settle_run(order, a, k, key, ws->run_tmp);
    }
}

void pw_choice_fast(const double *e, double emax, const double *st, double mn, int64_t n, pw_idx *order,
                    const pw_fast_ws *ws, const pw_simd_ops *simd)
{
    pw_fast_keys(e, emax, st, mn, n, ws, simd);
    pw_fast_order(n, order, ws, simd);
}
