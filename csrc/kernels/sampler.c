/* Weighted permutations: successive sampling without replacement.
 *
 * pw_choice_numpy reproduces numpy's Generator.choice(n, n, replace=False,
 * p=p) bit for bit (numpy/random/_generator.pyx): rounds of m = n - found
 * uniform draws, each located in the cdf of the columns not yet found,
 * keeping first appearances.  Two facts make a round O(m) instead of
 * numpy's O(n log n):
 *  - found columns have p = 0 and adding 0.0 is exact, so the cumulative
 *    sums at the remaining columns are the same whether the found ones are
 *    present or compacted away, and a draw can only land on a remaining one;
 *  - a guide table (first cdf index above b/m for each bucket b) turns each
 *    searchsorted(side='right') into a short forward scan.  The scan still
 *    compares against the exact normalised cdf, so the result is numpy's.
 *
 * pw_choice_fast draws the same distribution with exponential keys
 * E_i / w_i (Efraimidis–Spirakis): ascending key order is a successive
 * sample without replacement.  One pass of draws and one key sort.
 */
#include "internal.h"

double pw_pairwise_sum(const double *a, int64_t n)
{
    /* numpy's pairwise_sum (umath loops): blocks of 128 with 8 accumulators. */
    if (n < 8) {
        double res = 0.0;
        for (int64_t i = 0; i < n; i++)
            res += a[i];
        return res;
    }
    if (n <= 128) {
        double r[8];
        int64_t i;
        for (int k = 0; k < 8; k++)
            r[k] = a[k];
        for (i = 8; i < n - (n % 8); i += 8)
            for (int k = 0; k < 8; k++)
                r[k] += a[i + k];
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++)
            res += a[i];
        return res;
    }
    int64_t n2 = n / 2;
    n2 -= n2 % 8;
    return pw_pairwise_sum(a, n2) + pw_pairwise_sum(a + n2, n - n2);
}

void pw_choice_numpy(pw_pcg64 *g, const double *p, int64_t n, pw_idx *order, pw_row_ws *ws)
{
    pw_idx *rem = ws->rem, *guide = ws->guide;
    double *q = ws->q, *x = ws->x;
    unsigned char *seen = ws->seen;
    int64_t found = 0, m = n;

    for (int64_t i = 0; i < n; i++) {
        rem[i] = (pw_idx)i;
        seen[i] = 0;
    }
    while (m > 0) {
        /* numpy draws the whole round before looking anything up. */
        pw_pcg64_fill_double(g, m, x);

        /* cumsum over the remaining columns, then cdf /= cdf[-1]. */
        double acc = 0.0;
        for (int64_t k = 0; k < m; k++) {
            acc += p[rem[k]];
            q[k] = acc;
        }
        const double total = acc;
        for (int64_t k = 0; k < m; k++)
            q[k] = q[k] / total; /* a true division, as numpy does: q[m-1] == 1 */

        const double dm = (double)m;
        int64_t k = 0;
        for (int64_t b = 0; b < m; b++) {
            const double t = (double)b / dm;
            while (q[k] <= t)
                k++;
            guide[b] = (pw_idx)k;
        }
        for (int64_t d = 0; d < m; d++) {
            const double xv = x[d];
            int64_t b = (int64_t)(xv * dm);
            if (b >= m)
                b = m - 1;
            while (b > 0 && (double)b / dm > xv)
                b--; /* x * m rounded up across a bucket edge */
            int64_t j = guide[b];
            while (q[j] <= xv)
                j++; /* first cdf entry > x: searchsorted(side='right') */
            const pw_idx col = rem[j];
            if (!seen[col]) {
                seen[col] = 1;
                order[found++] = col;
            }
        }
        int64_t w = 0;
        for (int64_t j = 0; j < m; j++)
            if (!seen[rem[j]])
                rem[w++] = rem[j];
        m = w;
    }
}

void pw_choice_fast(pw_pcg64 *g, const double *w, int64_t n, pw_idx *order, pw_row_ws *ws)
{
    uint64_t *keys = ws->k64;
    double *full = ws->q; /* full key of each column */
    for (int64_t i = 0; i < n; i++) {
        /* u in (0, 1], so E = -log(u) is finite and >= 0. */
        const double u = (double)((pw_pcg64_next64(g) >> 11) + 1) * (1.0 / 9007199254740992.0);
        const double key = -log(u) / w[i];
        uint64_t bits;
        memcpy(&bits, &key, 8);
        full[i] = key;
        /* Non-negative doubles order like their bit patterns.  Sort on the
         * top 32 bits with the column riding in the low 32, then settle the
         * rare runs of equal prefixes by the full key, so column order breaks
         * a tie only when the full 64-bit keys are equal. */
        keys[i] = (bits & 0xFFFFFFFF00000000ULL) | (uint64_t)(pw_idx)i;
    }
    pw_sort_u64_by_hi32(keys, ws->t64, n);

    int64_t i = 0;
    while (i < n) {
        int64_t j = i + 1;
        while (j < n && (keys[j] >> 32) == (keys[i] >> 32))
            j++;
        for (int64_t a = i + 1; a < j; a++) { /* stable insertion sort of the run */
            const uint64_t v = keys[a];
            const double vk = full[(pw_idx)v];
            int64_t b = a;
            while (b > i && full[(pw_idx)keys[b - 1]] > vk) {
                keys[b] = keys[b - 1];
                b--;
            }
            keys[b] = v;
        }
        i = j;
    }
    for (int64_t k = 0; k < n; k++)
        order[k] = (pw_idx)keys[k];
}
