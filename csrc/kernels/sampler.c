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

/* Random words taken per block of draws. */
#define PW_DRAW_BLOCK 256

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
static void round_normalised(pw_words *src, const double *c, int64_t m, const pw_numpy_ws *ws, pw_idx *order,
                             int64_t *found)
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
    uint64_t words[PW_DRAW_BLOCK];
    for (int64_t d = 0; d < m; d++) {
        if (d % PW_DRAW_BLOCK == 0)
            pw_words_take(src, m - d < PW_DRAW_BLOCK ? m - d : PW_DRAW_BLOCK, words);
        const double xv = pw_u53_double(words[d % PW_DRAW_BLOCK]);
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

/* A lower bound of a sum of m non-negative doubles, whatever order it is
 * added in, from an estimate `est` added in any other order: both are
 * within (m - 1) u of the exact sum (u = 2**-53), and m < 2**32 makes
 * that less than 2**-20 of it. */
#define PW_SUM_LOWER(est) ((est) * (1.0 - 1.0 / 262144.0))

/* guide[b] = #{k : bucket(k) <= b} for bucket(k) = floor(c[k] * inv) + 1,
 * from the bucket of each k written as k + 1 (later k overwrite) and a
 * running maximum; the running maximum is left to the caller. */
static inline void guide_mark(pw_idx *guide, double ck, int64_t k, double inv, int64_t nb)
{
    int64_t bk = (int64_t)(ck * inv) + 1;
    bk = bk > nb ? nb : bk;
    guide[bk] = (pw_idx)(k + 1);
}

void pw_choice_numpy(pw_words *src, const double *w, double wtotal, int64_t n, pw_idx *order,
                     const pw_numpy_ws *ws, const pw_simd_ops *simd)
{
    pw_idx *rem = ws->remaining, *guide = ws->guide;
    double *c = ws->cdf;
    double *pr = ws->prob;
    unsigned char *seen = ws->seen;
    int64_t found = 0, m = n;

    for (int64_t i = 0; i < n; i++)
        rem[i] = (pw_idx)i;
    /* The round's total -- the cdf's last entry -- is needed for the guide
     * table, but a lower bound of it is known before the sum: round one's
     * probabilities P / sum(P) add up to 1 within rounding, later rounds'
     * estimate comes from the compaction.  A lower bound inflates the
     * bucket scale, which only lowers the guide (still never past the
     * answer), so the guide is built inside the cumulative sum, in the slots
     * the chain of dependent additions leaves idle. */
    double est = 1.0;
    while (m > 0) {
        /* seen[j]: position j of this round's remaining columns was drawn.
         * Positions, not columns, go into order during the round (one load
         * less per draw); they become columns before the compaction. */
        const int64_t first = found;
        for (int64_t j = 0; j < m; j++)
            seen[j] = 0;
        const int64_t nb = m;
        const double dm = (double)nb;
        const double low = PW_SUM_LOWER(est);
        /* guide[b] = #{k : bucket(k) <= b}, bucket(k) = floor(c[k] * inv) + 1;
         * inv is inflated by 2^-45 (and by total / low >= 1) so that a counted
         * k has c[k] below b*total/nb*(1 - 2^-46): a lower bound of the
         * answer for every x with floor(x*nb) = b.  Buckets rise with k, so
         * the count is 1 + the last k in a bucket <= b. */
        const int inline_guide = low >= PW_TINY_MASS;
        const double inv = inline_guide ? dm / low * (1.0 + PW_2POW_M45) : 0.0;
        for (int64_t b = 0; b <= nb; b++)
            guide[b] = 0;
        double acc = 0.0;
        if (first == 0) { /* round one: the reference's p = P / sum(P), here */
            for (int64_t k = 0; k < m; k++) {
                pr[k] = w[k] / wtotal;
                acc += pr[k];
                c[k] = acc;
                guide_mark(guide, acc, k, inv, nb);
            }
        } else {
            for (int64_t k = 0; k < m; k++) {
                acc += pr[k];
                c[k] = acc;
                guide_mark(guide, acc, k, inv, nb);
            }
        }
        c[m] = INFINITY; /* a sentinel: lookups may read one past */
        const double total = acc;
        if (!(total >= PW_TINY_MASS)) {
            round_normalised(src, c, m, ws, order, &found);
        } else {
            if (!inline_guide) { /* the estimate was too small to scale by: build it now */
                const double inv_t = dm / total * (1.0 + PW_2POW_M45);
                for (int64_t b = 0; b <= nb; b++)
                    guide[b] = 0;
                for (int64_t k = 0; k < m; k++)
                    guide_mark(guide, c[k], k, inv_t, nb);
            }
            pw_idx run = 0;
            for (int64_t b = 0; b < nb; b++) {
                run = guide[b] > run ? guide[b] : run;
                guide[b] = run;
            }
            /* numpy compares each draw x with q = fl(c / total).  Without
             * dividing: c > x*total*(1 + 2^-49) implies fl(c / total) > x and
             * c < x*total*(1 - 2^-49) implies fl(c / total) < x (the margin
             * covers the roundings of x*total and of the bounds); only in
             * between is the division done.  The round's m draws come in
             * stream order (numpy takes them all before any lookup; lookups
             * consume nothing), in blocks that stay in L1.  No lookup
             * passes m - 1: c[m-1] = total is above every x*total*(1 - 2^-49),
             * and the sentinel c[m] = +inf is what a step may read past it. */
            uint64_t words[PW_DRAW_BLOCK];
            pw_idx pos[PW_DRAW_BLOCK];
            for (int64_t d0 = 0; d0 < m; d0 += PW_DRAW_BLOCK) {
                const int64_t len = m - d0 < PW_DRAW_BLOCK ? m - d0 : PW_DRAW_BLOCK;
                pw_words_take(src, len, words);
                /* candidates for the whole block (no dependence between
                 * draws: the loads overlap), then in draw order: finish the
                 * rare ones the two steps left short, keep first appearances */
                const int unsure = simd->numpy_lookup(words, len, dm, nb, total, guide, c, pos);
                for (int64_t d = 0; d < len; d++) {
                    int64_t j = pos[d];
                    if (unsure) {
                        const double xv = pw_u53_double(words[d]);
                        const double y = xv * total;
                        const double hi = y * (1.0 + PW_2POW_M49), lo = y * (1.0 - PW_2POW_M49);
                        for (;;) {
                            const double cj = c[j];
                            if (cj > hi || (cj >= lo && cj / total > xv))
                                break; /* first j with fl(c[j] / total) > x: searchsorted(side='right') */
                            j++;
                        }
                    }
                    order[found] = (pw_idx)j; /* kept only on its first appearance */
                    found += !seen[j];
                    seen[j] = 1;
                }
            }
        }
        for (int64_t t = first; t < found; t++)
            order[t] = rem[order[t]];
        const int64_t kept = simd->numpy_compact(rem, pr, seen, m);
        /* the next round's estimate: an order the compiler vectorises */
        double e[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        int64_t j = 0;
        for (; j + 8 <= kept; j += 8)
            for (int l = 0; l < 8; l++)
                e[l] += pr[j + l];
        for (; j < kept; j++)
            e[0] += pr[j];
        est = ((e[0] + e[1]) + (e[2] + e[3])) + ((e[4] + e[5]) + (e[6] + e[7]));
        m = kept;
    }
}
