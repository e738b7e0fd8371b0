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
 * The fast sampler (fast.c) draws the same distribution with exponential
 * keys.
 */
#include "internal.h"

/* Below this remaining mass (2**-900) a round takes the normalised path. */
#define PW_TINY_MASS 1.1830521861667747e-271

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

/* The plain statement of numpy's round: normalise the cdf by true division,
 * then locate each draw with a guide table.  Used when the remaining mass is
 * so small (weights spanning ~270 decades) that the scaled comparisons of
 * pw_choice_numpy below could meet subnormal numbers. */
static void round_normalised(pw_pcg64 *g, const double *c, int64_t m, const pw_numpy_ws *ws,
                             pw_idx *order, int64_t *found)
{
    double *q = ws->quantile;
    pw_idx *guide = ws->guide;
    const double total = c[m - 1];
    for (int64_t k = 0; k < m; k++)
        q[k] = c[k] / total;
    const double dm = (double)m;
    int64_t k = 0;
    for (int64_t b = 0; b < m; b++) {
        const double t = (double)b / dm;
        while (q[k] <= t)
            k++;
        guide[b] = (pw_idx)k;
    }
    for (int64_t d = 0; d < m; d++) {
        const double xv = pw_pcg64_next_double(g);
        int64_t b = (int64_t)(xv * dm);
        if (b >= m)
            b = m - 1;
        while (b > 0 && (double)b / dm > xv)
            b--;
        int64_t j = guide[b];
        while (q[j] <= xv)
            j++;
        order[*found] = (pw_idx)j; /* a position; the caller maps it to rem[j] */
        *found += !ws->seen[j];
        ws->seen[j] = 1;
    }
}

/* Random words generated per block of draws. */
#define PW_DRAW_BLOCK 256

void pw_choice_numpy(pw_pcg64 *g, const double *w, double wtotal, int64_t n, pw_idx *order, const pw_numpy_ws *ws)
{
    pw_idx *rem = ws->remaining, *guide = ws->guide;
    double *c = ws->cdf;
    double *pr = ws->prob;
    unsigned char *seen = ws->seen;
    int64_t found = 0, m = n;

    for (int64_t i = 0; i < n; i++)
        pr[i] = w[i] / wtotal; /* the reference's p = P / sum(P) */
    for (int64_t i = 0; i < n; i++)
        rem[i] = (pw_idx)i;
    while (m > 0) {
        /* seen[j]: position j of this round's remaining columns was drawn.
         * Positions, not columns, go into order during the round (one load
         * less per draw); they become columns before the compaction. */
        const int64_t first = found;
        for (int64_t j = 0; j < m; j++)
            seen[j] = 0;
        double acc = 0.0;
        for (int64_t k = 0; k < m; k++) {
            acc += pr[k];
            c[k] = acc;
        }
        const double total = acc;
        if (!(total >= PW_TINY_MASS)) {
            round_normalised(g, c, m, ws, order, &found);
        } else {
            /* numpy compares each draw x with q = fl(c / total).  Without
             * dividing: c > x*total*(1 + 2^-49) implies fl(c / total) > x and
             * c < x*total*(1 - 2^-49) implies fl(c / total) < x (the margin
             * covers the roundings of x*total and of the bounds); only in
             * between is the division done.  Bucket b of the guide holds the
             * first cdf entry above b*total/m shrunk by 2^-46, a lower bound
             * of the answer for every x with floor(x*m) = b. */
            const int64_t nb = m;
            const double dm = (double)nb;
            /* guide[b] = #{k : bucket(k) <= b}, bucket(k) = floor(c[k] * inv) + 1;
             * inv is inflated by 2^-45 so that a counted k has c[k] below
             * b*total/nb*(1 - 2^-46): a lower bound of the answer for every x
             * with floor(x*nb) = b.  Buckets rise with k, so the count is
             * 1 + the last k in a bucket <= b: store k + 1 at each k's bucket
             * (later k overwrite), then a running maximum.  No branches and
             * no read-modify-write chains. */
            const double inv = dm / total * (1.0 + PW_2POW_M45);
            for (int64_t b = 0; b <= nb; b++)
                guide[b] = 0;
            for (int64_t k = 0; k < m; k++) {
                int64_t bk = (int64_t)(c[k] * inv) + 1;
                bk = bk > nb ? nb : bk;
                guide[bk] = (pw_idx)(k + 1);
            }
            pw_idx run = 0;
            for (int64_t b = 0; b < nb; b++) {
                run = guide[b] > run ? guide[b] : run;
                guide[b] = run;
            }
            /* the round's m draws in stream order (numpy takes them all
             * before any lookup; lookups consume nothing), in blocks that
             * stay in L1 */
            uint64_t words[PW_DRAW_BLOCK];
            for (int64_t d = 0; d < m; d++) {
                if (d % PW_DRAW_BLOCK == 0)
                    pw_pcg64_fill64(g, m - d < PW_DRAW_BLOCK ? m - d : PW_DRAW_BLOCK, words);
                const double xv = pw_u53_double(words[d % PW_DRAW_BLOCK]);
                int64_t b = (int64_t)(xv * dm);
                if (b >= nb)
                    b = nb - 1;
                int64_t j = guide[b];
                const double y = xv * total;
                const double hi = y * (1.0 + PW_2POW_M49), lo = y * (1.0 - PW_2POW_M49);
                /* Two branchless steps past entries surely <= x (c[m-1] = total
                 * > lo, so j stays in range), then a loop that rarely runs. */
                j += c[j] < lo;
                j += c[j] < lo;
                for (;;) {
                    const double cj = c[j];
                    if (cj > hi || (cj >= lo && cj / total > xv))
                        break; /* first j with fl(c[j] / total) > x: searchsorted(side='right') */
                    j++;
                }
                order[found] = (pw_idx)j; /* kept only on its first appearance */
                found += !seen[j];
                seen[j] = 1;
            }
        }
        for (int64_t t = first; t < found; t++)
            order[t] = rem[order[t]];
        int64_t kept = 0;
        for (int64_t j = 0; j < m; j++) {
            rem[kept] = rem[j];
            pr[kept] = pr[j];
            kept += !seen[j];
        }
        m = kept;
    }
}
