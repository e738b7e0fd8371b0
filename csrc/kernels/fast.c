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

static inline uint64_t draw64(pw_draws *d)
{
    return d->pos < d->len ? d->buf[d->pos++] : pw_pcg64_next64(d->g);
}

static inline double draw_double(pw_draws *d) { return pw_u53_double(draw64(d)); }

/* The strips' edges and the tail: about 1 draw in 90. */
double pw_exponential_slow(pw_draws *d, int i, double x)
{
    for (;;) {
        if (i == 0) /* the tail beyond r: memoryless, so r + Exp(1); (the
                       53-bit double is exact, so 1 - it is one rounding even if fused) */
            return PW_ZIG_R - log(1.0 - draw_double(d));
        const double y = pw_zig_f[i] + pw_product(draw_double(d), pw_zig_f[i + 1] - pw_zig_f[i]);
        if (y < exp(-x))
            return x;
        /* rejected: start over */
        const uint64_t r = draw64(d);
        i = (int)(r & 0xFF);
        x = pw_u53_double(r) * pw_zig_x[i];
        if (x < pw_zig_x[i + 1])
            return x;
    }
}

double pw_exponentials_scalar(pw_draws *d, int64_t n, double *e, double emax)
{
    /* Exp(1) by the ziggurat method (Marsaglia and Tsang 2000).  The low 8
     * bits of a word pick the strip, the top 53 bits the position in it. */
    for (int64_t k = 0; k < n; k++) {
        const uint64_t r = draw64(d);
        const int i = (int)(r & 0xFF);
        double x = pw_u53_double(r) * pw_zig_x[i];
        if (!(x < pw_zig_x[i + 1]))
            x = pw_exponential_slow(d, i, x);
        e[k] = x;
        emax = x > emax ? x : emax;
    }
    return emax;
}

double pw_exponentials(pw_pcg64 *g, int64_t n, double *e, uint64_t *words, const pw_simd_ops *simd)
{
    /* Every draw takes at least one word, so n words filled ahead are all
     * used and the stream is the same as drawing one at a time. */
    pw_pcg64_fill64(g, n, words);
    pw_draws d = {words, 0, n, g};
    return simd->exponentials(&d, n, e);
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

/* Sort words: (key prefix << ib) | column, ib index bits.  Rows of up to
 * 2**PW_WORD32_MAX_BITS columns use 32-bit words (half the bytes to move;
 * 16-bit prefixes below 1024 columns, else 32 - ib bits, at most 20),
 * longer ones 64-bit words with ib = 32 and 22-bit prefixes. */
#define PW_WORD32_MAX_BITS 13

typedef struct {
    int wide;  /* 64-bit words */
    int ib;    /* bits of the column index */
    int pbits; /* bits of the prefix */
} pw_word_layout;

static pw_word_layout word_layout(int64_t n)
{
    pw_word_layout l;
    int b = 1;
    while (b < 32 && ((int64_t)1 << b) < n)
        b++;
    l.wide = b > PW_WORD32_MAX_BITS;
    l.ib = l.wide ? 32 : b;
    l.pbits = l.wide ? 22 : n < 1024 ? 16 : (32 - b < 20 ? 32 - b : 20);
    return l;
}

void pw_fast_keys(const double *e, double emax, const double *st, double mn, int64_t n, const pw_fast_ws *ws,
                  const pw_simd_ops *simd)
{
    const double shift = fabs(mn);
    const double bound = emax / ((mn + shift) + 1.0); /* E_max / P_min >= every key */
    uint64_t kb;
    memcpy(&kb, &bound, 8);
    /* Non-negative doubles order like their bit patterns.  The prefix is
     * the key's bits above `base` -- PW_OCTAVE_BITS bits of octave, then
     * mantissa bits -- above the column in the sort word. */
    const pw_word_layout l = word_layout(n);
    const uint64_t top = kb >> 52, window = ((uint64_t)1 << PW_OCTAVE_BITS) - 1;
    const uint64_t base = top >= window ? (top - window) << 52 : 0;
    const int sh = 52 + PW_OCTAVE_BITS - l.pbits; /* kb - base < 2**(52 + PW_OCTAVE_BITS) */
    double below;                                 /* keys under this one share the bottom prefix */
    memcpy(&below, &base, 8);
    if (l.wide)
        simd->fast_keys64(e, st, shift, base, below, sh, n, ws->key, ws->sortword);
    else
        simd->fast_keys32(e, st, shift, base, below, sh, l.ib, n, ws->key, (uint32_t *)ws->sortword);
}

void pw_fast_order(int64_t n, pw_idx *order, const pw_fast_ws *ws, const pw_simd_ops *simd)
{
    const pw_word_layout l = word_layout(n);
    const double *key = ws->key;
    /* Runs of equal prefixes are in column order (the sort is stable);
     * settle each by the full key.  Most rows hold no run at all: one
     * vectorised pass finds out while it copies the columns out. */
    if (l.wide) {
        uint64_t *words = ws->sortword;
        pw_sort_by_prefix(words, ws->sort_tmp, n);
        if (!simd->split_words64(words, n, order))
            return;
        for (int64_t k = 1; k < n; k++) {
            if ((words[k] ^ words[k - 1]) >> 32)
                continue;
            const int64_t a = k - 1;
            while (k < n && !((words[k] ^ words[k - 1]) >> 32))
                k++;
            settle_run(order, a, k, key, ws->run_tmp);
        }
    } else {
        uint32_t *words = (uint32_t *)ws->sortword;
        pw_sort_u32_prefix(words, (uint32_t *)ws->sort_tmp, n, l.ib, l.pbits);
        if (!simd->split_words32(words, n, l.ib, order))
            return;
        for (int64_t k = 1; k < n; k++) {
            if ((words[k] ^ words[k - 1]) >> l.ib)
                continue;
            const int64_t a = k - 1;
            while (k < n && !((words[k] ^ words[k - 1]) >> l.ib))
                k++;
            settle_run(order, a, k, key, ws->run_tmp);
        }
    }
}

void pw_choice_fast(const double *e, double emax, const double *st, double mn, int64_t n, pw_idx *order,
                    const pw_fast_ws *ws, const pw_simd_ops *simd)
{
    pw_fast_keys(e, emax, st, mn, n, ws, simd);
    pw_fast_order(n, order, ws, simd);
}
